//! The room actor: the single entry point of messages into one room.
//!
//! It holds membership and read pointers in memory (loaded from the store
//! when it starts), validates sends (membership, rate limit, duplicates in
//! flight), hands them to the committer, and only once they are committed
//! acknowledges them and fans them out, serialised once, to the members
//! who are online.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext as _, ActorFutureExt as _, AsyncContext as _, Context, Handler, Message,
    WrapFuture as _,
};
use serde_json::Value;
use tokio::sync::oneshot;

use super::committer::Job;
use super::frames::Frame;
use super::user::UserMsg;
use super::{frames, ChatHub, SessionHandle};
use crate::domain::chat::{self, MessageKind, RoomKind};
use crate::domain::now_ms;
use crate::store::{Appended, ChatWrite, MemberRecord, MessageRecord, NewMessage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomError {
    NoRoom,
    NotMember,
}

impl RoomError {
    pub fn code(self) -> &'static str {
        match self {
            RoomError::NoRoom => "room_not_found",
            RoomError::NotMember => "not_member",
        }
    }

    fn frame(self, room: i64, client_msg_id: Option<&str>) -> Frame {
        let message = match self {
            RoomError::NoRoom => "no such room",
            RoomError::NotMember => "you are not a member of this room",
        };
        frames::error(self.code(), message, Some(room), client_msg_id)
    }
}

/// Everything the hub may send a room.
pub enum RoomMsg {
    /// A member's message from a WebSocket session.
    Post {
        user: i64,
        client_msg_id: String,
        body: String,
        reply: SessionHandle,
    },
    /// A system message caused by `actor` (join, kick, listing events...).
    System {
        actor: i64,
        body: String,
        payload: Value,
    },
    /// Move `user`'s read pointer to `seq` (clamped to the last message).
    Read {
        user: i64,
        seq: i64,
        /// REST callers wait for the resulting unread count...
        reply: Option<oneshot::Sender<Result<i64, RoomError>>>,
        /// ...WebSocket callers get an error frame if it fails.
        session: Option<SessionHandle>,
    },
    Typing {
        user: i64,
        session: SessionHandle,
    },
    MemberAdded(MemberRecord),
    MemberRemoved {
        user: i64,
        reason: &'static str,
    },
    /// An event for every online member (edits, deletions).
    Broadcast(Frame),
    /// A block between the two members of a direct room began or ended.
    SetBlocked(bool),
}

impl Message for RoomMsg {
    type Result = ();
}

/// Outcome of this room's appends in one committed batch.
pub struct Committed {
    pub results: Vec<super::committer::Outcome>,
}

impl Message for Committed {
    type Result = ();
}

struct Member {
    last_read: i64,
}

struct Ready {
    kind: RoomKind,
    last_seq: i64,
    members: HashMap<i64, Member>,
    /// Direct rooms: one member blocked the other; nobody may send.
    blocked: bool,
}

enum State {
    Loading,
    Missing,
    Ready(Ready),
}

struct Pending {
    msg: NewMessage,
    replies: Vec<SessionHandle>,
}

pub struct RoomActor {
    id: i64,
    hub: ChatHub,
    state: State,
    /// Hub messages handled (see the registry notes in `actors`).
    handled: u64,
    pending: HashMap<u64, Pending>,
    next_token: u64,
    in_flight: HashMap<(i64, String), u64>,
    buckets: HashMap<i64, (f64, Instant)>,
    typing_at: HashMap<i64, Instant>,
    last_activity: Instant,
}

impl RoomActor {
    pub fn new(id: i64, hub: ChatHub) -> RoomActor {
        RoomActor {
            id,
            hub,
            state: State::Loading,
            handled: 0,
            pending: HashMap::new(),
            next_token: 0,
            in_flight: HashMap::new(),
            buckets: HashMap::new(),
            typing_at: HashMap::new(),
            last_activity: Instant::now(),
        }
    }

