//! Reports, and the admin queue.

use super::*;
use crate::http::error::{Forbidden, Invalid};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// `listing`, `user` or `message`.
    pub target_kind: String,
    /// Listing id, user id, or message seq.
    pub target_id: i64,
    /// The room of a reported message.
    pub room_id: Option<i64>,
    /// 1..=500 characters.
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReportView {
    pub id: i64,
    pub reporter_id: i64,
    pub target_kind: String,
    pub target_id: i64,
    pub room_id: Option<i64>,
    pub reason: String,
    pub created_at: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    /// Reports with an id below this (older).
    pub before: Option<i64>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

/// Report a listing, a user or a message, for the administrators.
#[utoipa::path(
    tag = "market",
    request_body = ReportRequest,
    responses(
        (status = 201, description = "Stored", body = ReportView),
        (status = 403, description = "`not_member` (message in a room you are not in)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such target, or a listing the caller cannot see (deleted, or hidden by its seller): the same answer either way", body = ErrorBody),
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/reports")]
pub async fn report(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<ReportRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = state
        .market
        .report(
            auth.0.user_id(),
            &body.target_kind,
            body.target_id,
            body.room_id,
            &body.reason,
        )
        .await?;
    Ok(HttpResponse::Created().json(ReportView {
        id,
        reporter_id: auth.0.user_id(),
        target_kind: body.target_kind.clone(),
        target_id: body.target_id,
        room_id: body.room_id,
        reason: body.reason.trim().to_string(),
        created_at: crate::domain::now_ms(),
    }))
}

/// Reports, newest first (administrators only).
#[utoipa::path(
    tag = "admin",
    params(ReportQuery),
    responses((status = 200, body = Vec<ReportView>), Forbidden),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/admin/reports")]
pub async fn admin_reports(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(query.limit, 50, 200)?;
    let reports = state.market.reports(query.before, limit).await?;
    Ok(HttpResponse::Ok().json(
        reports
            .into_iter()
            .map(|r| ReportView {
                id: r.id,
                reporter_id: r.reporter_id,
                target_kind: r.target_kind,
                target_id: r.target_id,
                room_id: r.room_id,
                reason: r.reason,
                created_at: r.created_at,
            })
            .collect::<Vec<_>>(),
    ))
}
