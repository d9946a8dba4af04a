//! The user actor: one per connected user, holding their WebSocket
//! sessions (devices), unread counts per room and the total badge, and their
//! presence towards direct-chat peers. It exists only while the user has at
//! least one connection; offline users need no live state.

use std::collections::{HashMap, HashSet};

use actix::{
    Actor, ActorContext as _, ActorFutureExt as _, AsyncContext as _, Context, Handler, Message,
    WrapFuture as _,
};

use super::frames::Frame;
use super::{frames, ChatHub, Outbound, SessionHandle};
use crate::domain::chat::{self, RoomKind};

pub enum UserMsg {
    Attach(SessionHandle),
    Detach(u64),
    /// A committed message of one of the user's rooms, with the user's
    /// unread count for that room after it.
    Deliver {
        room: i64,
        seq: i64,
        frame: Frame,
        unread: i64,
    },
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

pub struct UserActor {
    id: i64,
    hub: ChatHub,
    sessions: Vec<SessionHandle>,
    rooms: HashMap<i64, RoomView>,
    attaches: u64,
    dirty: HashSet<i64>,
    flush_scheduled: bool,
}

impl UserActor {
    pub fn new(id: i64, hub: ChatHub) -> UserActor {
        UserActor {
            id,
            hub,
            sessions: Vec::new(),
            rooms: HashMap::new(),
            attaches: 0,
            dirty: HashSet::new(),
            flush_scheduled: false,
        }
    }

    fn peers(&self) -> impl Iterator<Item = i64> + '_ {
        self.rooms.values().filter_map(|r| r.peer)
    }

    fn announce(&self, online: bool) {
        let peers: HashSet<i64> = self.peers().collect();
        let peers: Vec<i64> = peers.into_iter().collect();
        if online {
            self.hub.user_online(self.id, peers);
        } else {
            self.hub.user_offline(self.id, peers);
        }
    }

    fn to_all(&self, frame: &Frame) {
        for s in &self.sessions {
            s.frame(frame.clone());
        }
    }

    fn mark_dirty(&mut self, room: i64, ctx: &mut Context<Self>) {
        self.dirty.insert(room);
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.run_later(self.hub.settings().badge_delay, |act, _| act.flush_badges());
        }
    }

    /// Send the coalesced badge updates: each changed room with the total.
    fn flush_badges(&mut self) {
        self.flush_scheduled = false;
        let total: i64 = self.rooms.values().map(|r| r.unread).sum();
        for room in std::mem::take(&mut self.dirty) {
            let unread = self.rooms.get(&room).map_or(0, |r| r.unread);
            self.to_all(&frames::badge(room, unread, total));
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
                .map(|result, act, _| match result {
                    Ok(rooms) => {
                        act.rooms = rooms
                            .into_iter()
                            .map(|(room, kind, last_seq, last_read, peer)| {
                                let peer = if kind == RoomKind::Direct { peer } else { None };
                                (
                                    room,
                                    RoomView {
                                        unread: chat::unread(last_seq, last_read),
                                        peer,
                                        known: true,
                                    },
                                )
                            })
                            .collect();
                        act.announce(true);
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
                self.attaches += 1;
                let peers: HashSet<i64> = self.peers().collect();
                self.hub
                    .tell_online_peers(peers.into_iter().collect(), vec![session.clone()]);
                self.sessions.push(session);
                self.hub.metrics().ws_sessions.inc();
            }
            UserMsg::Revoke(r) => {
                for s in &self.sessions {
                    if r.ends(s.user_id, s.token_hash()) {
                        s.end();
                    }
                }
            }
            UserMsg::Detach(id) => {
                let before = self.sessions.len();
                self.sessions.retain(|s| s.id != id);
                if self.sessions.len() < before {
                    self.hub.metrics().ws_sessions.dec();
                }
                if self.sessions.is_empty()
                    && self.hub.retire_user(self.id, &ctx.address(), self.attaches)
                {
                    ctx.stop();
                }
            }
            UserMsg::Deliver {
                room,
                seq,
                frame,
                unread,
            } => {
                for s in &self.sessions {
                    s.push(Outbound::Message {
                        room,
                        seq,
                        frame: frame.clone(),
                    });
                }
                let view = self.rooms.entry(room).or_insert(RoomView {
                    unread: 0,
                    peer: None,
                    known: false,
                });
                if view.unread != unread {
                    view.unread = unread;
                    self.mark_dirty(room, ctx);
                }
            }
            UserMsg::Unread { room, unread } => {
                if let Some(view) = self.rooms.get_mut(&room) {
                    view.unread = unread;
                }
                self.mark_dirty(room, ctx);
            }
            UserMsg::Event(frame) => self.to_all(&frame),
            UserMsg::RoomAdded {
                room,
                kind,
                peer,
                unread,
            } => {
                let peer = if kind == RoomKind::Direct { peer } else { None };
                if self.rooms.get(&room).is_some_and(|v| v.known) {
                    // Known already (loaded from the store when this actor
                    // started): the news came late, e.g. from another node.
                    return;
                }
                let unread = self
                    .rooms
                    .get(&room)
                    .map_or(unread, |v| v.unread.max(unread));
                self.rooms.insert(
                    room,
                    RoomView {
                        unread,
                        peer,
                        known: true,
                    },
                );
                self.to_all(&frames::joined(room));
                if let Some(p) = peer {
                    self.hub.tell_online_peers(vec![p], self.sessions.clone());
                }
                self.mark_dirty(room, ctx);
            }
            UserMsg::Removed { room, reason } => {
                self.rooms.remove(&room);
                self.to_all(&frames::removed(room, reason));
                self.mark_dirty(room, ctx);
            }
            UserMsg::Presence { user, online } => self.to_all(&frames::presence(user, online)),
        }
    }
}
