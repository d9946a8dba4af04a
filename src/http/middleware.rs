//! The one middleware every request passes: request id, a tracing span,
//! access log, metrics, the URI length limit (`max_uri_bytes`, 414 before
//! routing), the cross-site check of cookie-authenticated changes
//! (`http::origin`, 403 before routing), and the error envelope for bare error responses that actix
//! produces on its own (unmatched route, wrong method).

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _, HttpResponse};
use rand::Rng as _;
use tracing::Instrument as _;

use super::accounts::session_cookie;
use super::extract::RefreshCookie;
use crate::error::{Code, Refuse};
use crate::http::error::ApiError;
use crate::AppState;

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Accept a caller's request id if it is short and printable, else make one.
fn request_id(req: &ServiceRequest) -> String {
    if let Some(v) = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()) {
        if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()) {
            return v.to_string();
        }
    }
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

/// Length of the request target as received: path and query (origin
/// form), plus scheme and authority when the client sent an absolute URI.
fn uri_len(uri: &actix_web::http::Uri) -> usize {
    uri.scheme_str().map_or(0, |s| s.len() + 3)
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |pq| pq.as_str().len())
}

fn is_json(res: &ServiceResponse<BoxBody>) -> bool {
    res.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The method as a metric label. Labels must come from a bounded set: a
/// client can send any token as a method, and every distinct label set is
/// a series kept for the life of the process. Methods we do not serve fold
/// into `OTHER`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The status as a metric label: the registered codes (RFC 9110 and
/// friends) as themselves, anything else as `other`.
pub fn status_label(status: actix_web::http::StatusCode) -> &'static str {
    if status.canonical_reason().is_none() {
        return "other";
    }
    // Every code with a canonical reason is in 100..=599.
    const CLASSES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];
    match status.as_u16() {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        206 => "206",
        301 => "301",
        302 => "302",
        303 => "303",
        304 => "304",
        307 => "307",
        308 => "308",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        406 => "406",
        408 => "408",
        409 => "409",
        410 => "410",
        411 => "411",
        412 => "412",
        413 => "413",
        414 => "414",
        415 => "415",
        416 => "416",
        422 => "422",
        426 => "426",
        428 => "428",
        429 => "429",
        431 => "431",
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        505 => "505",
        n => CLASSES
            .get(usize::from(n / 100))
            .copied()
            .unwrap_or("other"),
    }
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let id = request_id(&req);
    let method = method_label(req.method());
    let span = tracing::info_span!("http", request_id = %id, %method, path = %req.path());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let started = Instant::now();
    let uri_over = state
        .as_ref()
        .map(|s| s.config.http.max_uri_bytes)
        .filter(|&max| uri_len(req.uri()) > max);
    let cross_site = state.as_ref().is_some_and(|s| {
        super::origin::unsafe_method(req.method())
            && !req.headers().contains_key(header::AUTHORIZATION)
            && req.cookie(super::extract::SESSION_COOKIE).is_some()
            && !super::origin::Own::of(req.headers(), &s.config.http).allows(req.headers())
    });
    let mut res = if cross_site {
        // Refused before routing: another site's page tried to use the
        // browser's session cookie (see `http::origin`).
        let err = ApiError::new(
            Code::CrossOrigin,
            "a change authenticated by the session cookie must come from this site's own pages",
        );
        let (req, _) = req.into_parts();
        ServiceResponse::new(req, actix_web::ResponseError::error_response(&err))
    } else if let Some(max) = uri_over {
        // Refused before routing: no handler runs, nothing is read or
        // written. (URIs over 65534 bytes never get here: the HTTP layer
        // refuses them with a bare 400, see docs/OPERATIONS.md.)
        let err = ApiError::new(
            Code::UriTooLong,
            format!("the request URI is longer than {max} bytes"),
        );
        let (req, _) = req.into_parts();
        ServiceResponse::new(req, actix_web::ResponseError::error_response(&err))
    } else {
        next.call(req)
            .instrument(span.clone())
            .await?
            .map_into_boxed_body()
    };

    let status = res.status();
    if (status.is_client_error() || status.is_server_error()) && !is_json(&res) {
        // Give actix's own bare errors the same envelope as ours.
        let code = Code::for_status(status);
        let message = status.canonical_reason().unwrap_or("error").to_lowercase();
        let mut body = HttpResponse::build(status).json(ApiError::new(code, message).body());
        for (name, value) in res.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                body.headers_mut().insert(name.clone(), value.clone());
            }
        }
        let (req, _) = res.into_parts();
        res = ServiceResponse::new(req, body);
    }
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let elapsed = started.elapsed();
    if let Some(state) = &state {
        state
            .metrics
            .http_requests
            .with_label_values(&[method, &route, status_label(status)])
            .inc();
        state
            .metrics
            .http_duration
            .with_label_values(&[method, &route])
            .observe(elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(status = status.as_u16(), route = %route, latency_ms = elapsed.as_secs_f64() * 1e3, "request")
    });
    let refresh = res.request().extensions().get::<RefreshCookie>().cloned();
    let sets_cookie = res.headers().contains_key(header::SET_COOKIE);
    if let (Some(refresh), Some(state), false) = (refresh, state.as_ref(), sets_cookie) {
        let ttl = i64::try_from(state.config.accounts.session_ttl.as_secs()).unwrap_or(i64::MAX);
        let cookie = session_cookie(&refresh.token, state.config.http.cookie_secure, ttl);
        if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
            res.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    harden(&mut res);
    Ok(res)
}

/// Swagger UI's pages: its own scripts only (it has no inline script), its
/// inline styles and data: icons, talking to this origin.
const SWAGGER_CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";
/// Everything else that sets no policy of its own (JSON, media, errors):
/// nothing to run, and never inside another site's frame.
const DEFAULT_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Headers every response carries: no framing by other sites (clickjacking),
/// no content sniffing, and a content security policy where the handler
/// set none (the web client's pages set their own).
fn harden(res: &mut ServiceResponse<BoxBody>) {
    let swagger = res.request().path().starts_with("/swagger-ui");
    let headers = res.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(if swagger { SWAGGER_CSP } else { DEFAULT_CSP }),
        );
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use actix_web::http::{Method, StatusCode};
    use proptest::prelude::*;

    use super::{method_label, status_label};

    proptest! {
        /// Whatever token a client sends as its method, the label is one
        /// of eight.
        #[test]
        fn method_labels_are_bounded(token in "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}") {
            let Ok(method) = Method::from_bytes(token.as_bytes()) else {
                return Ok(());
            };
            let label = method_label(&method);
            prop_assert!(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"].contains(&label));
            if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&token.as_str()) {
                prop_assert_eq!(label, "OTHER");
            }
        }
    }

    /// Every status a response can carry maps into a small set.
    #[test]
    fn status_labels_are_bounded() {
        let labels: HashSet<&str> = (100..=999)
            .filter_map(|n| StatusCode::from_u16(n).ok())
            .map(status_label)
            .collect();
        assert!(labels.len() <= 48, "{labels:?}");
        assert_eq!(status_label(StatusCode::NOT_FOUND), "404");
        assert_eq!(status_label(StatusCode::IM_A_TEAPOT), "4xx");
        assert_eq!(
            status_label(StatusCode::from_u16(799).expect("valid")),
            "other"
        );
    }
}
