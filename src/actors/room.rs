//! The room actor: the single entry point of messages into one room.
//!
//! It holds membership and read pointers in memory (loaded from the store
//! when it starts), validates sends (membership, rate limit, duplicates in
//! flight), hands them to the committer, and only once they are committed
//! acknowledges them and fans them out, serialised once, to the members
//! who are online.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext as _, ActorFutureExt as _, AsyncContext as _, Context, Handler, Message,
    WrapFuture as _,
};
use serde_json::Value;
use tokio::sync::oneshot;

use super::cluster::Remote;
use super::committer::Job;
use super::link::Link;
use super::user::UserMsg;
use super::IdMap;
use super::{link, ChatHub, SessionHandle};
use crate::domain::chat::{self, MessageKind, RoomKind};
use crate::domain::now_ms;
use crate::error::Code;
use crate::protocol::frames::{self, Frame};
use crate::store::{Appended, ChatWrite, MemberRecord, MessageRecord, NewMessage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomError {
    NoRoom,
    NotMember,
}

impl RoomError {
    pub fn code(self) -> Code {
        match self {
            RoomError::NoRoom => Code::RoomNotFound,
            RoomError::NotMember => Code::NotMember,
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
        /// Dropped once the message is committed (or failed).
        done: Option<oneshot::Sender<()>>,
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
    /// Another node's event for this room (see `actors::cluster`).
    Remote(Remote),
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
    /// Highest seq fanned out to this node's sessions; messages are fanned
    /// out strictly in seq order, each once.
    delivered: i64,
    members: IdMap<Member>,
    /// Direct rooms: one member blocked the other; nobody may send.
    blocked: bool,
    /// The connections of the members online on this node, as of the
    /// hub's online epoch in `roster_epoch` (`None`: membership changed
    /// since; rebuilt at the next fan-out).
    roster: Vec<Arc<Link>>,
    roster_epoch: Option<u64>,
}

enum State {
    Loading,
    Missing,
    Ready(Ready),
}

struct Pending {
    msg: NewMessage,
    replies: Vec<SessionHandle>,
    /// Dropped when the append is resolved (committed or failed): a caller
    /// waiting on the other end knows the message is in.
    _done: Option<oneshot::Sender<()>>,
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
    /// Started by another node's message: deliver from this seq on (its
    /// seq - 1), even if the store already holds later ones.
    floor: Option<i64>,
    /// Committed messages that arrived ahead of a missing seq.
    held: BTreeMap<i64, MessageRecord>,
    gap_fill_scheduled: bool,
    /// The latest text message not yet announced to offline members:
    /// (seq, sender); announced when the debounce window ends.
    alarm: Option<(i64, i64)>,
    /// The preview of that message (a buffer reused, so the hot path does
    /// not allocate for it).
    alarm_preview: String,
    alarm_scheduled: bool,
    /// How far this node's fan-out has gone, for the members' badges.
    delivered_cell: Arc<AtomicI64>,
}

impl RoomActor {
    pub fn new(id: i64, hub: ChatHub) -> RoomActor {
        RoomActor::with_floor(id, hub, None)
    }

    pub fn with_floor(id: i64, hub: ChatHub, floor: Option<i64>) -> RoomActor {
        RoomActor {
            delivered_cell: hub.delivered_cell(id),
            floor,
            held: BTreeMap::new(),
            gap_fill_scheduled: false,
            alarm: None,
            alarm_preview: String::new(),
            alarm_scheduled: false,
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

    /// Tell the other nodes about a room event, with the highest seq this
    /// node knows the room has (none before the load): a node that starts
    /// the room's actor because of it delivers every later message.
    fn replicate(&self, remote: &Remote) {
        let last_seq = match &self.state {
            State::Ready(r) => Some(r.last_seq),
            _ => None,
        };
        self.hub.replicate(self.id, remote, last_seq);
    }

    /// Token bucket per member: in open rooms `send_rate_per_sec` with
    /// bursts of `send_burst`, in direct rooms the `direct_` pair. A room
    /// has one kind, so one bucket per member suffices.
    fn allow_send(&mut self, user: i64, kind: RoomKind) -> bool {
        let s = self.hub.settings();
        let (rate, burst) = match kind {
            RoomKind::Open => (s.send_rate_per_sec, s.send_burst),
            RoomKind::Direct => (s.direct_send_rate_per_sec, s.direct_send_burst),
        };
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

    fn submit(
        &mut self,
        msg: NewMessage,
        replies: Vec<SessionHandle>,
        done: Option<oneshot::Sender<()>>,
        ctx: &mut Context<Self>,
    ) {
        let token = self.next_token;
        self.next_token += 1;
        if let Some(cid) = &msg.client_msg_id {
            self.in_flight.insert((msg.sender_id, cid.clone()), token);
        }
        let job = Job {
            write: ChatWrite::Append(msg.clone()),
            reply: Some((ctx.address(), token)),
        };
        self.pending.insert(
            token,
            Pending {
                msg,
                replies,
                _done: done,
            },
        );
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
                r.frame(frames::error(Code::Internal, why, Some(self.id), Some(cid)));
            }
        }
    }

    /// Send a frame to every online member (optionally but one).
    fn broadcast(&self, frame: &Frame, except: Option<i64>) {
        let State::Ready(r) = &self.state else { return };
        self.hub.for_online(
            r.members.keys().copied().filter(|u| Some(*u) != except),
            |_, t| {
                t.send(&self.hub, UserMsg::Event(frame.clone()));
            },
        );
    }

    /// A local send committed: acknowledge it, tell the other nodes, and
    /// fan it out in order.
    fn delivered(&mut self, p: Pending, seq: i64, ts: i64, ctx: &mut Context<Self>) {
        let record = MessageRecord {
            room_id: self.id,
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
            let ack = frames::ack(self.id, cid, seq, ts);
            for reply in &p.replies {
                reply.frame(ack.clone());
            }
        }
        self.hub.metrics().chat_messages.inc();
        if record.kind == MessageKind::Text {
            // Offline members hear of it, at most once per window, from the
            // node that committed it.
            self.alarm_preview.clear();
            self.alarm_preview.extend(record.body.chars().take(60));
            self.alarm = Some((seq, record.sender_id));
            if !self.alarm_scheduled {
                self.alarm_scheduled = true;
                ctx.run_later(self.hub.settings().notify_debounce, |act, _| {
                    act.emit_alarm();
                });
            }
        }
        let remote = Remote::Message(record);
        self.replicate(&remote);
        if let Remote::Message(record) = remote {
            self.offer(record, ctx);
        }
    }

    /// Announce the room's latest unannounced message (the notifications
    /// consumer decides who is offline and hears of it).
    fn emit_alarm(&mut self) {
        self.alarm_scheduled = false;
        if let Some((seq, sender)) = self.alarm.take() {
            let preview = &self.alarm_preview;
            self.hub.alarm(crate::bus::Event::alarm(
                crate::domain::events::Alarm::ChatActivity,
                self.id,
                serde_json::json!({"room": self.id, "seq": seq, "sender": sender,
                                   "preview": preview, "at": crate::domain::now_ms()}),
            ));
        }
    }

    /// A committed message (local or from another node) for fan-out: in
    /// seq order, each once. Early ones wait for the gap to close; a gap
    /// that stays open is filled from the store.
    fn offer(&mut self, record: MessageRecord, ctx: &mut Context<Self>) {
        let State::Ready(r) = &mut self.state else {
            return;
        };
        if record.seq <= r.delivered {
            return;
        }
        r.last_seq = r.last_seq.max(record.seq);
        // Writing marks read (the store moved the sender's pointer too).
        if let Some(m) = r.members.get_mut(&record.sender_id) {
            m.last_read = m.last_read.max(record.seq);
        }
        if record.seq == r.delivered + 1 && self.held.is_empty() {
            // The usual case (always, on one node): next in line.
            r.delivered = record.seq;
            self.fan_out(&record);
            return;
        }
        self.held.insert(record.seq, record);
        self.drain();
        if !self.held.is_empty() && !self.gap_fill_scheduled {
            self.gap_fill_scheduled = true;
            ctx.run_later(self.hub.settings().gap_fill, |act, ctx| act.fill_gap(ctx));
        }
    }

    fn drain(&mut self) {
        loop {
            let State::Ready(r) = &mut self.state else {
                return;
            };
            let Some(record) = self.held.remove(&(r.delivered + 1)) else {
                return;
            };
            r.delivered = record.seq;
            self.fan_out(&record);
        }
    }

    /// Read the messages between what was delivered and what is held from
    /// the store (they are committed: a node only publishes after commit).
    fn fill_gap(&mut self, ctx: &mut Context<Self>) {
        self.gap_fill_scheduled = false;
        let (State::Ready(r), Some((&first_held, _))) = (&self.state, self.held.first_key_value())
        else {
            return;
        };
        let from = r.delivered;
        let missing = (first_held - from - 1).clamp(1, 500);
        let store = self.hub.messages().clone();
        let id = self.id;
        self.hub.metrics().cluster_gap_fills.inc();
        ctx.spawn(
            async move { store.messages_after(id, from, missing).await }
                .into_actor(self)
                .map(move |result, act, ctx| {
                    match result {
                        Ok(records) => {
                            for record in records {
                                act.offer(record, ctx);
                            }
                        }
                        Err(e) => tracing::warn!(room = id, error = %e, "gap fill failed"),
                    }
                    // Still stuck on the same seq (cannot happen while seqs
                    // are gap-free; a store error): try again later.
                    if !act.held.is_empty() && !act.gap_fill_scheduled {
                        act.gap_fill_scheduled = true;
                        ctx.run_later(act.hub.settings().gap_fill, |act, ctx| act.fill_gap(ctx));
                    }
                }),
        );
    }

    /// Deliver `record` to every connection of the members online here.
    ///
    /// The per-member step touches nothing but the connection's link: the
    /// room keeps its online members' links in one array (its roster),
    /// rebuilt only when a connection came or went on this node or the
    /// membership changed; the members' unread counts are not updated per
    /// delivery but derived from the room's delivered seq when a badge is
    /// sent (see `user::RoomView`). Both used to cost a registry lookup, a
    /// user lock and a map update per member (docs/BENCHMARKS.md, fourth
    /// stop).
    fn fan_out(&mut self, record: &MessageRecord) {
        let State::Ready(r) = &mut self.state else {
            return;
        };
        let (id, seq) = (self.id, record.seq);
        // The writer's read pointer moves before the message counts
        // anywhere (writing marks read).
        if r.members.contains_key(&record.sender_id) {
            self.hub.user_wrote(record.sender_id, id, seq);
        }
        self.delivered_cell.fetch_max(seq, Ordering::AcqRel);
        // The epoch is read before the registry: a connection added after
        // this read moves it, and the next fan-out sees the connection.
        let epoch = self.hub.online_epoch();
        if r.roster_epoch != Some(epoch) {
            r.roster.clear();
            self.hub
                .online_links(r.members.keys().copied(), &mut r.roster);
            r.roster_epoch = Some(epoch);
        }
        let frame = frames::message(record);
        for link in &r.roster {
            link.push_message(id, seq, &frame);
        }
    }

    /// The rest of a member's send, once membership and blocks are known.
    fn post(&mut self, send: ClientSend, blocked: bool, kind: RoomKind, ctx: &mut Context<Self>) {
        let ClientSend {
            user,
            client_msg_id,
            body,
            reply,
        } = send;
        let id = self.id;
        if blocked {
            reply.frame(frames::error(
                Code::Blocked,
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
        if !self.allow_send(user, kind) {
            reply.frame(frames::error(
                Code::RateLimited,
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
        self.submit(msg, vec![reply], None, ctx);
    }

    fn check_idle(&mut self, ctx: &mut Context<Self>) {
        if self.pending.is_empty()
            && self.held.is_empty()
            && self.last_activity.elapsed() >= self.hub.settings().room_idle
            && self.hub.retire_room(self.id, &ctx.address(), self.handled)
        {
            ctx.stop();
        }
    }
}

/// A member's `send` frame on its way through the room actor.
struct ClientSend {
    user: i64,
    client_msg_id: String,
    body: String,
    reply: SessionHandle,
}

impl RoomMsg {
    /// A client's request about the room (as opposed to an event that
    /// implies the room exists).
    pub fn from_client(&self) -> bool {
        matches!(
            self,
            RoomMsg::Post { .. } | RoomMsg::Read { .. } | RoomMsg::Typing { .. }
        )
    }

    /// Answer a client's request without an actor: the room is known not
    /// to exist.
    pub fn refuse_missing(self, room: i64) {
        let why = RoomError::NoRoom;
        match self {
            RoomMsg::Post {
                client_msg_id,
                reply,
                ..
            } => reply.frame(why.frame(room, Some(&client_msg_id))),
            RoomMsg::Read { reply, session, .. } => {
                if let Some(reply) = reply {
                    let _ = reply.send(Err(why));
                }
                if let Some(s) = session {
                    s.frame(why.frame(room, None));
                }
            }
            RoomMsg::Typing { session, .. } => session.frame(why.frame(room, None)),
            _ => {}
        }
    }
}

/// How many of a room's latest messages a starting actor reads to catch
/// up on (cluster only).
const CATCHUP_MAX: i64 = 200;

/// Where a starting actor's delivery begins, given the room's latest
/// messages (ascending) and `last_seq`: after the newest message committed
/// at or before `cutoff` (ms). Later ones were committed so recently that
/// their events may still be in flight, so they are delivered from the
/// store; an earlier actor of this node cannot have delivered them (it would
/// not have gone idle since). With none of them older than the cutoff, all
/// of them are delivered; with none at all, nothing is.
fn catchup_floor(records: &[MessageRecord], last_seq: i64, cutoff: i64) -> i64 {
    match records.iter().rev().find(|m| m.created_at <= cutoff) {
        Some(old) => old.seq.min(last_seq),
        None => records
            .first()
            .map_or(last_seq, |m| (m.seq - 1).min(last_seq)),
    }
}

impl Actor for RoomActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let sql = self.hub.sql().clone();
        let id = self.id;
        // With several nodes, messages committed elsewhere just before this
        // load may have their events still on the way; they would arrive
        // as old news (seq <= last_seq) and be dropped. So the recent ones
        // are read too and delivered now (see `catchup_floor`).
        let catchup = self.hub.settings().catchup;
        let recent_store =
            (self.hub.clustered() && !catchup.is_zero()).then(|| self.hub.messages().clone());
        let load = async move {
            let room = sql.chat().room(id).await?;
            let members = sql.chat().members(id).await?;
            let blocked = match (room.as_ref().map(|r| r.kind), members.as_slice()) {
                (Some(RoomKind::Direct), [a, b]) => {
                    sql.market().blocked_between(a.user_id, b.user_id).await?
                }
                _ => false,
            };
            let recent = match (&room, recent_store) {
                (Some(room), Some(store)) => {
                    let from = (room.last_seq - CATCHUP_MAX).max(0);
                    store.messages_after(id, from, CATCHUP_MAX).await?
                }
                _ => Vec::new(),
            };
            Ok::<_, crate::store::StoreError>((room, members, blocked, recent))
        };
        ctx.wait(load.into_actor(self).map(move |result, act, ctx| {
            let mut recent = Vec::new();
            act.state = match result {
                Ok((Some(room), members, blocked, records)) => State::Ready(Ready {
                    blocked,
                    kind: room.kind,
                    last_seq: room.last_seq,
                    delivered: {
                        let cutoff = now_ms()
                            .saturating_sub(i64::try_from(catchup.as_millis()).unwrap_or(i64::MAX));
                        let floor = catchup_floor(&records, room.last_seq, cutoff);
                        recent = records;
                        act.floor.map_or(floor, |f| f.min(floor))
                    },
                    roster: Vec::new(),
                    roster_epoch: None,
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
                Ok((None, _, _, _)) => {
                    // Remember that it does not exist, answer what queued
                    // up meanwhile, and go at once: a flood of frames for
                    // made-up rooms must not keep actors (and database
                    // lookups) alive.
                    act.hub.note_missing_room(act.id);
                    ctx.run_later(Duration::ZERO, |act, ctx| {
                        if act.hub.retire_room(act.id, &ctx.address(), act.handled) {
                            ctx.stop();
                        }
                    });
                    State::Missing
                }
                Err(e) => {
                    // Could not load: stop and let the next message start a
                    // fresh actor that tries again.
                    tracing::error!(room = act.id, error = %e, "room actor failed to load");
                    ctx.stop();
                    State::Missing
                }
            };
            for record in recent {
                act.offer(record, ctx);
            }
        }));
        let every = (self.hub.settings().room_idle / 2).max(Duration::from_millis(100));
        ctx.run_interval(every, |act, ctx| act.check_idle(ctx));
    }

    fn stopped(&mut self, ctx: &mut Context<Self>) {
        // Going idle with an announcement pending: make it now.
        self.emit_alarm();
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
        // What this message sends to members is written when it is handled,
        // one write per connection (see `link::corked`).
        link::corked(|| self.on_message(msg, ctx));
    }
}

impl RoomActor {
    fn on_message(&mut self, msg: RoomMsg, ctx: &mut Context<Self>) {
        // One method per message; the short ones stay here.
        match msg {
            RoomMsg::Post {
                user,
                client_msg_id,
                body,
                reply,
            } => self.on_post(user, client_msg_id, body, reply, ctx),
            RoomMsg::System {
                actor,
                body,
                payload,
                done,
            } => self.on_system(actor, body, payload, done, ctx),
            RoomMsg::Read {
                user,
                seq,
                reply,
                session,
            } => self.on_read(user, seq, reply, session, ctx),
            RoomMsg::Typing { user, session } => self.on_typing(user, session),
            RoomMsg::MemberAdded(m) => {
                self.replicate(&Remote::MemberAdded(m.clone()));
                self.member_added(m, false);
            }
            RoomMsg::MemberRemoved { user, reason } => {
                self.replicate(&Remote::MemberRemoved { user, reason });
                self.member_removed(user, reason);
            }
            RoomMsg::Broadcast(frame) => {
                self.replicate(&Remote::Broadcast(frame.to_string()));
                self.broadcast(&frame, None);
            }
            RoomMsg::SetBlocked(blocked) => {
                self.replicate(&Remote::Blocked(blocked));
                if let State::Ready(r) = &mut self.state {
                    r.blocked = blocked;
                }
            }
            RoomMsg::Remote(remote) => self.remote(remote, ctx),
        }
    }
}

impl RoomActor {
    fn on_post(
        &mut self,
        user: i64,
        client_msg_id: String,
        body: String,
        reply: SessionHandle,
        ctx: &mut Context<Self>,
    ) {
        let id = self.id;
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
        if kind == RoomKind::Direct && self.hub.clustered() {
            // Several nodes: a block set or lifted on another node
            // reaches this actor through the bus a moment later;
            // ask the store, which has it now. The actor waits for
            // the answer, so the member's sends keep their order.
            let sql = self.hub.sql().clone();
            let pair: Vec<i64> = match &self.state {
                State::Ready(r) => r.members.keys().copied().collect(),
                _ => Vec::new(),
            };
            let check = async move {
                match pair.as_slice() {
                    [a, b] => sql.market().blocked_between(*a, *b).await,
                    _ => Ok(false),
                }
            };
            let send = ClientSend {
                user,
                client_msg_id,
                body,
                reply,
            };
            ctx.wait(check.into_actor(self).map(move |result, act, ctx| {
                let blocked = match result {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::warn!(room = id, error = %e, "block check failed");
                        blocked
                    }
                };
                if let State::Ready(r) = &mut act.state {
                    r.blocked = blocked;
                }
                act.post(send, blocked, kind, ctx);
            }));
            return;
        }
        let send = ClientSend {
            user,
            client_msg_id,
            body,
            reply,
        };
        self.post(send, blocked, kind, ctx);
    }

    fn on_system(
        &mut self,
        actor: i64,
        body: String,
        payload: Value,
        done: Option<oneshot::Sender<()>>,
        ctx: &mut Context<Self>,
    ) {
        let id = self.id;
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
        self.submit(msg, Vec::new(), done, ctx);
    }

    /// A member read up to `seq`. With other nodes, this node may not have
    /// heard of the latest messages yet (they come through Kafka): a read
    /// past what it knows asks the store how far the room really is, so
    /// the pointer is not clamped short of a message the client has seen.
    fn on_read(
        &mut self,
        user: i64,
        seq: i64,
        reply: Option<oneshot::Sender<Result<i64, RoomError>>>,
        session: Option<SessionHandle>,
        ctx: &mut Context<Self>,
    ) {
        let behind = matches!(&self.state, State::Ready(r) if seq > r.last_seq);
        if !(behind && self.hub.clustered()) {
            self.apply_read(user, seq, 0, reply, session);
            return;
        }
        let sql = self.hub.sql().clone();
        let id = self.id;
        ctx.spawn(
            async move { sql.chat().room(id).await }
                .into_actor(self)
                .map(move |room, act, _| {
                    let stored = match room {
                        Ok(room) => room.map_or(0, |r| r.last_seq),
                        Err(e) => {
                            tracing::warn!(room = id, error = %e, "room lookup for a read failed");
                            0
                        }
                    };
                    act.apply_read(user, seq, stored, reply, session);
                }),
        );
    }

    /// `stored`: the room's last seq in the store, when this node may be
    /// behind it (else 0).
    fn apply_read(
        &mut self,
        user: i64,
        seq: i64,
        stored: i64,
        reply: Option<oneshot::Sender<Result<i64, RoomError>>>,
        session: Option<SessionHandle>,
    ) {
        let id = self.id;
        let refuse = |why: RoomError, reply: Option<oneshot::Sender<Result<i64, RoomError>>>| {
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
        let seq = seq.min(last_seq.max(stored));
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
            self.read_moved(user, seq, last_seq, kind);
            self.replicate(&Remote::Read { user, seq });
        }
    }

    /// `user`'s read pointer moved to `seq` (here or on another node):
    /// their badge views, and the receipt for the other members.
    fn read_moved(&self, user: i64, seq: i64, last_seq: i64, kind: RoomKind) {
        let id = self.id;
        self.hub.user(
            user,
            UserMsg::Read {
                room: id,
                last_seq,
                read: seq,
            },
        );
        if kind == RoomKind::Direct || self.hub.settings().open_room_receipts {
            self.broadcast(&frames::receipt(id, user, seq), None);
        }
    }

    fn on_typing(&mut self, user: i64, session: SessionHandle) {
        let id = self.id;
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
        self.replicate(&Remote::Typing { user });
    }

    fn member_added(&mut self, m: MemberRecord, from_other_node: bool) {
        let id = self.id;
        let State::Ready(r) = &mut self.state else {
            return;
        };
        r.members.insert(
            m.user_id,
            Member {
                last_read: m.last_read_seq,
            },
        );
        r.roster_epoch = None;
        if from_other_node {
            // The joining user's devices on this node learn about the room
            // (the origin node told the ones connected there).
            let peer = (r.kind == RoomKind::Direct)
                .then(|| r.members.keys().copied().find(|u| *u != m.user_id))
                .flatten();
            let kind = r.kind;
            let last_seq = r.last_seq;
            self.hub.user(
                m.user_id,
                UserMsg::RoomAdded {
                    room: id,
                    kind,
                    peer,
                    last_seq,
                    read: m.last_read_seq,
                },
            );
        }
    }

    fn member_removed(&mut self, user: i64, reason: &'static str) {
        if let State::Ready(r) = &mut self.state {
            r.members.remove(&user);
            r.roster_epoch = None;
        }
        self.buckets.remove(&user);
        self.hub.user(
            user,
            UserMsg::Removed {
                room: self.id,
                reason,
            },
        );
    }

    /// Apply another node's event to this node's sessions (never published
    /// again).
    fn remote(&mut self, remote: Remote, ctx: &mut Context<Self>) {
        let id = self.id;
        match remote {
            Remote::Message(record) => self.offer(record, ctx),
            Remote::Read { user, seq } => {
                let State::Ready(r) = &mut self.state else {
                    return;
                };
                let (last_seq, kind) = (r.last_seq, r.kind);
                let Some(m) = r.members.get_mut(&user) else {
                    return;
                };
                if seq <= m.last_read {
                    return;
                }
                m.last_read = seq;
                self.read_moved(user, seq, last_seq, kind);
            }
            Remote::Typing { user } => self.broadcast(&frames::typing(id, user), Some(user)),
            Remote::MemberAdded(m) => self.member_added(m, true),
            Remote::MemberRemoved { user, reason } => self.member_removed(user, reason),
            Remote::Broadcast(frame) => self.broadcast(&Frame::from(frame), None),
            Remote::Blocked(blocked) => {
                if let State::Ready(r) = &mut self.state {
                    r.blocked = blocked;
                }
            }
        }
    }
}

impl Handler<Committed> for RoomActor {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Context<Self>) {
        self.last_activity = Instant::now();
        // A batch's messages leave in one write per connection.
        link::corked(|| self.on_committed(msg, ctx));
    }
}

impl RoomActor {
    fn on_committed(&mut self, msg: Committed, ctx: &mut Context<Self>) {
        for (token, result) in msg.results {
            let Some(p) = self.pending.remove(&token) else {
                continue;
            };
            match result {
                Ok(Appended::New { seq, ts }) => self.delivered(p, seq, ts, ctx),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: i64, created_at: i64) -> MessageRecord {
        MessageRecord {
            room_id: 1,
            seq,
            sender_id: 1,
            client_msg_id: None,
            kind: MessageKind::Text,
            body: String::new(),
            payload: None,
            created_at,
            edited_at: None,
            deleted_at: None,
        }
    }

    #[test]
    fn a_starting_actor_delivers_only_the_recent_messages() {
        // 1..=3 are old, 4 and 5 recent: deliver from 4.
        let records: Vec<_> = [(1, 10), (2, 20), (3, 30), (4, 100), (5, 110)]
            .into_iter()
            .map(|(s, t)| at(s, t))
            .collect();
        assert_eq!(catchup_floor(&records, 5, 50), 3);
        // Nothing recent: nothing to deliver.
        assert_eq!(catchup_floor(&records, 5, 200), 5);
        // All recent (the window read holds only recent ones): all of them.
        assert_eq!(catchup_floor(&records[3..], 5, 50), 3);
        // An empty room, or one read before its last commit showed.
        assert_eq!(catchup_floor(&[], 0, 50), 0);
        assert_eq!(catchup_floor(&records, 4, 200), 4);
        // Clocks a little apart: an old one after a recent one still counts
        // as the boundary (the later recent one is delivered).
        let skewed = [at(1, 100), at(2, 40), at(3, 120)];
        assert_eq!(catchup_floor(&skewed, 3, 50), 2);
    }
}
