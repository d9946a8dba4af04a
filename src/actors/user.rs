//! The user actor and its shared state: one per connected user, holding
//! their WebSocket sessions (devices), unread counts per room and the total
//! badge, and their presence towards direct-chat peers. It exists only
//! while the user has at least one connection; offline users need no live
//! state.
//!
//! **Delivery without a hop.** What a room sends a user (a committed
//! message, an event frame, an unread count, a room added or removed) only
//! touches the user's sessions and counts, so it is applied **directly**
//! on the sender's thread, under the user's lock ([`UserTarget::send`]),
//! instead of through the actor's mailbox: one task wake-up and one
//! envelope less per delivery, and the frames reach each session queue in
//! exactly the order the room produced them (the room actor is the only
//! producer of a room's frames). The actor keeps what needs a context or
//! runs rarely: loading the rooms at start, the coalesced badge timer,
//! attach/detach bookkeeping and presence announcements, revocations.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::{
    Actor, ActorContext as _, ActorFutureExt as _, Addr, AsyncContext as _, Context, Handler,
    Message, WrapFuture as _,
};

use super::frames::Frame;
use super::{frames, ChatHub, IdMap, IdSet, SessionHandle};
use crate::domain::chat::{self, RoomKind};

pub enum UserMsg {
    Attach(SessionHandle),
    Detach(u64),
    /// The unread count of a room changed (the user read on some device).
    Unread {
        room: i64,
        unread: i64,
    },
    /// Any other event for all of the user's devices.
    Event(Frame),
    /// The user became a member of a room.
    RoomAdded {
        room: i64,
        kind: RoomKind,
        peer: Option<i64>,
        unread: i64,
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

struct RoomView {
    unread: i64,
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
    added_early: HashMap<i64, (Option<i64>, i64)>,
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

    /// The user is in `room` (as the store or its room actor says).
    fn know(&mut self, room: i64, unread: i64, peer: Option<i64>) {
        self.rooms.insert(
            room,
            RoomView {
                unread,
                peer,
                known: true,
            },
        );
    }

    /// A room the user's sessions did not know: learn it, send `joined`;
    /// true if the actor must be asked to flush (the badge follows).
    fn announce_room(&mut self, room: i64, peer: Option<i64>, unread: i64) -> bool {
        let unread = self
            .rooms
            .get(&room)
            .map_or(unread, |v| v.unread.max(unread));
        self.know(room, unread, peer);
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
}

/// Where a connected user's deliveries go: the shared state, and the actor
/// for the rest.
#[derive(Clone)]
pub struct UserTarget {
    pub addr: Addr<UserActor>,
    pub shared: Arc<UserShared>,
}

impl UserTarget {
    /// A committed message of `room` for every session of the user, and
    /// the user's unread count there after it (the fan-out's per-member
    /// step, called by the room actor directly).
    pub fn deliver(&self, room: i64, seq: i64, frame: &Frame, unread: i64) {
        let mut s = self.shared.lock();
        for session in &s.sessions {
            session.link().push_message(room, seq, frame);
        }
        // No badge frame: the client derives the count from the message
        // (docs/PROTOCOL.md, "Unread counts and badges"); the view stays
        // exact for the totals of later badges.
        s.rooms
            .entry(room)
            .or_insert(RoomView {
                unread: 0,
                peer: None,
                known: false,
            })
            .unread = unread;
    }

    /// Apply `msg`: session and count updates here and now, in the
    /// caller's order; lifecycle messages through the actor. A caller that
    /// holds the hub's user registry must not send `RoomAdded` (it asks the
    /// hub about the new peer's presence).
    pub fn send(&self, hub: &ChatHub, msg: UserMsg) {
        let flush = match msg {
            UserMsg::Unread { room, unread } => {
                let mut s = self.shared.lock();
                if let Some(view) = s.rooms.get_mut(&room) {
                    view.unread = unread;
                }
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
                unread,
            } => {
                let peer = if kind == RoomKind::Direct { peer } else { None };
                let (flush, sessions) = {
                    let mut s = self.shared.lock();
                    if !s.loaded {
                        // The load decides: a room it has was there before
                        // this actor started (no `joined`, no badge).
                        s.removed_early.remove(&room);
                        s.added_early.insert(room, (peer, unread));
                        return;
                    }
                    if s.rooms.get(&room).is_some_and(|v| v.known) {
                        // Known already (loaded from the store when the
                        // actor started): the news came late, e.g. from
                        // another node.
                        return;
                    }
                    (s.announce_room(room, peer, unread), s.sessions.clone())
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
        let total: i64 = s.rooms.values().map(|r| r.unread).sum();
        for room in std::mem::take(&mut s.dirty) {
            let unread = s.rooms.get(&room).map_or(0, |r| r.unread);
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
            async move { sql.user_room_ids(id).await }
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
                            // A room that delivered while this loaded keeps
                            // the count its room actor sent (exact, and no
                            // older than the store's).
                            let unread = s
                                .rooms
                                .get(&room)
                                .map_or_else(|| chat::unread(last_seq, last_read), |v| v.unread);
                            s.know(room, unread, peer);
                        }
                        // Added while this loaded, after the load's read.
                        // (Their peers' presence goes out with `Attach`,
                        // which the actor handles after this.)
                        let mut flush = false;
                        for (room, (peer, unread)) in added {
                            flush |= s.announce_room(room, peer, unread);
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