    /// Token bucket per member: `send_rate_per_sec`, bursts of `send_burst`.
    fn allow_send(&mut self, user: i64) -> bool {
        let s = self.hub.settings();
        let (rate, burst) = (s.send_rate_per_sec, s.send_burst);
        let now = Instant::now();
        let (tokens, at) = self.buckets.entry(user).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    fn submit(&mut self, msg: NewMessage, replies: Vec<SessionHandle>, ctx: &mut Context<Self>) {
        let token = self.next_token;
        self.next_token += 1;
        if let Some(cid) = &msg.client_msg_id {
            self.in_flight.insert((msg.sender_id, cid.clone()), token);
        }
        let job = Job {
            write: ChatWrite::Append(msg.clone()),
            reply: Some((ctx.address(), token)),
        };
        self.pending.insert(token, Pending { msg, replies });
        if !self.hub.committer().submit(job) {
            if let Some(p) = self.pending.remove(&token) {
                self.fail(p, "the message store is shutting down");
            }
        }
    }

    fn fail(&mut self, p: Pending, why: &str) {
        if let Some(cid) = &p.msg.client_msg_id {
            self.in_flight.remove(&(p.msg.sender_id, cid.clone()));
            for r in &p.replies {
                r.frame(frames::error("internal", why, Some(self.id), Some(cid)));
            }
        }
    }

    /// Send a frame to every online member (optionally but one).
    fn broadcast(&self, frame: &Frame, except: Option<i64>) {
        let State::Ready(r) = &self.state else { return };
        self.hub.for_online(
            r.members.keys().copied().filter(|u| Some(*u) != except),
            |_, addr| {
                addr.do_send(UserMsg::Event(frame.clone()));
            },
        );
    }

    fn delivered(&mut self, p: Pending, seq: i64, ts: i64) {
        let id = self.id;
        let State::Ready(r) = &mut self.state else {
            return;
        };
        if seq > r.last_seq {
            r.last_seq = seq;
        }
        if let Some(m) = r.members.get_mut(&p.msg.sender_id) {
            m.last_read = m.last_read.max(seq);
        }
        let record = MessageRecord {
            room_id: id,
            seq,
            sender_id: p.msg.sender_id,
            client_msg_id: p.msg.client_msg_id.clone(),
            kind: p.msg.kind,
            body: p.msg.body,
            payload: p.msg.payload,
            created_at: ts,
            edited_at: None,
            deleted_at: None,
        };
        if let Some(cid) = &record.client_msg_id {
            self.in_flight.remove(&(record.sender_id, cid.clone()));
            let ack = frames::ack(id, cid, seq, ts);
            for reply in &p.replies {
                reply.frame(ack.clone());
            }
        }
        let frame = frames::message(&record);
        let last_seq = r.last_seq;
        let members = &r.members;
        self.hub.for_online(members.keys().copied(), |user, addr| {
            let unread = members
                .get(&user)
                .map_or(0, |m| chat::unread(last_seq, m.last_read));
            addr.do_send(UserMsg::Deliver {
                room: id,
                seq,
                frame: frame.clone(),
                unread,
            });
        });
        self.hub.metrics().chat_messages.inc();
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if self.pending.is_empty()
            && self.last_activity.elapsed() >= self.hub.settings().room_idle
            && self.hub.retire_room(self.id, &ctx.address(), self.handled)
        {
            ctx.stop();
        }
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let sql = self.hub.sql().clone();
        let id = self.id;
        let load = async move {
            let room = sql.room(id).await?;
            let members = sql.members(id).await?;
            let blocked = match (room.as_ref().map(|r| r.kind), members.as_slice()) {
                (Some(RoomKind::Direct), [a, b]) => {
                    sql.blocked_between(a.user_id, b.user_id).await?
                }
                _ => false,
            };
            Ok::<_, crate::error::StoreError>((room, members, blocked))
        };
        ctx.wait(load.into_actor(self).map(|result, act, ctx| {
            act.state = match result {
                Ok((Some(room), members, blocked)) => State::Ready(Ready {
                    blocked,
                    kind: room.kind,
                    last_seq: room.last_seq,
                    members: members
                        .into_iter()
                        .map(|m| {
                            (
                                m.user_id,
                                Member {
                                    last_read: m.last_read_seq,
                                },
                            )
                        })
                        .collect(),
                }),
                Ok((None, _, _)) => State::Missing,
                Err(e) => {
                    // Could not load: stop and let the next message start a
                    // fresh actor that tries again.
                    tracing::error!(room = act.id, error = %e, "room actor failed to load");
                    ctx.stop();
                    State::Missing
                }
            };
        }));
        let every = (self.hub.settings().room_idle / 2).max(Duration::from_millis(100));
        ctx.run_interval(every, |act, ctx| act.check_idle(ctx));
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        // Stopped after a load failure while still registered: unregister so
        // the next message starts a new actor.
        self.hub.forget_room(self.id, &ctx.address());
    }
}

impl Handler<RoomMsg> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) {
        self.handled += 1;
        self.last_activity = Instant::now();
        let id = self.id;
        match msg {
            RoomMsg::Post {
                user,
                client_msg_id,
                body,
                reply,
            } => {
                let (is_member, kind, blocked) = match &self.state {
                    State::Ready(r) => (r.members.contains_key(&user), Some(r.kind), r.blocked),
                    _ => (false, None, false),
                };
                let Some(kind) = kind else {
                    reply.frame(RoomError::NoRoom.frame(id, Some(&client_msg_id)));
                    return;
                };
                if !is_member {
                    reply.frame(RoomError::NotMember.frame(id, Some(&client_msg_id)));
                    return;
                }
                if blocked {
                    reply.frame(frames::error(
                        "blocked",
                        "this conversation is blocked",
                        Some(id),
                        Some(&client_msg_id),
                    ));
                    return;
                }
                if let Some(token) = self.in_flight.get(&(user, client_msg_id.clone())) {
                    if let Some(p) = self.pending.get_mut(token) {
                        p.replies.push(reply);
                        return;
                    }
                }
                if kind == RoomKind::Open && !self.allow_send(user) {
                    reply.frame(frames::error(
                        "rate_limited",
                        "sending too fast; slow down",
                        Some(id),
                        Some(&client_msg_id),
                    ));
                    return;
                }
                let msg = NewMessage {
                    room_id: id,
                    sender_id: user,
                    client_msg_id: Some(client_msg_id),
                    kind: MessageKind::Text,
                    body,
                    payload: None,
                    created_at: now_ms(),
                };
                self.submit(msg, vec![reply], ctx);
            }
            RoomMsg::System {
                actor,
                body,
                payload,
            } => {
                if !matches!(self.state, State::Ready(_)) {
                    return;
                }
                let msg = NewMessage {
                    room_id: id,
                    sender_id: actor,
                    client_msg_id: None,
                    kind: MessageKind::System,
                    body,
                    payload: Some(payload.to_string()),
                    created_at: now_ms(),
                };
                self.submit(msg, Vec::new(), ctx);
            }
            RoomMsg::Read {
                user,
                seq,
                reply,
                session,
            } => {
                let receipts = self.hub.settings().open_room_receipts;
                let refuse =
                    |why: RoomError, reply: Option<oneshot::Sender<Result<i64, RoomError>>>| {
                        if let Some(reply) = reply {
                            let _ = reply.send(Err(why));
                        }
                        if let Some(s) = &session {
                            s.frame(why.frame(id, None));
                        }
                    };
                let State::Ready(r) = &mut self.state else {
                    refuse(RoomError::NoRoom, reply);
                    return;
                };
                let last_seq = r.last_seq;
                let kind = r.kind;
                let Some(m) = r.members.get_mut(&user) else {
                    refuse(RoomError::NotMember, reply);
                    return;
                };
                let seq = seq.min(last_seq);
                let moved = seq > m.last_read;
                if moved {
                    m.last_read = seq;
                    self.hub.committer().submit(Job {
                        write: ChatWrite::Read {
                            room_id: id,
                            user_id: user,
                            seq,
                        },
                        reply: None,
                    });
                }
                let unread = chat::unread(last_seq, m.last_read);
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(unread));
                }
                if moved {
                    self.hub.user(user, UserMsg::Unread { room: id, unread });
                    if kind == RoomKind::Direct || receipts {
                        self.broadcast(&frames::receipt(id, user, seq), None);
                    }
                }
            }
            RoomMsg::Typing { user, session } => {
                let State::Ready(r) = &self.state else {
                    session.frame(RoomError::NoRoom.frame(id, None));
                    return;
                };
                if !r.members.contains_key(&user) {
                    session.frame(RoomError::NotMember.frame(id, None));
                    return;
                }
                // At most one typing event per member per second.
                let now = Instant::now();
                if let Some(at) = self.typing_at.get(&user) {
                    if now.duration_since(*at) < Duration::from_secs(1) {
                        return;
                    }
                }
                self.typing_at.insert(user, now);
                self.broadcast(&frames::typing(id, user), Some(user));
            }
            RoomMsg::MemberAdded(m) => {
                if let State::Ready(r) = &mut self.state {
                    r.members.insert(
                        m.user_id,
                        Member {
                            last_read: m.last_read_seq,
                        },
                    );
                }
            }
            RoomMsg::MemberRemoved { user, reason } => {
                if let State::Ready(r) = &mut self.state {
                    r.members.remove(&user);
                }
                self.buckets.remove(&user);
                self.hub.user(user, UserMsg::Removed { room: id, reason });
            }
            RoomMsg::Broadcast(frame) => self.broadcast(&frame, None),
            RoomMsg::SetBlocked(blocked) => {
                if let State::Ready(r) = &mut self.state {
                    r.blocked = blocked;
                }
            }
        }
    }
}

impl Handler<Committed> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Committed, _: &mut Context<Self>) {
        self.last_activity = Instant::now();
        for (token, result) in msg.results {
            let Some(p) = self.pending.remove(&token) else {
                continue;
            };
            match result {
                Ok(Appended::New { seq, ts }) => self.delivered(p, seq, ts),
                Ok(Appended::Duplicate { seq, ts }) => {
                    if let Some(cid) = &p.msg.client_msg_id {
                        self.in_flight.remove(&(p.msg.sender_id, cid.clone()));
                        let ack = frames::ack(self.id, cid, seq, ts);
                        for r in &p.replies {
                            r.frame(ack.clone());
                        }
                    }
                }
                Err(why) => self.fail(p, &why),
            }
        }
    }
}
