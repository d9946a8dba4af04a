//! The WebSocket endpoint and the per-connection session task.
//!
//! The task `select!`s over four things: frames from the client, its link's
//! signals (overflowed, login ended, socket full), results of resume
//! replays, and a heartbeat. It does not carry deliveries: rooms and users
//! write them into the socket themselves through the connection's
//! [`Link`] (`actors::link`), which applies the ordering rules of one
//! connection under its lock; the task only steps in when the kernel's
//! buffer is full. The rules:
//!
//! - **Hold at start.** Live messages are held until the client's first
//!   frame (or `ws_sync_window_ms`), so a client that opens with `resume`
//!   gets the replay before any live traffic of that room.
//! - **Resume seam.** While a room is replaying from the store, its live
//!   messages are buffered; after the replay (and `resumed`) the buffer is
//!   flushed, skipping seqs already sent. Per room, a connection never sends
//!   the same seq twice and never sends a lower seq after a higher one
//!   (except when a client resumes a room late, after live messages already
//!   flowed: then the missing older ones are filled in, still without
//!   duplicates).
//! - **Slow clients.** The outbound queue is bounded. When it overflows the
//!   connection is closed with code 4008 and the client resumes; the room
//!   that produced the traffic never waits.
//!
//! `server.rs` hands the socket over after the 101; `wire.rs` reads frames
//! off it, the link writes them.

use std::time::Instant;

use actix_web::rt::net::TcpStream;
use actix_web::{get, web, HttpRequest, HttpResponse};
use bytes::BytesMut;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;
use utoipa::IntoParams;

use super::extract::{bearer_token, SESSION_COOKIE};
use super::wire::{Incoming, Wire, WireError};
use crate::actors::link::{self, Flushed, Link};
use crate::actors::{ChatHub, ConnectionSlot, SessionHandle};
use crate::domain::chat;
use crate::error::{Code, Refuse};
use crate::http::error::{ApiError, ErrorBody, Unauthenticated};
use crate::protocol::client::{ClientFrame, CLIENT_TYPES};
use crate::protocol::close::*;
use crate::protocol::frames::{self, Frame};
use crate::service::accounts::Accounts;
use crate::AppState;

/// Page size of resume replays.
const REPLAY_PAGE: i64 = 200;
/// Replay pages read ahead of the socket, per connection: a client that
/// resumes a long history and does not read holds at most this many pages
/// in server memory (the replay waits for the socket).
const REPLAY_READ_AHEAD: usize = 2;
/// `Retry-After` when a user holds `ws_max_connections_per_user` already.
pub(crate) const TOO_MANY_CONNECTIONS_RETRY_SECS: u64 = 5;
/// How long a closing connection may take to accept its close frame.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Deserialize, IntoParams)]
pub struct WsQuery {
    /// Session token, for clients that cannot set headers (browsers).
    pub token: Option<String>,
}

/// Open the realtime connection (WebSocket protocol v1, docs/PROTOCOL.md).
/// Authenticate with `Authorization: Bearer`, `?token=` or the session cookie.
#[utoipa::path(
    tag = "chat",
    params(WsQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 400, description = "`invalid_parameter`: not a WebSocket upgrade", body = ErrorBody),
        Unauthenticated,
        (status = 403, description = "`forbidden`: the `Origin` header names an origin that is neither the server's own nor listed in `ws_allowed_origins`", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the user already holds `ws_max_connections_per_user` connections on this server (`Retry-After`)", body = ErrorBody),
    ),
    security(("bearer" = []), ("cookie" = []))
)]
#[get("/ws")]
pub async fn ws(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    check_origin(&req, &state.config.http)?;
    let header_token = if req
        .headers()
        .contains_key(actix_web::http::header::AUTHORIZATION)
    {
        bearer_token(&req)?
    } else {
        None
    };
    let query_token = web::Query::<WsQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().token);
    let token = header_token
        .or(query_token)
        .or_else(|| req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()))
        .ok_or_else(ApiError::unauthenticated)?;
    let auth = state
        .accounts
        .authenticate(&token)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    // Checks the upgrade request and answers it (101 with the accept key).
    let mut response: HttpResponse = actix_http::ws::handshake(req.head())
        .map_err(|e| {
            ApiError::new(
                Code::InvalidParameter,
                format!("expected a WebSocket upgrade: {e}"),
            )
        })?
        .finish()
        .map_into_boxed_body()
        .into();
    let hub = state.hub.clone();
    // Still before the upgrade: nothing is sent until the response is.
    let slot = hub.reserve_connection(auth.user_id()).ok_or_else(|| {
        let mut e = ApiError::rate_limited(TOO_MANY_CONNECTIONS_RETRY_SECS);
        e.message = format!(
            "too many open connections for this user (at most {} per server); close one first",
            hub.settings().max_connections_per_user
        );
        e
    })?;
    // The upgrade service (`server.rs`) sends this response and hands the
    // socket to the session.
    response.extensions_mut().insert(Accepted {
        hub,
        accounts: state.accounts.clone(),
        user_id: auth.user_id(),
        token_hash: auth.token_hash.clone(),
        slot,
    });
    Ok(response)
}

