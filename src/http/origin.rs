//! Which page a browser request comes from, for the two places where a
//! browser's ambient credentials could be used by another site's page:
//!
//! - A state-changing request (any method but GET, HEAD, OPTIONS) that is
//!   authenticated by the session **cookie** (no `Authorization` header).
//!   A page on another origin can make the browser send such a request
//!   with the cookie attached (a form post, or a `fetch` without a body).
//!   `SameSite=Lax` keeps the cookie off cross-site posts but not off
//!   same-site ones (another port of the same host is "same-site"), so the
//!   middleware checks the browser's own statement of where the request
//!   came from: `Sec-Fetch-Site` must be `same-origin` or `none` (typed by
//!   the user), and `Origin`, when present, must be this server's origin.
//!   Bearer-token requests are not affected: a page cannot make a browser
//!   attach a bearer token of its own accord.
//! - The WebSocket upgrade, which browsers send with cookies from any page
//!   (there is no CORS for WebSockets). Without `ws_allowed_origins` only
//!   the server's own origin may open `/ws` from a browser.
//!
//! "This server's origin" is the origin of `public_url`, or the request's
//! own `Host` (the web client is served from the same address it calls),
//! or an entry of `ws_allowed_origins`. A request that carries neither
//! header (not a browser, or a browser too old to send them) passes: the
//! attacks above need a browser, and every browser we support sends
//! `Origin` on these requests.

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::Method;

/// The lower-cased `scheme://authority` of an absolute URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !authority.is_empty())
        .then(|| format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// The authority (`host[:port]`) of an origin, with the scheme's default
/// port dropped, so `https://a.kr:443` and a `Host: a.kr` agree.
fn authority(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    let rest = rest.to_ascii_lowercase();
    let default = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => "",
    };
    Some(match rest.strip_suffix(default) {
        Some(bare) if !default.is_empty() => bare.to_string(),
        _ => rest,
    })
}

/// What the origin rules compare against.
pub struct Own<'a> {
    /// `Host` of the request, as sent.
    pub host: Option<&'a str>,
    /// The origin of `public_url` (lower case).
    pub public_origin: &'a str,
    /// `ws_allowed_origins` (lower case, no trailing slash).
    pub allowed: &'a [String],
}

impl<'a> Own<'a> {
    /// This server's origins as a request to it sees them.
    pub fn of(headers: &'a HeaderMap, http: &'a crate::config::HttpSettings) -> Own<'a> {
        Own {
            host: headers.get(header::HOST).and_then(|h| h.to_str().ok()),
            public_origin: &http.public_origin,
            allowed: &http.ws_allowed_origins,
        }
    }

    /// Is `origin` (an `Origin` header value) one of ours?
    pub fn accepts(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if origin == "null" || origin.is_empty() {
            return false;
        }
        if origin == self.public_origin || self.allowed.contains(&origin) {
            return true;
        }
        let Some(from) = authority(&origin) else {
            return false;
        };
        self.host
            .map(|h| h.trim().to_ascii_lowercase())
            .is_some_and(|h| {
                h == from
                    || authority(&format!("http://{h}")).as_deref() == Some(from.as_str())
                    || authority(&format!("https://{h}")).as_deref() == Some(from.as_str())
            })
    }

    /// May this browser request act with the caller's ambient credentials?
    /// `Sec-Fetch-Site` first (sent by every current browser, and not
    /// settable by a page), then `Origin`; neither: not a browser.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let origins: Vec<&str> = headers
            .get_all(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or("null"))
            .collect();
        if let Some(site) = headers.get("sec-fetch-site") {
            match site.to_str().unwrap_or("") {
                "same-origin" | "none" => {}
                // Another site's page: only an origin listed by the
                // operator (a separately hosted client) may.
                _ => {
                    return !origins.is_empty()
                        && origins.iter().all(|o| {
                            let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
                            self.allowed.contains(&o)
                        })
                }
            }
        }
        origins.iter().all(|o| self.accepts(o))
    }
}

/// Methods that change state (everything but the safe ones).
pub fn unsafe_method(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn origins_of_urls() {
        assert_eq!(
            origin_of("https://Jangteo.kr/app?x=1").as_deref(),
            Some("https://jangteo.kr")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("nonsense"), None);
    }

    #[test]
    fn own_origin_and_host_pass_others_do_not() {
        let allowed = vec!["https://partner.example".to_string()];
        let own = Own {
            host: Some("127.0.0.1:8080"),
            public_origin: "https://jangteo.kr",
            allowed: &allowed,
        };
        assert!(own.accepts("http://127.0.0.1:8080"));
        assert!(own.accepts("https://jangteo.kr"));
        assert!(own.accepts("https://jangteo.kr/"));
        assert!(own.accepts("https://partner.example"));
        assert!(!own.accepts("http://127.0.0.1:8081"), "another port");
        assert!(!own.accepts("http://evil.example"));
        assert!(!own.accepts("null"));
        let own = Own {
            host: Some("jangteo.kr"),
            public_origin: "http://x",
            allowed: &[],
        };
        assert!(own.accepts("https://jangteo.kr:443"));
        assert!(own.accepts("http://jangteo.kr"));
        assert!(!own.accepts("https://jangteo.kr.evil.example"));
    }

    #[test]
    fn fetch_metadata_decides_before_origin() {
        let own = Own {
            host: Some("127.0.0.1:8080"),
            public_origin: "http://127.0.0.1:8080",
            allowed: &[],
        };
        assert!(own.allows(&headers(&[])), "not a browser");
        assert!(own.allows(&headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://127.0.0.1:8080")
        ])));
        assert!(own.allows(&headers(&[("sec-fetch-site", "none")])));
        assert!(!own.allows(&headers(&[
            ("sec-fetch-site", "same-site"),
            ("origin", "http://127.0.0.1:9999")
        ])));
        assert!(!own.allows(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!own.allows(&headers(&[("origin", "http://evil.example")])));
        assert!(!own.allows(&headers(&[("origin", "null")])));
    }
}
