//! Operational endpoints: liveness, readiness, metrics.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::error::{Code, Refuse};
use crate::http::error::{ApiError, ErrorBody};
use crate::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ready")]
    pub status: &'static str,
    /// Backend name -> `ok`.
    pub checks: BTreeMap<&'static str, &'static str>,
}

/// The process is alive.
#[utoipa::path(tag = "system", responses((status = 200, body = Health)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Every configured backend is reachable.
#[utoipa::path(
    tag = "system",
    responses(
        (status = 200, body = Ready),
        (status = 503, description = "`unavailable`; `details` names each failing backend", body = ErrorBody),
    )
)]
#[get("/ready")]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let results = state.engines().readiness().await;
    let mut checks = BTreeMap::new();
    let mut failures = BTreeMap::new();
    for (name, result) in results {
        match result {
            Ok(()) => {
                checks.insert(name, "ok");
            }
            Err(e) => {
                failures.insert(name, e);
            }
        }
    }
    if failures.is_empty() {
        return Ok(HttpResponse::Ok().json(Ready {
            status: "ready",
            checks,
        }));
    }
    let names: Vec<&str> = failures.keys().copied().collect();
    Err(ApiError::new(
        Code::Unavailable,
        format!("backend unavailable: {}", names.join(", ")),
    )
    .with_details(json!(failures)))
}

/// Whether `req` carries `Authorization: Bearer <expected>`. Both sides
/// are hashed first, so the comparison takes the same time whatever the
/// guess (no early exit on the first differing byte).
fn has_metrics_token(req: &HttpRequest, expected: &str) -> bool {
    use sha2::{Digest as _, Sha256};
    let Some(given) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
    else {
        return false;
    };
    let (a, b) = (Sha256::digest(given), Sha256::digest(expected));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Prometheus metrics in text exposition format. With `metrics_token` set,
/// only for `Authorization: Bearer <metrics_token>`; with `metrics_enabled
/// = false`, not served at all.
#[utoipa::path(
    tag = "system",
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 401, description = "`unauthenticated`: `metrics_token` is set and the request does not carry it as a bearer token", body = ErrorBody),
        (status = 404, description = "`not_found`: `metrics_enabled = false`", body = ErrorBody),
    ),
    security((), ("metrics_token" = []))
)]
#[get("/metrics")]
pub async fn metrics(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !state.config.metrics.enabled {
        // The same answer as a route that does not exist.
        return Err(ApiError::not_found("route"));
    }
    if let Some(token) = &state.config.metrics.token {
        if !has_metrics_token(&req, token) {
            return Err(ApiError::new(
                Code::Unauthenticated,
                "metrics require `Authorization: Bearer <metrics_token>`",
            ));
        }
    }
    let text = state.metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
