//! Favourites: listings a user keeps an eye on.

use super::*;
use crate::http::error::NotFound;

/// Add to favourites (idempotent).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses((status = 204, description = "Added"), NotFound),
    security(("bearer" = []), ("cookie" = []))
)]
#[put("/listings/{id}/favourite")]
pub async fn add_favourite(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .market
        .favourite(auth.0.uid(), ListingId(id.into_inner()), true)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove from favourites (idempotent).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses((status = 204, description = "Removed"), NotFound),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/listings/{id}/favourite")]
pub async fn remove_favourite(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .market
        .favourite(auth.0.uid(), ListingId(id.into_inner()), false)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// My favourite listings, latest first.
#[utoipa::path(tag = "market", responses((status = 200, body = Vec<FeedItem>)), security(("bearer" = []), ("cookie" = [])))]
#[get("/me/favourites")]
pub async fn my_favourites(
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.market.favourites(auth.0.uid()).await?))
}
