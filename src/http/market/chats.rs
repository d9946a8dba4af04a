//! The chat between a buyer and the seller of a listing.

use super::*;
use crate::http::error::{NotFound, NotOwner};

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
        NotFound,
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
    let (room, created) = state
        .market
        .chat(auth.0.uid(), ListingId(id.into_inner()))
        .await?;
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
    responses((status = 200, body = Vec<ListingChat>), NotOwner),
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
        .chats(auth.0.uid(), ListingId(id.into_inner()))
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
