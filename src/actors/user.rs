//! The user actor and its shared state: one per connected user, holding
//! their WebSocket sessions (devices), their rooms' read pointers for the
//! unread counts and the total badge, and their presence towards
//! direct-chat peers. It exists only while the user has at least one
//! connection; offline users need no live state.
//!
//! **Messages do not pass through here.** A room's fan-out writes into its
//! online members' links directly (the room's roster, see
//! `RoomActor::fan_out`), and a member's unread count is derived from the
//! room's delivered seq when a badge is sent ([`RoomView`]), so a delivery
//! costs the user nothing.
//!
//! **Everything else without a hop.** What a room sends a user (an event
//! frame, a moved read pointer, a room added or removed) only touches the
//! user's sessions and views, so it is applied **directly** on the
//! sender's thread, under the user's lock ([`UserTarget::send`]), instead
//! of through the actor's mailbox, in exactly the order the room produced
//! it. The actor keeps what needs a context or runs rarely: loading the
//! rooms at start, the coalesced badge timer, attach/detach bookkeeping and
//! presence announcements, revocations.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::{
    Actor, ActorContext as _, ActorFutureExt as _, Addr, AsyncContext as _, Context, Handler,
    Message, WrapFuture as _,
};

use super::link::Link;
use super::{ChatHub, IdMap, IdSet, SessionHandle};
use crate::domain::chat::{self, RoomKind};
use crate::protocol::frames::{self, Frame};

pub enum UserMsg {
    Attach(SessionHandle),
    Detach(u64),
    /// The user's read pointer in a room moved (they read on some device):
    /// the room's last seq and the pointer, as the room actor has them.
    Read {
        room: i64,
        last_seq: i64,
        read: i64,
    },
    /// Any other event for all of the user's devices.
    Event(Frame),
    /// The user became a member of a room.
    RoomAdded {
        room: i64,
        kind: RoomKind,
        peer: Option<i64>,
        /// The room's last seq and the user's read pointer when they joined.
        last_seq: i64,
        read: i64,
    },
    /// The user left or was removed from a room.
    Removed {
        room: i64,
        reason: &'static str,
    },
    /// Login sessions ended: close the connections opened with them.
    Revoke(crate::domain::account::Revocation),
    /// A direct-chat peer came online or went offline.
    Presence {
        user: i64,
        online: bool,
    },
    /// Badge changes are waiting: send them after the coalescing delay.
    FlushBadges,
}

impl Message for UserMsg {
    type Result = ();
}

/// What the user's badge needs of one room. The unread count is not kept
/// but derived when a badge is sent: the room's last seq (as the store or
/// the room actor last said, or as far as this node's fan-out has gone,
/// whichever is higher) minus the read pointer. Both only grow, so merging
/// two reports of them is taking the higher of each; and a delivery needs
/// no update here (the fan-out moves the room's seq cell once per message,
/// not once per member).
struct RoomView {
    last_seq: i64,
    read: i64,
    /// How far this node's fan-out has delivered the room.
    delivered: Arc<AtomicI64>,
    peer: Option<i64>,
    /// The user's sessions know this room (it was in the store when this
    /// actor started, or a `joined` frame went out).
    known: bool,
}

/// A user's live state on this node, shared by the actor and the rooms
/// that deliver to it.
#[derive(Default)]
pub struct UserShared {
    state: Mutex<UserState>,
}

#[derive(Default)]
struct UserState {
    sessions: Vec<SessionHandle>,
    rooms: IdMap<RoomView>,
    dirty: IdSet,
    flush_scheduled: bool,
    /// The rooms were loaded from the store (the actor started).
    loaded: bool,
    /// Rooms removed before that: the load must not bring them back.
    removed_early: HashSet<i64>,
    /// Rooms added before that (news that may be older than the load, e.g.
    /// from another node): announced when the load finishes, unless the
    /// load already had them.
    added_early: HashMap<i64, Added>,
}

/// A room added to the user: (peer, last seq, read pointer).
type Added = (Option<i64>, i64, i64);

impl RoomView {
    fn unread(&self) -> i64 {
        let last_seq = self.last_seq.max(self.delivered.load(Ordering::Acquire));
        chat::unread(last_seq, self.read)
    }
}

impl UserState {
    fn to_all(&self, frame: &Frame) {
        for s in &self.sessions {
            s.frame(frame.clone());
        }
    }

