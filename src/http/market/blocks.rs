//! Blocks: users whose listings and chats a user does not want to see.

use super::*;
use crate::http::error::NotFound;

/// Block a user: their listings leave your feed, and chats between you stop (`blocked`).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204, description = "Blocked"), NotFound, (status = 422, description = "yourself", body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
#[put("/users/{id}/block")]
pub async fn block(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .market
        .block(auth.0.uid(), UserId(id.into_inner()), true)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Unblock a user.
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204, description = "Unblocked"), NotFound),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/users/{id}/block")]
pub async fn unblock(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .market
        .block(auth.0.uid(), UserId(id.into_inner()), false)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Users I blocked.
#[utoipa::path(tag = "market", responses((status = 200, body = Vec<i64>)), security(("bearer" = []), ("cookie" = [])))]
#[get("/me/blocks")]
pub async fn my_blocks(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.market.blocks(auth.0.uid()).await?))
}
