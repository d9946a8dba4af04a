//! Reservations (also timed), sales and reviews.

use super::*;
use crate::http::error::{Invalid, NotFound, NotOwner, TooLarge};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveRequest {
    /// A buyer who has a chat about this listing.
    pub buyer_id: i64,
    /// Epoch ms; the reservation expires on its own then. Must be in the
    /// future and at most `reservation_max_secs` (default 7 days) ahead.
    pub until: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SoldRequest {
    /// A buyer who has a chat about this listing (enables reviews).
    pub buyer_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// `good` or `bad`.
    pub rating: String,
    /// Codes from `domain::listing::REVIEW_TAGS` (e.g. `kind`, `punctual`).
    pub tags: Option<Vec<String>>,
    pub text: Option<String>,
}

/// Reserve for a buyer (seller only), optionally until a time. Replaces a current reservation.
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    request_body = ReserveRequest,
    responses(
        (status = 200, body = ListingView),
        (status = 400, description = "`invalid_parameter`: buyer has no chat about it", body = ErrorBody),
        NotOwner,
        (status = 409, description = "`invalid_state`: sold or hidden", body = ErrorBody),
        (status = 422, description = "`validation_failed` naming `until`: not in the future, or more than `reservation_max_secs` (default 7 days) ahead", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/listings/{id}/reservation")]
pub async fn reserve(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<ReserveRequest>,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .market
        .reserve(
            auth.0.uid(),
            ListingId(id.into_inner()),
            UserId(body.buyer_id),
            body.until,
        )
        .await?;
    Ok(HttpResponse::Ok().json(ListingView::from(&d)))
}

/// Cancel the reservation (the seller, or the buyer it is for).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses(
        (status = 204, description = "Cancelled; the listing is selling again"),
        NotOwner,
        (status = 404, description = "`not_found`: no active reservation", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/listings/{id}/reservation")]
pub async fn cancel_reservation(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .market
        .cancel_reservation(auth.0.uid(), ListingId(id.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Mark sold (seller only), optionally to a buyer who chatted about it.
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    request_body(content = SoldRequest, description = "Optional: no body (or `{}`) when the buyer is unknown. A body that is present must be valid"),
    responses(
        (status = 200, body = ListingView),
        (status = 400, description = "`bad_json`: a body that is not JSON (nothing is changed)", body = ErrorBody),
        NotOwner,
        (status = 409, description = "`invalid_state`: already sold or hidden", body = ErrorBody),
        TooLarge,
        (status = 415, description = "`unsupported_media_type`: a body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_body`: JSON of the wrong shape (nothing is changed)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/listings/{id}/sold")]
pub async fn sold(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: OptionalJson<SoldRequest>,
) -> Result<HttpResponse, ApiError> {
    let buyer = body.into_inner().buyer_id;
    let d = state
        .market
        .mark_sold(auth.0.uid(), ListingId(id.into_inner()), buyer.map(UserId))
        .await?;
    Ok(HttpResponse::Ok().json(ListingView::from(&d)))
}

/// Review the other side of a finished deal (once each).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    request_body = ReviewRequest,
    responses(
        (status = 201, description = "Stored"),
        (status = 403, description = "`forbidden`: not the buyer or seller", body = ErrorBody),
        (status = 409, description = "`already_reviewed` or `invalid_state` (not sold to a buyer)", body = ErrorBody),
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/listings/{id}/reviews")]
pub async fn review(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<ReviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    state
        .market
        .review(
            auth.0.uid(),
            ListingId(id.into_inner()),
            &b.rating,
            b.tags.unwrap_or_default(),
            b.text,
        )
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// A user's public profile with manner score and received review tags.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    pub id: i64,
    pub nickname: String,
    pub withdrawn: bool,
    pub joined_at: i64,
    /// Starts at 36.5; +0.2 per good review, -1.0 per bad one, within 0..=99.
    pub manner_score: f64,
    pub reviews_good: i64,
    pub reviews_bad: i64,
    /// Tag code -> how many reviews gave it.
    pub review_tags: BTreeMap<String, i64>,
}

/// A user's public profile.
#[utoipa::path(
    tag = "accounts",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = ProfileView), NotFound)
)]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (user, manner, summary) = state.market.profile(UserId(id.into_inner())).await?;
    let public = crate::http::accounts::PublicUser::from(&user);
    Ok(HttpResponse::Ok().json(ProfileView {
        id: public.id,
        nickname: public.nickname,
        withdrawn: public.withdrawn,
        joined_at: public.joined_at,
        manner_score: manner,
        reviews_good: summary.good,
        reviews_bad: summary.bad,
        review_tags: summary.tags.into_iter().collect(),
    }))
}
