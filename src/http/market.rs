//! The marketplace over REST: media, listings, feed, favourites, blocks,
//! reports, chats per listing, reservations, sales, reviews.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{delete, get, patch, post, put, web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Admin, Auth, MaybeAuth, OptionalJson};
use super::rooms::RoomView;
use crate::domain::listing::{ListingStatus, Sort};
use crate::error::{ApiError, Code, ErrorBody};
use crate::service::market::{media_url, FeedItem, FeedRequest, ListingDetail, ListingInput};
use crate::store::sql::MediaRecord;
use crate::AppState;

// ------------------------------------------------------------------ media

#[derive(Debug, Serialize, ToSchema)]
pub struct MediaView {
    pub id: i64,
    pub url: String,
    pub thumbnail_url: String,
    pub content_type: String,
    pub bytes: i64,
    pub width: i64,
    pub height: i64,
}

impl From<&MediaRecord> for MediaView {
    fn from(m: &MediaRecord) -> MediaView {
        MediaView {
            id: m.id,
            url: media_url(&m.original_key),
            thumbnail_url: media_url(&m.thumb_key),
            content_type: m.content_type.clone(),
            bytes: m.bytes,
            width: m.width,
            height: m.height,
        }
    }
}

/// Multipart form with one file field named `file`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// JPEG, PNG or WebP; checked by content.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// Upload an image (multipart/form-data, field `file`). Attach it to a
/// listing by id. The file type is decided by its content, not its name.
#[utoipa::path(
    tag = "market",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = MediaView),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not multipart", body = ErrorBody),
        (status = 422, description = "`bad_image` or `validation_failed` (no `file` field)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/media")]
pub async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.starts_with("multipart/form-data") {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "send multipart/form-data with a `file` field",
        ));
    }
    let max = state.media.max_bytes();
    let mut form = actix_multipart::Multipart::new(req.headers(), payload);
    let mut file: Option<Vec<u8>> = None;
    while let Some(field) = form.next().await {
        let mut field = field.map_err(|e| {
            ApiError::new(Code::InvalidParameter, format!("bad multipart body: {e}"))
        })?;
        let is_file = field.name() == Some("file");
        let mut buf = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(Code::InvalidParameter, format!("bad multipart body: {e}"))
            })?;
            if buf.len() + chunk.len() > max {
                return Err(ApiError::new(
                    Code::PayloadTooLarge,
                    format!("images may be at most {max} bytes"),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        if is_file {
            if file.is_some() {
                return Err(ApiError::new(Code::ValidationFailed, "one file per upload"));
            }
            file = Some(buf);
        }
    }
    let bytes = file.ok_or_else(|| {
        ApiError::new(
            Code::ValidationFailed,
            "a multipart field named `file` is required",
        )
        .with_details(serde_json::json!({"file": "is required"}))
    })?;
    let media = state.media.upload(auth.0.user_id(), bytes).await?;
    Ok(HttpResponse::Created().json(MediaView::from(&media)))
}

/// Serve an uploaded image or thumbnail (immutable: keys are never reused).
#[utoipa::path(
    tag = "market",
    params(("key" = String, Path, description = "Storage key from a media URL")),
    responses((status = 200, description = "The image"), (status = 404, description = "`not_found`", body = ErrorBody))
)]
#[get("/media/{key:.*}")]
pub async fn serve_media(
    state: web::Data<AppState>,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = key.into_inner();
    let bytes = state
        .media
        .storage()
        .get(&key)
        .await?
        .ok_or_else(|| ApiError::not_found("media"))?;
    Ok(HttpResponse::Ok()
        .content_type(crate::service::media::content_type_of_key(&key))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .insert_header(("x-content-type-options", "nosniff"))
        .body(bytes))
}