    /// Note a changed count; true if the actor must be asked to flush.
    fn mark_dirty(&mut self, room: i64) -> bool {
        self.dirty.insert(room);
        !std::mem::replace(&mut self.flush_scheduled, true)
    }

    /// Merge a report of `room`'s last seq and the user's read pointer
    /// into the view (creating it, not yet known to the sessions).
    fn note(&mut self, hub: &ChatHub, room: i64, last_seq: i64, read: i64) -> &mut RoomView {
        let view = self.rooms.entry(room).or_insert_with(|| RoomView {
            last_seq: 0,
            read: 0,
            delivered: hub.delivered_cell(room),
            peer: None,
            known: false,
        });
        view.last_seq = view.last_seq.max(last_seq);
        view.read = view.read.max(read);
        view
    }

    /// The user is in `room` (as the store or its room actor says).
    fn know(&mut self, hub: &ChatHub, room: i64, added: Added) {
        let (peer, last_seq, read) = added;
        let view = self.note(hub, room, last_seq, read);
        view.peer = peer;
        view.known = true;
    }

    /// A room the user's sessions did not know: learn it, send `joined`;
    /// true if the actor must be asked to flush (the badge follows).
    fn announce_room(&mut self, hub: &ChatHub, room: i64, added: Added) -> bool {
        self.know(hub, room, added);
        self.to_all(&frames::joined(room));
        self.mark_dirty(room)
    }

    fn peers(&self) -> Vec<i64> {
        let peers: HashSet<i64> = self.rooms.values().filter_map(|r| r.peer).collect();
        peers.into_iter().collect()
    }
}

impl UserShared {
    // Only single-step updates happen under this lock, so a poisoned one
    // is used as is (as the hub's registries are).
    fn lock(&self) -> MutexGuard<'_, UserState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session receives from now on (before its actor hears of it,
    /// so nothing committed after the session's catch-up read can miss it).
    pub fn add_session(&self, session: SessionHandle) {
        self.lock().sessions.push(session);
    }

    /// The links of the user's sessions (a room's roster of its online
    /// members' connections, see `RoomActor::fan_out`).
    pub fn links_into(&self, out: &mut Vec<Arc<Link>>) {
        out.extend(self.lock().sessions.iter().map(|s| s.link().clone()));
    }
}

/// Where a connected user's deliveries go: the shared state, and the actor
/// for the rest.
#[derive(Clone)]
pub struct UserTarget {
    pub addr: Addr<UserActor>,
    pub shared: Arc<UserShared>,
}

impl UserTarget {
    /// The user wrote message `seq` of `room`, which moved their read
    /// pointer there (the room's fan-out calls this before the message
    /// counts anywhere, so no badge shows the user's own message unread).
    pub fn wrote(&self, hub: &ChatHub, room: i64, seq: i64) {
        self.shared.lock().note(hub, room, seq, seq);
    }

    /// Apply `msg`: session and count updates here and now, in the
    /// caller's order; lifecycle messages through the actor. A caller that
    /// holds the hub's user registry must not send `RoomAdded` (it asks the
    /// hub about the new peer's presence).
    pub fn send(&self, hub: &ChatHub, msg: UserMsg) {
        let flush = match msg {
            UserMsg::Read {
                room,
                last_seq,
                read,
            } => {
                let mut s = self.shared.lock();
                s.note(hub, room, last_seq, read);
                s.mark_dirty(room)
            }
            UserMsg::Event(frame) => {
                self.shared.lock().to_all(&frame);
                false
            }
            UserMsg::Presence { user, online } => {
                self.shared.lock().to_all(&frames::presence(user, online));
                false
            }
            UserMsg::RoomAdded {
                room,
                kind,
                peer,
                last_seq,
                read,
            } => {
                let peer = if kind == RoomKind::Direct { peer } else { None };
                let (flush, sessions) = {
                    let mut s = self.shared.lock();
                    if !s.loaded {
                        // The load decides: a room it has was there before
                        // this actor started (no `joined`, no badge).
                        s.removed_early.remove(&room);
                        s.added_early.insert(room, (peer, last_seq, read));
                        return;
                    }
                    if s.rooms.get(&room).is_some_and(|v| v.known) {
                        // Known already (loaded from the store when the
                        // actor started): the news came late, e.g. from
                        // another node.
                        return;
                    }
                    (
                        s.announce_room(hub, room, (peer, last_seq, read)),
                        s.sessions.clone(),
                    )
                };
                if let Some(p) = peer {
                    hub.tell_online_peers(vec![p], sessions);
                }
                flush
            }
            UserMsg::Removed { room, reason } => {
                let mut s = self.shared.lock();
                s.rooms.remove(&room);
                if !s.loaded {
                    s.removed_early.insert(room);
                    s.added_early.remove(&room);
                }
                s.to_all(&frames::removed(room, reason));
                s.mark_dirty(room)
            }
            other => {
                self.addr.do_send(other);
                false
            }
        };
        if flush {
            self.addr.do_send(UserMsg::FlushBadges);
        }
    }
}