/// An accepted WebSocket upgrade, waiting for its socket. Dropped unused
/// (the 101 could not be sent), it frees the user's connection slot.
pub struct Accepted {
    hub: ChatHub,
    accounts: Accounts,
    user_id: i64,
    token_hash: String,
    slot: ConnectionSlot,
}

impl Accepted {
    /// Serve the upgraded connection until it ends. `already` holds what
    /// the HTTP layer read past the request head.
    pub async fn serve(self, io: TcpStream, already: BytesMut) {
        let Accepted {
            hub,
            accounts,
            user_id,
            token_hash,
            slot,
        } = self;
        let settings = hub.settings().clone();
        let io = std::sync::Arc::new(io);
        let link = Link::new(Some(io.clone()), settings.outbound_queue);
        let handle = SessionHandle::new(hub.next_session_id(), user_id, &token_hash, link);
        hub.attach(handle.clone());
        let wire = Wire::new(io, already, settings.max_frame_bytes);
        let mut conn = Conn::new(hub.clone(), accounts, handle.clone(), wire);
        let reason = conn.run().await.err().flatten();
        hub.detach(handle.user_id, handle.id);
        // The connection's place among its user's: free again.
        drop(slot);
        tracing::debug!(
            user = handle.user_id,
            session = handle.id,
            ?reason,
            "websocket closed"
        );
        let link = conn.link;
        if let Some(close) = reason {
            link.close(close.code, &close.reason);
        }
        // The close frame queues behind the frame half-way out; a client
        // that never reads must not keep this task alive forever.
        super::wire::finish(&link, conn.socket.into_io(), CLOSE_GRACE).await;
    }
}

/// Cross-site WebSocket hijacking guard. Browsers attach cookies to a
/// WebSocket upgrade from any page and send the page's `Origin`, so an
/// upgrade whose `Origin` is not the server's own (`public_url`, the
/// request's `Host`) or listed in `ws_allowed_origins` is refused (403)
/// before anything else, by the same rule as cookie-authenticated changes
/// (`http::origin`: `Sec-Fetch-Site`, then `Origin`). Without those headers
/// the client is not a browser (apps, bots, tests) and cannot have been
/// led there by a foreign page: allowed.
fn check_origin(req: &HttpRequest, http: &crate::config::HttpSettings) -> Result<(), ApiError> {
    if super::origin::Own::of(req.headers(), http).allows(req.headers()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "WebSocket connections from this origin are not allowed",
        ))
    }
}

/// Results of a replay task.
enum Replay {
    Page {
        room: i64,
        frames: Vec<(i64, Frame)>,
    },
    Done {
        room: i64,
        through: i64,
    },
    Failed {
        room: i64,
        code: Code,
        message: String,
    },
}

struct Conn {
    hub: ChatHub,
    accounts: Accounts,
    handle: SessionHandle,
    socket: Wire,
    /// The connection's output, its ordering rules and its signals.
    link: std::sync::Arc<Link>,
    /// Live messages are still held (the link holds them).
    holding: bool,
    /// Results of resume replays; opened by the first `resume` (an idle
    /// connection that never resumes holds no channel).
    replays: Option<(mpsc::Sender<Replay>, mpsc::Receiver<Replay>)>,
}

/// A close frame to send.
#[derive(Debug)]
struct Close {
    code: u16,
    reason: String,
}

