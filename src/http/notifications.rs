//! The notification inbox over REST: list, unread count, read, delete,
//! preferences; and admin broadcasts. Live updates travel on the chat
//! WebSocket (`notification`, `notification_badge` frames).

use actix_web::{delete, get, post, put, web, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{Admin, Auth};
use crate::error::Refuse;
use crate::http::error::{
    ApiError, BadParameter, ErrorBody, NotAdmin, NotFound, NotMember, Unauthenticated,
};
use crate::service::notifications::{NotificationView, PrefView};
use crate::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct InboxParams {
    /// Only unread ones.
    pub unread: Option<bool>,
    /// From the previous page's `next_before`.
    pub before: Option<i64>,
    /// 1..=100, default 20.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Inbox {
    /// Newest first.
    pub items: Vec<NotificationView>,
    /// Pass as `before` for the next page; null on the last.
    pub next_before: Option<i64>,
    /// Unread notifications in the whole inbox.
    pub unread: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Unread {
    pub unread: i64,
}

/// My notifications, newest first (keyset-paged).
#[utoipa::path(
    tag = "notifications",
    params(InboxParams),
    responses(
        (status = 200, body = Inbox),
        BadParameter,
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/notifications")]
pub async fn my_notifications(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<InboxParams>,
) -> Result<HttpResponse, ApiError> {
    let limit = ApiError::page_limit(query.limit, 20, 100)?;
    let (items, unread) = state
        .notifications
        .list(
            auth.0.uid(),
            query.unread.unwrap_or(false),
            query.before,
            limit,
        )
        .await?;
    let next_before = if items.len() as i64 == limit {
        items.last().map(|n| n.id)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(Inbox {
        items,
        next_before,
        unread,
    }))
}

/// My unread notification count (the bell's badge).
#[utoipa::path(
    tag = "notifications",
    responses(
        (status = 200, body = Unread),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/notifications/unread_count")]
pub async fn unread_count(
    state: web::Data<AppState>,
    auth: Auth,
) -> Result<HttpResponse, ApiError> {
    let unread = state.notifications.unread(auth.0.uid()).await?;
    Ok(HttpResponse::Ok().json(Unread { unread }))
}

/// Mark one notification read; answers the new unread count.
#[utoipa::path(
    tag = "notifications",
    params(("id" = i64, Path, description = "Notification id")),
    responses(
        (status = 200, body = Unread),
        Unauthenticated,
        (status = 404, description = "`not_found` (also someone else's)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/me/notifications/{id}/read")]
pub async fn read_notification(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let unread = state.notifications.read(auth.0.uid(), *id).await?;
    Ok(HttpResponse::Ok().json(Unread { unread }))
}

/// Mark every notification read.
#[utoipa::path(
    tag = "notifications",
    responses(
        (status = 200, body = Unread),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/me/notifications/read_all")]
pub async fn read_all(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let unread = state.notifications.read_all(auth.0.uid()).await?;
    Ok(HttpResponse::Ok().json(Unread { unread }))
}

/// Delete a notification from my inbox (a redelivered event does not bring it back).
#[utoipa::path(
    tag = "notifications",
    params(("id" = i64, Path, description = "Notification id")),
    responses(
        (status = 200, body = Unread),
        Unauthenticated,
        (status = 404, description = "`not_found` (also someone else's)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/me/notifications/{id}")]
pub async fn delete_notification(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let unread = state.notifications.delete(auth.0.uid(), *id).await?;
    Ok(HttpResponse::Ok().json(Unread { unread }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Prefs {
    pub items: Vec<PrefView>,
}

/// My notification settings: every kind with its channels (my choice or the default).
#[utoipa::path(
    tag = "notifications",
    responses(
        (status = 200, body = Prefs),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/notification_settings")]
pub async fn get_prefs(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let items = state.notifications.prefs(auth.0.uid()).await?;
    Ok(HttpResponse::Ok().json(Prefs { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefChange {
    pub kind: String,
    /// Keep as is when absent.
    pub in_app: Option<bool>,
    pub email: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPrefs {
    pub items: Vec<PrefChange>,
}

/// Change the channels of some kinds.
#[utoipa::path(
    tag = "notifications",
    request_body = SetPrefs,
    responses(
        (status = 200, body = Prefs),
        Unauthenticated,
        (status = 422, description = "`validation_failed` (unknown kind) or `invalid_body`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[put("/me/notification_settings")]
pub async fn set_prefs(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<SetPrefs>,
) -> Result<HttpResponse, ApiError> {
    let changes: Vec<(String, Option<bool>, Option<bool>)> = body
        .into_inner()
        .items
        .into_iter()
        .map(|c| (c.kind, c.in_app, c.email))
        .collect();
    let items = state
        .notifications
        .set_prefs(auth.0.uid(), &changes)
        .await?;
    Ok(HttpResponse::Ok().json(Prefs { items }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Broadcast {
    /// 1..=100 characters.
    pub title: String,
    /// 1..=1000 characters.
    pub body: String,
    /// Where the client opens it (a path), optional.
    pub link: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Broadcasted {
    /// The event id (every user's notification carries it once).
    pub event_id: String,
}

/// Tell every active user something (e.g. a maintenance notice); administrators only.
#[utoipa::path(
    tag = "admin",
    request_body = Broadcast,
    responses(
        (status = 202, body = Broadcasted),
        Unauthenticated,
        NotAdmin,
        (status = 422, description = "`validation_failed` or `invalid_body`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/admin/notifications/broadcast")]
pub async fn broadcast(
    state: web::Data<AppState>,
    admin: Admin,
    body: web::Json<Broadcast>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let title = b.title.trim();
    if title.is_empty() || title.chars().count() > 100 {
        return Err(ApiError::field("title", "1..=100 characters"));
    }
    let text = b.body.trim();
    if text.is_empty() || text.chars().count() > 1000 {
        return Err(ApiError::field("body", "1..=1000 characters"));
    }
    let link = b.link.unwrap_or_default();
    if link.chars().count() > 300 || !(link.is_empty() || link.starts_with('/')) {
        return Err(ApiError::field(
            "link",
            "a path starting with /, at most 300 characters",
        ));
    }
    let event_id = state
        .notifications
        .broadcast(admin.0.uid(), title, text, &link)
        .await?;
    Ok(HttpResponse::Accepted().json(Broadcasted { event_id }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Resume after this notification id (for clients that cannot send the
    /// `Last-Event-ID` header; the header wins when both are there).
    pub last_event_id: Option<i64>,
}

/// My notifications as a Server-Sent Events stream, for clients that do
/// not hold the chat WebSocket. Events: `notification` (with `id:` = the
/// notification id; data as in the inbox) and `badge` (`{"unread": n}`);
/// a `: keep-alive` comment every `sse_keepalive_secs` (15 s). Reconnecting with `Last-Event-ID`
/// replays the notifications after it (at most 100) before live ones.
#[utoipa::path(
    tag = "notifications",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "The last notification id received"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_parameter`: Last-Event-ID is not a notification id", body = ErrorBody),
        Unauthenticated,
        (status = 429, description = "`rate_limited`: the user already holds `ws_max_connections_per_user` connections (WebSockets and notification streams together) on this server (`Retry-After`)", body = ErrorBody),
        (status = 503, description = "`unavailable`: shutting down, reconnect", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/notifications/stream")]
pub async fn stream(
    state: web::Data<AppState>,
    auth: Auth,
    req: actix_web::HttpRequest,
    query: web::Query<StreamParams>,
) -> Result<HttpResponse, ApiError> {
    let header = match req.headers().get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    ApiError::new(
                        crate::error::Code::InvalidParameter,
                        "Last-Event-ID must be a notification id",
                    )
                })?,
        ),
        None => None,
    };
    // A stream holds a socket for as long as it lasts: it takes one of the
    // user's places on this server, shared with their WebSocket
    // connections (`ws_max_connections_per_user`), and gives it back when
    // the stream ends (the client went away, or fell behind).
    let slot = state.hub.reserve_connection(auth.0.user_id()).ok_or_else(|| {
        let mut e = ApiError::rate_limited(super::ws::TOO_MANY_CONNECTIONS_RETRY_SECS);
        e.message = format!(
            "too many open connections for this user (at most {} per server, WebSockets and notification streams together); close one first",
            state.hub.settings().max_connections_per_user
        );
        e
    })?;
    let (first, rx) = state
        .notifications
        .stream(auth.0.uid(), header.or(query.last_event_id))
        .await?;
    let mut tick = tokio::time::interval(state.config.http.sse_keepalive);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = (std::collections::VecDeque::from(first), rx, tick, slot);
    let body = futures_util::stream::unfold(
        start,
        |(mut queue, mut rx, mut tick, slot)| async move {
            if let Some(text) = queue.pop_front() {
                return Some((
                    Ok::<_, actix_web::Error>(web::Bytes::from(text)),
                    (queue, rx, tick, slot),
                ));
            }
            tokio::select! {
                m = rx.recv() => match m {
                    Ok(text) => Some((Ok(web::Bytes::from(text)), (queue, rx, tick, slot))),
                    // Too slow a reader: it missed some; a reconnect with
                    // Last-Event-ID fills the gap, so end the stream.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_))
                    | Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
                },
                _ = tick.tick() => {
                    Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), (queue, rx, tick, slot)))
                }
            }
        },
    );
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeywordView {
    pub keyword: String,
    pub created_at: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Keywords {
    pub items: Vec<KeywordView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyword {
    /// 2..=20 characters; matched case-insensitively in new listings' titles.
    pub keyword: String,
}

/// My keyword alerts: a new listing whose title contains one of them tells me (`keyword.match`).
#[utoipa::path(
    tag = "notifications",
    responses(
        (status = 200, body = Keywords),
        Unauthenticated,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/me/keywords")]
pub async fn my_keywords(state: web::Data<AppState>, auth: Auth) -> Result<HttpResponse, ApiError> {
    let items = state
        .notifications
        .keywords(auth.0.uid())
        .await?
        .into_iter()
        .map(|(keyword, created_at)| KeywordView {
            keyword,
            created_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Keywords { items }))
}

/// Save a keyword (201 when new, 200 when I had it already).
#[utoipa::path(
    tag = "notifications",
    request_body = NewKeyword,
    responses(
        (status = 200, description = "Already saved", body = Keywords),
        (status = 201, description = "Saved", body = Keywords),
        Unauthenticated,
        (status = 422, description = "`validation_failed` (2..=20 characters, at most 30 keywords) or `invalid_body`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[post("/me/keywords")]
pub async fn add_keyword(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<NewKeyword>,
) -> Result<HttpResponse, ApiError> {
    let (_, created) = state
        .notifications
        .add_keyword(auth.0.uid(), &body.keyword)
        .await?;
    let items = state
        .notifications
        .keywords(auth.0.uid())
        .await?
        .into_iter()
        .map(|(keyword, created_at)| KeywordView {
            keyword,
            created_at,
        })
        .collect();
    let mut r = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(r.json(Keywords { items }))
}

/// Remove a keyword.
#[utoipa::path(
    tag = "notifications",
    params(("keyword" = String, Path, description = "The keyword (URL-encoded)")),
    responses(
        (status = 204, description = "Removed"),
        Unauthenticated,
        NotFound,
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[delete("/me/keywords/{keyword}")]
pub async fn remove_keyword(
    state: web::Data<AppState>,
    auth: Auth,
    keyword: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .notifications
        .remove_keyword(auth.0.uid(), &keyword)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mute {
    pub muted: bool,
}

/// Mute (or unmute) a room: no chat notifications from it (messages,
/// badges and the WebSocket are unchanged). Members only.
#[utoipa::path(
    tag = "notifications",
    params(("id" = i64, Path, description = "Room id")),
    request_body = Mute,
    responses(
        (status = 204, description = "Done"),
        Unauthenticated,
        NotMember,
        (status = 422, description = "`invalid_body`", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[put("/rooms/{id}/mute")]
pub async fn mute_room(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<i64>,
    body: web::Json<Mute>,
) -> Result<HttpResponse, ApiError> {
    state
        .notifications
        .mute_room(auth.0.uid(), *id, body.muted)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
