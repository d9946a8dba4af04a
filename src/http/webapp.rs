//! The web client (`web/`): plain ES modules and CSS compiled into the
//! binary, so `cargo run` serves the whole app at `/` with no build step
//! and no files to deploy. Only the public API and the WebSocket protocol
//! are used by it; this module just hands out the files.

use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::error::Refuse;
use crate::http::error::ApiError;
use crate::AppState;

/// One embedded file.
struct Asset {
    path: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
}

macro_rules! assets {
    ($($path:literal => $ct:expr),* $(,)?) => {
        &[$(Asset {
            path: $path,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
            content_type: $ct,
        }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `web/` (a unit test checks the list against the
/// directory, so a new file cannot be forgotten).
static ASSETS: &[Asset] = assets![
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "icon.svg" => "image/svg+xml",
    "js/app.js" => JS,
    "js/api.js" => JS,
    "js/live.js" => JS,
    "js/ui.js" => JS,
    "js/views/admin.js" => JS,
    "js/views/auth.js" => JS,
    "js/views/chats.js" => JS,
    "js/views/edit.js" => JS,
    "js/views/feed.js" => JS,
    "js/views/listing.js" => JS,
    "js/views/me.js" => JS,
    "js/views/notifications.js" => JS,
    "js/views/open.js" => JS,
    "js/views/places.js" => JS,
    "js/views/room.js" => JS,
    "js/views/shop.js" => JS,
];

/// The page may load only its own scripts, styles, images (and previews
/// of files the user picked), and talk only to its own origin; with Toss's
/// widget configured, also its script and frames.
fn csp(toss_sdk_url: Option<&str>) -> String {
    let toss = toss_sdk_url.map(origin).unwrap_or_default();
    let (script, frame, connect) = if toss.is_empty() {
        (String::new(), "'none'".to_string(), String::new())
    } else {
        (
            format!(" {toss}"),
            format!("{toss} https://*.tosspayments.com"),
            format!(" {toss} https://*.tosspayments.com"),
        )
    };
    format!(
        "default-src 'self'; script-src 'self'{script}; style-src 'self'; \
         img-src 'self' blob: data:; connect-src 'self' ws: wss:{connect}; \
         frame-src {frame}; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or_default();
    let scheme = url.split_once("://").map_or("https", |(s, _)| s);
    format!("{scheme}://{host}")
}

/// Content hashes (FNV-1a, 64 bit) as strong ETags, computed once.
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = a.bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                    (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
                });
                format!("\"{hash:016x}\"")
            })
            .collect()
    })
}

fn serve(req: &HttpRequest, state: &AppState, path: &str) -> Result<HttpResponse, ApiError> {
    let Some(i) = ASSETS.iter().position(|a| a.path == path) else {
        return Err(ApiError::not_found("file"));
    };
    let asset = &ASSETS[i];
    let etag = etags()[i].as_str();
    // Revalidated on every load (a new binary never serves stale files),
    // answered with 304 while unchanged.
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("x-content-type-options", "nosniff"));
    if asset.content_type.starts_with("text/html") {
        let sdk = state
            .config
            .payments
            .toss_widget
            .as_ref()
            .map(|(_, url)| url.as_str());
        res.insert_header(("content-security-policy", csp(sdk)))
            .insert_header(("referrer-policy", "same-origin"))
            .insert_header(("x-frame-options", "DENY"));
    }
    if fresh {
        return Ok(res.finish());
    }
    Ok(res
        .content_type(asset.content_type)
        .body(web::Bytes::from_static(asset.bytes)))
}

/// The app's page (its screens are hash routes: `/#/listings/12`).
#[get("/")]
pub async fn app_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, "index.html")
}

/// Where payment providers send the buyer back (`payment_return_url`,
/// Toss's success and fail URLs): the app, which reads the query, confirms
/// the payment and shows the order.
#[get("/pay/return")]
pub async fn pay_return(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, "index.html")
}

/// The app's scripts, styles and icons.
#[get("/app/{path:.*}")]
pub async fn app_file(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    serve(&req, &state, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("web dir").flatten() {
            let p = entry.path();
            if p.is_dir() {
                files(&p, base, out);
            } else {
                let rel = p.strip_prefix(base).expect("under web/");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn every_file_of_the_web_client_is_embedded_and_nothing_else() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut on_disk = Vec::new();
        files(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn the_policy_admits_tosss_widget_only_when_configured() {
        let plain = csp(None);
        assert!(plain.contains("script-src 'self';") && plain.contains("frame-src 'none'"));
        let toss = csp(Some("https://js.tosspayments.com/v2/standard"));
        assert!(
            toss.contains("script-src 'self' https://js.tosspayments.com;"),
            "{toss}"
        );
        assert!(toss.contains("frame-src https://js.tosspayments.com https://*.tosspayments.com"));
        assert_eq!(
            origin("http://127.0.0.1:9000/sdk.js"),
            "http://127.0.0.1:9000"
        );
    }

    #[test]
    fn etags_differ_per_file() {
        let tags = etags();
        let unique: std::collections::HashSet<_> = tags.iter().collect();
        assert_eq!(unique.len(), ASSETS.len());
    }
}