/// Why the loop ended: the close frame to send (None: the client is gone).
type End = Option<Close>;

/// Per-connection budget of client frames: a token bucket refilled at
/// `rate` per second holding up to twice that. Over budget a frame is
/// dropped, and the client hears about it at most once a second. A frame
/// flood then costs the server a counter, not actors or store lookups.
struct FrameBudget {
    rate: f64,
    tokens: f64,
    at: Instant,
    warned: Option<Instant>,
}

enum Budget {
    Ok,
    Warn,
    Drop,
}

impl FrameBudget {
    fn new(rate: f64) -> FrameBudget {
        FrameBudget {
            rate,
            tokens: rate * 2.0,
            at: Instant::now(),
            warned: None,
        }
    }

    fn take(&mut self) -> Budget {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate * 2.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Budget::Ok;
        }
        match self.warned {
            Some(at) if now.duration_since(at) < std::time::Duration::from_secs(1) => Budget::Drop,
            _ => {
                self.warned = Some(now);
                Budget::Warn
            }
        }
    }
}

fn session_ended() -> End {
    close(
        CLOSE_SESSION_ENDED,
        "session_ended: the login session ended; sign in again",
    )
}

fn close(code: u16, reason: &str) -> End {
    Some(Close {
        code,
        reason: reason.to_string(),
    })
}

impl Conn {
    fn new(hub: ChatHub, accounts: Accounts, handle: SessionHandle, socket: Wire) -> Conn {
        Conn {
            hub,
            accounts,
            link: handle.link().clone(),
            handle,
            socket,
            holding: true,
            replays: None,
        }
    }

    /// Serve the connection; returns (as `Err`) how it ended.
    ///
    /// Each pass of the loop waits on as little as it can: the futures that
    /// live for the whole connection (the server's closing signal, the
    /// timer) are made once, the queue and its signals share one wake-up,
    /// and one timer serves the hold at start, the session check and the
    /// heartbeat (the next of the three that is due).
    async fn run(&mut self) -> Result<(), End> {
        let settings = self.hub.settings().clone();
        let start = tokio::time::Instant::now();
        let mut last_heard = Instant::now();
        let hold_until = start + settings.sync_window;
        let mut next_beat = start + settings.heartbeat;
        let mut next_check = start + settings.session_check;
        let mut restart = self.hub.closing();
        let mut closing = std::pin::pin!(restart.draining());
        let mut timer = std::pin::pin!(tokio::time::sleep_until(
            next_beat.min(next_check).min(hold_until)
        ));
        // Whether the client sent anything since the last session check:
        // only a used connection slides its session's expiry.
        let mut used = false;
        let mut frames = FrameBudget::new(settings.frames_per_sec);
        loop {
            if let Some(signal) = self.link.signal() {
                return Err(self.signalled(signal));
            }
            tokio::select! {
                biased;
                _ = &mut closing => {
                    return Err(close(CLOSE_RESTART, "server restarting: reconnect and resume"));
                }
                () = &mut timer => {
                    let now = tokio::time::Instant::now();
                    if self.holding && now >= hold_until {
                        self.release();
                    }
                    if now >= next_check {
                        next_check = now + settings.session_check;
                        // Boxed, like the other rare branches below: inline, their
                        // futures would make every idle connection's task larger.
                        match Box::pin(self.accounts.session_alive(self.handle.token_hash(), std::mem::take(&mut used))).await {
                            Ok(true) => {}
                            Ok(false) => return Err(session_ended()),
                            // A backend hiccup is no reason to drop everyone;
                            // the next check decides.
                            Err(e) => tracing::warn!(error = %e, "session check failed"),
                        }
                    }
                    if now >= next_beat {
                        next_beat = now + settings.heartbeat;
                        if last_heard.elapsed() > settings.idle_timeout {
                            return Err(close(CLOSE_AWAY, "idle timeout"));
                        }
                        self.link.control(link::OP_PING, b"");
                    }
                    let mut due = next_beat.min(next_check);
                    if self.holding {
                        due = due.min(hold_until);
                    }
                    timer.as_mut().reset(due);
                }
                incoming = self.socket.recv() => {
                    last_heard = Instant::now();
                    match incoming {
                        Err(WireError::Gone) => return Err(None),
                        Err(WireError::TooLarge) => return Err(close(CLOSE_TOO_BIG, "frame too large")),
                        Err(WireError::NotUtf8) => return Err(close(CLOSE_NOT_UTF8, "text frames must be UTF-8")),
                        Err(WireError::Protocol(why)) => return Err(close(CLOSE_PROTOCOL, why)),
                        Ok(Incoming::Close) => return Err(close(CLOSE_NORMAL, "bye")),
                        Ok(Incoming::Ping(bytes)) => self.link.control(link::OP_PONG, &bytes),
                        Ok(Incoming::Pong) => {}
                        Ok(Incoming::Binary) => {
                            self.error(Code::InvalidFrame, "binary frames are not supported; send JSON text", None, None);
                        }
                        Ok(Incoming::Text(text)) => {
                            used = true;
                            let taken = match frames.take() {
                                Budget::Ok => {
                                    self.client_frame(&text);
                                    true
                                }
                                Budget::Warn => {
                                    self.error(Code::RateLimited, "too many frames: slow down; excess frames are dropped", None, None);
                                    false
                                }
                                Budget::Drop => false,
                            };
                            if taken && self.holding {
                                self.release();
                            }
                        }
                    }
                }
                // A raised signal (checked at the top of the loop), or the
                // socket was full for a sender (written below).
                () = self.link.attention() => {}
                Some(replay) = next_replay(&mut self.replays) => self.replayed(replay),
            }
            if self.link.blocked() {
                self.drain().await?;
            }
        }
    }

