//! Chat rooms over REST: create, search, join, leave, moderate, history,
//! read pointers, edits. Live traffic is on the WebSocket (`/ws`).

use actix_web::{delete, get, patch, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::{Auth, OptionalJson};
use crate::domain::chat::{self, MemberRole, MessageKind, RoomKind};
use crate::error::{Code, Refuse};
use crate::http::error::{
    ApiError, BadParameter, ErrorBody, Invalid, NotFound, NotMember, NotOwner, TooLarge,
    Unauthenticated,
};
use crate::service::chat::{OpenRoomInput, Page};
use crate::store::{MemberRecord, MessageRecord, RoomRecord};
use crate::AppState;

/// `{"kind":"open", ...}` creates an open chat; `{"kind":"direct","peer":U}`
/// gets or creates the one direct room with user U.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CreateRoomRequest {
    Open {
        /// 1..=50 characters.
        name: String,
        /// Up to 500 characters.
        description: Option<String>,
        /// 2..=1500, default 1500.
        capacity: Option<i64>,
        /// 4..=32 characters; joiners must give it.
        passcode: Option<String>,
        /// Entry condition: joiners need at least this manner score.
        min_manner_score: Option<f64>,
        /// A neighbourhood room: a region code (`GET /api/regions`) where
        /// the creator is verified; joiners need a verified neighbourhood
        /// whose range takes it in.
        region: Option<String>,
    },
    Direct {
        peer: i64,
    },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomView {
    pub id: i64,
    pub kind: RoomKind,
    pub name: String,
    pub description: String,
    pub capacity: i64,
    pub member_count: i64,
    pub has_passcode: bool,
    pub owner_id: Option<i64>,
    pub last_seq: i64,
    pub created_at: i64,
    /// The listing a direct room is about.
    pub listing_id: Option<i64>,
    /// Entry condition of an open room.
    pub min_manner_score: Option<f64>,
    /// A neighbourhood room's region (`역삼동`) and its code.
    pub region: Option<String>,
    pub region_code: Option<String>,
    /// Whether the caller is a member (absent in search results).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_member: Option<bool>,
}

impl RoomView {
    pub fn of(r: &RoomRecord, is_member: Option<bool>) -> RoomView {
        RoomView {
            id: r.id,
            kind: r.kind,
            name: r.name.clone(),
            description: r.description.clone(),
            capacity: r.capacity,
            member_count: r.member_count,
            has_passcode: r.passcode_hash.is_some(),
            owner_id: r.owner_id,
            last_seq: r.last_seq,
            created_at: r.created_at,
            listing_id: r.listing_id,
            min_manner_score: r.min_manner_score,
            region: crate::service::market::region_name(r.region_code.as_deref()),
            region_code: r.region_code.clone(),
            is_member,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageView {
    pub room: i64,
    pub seq: i64,
    pub sender: i64,
    pub kind: MessageKind,
    /// Empty once deleted.
    pub body: String,
    /// Machine-readable payload of system messages.
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    pub client_msg_id: Option<String>,
    pub ts: i64,
    pub edited_at: Option<i64>,
    pub deleted: bool,
}

impl From<&MessageRecord> for MessageView {
    fn from(m: &MessageRecord) -> MessageView {
        MessageView {
            room: m.room_id,
            seq: m.seq,
            sender: m.sender_id,
            kind: m.kind,
            body: m.body.clone(),
            payload: m
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_str(p).ok()),
            client_msg_id: m.client_msg_id.clone(),
            ts: m.created_at,
            edited_at: m.edited_at,
            deleted: m.deleted_at.is_some(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PeerView {
    pub id: i64,
    pub nickname: String,
    pub withdrawn: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MyRoomView {
    pub id: i64,
    pub kind: RoomKind,
    pub name: String,
    pub member_count: i64,
    pub role: MemberRole,
    pub last_seq: i64,
    pub last_read_seq: i64,
    /// Exactly `last_seq - last_read_seq` (see docs/PROTOCOL.md).
    pub unread: i64,
    pub last_activity_at: i64,
    pub last_message: Option<MessageView>,
    /// The other member of a direct room.
    pub peer: Option<PeerView>,
    /// The listing a chat is about: its card.
    pub listing: Option<ListingCardView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListingCardView {
    pub id: i64,
    pub title: String,
    pub price: i64,
    pub status: String,
    pub thumbnail_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MyRooms {
    pub items: Vec<MyRoomView>,
    /// Sum of `unread` over all rooms: the app badge.
    pub total_unread: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RoomPage {
    pub items: Vec<RoomView>,
    /// Opaque; pass as `cursor` for the next page. Absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Substring of the room name (any script, e.g. `중고`).
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1..=100, default 20.
    pub limit: Option<i64>,
    /// Only the rooms of the regions my active neighbourhood's range takes in.
    pub near: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub passcode: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetRequest {
    pub user_id: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Messages with seq below this (older page).
    pub before: Option<i64>,
    /// Messages with seq above this (newer page).
    pub after: Option<i64>,
    /// 1..=200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadRequest {
    pub seq: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadResponse {
    pub unread: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditRequest {
    pub body: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: i64,
    pub role: MemberRole,
    pub joined_at: i64,
    pub last_read_seq: i64,
}

impl From<&MemberRecord> for MemberView {
    fn from(m: &MemberRecord) -> MemberView {
        MemberView {
            user_id: m.user_id,
            role: m.role,
            joined_at: m.joined_at,
            last_read_seq: m.last_read_seq,
        }
    }
}

/// Create an open chat, or get-or-create the direct room with a user.
#[utoipa::path(
    tag = "chat",
    request_body = CreateRoomRequest,
    responses(
        (status = 201, description = "Created", body = RoomView),
        (status = 200, description = "The existing direct room", body = RoomView),
        (status = 404, description = "`not_found`: no such peer", body = ErrorBody),
        (status = 403, description = "`neighbourhood_required`: a room in a region where you are not verified", body = ErrorBody),
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/rooms")]
pub async fn create_room(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<CreateRoomRequest>,
) -> Result<HttpResponse, ApiError> {
    let me = auth.0.user_id();
    match body.into_inner() {
        CreateRoomRequest::Open {
            name,
            description,
            capacity,
            passcode,
            min_manner_score,
            region,
        } => {
            let room = state
                .chat
                .create_open(
                    me,
                    OpenRoomInput {
                        name,
                        description,
                        capacity,
                        passcode,
                        min_manner_score,
                        region,
                    },
                )
                .await?;
            Ok(HttpResponse::Created().json(RoomView::of(&room, Some(true))))
        }
        CreateRoomRequest::Direct { peer } => {
            let (room, created) = state.chat.direct(me, peer).await?;
            let view = RoomView::of(&room, Some(true));
            Ok(if created {
                HttpResponse::Created().json(view)
            } else {
                HttpResponse::Ok().json(view)
            })
        }
    }
}

/// Search open rooms by name, newest first.
#[utoipa::path(
    tag = "chat",
    params(SearchQuery),
    responses(
        (status = 200, body = RoomPage),
        BadParameter,
        (status = 403, description = "`neighbourhood_required`: `near=true` without a neighbourhood", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/rooms")]
pub async fn search_rooms(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(query.limit, 20, 100)?;
    let before = match &query.cursor {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| ApiError::new(Code::InvalidParameter, "bad cursor"))?,
        ),
    };
    let rooms = state
        .chat
        .search(
            auth.0.user_id(),
            query.q.as_deref().unwrap_or(""),
            query.near.unwrap_or(false),
            before,
            limit + 1,
        )
        .await?;
    let more = rooms.len() as i64 > limit;
    let items: Vec<RoomView> = rooms
        .iter()
        .take(limit as usize)
        .map(|r| RoomView::of(r, None))
        .collect();
    let next_cursor = if more {
        items.last().map(|r| r.id.to_string())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(RoomPage { items, next_cursor }))
}

/// One room. Open rooms are visible to anyone signed in; direct rooms to their members.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 200, body = RoomView),
        (status = 403, description = "`not_member` (direct rooms)", body = ErrorBody),
        NotFound,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/rooms/{id}")]
pub async fn get_room(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (room, member) = state.chat.view(auth.0.user_id(), id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(RoomView::of(&room, Some(member.is_some()))))
}

/// Join an open room (idempotent for members).
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    request_body(content = JoinRequest, description = "Optional: no body (or `{}`) when the room has no passcode. A body that is present must be valid"),
    responses(
        (status = 200, body = RoomView),
        (status = 400, description = "`bad_json`: a body that is not JSON (nothing is changed)", body = ErrorBody),
        (status = 403, description = "`bad_passcode`, `banned`, or `neighbourhood_required` (a neighbourhood room outside your verified range)", body = ErrorBody),
        NotFound,
        (status = 409, description = "`room_full`, or `conflict` for direct rooms", body = ErrorBody),
        TooLarge,
        (status = 415, description = "`unsupported_media_type`: a body that is not `application/json`", body = ErrorBody),
        (status = 422, description = "`invalid_body`: JSON of the wrong shape (nothing is changed)", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many wrong passcodes", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/rooms/{id}/join")]
pub async fn join_room(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: OptionalJson<JoinRequest>,
) -> Result<HttpResponse, ApiError> {
    let passcode = body.into_inner().passcode;
    let room = state
        .chat
        .join(auth.0.user_id(), id.into_inner(), passcode.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(RoomView::of(&room, Some(true))))
}

/// Leave an open room. The owner must hand over ownership first unless alone.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    responses(
        (status = 204, description = "Left"),
        NotMember,
        (status = 409, description = "`conflict`: owner with members, or a direct room", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/rooms/{id}/leave")]
pub async fn leave_room(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    state.chat.leave(auth.0.user_id(), id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove a member (they may rejoin). Owner or admin only.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    request_body = TargetRequest,
    responses(
        (status = 204, description = "Removed; their sessions stop receiving the room at once"),
        NotOwner,
        (status = 404, description = "`not_found`: no such room or member", body = ErrorBody),
        (status = 409, description = "`conflict`: the owner, or a direct room", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/rooms/{id}/kick")]
pub async fn kick(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<TargetRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .chat
        .kick(
            auth.0.user_id(),
            auth.0.is_admin(),
            id.into_inner(),
            body.user_id,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Remove a member and keep them out until unbanned. Owner or admin only.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    request_body = TargetRequest,
    responses(
        (status = 204, description = "Banned"),
        NotOwner,
        NotFound,
        (status = 409, description = "`conflict`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/rooms/{id}/ban")]
pub async fn ban(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<TargetRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .chat
        .ban(
            auth.0.user_id(),
            auth.0.is_admin(),
            id.into_inner(),
            body.user_id,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Lift a ban. Owner or admin only.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    request_body = TargetRequest,
    responses(
        (status = 204, description = "Unbanned"),
        NotOwner,
        (status = 404, description = "`not_found`: no such ban", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/rooms/{id}/unban")]
pub async fn unban(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<TargetRequest>,
) -> Result<HttpResponse, ApiError> {
    state
        .chat
        .unban(
            auth.0.user_id(),
            auth.0.is_admin(),
            id.into_inner(),
            body.user_id,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Hand ownership to another member. Owner only.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    request_body = TargetRequest,
    responses(
        (status = 200, body = RoomView),
        NotOwner,
        (status = 404, description = "`not_found`: target is not a member", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/rooms/{id}/owner")]
pub async fn transfer_owner(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<TargetRequest>,
) -> Result<HttpResponse, ApiError> {
    let room = state
        .chat
        .transfer(auth.0.user_id(), id.into_inner(), body.user_id)
        .await?;
    Ok(HttpResponse::Ok().json(RoomView::of(&room, Some(true))))
}

/// Members of a room (members only).
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    responses((status = 200, body = Vec<MemberView>), NotMember),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/rooms/{id}/members")]
pub async fn members(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let members = state
        .chat
        .members(auth.0.user_id(), id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(members.iter().map(MemberView::from).collect::<Vec<_>>()))
}

/// My rooms, latest activity first, with unread counts and the total badge.
#[utoipa::path(
    tag = "chat",
    responses((status = 200, body = MyRooms), Unauthenticated),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/rooms")]
pub async fn my_rooms(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let (rooms, total_unread) = state.chat.my_rooms(auth.0.user_id()).await?;
    let items = rooms
        .iter()
        .map(|(r, last)| MyRoomView {
            id: r.room.id,
            kind: r.room.kind,
            name: r.room.name.clone(),
            member_count: r.room.member_count,
            role: r.member.role,
            last_seq: r.room.last_seq,
            last_read_seq: r.member.last_read_seq,
            unread: chat::unread(r.room.last_seq, r.member.last_read_seq),
            last_activity_at: r.room.last_activity_at,
            last_message: last.as_ref().map(MessageView::from),
            peer: r.peer.as_ref().map(|(id, nickname, withdrawn)| PeerView {
                id: *id,
                nickname: if *withdrawn {
                    crate::domain::account::WITHDRAWN_NICKNAME.to_string()
                } else {
                    nickname.clone()
                },
                withdrawn: *withdrawn,
            }),
            listing: r.listing.as_ref().map(|l| ListingCardView {
                id: l.id,
                title: l.title.clone(),
                price: l.price,
                status: l.status.clone(),
                thumbnail_url: l
                    .thumb_key
                    .as_deref()
                    .map(crate::service::market::media_url),
            }),
        })
        .collect();
    Ok(HttpResponse::Ok().json(MyRooms {
        items,
        total_unread,
    }))
}

/// Message history in seq order: the latest page, `before=` (older) or `after=` (newer).
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id"), HistoryQuery),
    responses(
        (status = 200, body = Vec<MessageView>),
        BadParameter,
        NotMember,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/rooms/{id}/messages")]
pub async fn history(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    query: web::Query<HistoryQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(query.limit, 50, chat::PAGE_MAX)?;
    let page = match (query.before, query.after) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Code::InvalidParameter,
                "give `before` or `after`, not both",
            ));
        }
        (Some(b), None) => Page::Before(b),
        (None, Some(a)) => Page::After(a),
        (None, None) => Page::Latest,
    };
    let messages = state
        .chat
        .history(auth.0.user_id(), id.into_inner(), page, limit)
        .await?;
    Ok(HttpResponse::Ok().json(messages.iter().map(MessageView::from).collect::<Vec<_>>()))
}

/// Mark the room read up to `seq`: the same effect as the WebSocket `read` frame.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id")),
    request_body = ReadRequest,
    responses(
        (status = 200, body = ReadResponse),
        NotMember,
        Invalid,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[put("/rooms/{id}/read")]
pub async fn read(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<ReadRequest>,
) -> Result<HttpResponse, ApiError> {
    if body.seq < 0 {
        return Err(ApiError::new(Code::ValidationFailed, "seq must be >= 0")
            .with_details(serde_json::json!({"seq": "must be >= 0"})));
    }
    let unread = state
        .chat
        .read(auth.0.user_id(), id.into_inner(), body.seq)
        .await?;
    Ok(HttpResponse::Ok().json(ReadResponse { unread }))
}

/// Edit one's own message within 15 minutes.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id"), ("seq" = i64, Path, description = "Message seq")),
    request_body = EditRequest,
    responses(
        (status = 200, body = MessageView),
        (status = 403, description = "`forbidden` (not the sender) or `not_member`", body = ErrorBody),
        (status = 409, description = "`conflict`: edit window passed, deleted, or a system message", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[patch("/rooms/{id}/messages/{seq}")]
pub async fn edit_message(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(i64, i64)>,
    body: web::Json<EditRequest>,
) -> Result<HttpResponse, ApiError> {
    let (room, seq) = path.into_inner();
    let m = state
        .chat
        .update_message(auth.0.user_id(), false, room, seq, Some(&body.body))
        .await?;
    Ok(HttpResponse::Ok().json(MessageView::from(&m)))
}

/// Delete one's own message (admins: any). History keeps its seq with `deleted: true`.
#[utoipa::path(
    tag = "chat",
    params(("id" = i64, Path, description = "Room id"), ("seq" = i64, Path, description = "Message seq")),
    responses(
        (status = 200, body = MessageView),
        (status = 403, description = "`forbidden` or `not_member`", body = ErrorBody),
        NotFound,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/rooms/{id}/messages/{seq}")]
pub async fn delete_message(
    state: web::Data<AppState>,
    auth: Auth,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (room, seq) = path.into_inner();
    let m = state
        .chat
        .update_message(auth.0.user_id(), auth.0.is_admin(), room, seq, None)
        .await?;
    Ok(HttpResponse::Ok().json(MessageView::from(&m)))
}