// --------------------------------------------------------------- listings

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateListing {
    /// 1..=100 characters.
    pub title: String,
    /// Up to 5000 characters.
    pub description: Option<String>,
    /// Whole won, >= 0.
    pub price: i64,
    /// One of `domain::listing::CATEGORIES` (e.g. `digital`, `furniture`).
    pub category: String,
    /// Media ids from `POST /api/media`, in display order; the first is the thumbnail. At most 10.
    pub images: Option<Vec<i64>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateListing {
    pub title: Option<String>,
    pub description: Option<String>,
    pub price: Option<i64>,
    pub category: Option<String>,
    /// Replaces all images.
    pub images: Option<Vec<i64>>,
    /// `hidden` to hide, `selling` to show again.
    pub status: Option<ListingStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SellerView {
    pub id: i64,
    pub nickname: String,
    pub manner_score: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingView {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub price: i64,
    pub category: String,
    pub status: ListingStatus,
    pub seller: SellerView,
    pub images: Vec<MediaView>,
    pub thumbnail_url: Option<String>,
    pub favourite_count: i64,
    pub chat_count: i64,
    pub view_count: i64,
    /// Whether the caller has it among their favourites.
    pub is_favourite: bool,
    /// A timed reservation ends then (epoch ms).
    pub reserved_until: Option<i64>,
    /// The buyer it is reserved for (seller only).
    pub reserved_for: Option<i64>,
    /// The buyer it was sold to.
    pub buyer_id: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&ListingDetail> for ListingView {
    fn from(d: &ListingDetail) -> ListingView {
        let l = &d.listing;
        ListingView {
            id: l.id,
            title: l.title.clone(),
            description: l.description.clone(),
            price: l.price,
            category: l.category.clone(),
            status: l.status,
            seller: SellerView {
                id: d.seller.id,
                nickname: if d.seller.withdrawn {
                    crate::domain::account::WITHDRAWN_NICKNAME.to_string()
                } else {
                    d.seller.nickname.clone()
                },
                manner_score: d.seller_manner,
            },
            thumbnail_url: d.images.first().map(|m| media_url(&m.thumb_key)),
            images: d.images.iter().map(MediaView::from).collect(),
            favourite_count: l.favourite_count,
            chat_count: l.chat_count,
            view_count: l.view_count,
            is_favourite: d.is_favourite,
            reserved_until: d.reservation_until,
            reserved_for: d.reserved_for,
            buyer_id: l.buyer_id,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedView {
    pub items: Vec<FeedItem>,
    /// Opaque; pass as `cursor` for the next page. Absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    pub cursor: Option<String>,
    /// 1..=100, default 20.
    pub limit: Option<i64>,
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Substring of title or description, any script (`아이폰`, `iphone`).
    pub q: Option<String>,
    /// `recent` (default), `price_asc`, `price_desc`.
    pub sort: Option<Sort>,
    /// `selling`, `reserved` or `sold`; default selling and reserved.
    pub status: Option<ListingStatus>,
    /// Only this seller's listings.
    pub seller: Option<i64>,
}

/// Put a listing up for sale.
#[utoipa::path(
    tag = "market",
    request_body = CreateListing,
    responses(
        (status = 201, body = ListingView),
        (status = 401, description = "`unauthenticated`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/listings")]
pub async fn create_listing(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<CreateListing>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let d = state
        .market
        .create_listing(
            auth.0.user_id(),
            ListingInput {
                title: Some(b.title),
                description: b.description,
                price: Some(b.price),
                category: Some(b.category),
                images: b.images,
                status: None,
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(ListingView::from(&d)))
}

/// The feed: newest first (or by price), with filters and search;
/// infinite scroll with `cursor`. No sign-in needed.
#[utoipa::path(
    tag = "market",
    params(FeedParams),
    responses((status = 200, body = FeedView), (status = 400, description = "`invalid_parameter`", body = ErrorBody))
)]
#[get("/listings")]
pub async fn feed(
    state: web::Data<AppState>,
    auth: MaybeAuth,
    query: web::Query<FeedParams>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let page = state
        .market
        .feed(
            auth.user_id(),
            FeedRequest {
                cursor: q.cursor,
                limit: q.limit,
                category: q.category,
                min_price: q.min_price,
                max_price: q.max_price,
                q: q.q,
                sort: q.sort,
                status: q.status,
                seller: q.seller,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(FeedView {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// A listing's page (counts a view unless you are the seller).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses((status = 200, body = ListingView), (status = 404, description = "`not_found` (also deleted or hidden)", body = ErrorBody))
)]
#[get("/listings/{id}")]
pub async fn get_listing(
    state: web::Data<AppState>,
    auth: MaybeAuth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let d = state
        .market
        .detail(auth.user_id(), id.into_inner(), true)
        .await?;
    Ok(HttpResponse::Ok().json(ListingView::from(&d)))
}

/// Edit a listing (seller only). A price change is announced in its chats.
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    request_body = UpdateListing,
    responses(
        (status = 200, body = ListingView),
        (status = 403, description = "`not_owner`", body = ErrorBody),
        (status = 409, description = "`invalid_state`", body = ErrorBody),
        (status = 422, description = "`validation_failed`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[patch("/listings/{id}")]
pub async fn update_listing(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<UpdateListing>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let d = state
        .market
        .update_listing(
            auth.0.user_id(),
            id.into_inner(),
            ListingInput {
                title: b.title,
                description: b.description,
                price: b.price,
                category: b.category,
                images: b.images,
                status: b.status,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ListingView::from(&d)))
}

/// Delete a listing (seller only; soft: chats keep their history).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses((status = 204, description = "Deleted"), (status = 403, description = "`not_owner`", body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/listings/{id}")]
pub async fn delete_listing(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state
        .market
        .delete_listing(auth.0.user_id(), id.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---------------------------------------------------- favourites, blocks

/// Add to favourites (idempotent).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses((status = 204, description = "Added"), (status = 404, description = "`not_found`", body = ErrorBody)),
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
        .favourite(auth.0.user_id(), id.into_inner(), true)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove from favourites (idempotent).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses((status = 204, description = "Removed"), (status = 404, description = "`not_found`", body = ErrorBody)),
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
        .favourite(auth.0.user_id(), id.into_inner(), false)
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
    Ok(HttpResponse::Ok().json(state.market.favourites(auth.0.user_id()).await?))
}

/// Block a user: their listings leave your feed, and chats between you stop (`blocked`).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204, description = "Blocked"), (status = 404, description = "`not_found`", body = ErrorBody), (status = 422, description = "yourself", body = ErrorBody)),
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
        .block(auth.0.user_id(), id.into_inner(), true)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Unblock a user.
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "User id")),
    responses((status = 204, description = "Unblocked"), (status = 404, description = "`not_found`", body = ErrorBody)),
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
        .block(auth.0.user_id(), id.into_inner(), false)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Users I blocked.
#[utoipa::path(tag = "market", responses((status = 200, body = Vec<i64>)), security(("bearer" = []), ("cookie" = [])))]
#[get("/me/blocks")]
pub async fn my_blocks(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.market.blocks(auth.0.user_id()).await?))
}

// ---------------------------------------------------------------- reports

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
        (status = 422, description = "`validation_failed`", body = ErrorBody),
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
    responses((status = 200, body = Vec<ReportView>), (status = 403, description = "`forbidden`", body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/admin/reports")]
pub async fn admin_reports(
    state: web::Data<AppState>,
    _admin: Admin,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::new(
            Code::InvalidParameter,
            "limit must be between 1 and 200",
        ));
    }
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

// ------------------------------------------------------ chats per listing

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingChat {
    pub room_id: i64,
    pub buyer_id: i64,
    pub buyer_nickname: String,
    pub last_activity_at: i64,
}

/// Chat with the seller about this listing (get or create; one per buyer).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses(
        (status = 201, description = "Created", body = RoomView),
        (status = 200, description = "The existing chat", body = RoomView),
        (status = 403, description = "`blocked`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict`: your own listing", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/listings/{id}/chat")]
pub async fn listing_chat(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (room, created) = state.market.chat(auth.0.user_id(), id.into_inner()).await?;
    let view = RoomView::of(&room, Some(true));
    Ok(if created {
        HttpResponse::Created().json(view)
    } else {
        HttpResponse::Ok().json(view)
    })
}

/// Buyers who chatted about this listing (seller only).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses((status = 200, body = Vec<ListingChat>), (status = 403, description = "`not_owner`", body = ErrorBody)),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/listings/{id}/chats")]
pub async fn listing_chats(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let chats = state
        .market
        .chats(auth.0.user_id(), id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(
        chats
            .into_iter()
            .map(|(room_id, u, last)| ListingChat {
                room_id,
                buyer_id: u.id,
                buyer_nickname: u.nickname,
                last_activity_at: last,
            })
            .collect::<Vec<_>>(),
    ))
}

// ------------------------------------------ reservations, sales, reviews

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
        (status = 403, description = "`not_owner`", body = ErrorBody),
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
        .reserve(auth.0.user_id(), id.into_inner(), body.buyer_id, body.until)
        .await?;
    Ok(HttpResponse::Ok().json(ListingView::from(&d)))
}

/// Cancel the reservation (the seller, or the buyer it is for).
#[utoipa::path(
    tag = "market",
    params(("id" = i64, Path, description = "Listing id")),
    responses(
        (status = 204, description = "Cancelled; the listing is selling again"),
        (status = 403, description = "`not_owner`", body = ErrorBody),
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
        .cancel_reservation(auth.0.user_id(), id.into_inner())
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
        (status = 403, description = "`not_owner`", body = ErrorBody),
        (status = 409, description = "`invalid_state`: already sold or hidden", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
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
        .mark_sold(auth.0.user_id(), id.into_inner(), buyer)
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
        (status = 422, description = "`validation_failed`", body = ErrorBody),
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
            auth.0.user_id(),
            id.into_inner(),
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
    responses((status = 200, body = ProfileView), (status = 404, description = "`not_found`", body = ErrorBody))
)]
#[get("/users/{id}")]
pub async fn get_user(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (user, manner, summary) = state.market.profile(id.into_inner()).await?;
    let public = super::accounts::PublicUser::from(&user);
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