    /// How a raised signal ends the connection.
    fn signalled(&self, signal: link::Signal) -> End {
        match signal {
            link::Signal::Ended => session_ended(),
            link::Signal::Overflowed => self.slow_consumer(),
        }
    }

    /// One of the session's own frames (answers to the client): written
    /// now, ahead of live messages still held at the start.
    fn write(&self, frame: &Frame) {
        self.link.reply(frame.as_bytes());
    }

    /// Write what the socket did not take; `Err(None)` ends the loop when
    /// the socket is gone. A client that does not read loses the race to
    /// the overflow signal (senders keep appending meanwhile), and the
    /// wait for the socket is bounded by `ws_idle_timeout` (the heartbeat
    /// cannot tick while the loop waits here), so a stalled socket cannot
    /// pin the session.
    async fn drain(&mut self) -> Result<(), End> {
        let stall = self.hub.settings().idle_timeout;
        loop {
            match self.link.flush() {
                Flushed::Done => return Ok(()),
                Flushed::Gone => return Err(None),
                Flushed::Blocked => {}
            }
            tokio::select! {
                biased;
                () = self.link.overflowed() => return Err(self.slow_consumer()),
                ready = tokio::time::timeout(stall, self.socket.io().writable()) => match ready {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err(None),
                    Err(_) => return Err(self.slow_consumer()),
                },
            }
        }
    }

    fn slow_consumer(&self) -> End {
        self.hub.metrics().ws_overflow_disconnects.inc();
        close(CLOSE_SLOW_CONSUMER, "slow_consumer: reconnect and resume")
    }

    fn release(&mut self) {
        self.holding = false;
        self.link.release();
    }

    fn replayed(&self, replay: Replay) {
        match replay {
            Replay::Page { room, frames } => self.link.replay_page(room, frames),
            Replay::Done { room, through } => self.link.replay_done(room, through),
            Replay::Failed {
                room,
                code,
                message,
            } => self.link.replay_failed(room, code, &message),
        }
    }

    fn error(&self, code: Code, message: &str, room: Option<i64>, cid: Option<&str>) {
        self.write(&frames::error(code, message, room, cid));
    }

