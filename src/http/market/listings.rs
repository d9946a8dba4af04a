//! Listings: create, edit, hide, delete, the page, the feed and search.

use super::*;
use crate::http::error::{BadParameter, Invalid, NotOwner, Unauthenticated, Unverified};

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
    /// The region it was posted in (`역삼동`), if the seller had one.
    pub region: Option<String>,
    pub region_code: Option<String>,
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
            region: crate::service::market::region_name(l.region_code.as_deref()),
            region_code: l.region_code.clone(),
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
    /// Listings around this region (a code from `GET /api/regions`); a
    /// signed-in user with a neighbourhood gets their active one's by
    /// default. Without either: the whole country.
    pub region: Option<String>,
    /// `dong` (the region only), `near` (3 km, default), `normal` (6 km),
    /// `far` (10 km): regions whose centroid is this close to the region's.
    pub range: Option<String>,
}

/// Put a listing up for sale.
#[utoipa::path(
    tag = "market",
    request_body = CreateListing,
    responses(
        (status = 201, body = ListingView),
        Unauthenticated,
        Unverified,
        Invalid,
        (status = 429, description = "`rate_limited`: more than `listings_per_hour` new listings in the last hour (`Retry-After`)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/listings")]
pub async fn create_listing(
    state: web::Data<AppState>,
    auth: Verified,
    body: web::Json<CreateListing>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let d = state
        .market
        .create_listing(
            auth.0.uid(),
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
    responses((status = 200, body = FeedView), BadParameter)
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
            auth.user_id().map(UserId),
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
                region: q.region,
                range: q.range,
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
        .detail(auth.user_id().map(UserId), ListingId(id.into_inner()), true)
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
        NotOwner,
        (status = 409, description = "`invalid_state`", body = ErrorBody),
        Invalid,
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
            auth.0.uid(),
            ListingId(id.into_inner()),
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
    responses((status = 204, description = "Deleted"), NotOwner),
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
        .delete_listing(auth.0.uid(), ListingId(id.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