pub struct UserActor {
    id: i64,
    hub: ChatHub,
    shared: Arc<UserShared>,
    attaches: u64,
}

impl UserActor {
    pub fn new(id: i64, hub: ChatHub, shared: Arc<UserShared>) -> UserActor {
        UserActor {
            id,
            hub,
            shared,
            attaches: 0,
        }
    }

    fn announce(&self, online: bool) {
        let peers = self.shared.lock().peers();
        if online {
            self.hub.user_online(self.id, peers);
        } else {
            self.hub.user_offline(self.id, peers);
        }
    }

    /// Send the coalesced badge updates: each changed room with the total.
    fn flush_badges(&mut self) {
        super::link::corked(|| self.write_badges());
    }

    fn write_badges(&self) {
        let mut s = self.shared.lock();
        s.flush_scheduled = false;
        let total: i64 = s.rooms.values().map(RoomView::unread).sum();
        for room in std::mem::take(&mut s.dirty) {
            let unread = s.rooms.get(&room).map_or(0, RoomView::unread);
            s.to_all(&frames::badge(room, unread, total));
        }
    }
}

impl Actor for UserActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let sql = self.hub.sql().clone();
        let id = self.id;
        ctx.wait(
            async move { sql.chat().user_room_ids(id).await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(rooms) => {
                        let mut s = act.shared.lock();
                        let removed = std::mem::take(&mut s.removed_early);
                        let mut added = std::mem::take(&mut s.added_early);
                        s.loaded = true;
                        for (room, kind, last_seq, last_read, peer) in rooms {
                            added.remove(&room);
                            if removed.contains(&room) {
                                continue;
                            }
                            let peer = if kind == RoomKind::Direct { peer } else { None };
                            // Merged with what the room actor reported while
                            // this loaded (the higher of each is the newer).
                            s.know(&act.hub, room, (peer, last_seq, last_read));
                        }
                        // Added while this loaded, after the load's read.
                        // (Their peers' presence goes out with `Attach`,
                        // which the actor handles after this.)
                        let mut flush = false;
                        for (room, added) in added {
                            flush |= s.announce_room(&act.hub, room, added);
                        }
                        drop(s);
                        act.announce(true);
                        if flush {
                            ctx.address().do_send(UserMsg::FlushBadges);
                        }
                    }
                    Err(e) => tracing::error!(user = act.id, error = %e, "user actor failed to load rooms"),
                }),
        );
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.announce(false);
    }
}

impl Handler<UserMsg> for UserActor {
    type Result = ();

    fn handle(&mut self, msg: UserMsg, ctx: &mut Context<Self>) {
        match msg {
            UserMsg::Attach(session) => {
                // The session already receives (`UserShared::add_session`).
                self.attaches += 1;
                let peers = self.shared.lock().peers();
                self.hub.tell_online_peers(peers, vec![session]);
                self.hub.metrics().ws_sessions.inc();
            }
            UserMsg::Revoke(r) => {
                for s in &self.shared.lock().sessions {
                    if r.ends(s.user_id, s.token_hash()) {
                        s.end();
                    }
                }
            }
            UserMsg::Detach(id) => {
                let (removed, empty) = {
                    let mut s = self.shared.lock();
                    let before = s.sessions.len();
                    s.sessions.retain(|s| s.id != id);
                    (s.sessions.len() < before, s.sessions.is_empty())
                };
                // Rooms rebuild their rosters without this connection.
                self.hub.online_changed();
                if removed {
                    self.hub.metrics().ws_sessions.dec();
                }
                if empty && self.hub.retire_user(self.id, &ctx.address(), self.attaches) {
                    ctx.stop();
                }
            }
            UserMsg::FlushBadges => {
                ctx.run_later(self.hub.settings().badge_delay, |act, _| act.flush_badges());
            }
            // Sent to the actor directly by older callers: same effect.
            other => UserTarget {
                addr: ctx.address(),
                shared: self.shared.clone(),
            }
            .send(&self.hub, other),
        }
    }
}