    fn client_frame(&mut self, text: &str) {
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                self.error(Code::BadJson, &format!("malformed JSON: {e}"), None, None);
                return;
            }
        };
        let cid = value
            .get("client_msg_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let room = value.get("room").and_then(Value::as_i64);
        match value.get("type").and_then(Value::as_str) {
            None => {
                self.error(
                    Code::InvalidFrame,
                    "every frame needs a string `type`",
                    room,
                    cid.as_deref(),
                );
                return;
            }
            Some(t) if !CLIENT_TYPES.contains(&t) => {
                self.error(
                    Code::UnknownType,
                    &format!("unknown frame type {t:?}"),
                    room,
                    cid.as_deref(),
                );
                return;
            }
            Some(_) => {}
        }
        let frame: ClientFrame = match serde_json::from_value(value) {
            Ok(f) => f,
            Err(e) => {
                self.error(Code::InvalidFrame, &e.to_string(), room, cid.as_deref());
                return;
            }
        };
        let user = self.handle.user_id;
        match frame {
            ClientFrame::Send {
                room,
                client_msg_id,
                body,
            } => {
                if let Err(why) =
                    chat::check_client_msg_id(&client_msg_id).and_then(|_| chat::check_body(&body))
                {
                    {
                        self.error(
                            Code::ValidationFailed,
                            &why,
                            Some(room),
                            Some(&client_msg_id),
                        );
                        return;
                    }
                }
                self.hub.post_from(&self.handle, room, client_msg_id, body);
            }
            ClientFrame::Read { room, seq } => {
                if seq < 0 {
                    {
                        self.error(Code::InvalidFrame, "seq must be >= 0", Some(room), None);
                        return;
                    }
                }
                self.hub.read_from(&self.handle, room, seq);
            }
            ClientFrame::Typing { room } => {
                self.hub.typing_from(&self.handle, room);
            }
            ClientFrame::Ping => self.write(&frames::pong()),
            ClientFrame::Resume { rooms } => {
                let mut parsed = Vec::with_capacity(rooms.len());
                for (key, last_seen) in rooms {
                    match key.parse::<i64>() {
                        Ok(room) if last_seen >= 0 => parsed.push((room, last_seen)),
                        _ => {
                            self.error(
                                Code::InvalidFrame,
                                "resume.rooms maps room ids to last seen seqs (>= 0)",
                                None,
                                None,
                            );
                            return;
                        }
                    }
                }
                // Rooms replaying already are not started twice.
                parsed.retain(|(room, _)| self.link.begin_replay(*room));
                // One task replays the rooms in turn, a page ahead of the
                // socket at most (bounded channel).
                let hub = self.hub.clone();
                let tx = self
                    .replays
                    .get_or_insert_with(|| mpsc::channel(REPLAY_READ_AHEAD))
                    .0
                    .clone();
                actix_web::rt::spawn(async move {
                    for (room, last_seen) in parsed {
                        if !replay(&hub, &tx, user, room, last_seen).await {
                            break;
                        }
                    }
                });
            }
        }
    }
}

/// The next replay result, or never while no replay was started.
async fn next_replay(
    replays: &mut Option<(mpsc::Sender<Replay>, mpsc::Receiver<Replay>)>,
) -> Option<Replay> {
    match replays {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Read a room's messages after `last_seen` from the store, page by page.
/// Returns false once the connection is gone.
async fn replay(
    hub: &ChatHub,
    tx: &mpsc::Sender<Replay>,
    user: i64,
    room: i64,
    last_seen: i64,
) -> bool {
    let failed = |code: Code, message: &str| Replay::Failed {
        room,
        code,
        message: message.to_string(),
    };
    let member = match hub.sql().chat().member(room, user).await {
        Ok(Some(m)) => m,
        Ok(None) => {
            let why = failed(Code::NotMember, "you are not a member of this room");
            return tx.send(why).await.is_ok();
        }
        Err(e) => {
            tracing::error!(room, error = %e, "resume: membership lookup failed");
            let why = failed(Code::Internal, "could not replay this room");
            return tx.send(why).await.is_ok();
        }
    };
    let mut after = last_seen.max(member.visible_from);
    loop {
        match hub
            .messages()
            .messages_after(room, after, REPLAY_PAGE)
            .await
        {
            Ok(page) => {
                let full = page.len() as i64 == REPLAY_PAGE;
                if let Some(last) = page.last() {
                    after = last.seq;
                }
                let frames = page.iter().map(|m| (m.seq, frames::message(m))).collect();
                if tx.send(Replay::Page { room, frames }).await.is_err() {
                    return false;
                }
                if !full {
                    break;
                }
            }
            Err(e) => {
                tracing::error!(room, error = %e, "resume: history read failed");
                let why = failed(Code::Internal, "could not replay this room");
                return tx.send(why).await.is_ok();
            }
        }
    }
    tx.send(Replay::Done {
        room,
        through: after,
    })
    .await
    .is_ok()
}
