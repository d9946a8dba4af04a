//! Operational endpoints: liveness, readiness, metrics.

use std::collections::BTreeMap;

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::error::{ApiError, Code, ErrorBody};
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
    // Every configured backend, checked one after another (a broker that
    // does not answer costs its own timeout, not everyone's).
    // Each result keeps only its message: that is all readiness reports.
    fn outcome(r: Result<(), impl std::fmt::Display>) -> Result<(), String> {
        r.map_err(|e| e.to_string())
    }
    let mut results = vec![("database", outcome(state.sql.ping().await))];
    if let Some(redis) = &state.redis {
        results.push(("redis", outcome(redis.ping().await)));
    }
    if let Some(mongo) = &state.mongo {
        results.push(("mongodb", outcome(mongo.ping().await)));
    }
    if let Some(kafka) = &state.kafka {
        results.push(("kafka", outcome(kafka.ping().await)));
    }
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

/// Prometheus metrics in text exposition format.
#[utoipa::path(tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let text = state.metrics.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text))
}
