//! Realtime chat on actors.
//!
//! - [`room::RoomActor`], one per active room: membership, the room's
//!   `last_seq`, members' read pointers, send rate limits, typing. It is the
//!   only path by which a message enters a room, so it is the room's
//!   sequencer on this node.
//! - [`user::UserActor`], one per connected user: the WebSocket sessions
//!   (devices) of that user, their unread badges and presence.
//! - [`committer::Committer`]: group commit. Room actors hand it appends and
//!   read-pointer moves; it writes whatever has queued up in one transaction
//!   and reports back. Nothing is acknowledged or delivered before its
//!   commit, and no artificial delay is added: batches form while the
//!   previous commit is on its way to disk.
//!
//! Actors start on demand and stop when idle; their state is rebuilt from
//! the store when they start again. The registries below make stopping
//! race-free: every message to an actor is enqueued while holding the
//! registry lock and counted, and an actor may only retire (under the same
//! lock) once it has handled as many messages as were enqueued for it, so
//! no message is ever lost in the mailbox of an actor that is stopping.

pub mod cluster;
pub mod committer;
pub mod handle;
pub mod link;
pub mod room;
pub mod timers;
pub mod user;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use actix::{Actor as _, Addr};

pub use crate::protocol::frames::{self, Frame};

use crate::bus::{Bus, TOPIC_CHAT};
use crate::domain::account::Revocation;
use crate::domain::chat::RoomKind;
use crate::metrics::Metrics;
use crate::store::sql::SqlStore;
use crate::store::{MessageStore, Presence};
use cluster::Remote;
use committer::Committer;
use room::{RoomActor, RoomMsg};
use user::{UserActor, UserMsg, UserShared, UserTarget};

/// How long a room found missing is refused without a store lookup. Room
/// ids are never reused, and every event about a room (creation, members)
/// clears its entry, so this only bounds a client's probing.
const MISSING_ROOM_TTL: Duration = Duration::from_secs(10);
/// Entries kept at most (a flood of made-up ids cannot grow it further).
const MISSING_ROOMS_MAX: usize = 100_000;

/// Tunables of the chat engine (from [`crate::config::Config`]).
#[derive(Debug, Clone)]
pub struct ChatSettings {
    /// Sends per second per user in an open room (token bucket refill).
    pub send_rate_per_sec: f64,
    /// Bucket size: how many sends may burst.
    pub send_burst: f64,
    /// The same per user in a direct room (more generous: two people
    /// typing fast, not a crowd).
    pub direct_send_rate_per_sec: f64,
    pub direct_send_burst: f64,
    /// Send read receipts in open rooms too (direct rooms always do).
    pub open_room_receipts: bool,
    /// Room actors stop after this long without traffic.
    pub room_idle: Duration,
    /// Badge updates are coalesced over this window.
    pub badge_delay: Duration,
    /// How long a commit under sustained load waits for company (`None`:
    /// the committer's default for the engine).
    pub commit_delay: Option<Duration>,
    /// Per-connection outbound queue (frames).
    pub outbound_queue: usize,
    pub heartbeat: Duration,
    pub idle_timeout: Duration,
    /// How often a connection re-checks its login session.
    pub session_check: Duration,
    /// A new connection holds live events until its first frame or this.
    pub sync_window: Duration,
    pub max_frame_bytes: usize,
    /// Client frames per second per connection (token bucket, burst 2x).
    pub frames_per_sec: f64,
    /// Cluster: how long a room waits for a missing seq from the bus
    /// before reading it from the store.
    pub gap_fill: Duration,
    /// Cluster: a room actor that starts delivers the messages committed
    /// this recently from the store (their events may be in flight). At
    /// most half of `room_idle`, so no earlier actor of this node can have
    /// delivered them (it would not have gone idle yet).
    pub catchup: Duration,
    /// Open WebSocket connections one user may hold on this node.
    pub max_connections_per_user: usize,
    /// A room with new messages tells its offline members at most once
    /// per this window (trailing: the latest message is the preview).
    pub notify_debounce: Duration,
}

/// Maps and sets keyed by our own ids (users, rooms), on the delivery path:
/// FxHash instead of SipHash (the keys are ids we assigned, not input an
/// attacker picks, so flooding one bucket is not a concern here).
pub(crate) type IdMap<V> = rustc_hash::FxHashMap<i64, V>;
/// See [`IdMap`].
pub(crate) type IdSet = rustc_hash::FxHashSet<i64>;

/// What a session queues for its socket.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A chat message of a room (subject to resume ordering).
    Message { room: i64, seq: i64, frame: Frame },
    /// Any other event.
    Frame(Frame),
}

/// The handle actors use to reach one WebSocket connection.
#[derive(Clone)]
pub struct SessionHandle {
    pub id: u64,
    pub user_id: i64,
    /// The session (login) the connection was opened with.
    token_hash: Arc<str>,
    /// The connection's output and its signals (overflowed; login ended,
    /// after which the connection closes with 4001).
    out: Arc<link::Link>,
}

impl SessionHandle {
    pub fn new(id: u64, user_id: i64, token_hash: &str, link: Arc<link::Link>) -> SessionHandle {
        SessionHandle {
            id,
            user_id,
            token_hash: Arc::from(token_hash),
            out: link,
        }
    }

    /// The connection's output.
    pub fn link(&self) -> &Arc<link::Link> {
        &self.out
    }

    pub fn token_hash(&self) -> &str {
        &self.token_hash
    }

    /// The login session of this connection ended: close it.
    pub fn end(&self) {
        self.out.end();
    }

    /// Deliver without waiting (written into the socket now, or at the end
    /// of the sender's cork). Too much waiting means the client cannot
    /// keep up: the session is told to disconnect (it recovers with
    /// `resume`), and the producer (a room) never waits for it.
    pub fn push(&self, out: Outbound) {
        self.out.push(out);
    }

    pub fn frame(&self, frame: Frame) {
        self.push(Outbound::Frame(frame));
    }
}

struct Slot<A: actix::Actor> {
    addr: Addr<A>,
    enqueued: u64,
}

/// A connected user: where deliveries go, and how many attaches were sent
/// to the actor (see [`ChatHub::retire_user`]).
struct UserSlot {
    target: UserTarget,
    enqueued: u64,
}

/// Rooms' delivered-seq cells, held weakly: a cell lives as long as a room
/// actor or a badge view holds it; dead entries are swept when the map has
/// doubled since the last sweep.
#[derive(Default)]
struct DeliveredCells {
    cells: IdMap<std::sync::Weak<AtomicI64>>,
    sweep_at: usize,
}

struct HubInner {
    sql: Arc<SqlStore>,
    messages: Arc<dyn MessageStore>,
    committer: Committer,
    settings: ChatSettings,
    metrics: Arc<Metrics>,
    rooms: Mutex<HashMap<i64, Slot<RoomActor>>>,
    /// Rooms found missing in the store, and when (negative cache).
    missing: Mutex<HashMap<i64, std::time::Instant>>,
    users: RwLock<IdMap<UserSlot>>,
    /// Moves whenever a connection is added to or removed from a user
    /// here: rooms rebuild their rosters when it has (see
    /// `RoomActor::fan_out`).
    online_epoch: AtomicU64,
    /// How far this node's fan-out has delivered each room, shared by the
    /// room's actor and its members' badge views.
    delivered: Mutex<DeliveredCells>,
    next_session: AtomicU64,
    /// Open WebSocket connections per user on this node (see
    /// [`ChatHub::reserve_connection`]); users with none are absent.
    connections: Mutex<HashMap<i64, usize>>,
    /// The application's shutdown signal: sessions close when it drains.
    closing: crate::shutdown::Shutdown,
    /// The bus to the other nodes, if there are any (Kafka).
    cluster: Option<Arc<dyn Bus>>,
    /// Who is connected on any node (Redis), with several nodes.
    presence: Option<Arc<dyn Presence>>,
    /// The bus for alarm events (in-process or Kafka).
    alarms: Arc<dyn Bus>,
}

/// Entry point to the actors for HTTP handlers, WebSocket sessions and
/// services. Cheap to clone.
#[derive(Clone)]
pub struct ChatHub {
    inner: Arc<HubInner>,
}

/// One of a user's connection places on this node, from
/// [`ChatHub::reserve_connection`]; dropping it gives the place back.
pub struct ConnectionSlot {
    hub: ChatHub,
    user_id: i64,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.hub.connections_lock();
        if let Some(n) = open.get_mut(&self.user_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

impl ChatHub {
    /// Must be called inside an actix system (it spawns the committer).
    pub fn new(
        sql: Arc<SqlStore>,
        messages: Arc<dyn MessageStore>,
        settings: ChatSettings,
        metrics: Arc<Metrics>,
        bus: Arc<dyn Bus>,
        presence: Option<Arc<dyn Presence>>,
        closing: crate::shutdown::Shutdown,
    ) -> ChatHub {
        let committer = Committer::start(messages.clone(), metrics.clone(), settings.commit_delay);
        let alarms = bus.clone();
        let cluster = bus.distributed().then_some(bus);
        let presence = presence.filter(|_| cluster.is_some());
        ChatHub {
            inner: Arc::new(HubInner {
                sql,
                messages,
                committer,
                settings,
                metrics,
                rooms: Mutex::new(HashMap::new()),
                missing: Mutex::new(HashMap::new()),
                users: RwLock::new(IdMap::default()),
                online_epoch: AtomicU64::new(0),
                delivered: Mutex::new(DeliveredCells::default()),
                next_session: AtomicU64::new(1),
                connections: Mutex::new(HashMap::new()),
                closing,
                cluster,
                presence,
                alarms,
            }),
        }
    }

    /// Publish an alarm event (never waits: room actors call it).
    pub fn alarm(&self, event: crate::bus::Event) {
        self.inner
            .alarms
            .publish_nowait(crate::bus::TOPIC_ALARMS, event);
    }

    /// Whether the user has a live connection on any node.
    pub async fn online_anywhere(&self, user: i64) -> bool {
        if self.is_online(user) {
            return true;
        }
        match &self.inner.presence {
            Some(p) => match p.online(&[user]).await {
                Ok(online) => online.contains(&user),
                Err(e) => {
                    // Unknown: rather no notification than one too many.
                    tracing::warn!(user, error = %e, "presence lookup failed");
                    true
                }
            },
            None => false,
        }
    }

    /// True when other nodes may exist (the bus is Kafka).
    pub fn clustered(&self) -> bool {
        self.inner.cluster.is_some()
    }

    /// Tell the other nodes (if any) about a room event; `last_seq` as
    /// the room actor knows it (see `RoomActor::replicate`).
    pub fn replicate(&self, room_id: i64, remote: &Remote, last_seq: Option<i64>) {
        if let Some(bus) = &self.inner.cluster {
            let mut event = remote.to_event(room_id);
            if let Some(seq) = last_seq {
                event.data["last_seq"] = serde_json::json!(seq);
            }
            bus.publish_nowait(TOPIC_CHAT, event);
        }
    }

    /// `user` connected to this node (first session): claim it in the
    /// shared presence, then tell the peers everywhere.
    pub fn user_online(&self, user: i64, peers: Vec<i64>) {
        self.for_online(peers.iter().copied(), |_, t| {
            t.send(self, UserMsg::Presence { user, online: true });
        });
        self.replicate_presence(user, true, &peers);
        if let (Some(presence), Some(bus)) = (&self.inner.presence, &self.inner.cluster) {
            let (presence, node) = (presence.clone(), bus.node().to_string());
            actix::spawn(async move {
                if let Err(e) = presence.set_online(&node, &[user]).await {
                    tracing::warn!(user, error = %e, "presence update failed");
                }
            });
        }
    }

    /// `user`'s last session on this node closed: offline for the peers
    /// unless the user is still connected to another node.
    pub fn user_offline(&self, user: i64, peers: Vec<i64>) {
        let (Some(presence), Some(bus)) = (&self.inner.presence, &self.inner.cluster) else {
            self.announce_offline(user, &peers);
            return;
        };
        let (presence, node) = (presence.clone(), bus.node().to_string());
        let hub = self.clone();
        actix::spawn(async move {
            let elsewhere = presence.set_offline(&node, user).await.unwrap_or_else(|e| {
                tracing::warn!(user, error = %e, "presence update failed");
                false
            });
            if !elsewhere {
                hub.announce_offline(user, &peers);
            }
        });
    }

    /// Tell `user`'s peers here and on the other nodes that they left.
    fn announce_offline(&self, user: i64, peers: &[i64]) {
        self.for_online(peers.iter().copied(), |_, t| {
            t.send(
                self,
                UserMsg::Presence {
                    user,
                    online: false,
                },
            );
        });
        self.replicate_presence(user, false, peers);
    }

    /// Send `sessions` a presence frame for each of `peers` that is
    /// connected: to this node at once, to other nodes after asking the
    /// shared presence.
    pub fn tell_online_peers(&self, peers: Vec<i64>, sessions: Vec<SessionHandle>) {
        let mut elsewhere = Vec::new();
        {
            let users = self.users_read();
            for p in peers {
                if users.contains_key(&p) {
                    for s in &sessions {
                        s.frame(frames::presence(p, true));
                    }
                } else {
                    elsewhere.push(p);
                }
            }
        }
        let Some(presence) = self.inner.presence.clone() else {
            return;
        };
        if elsewhere.is_empty() {
            return;
        }
        actix::spawn(async move {
            match presence.online(&elsewhere).await {
                Ok(online) => {
                    for p in online {
                        for s in &sessions {
                            s.frame(frames::presence(p, true));
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "presence lookup failed"),
            }
        });
    }

    /// Tell the other nodes (if any) that `user` came online or went
    /// offline here, for `peers` connected to them.
    pub fn replicate_presence(&self, user: i64, online: bool, peers: &[i64]) {
        if let Some(bus) = &self.inner.cluster {
            if !peers.is_empty() {
                bus.publish_nowait(TOPIC_CHAT, cluster::presence_event(user, online, peers));
            }
        }
    }

    /// `user` became a member of a new room (created now): tell their
    /// sessions on every node.
    pub fn room_added(&self, user: i64, room: i64, kind: RoomKind, peer: Option<i64>) {
        self.room_added_here(user, room, kind, peer);
        if let Some(bus) = &self.inner.cluster {
            bus.publish_nowait(
                TOPIC_CHAT,
                cluster::room_added_event(user, room, kind, peer),
            );
        }
    }

    /// Tell `user`'s sessions on this node about a new room of theirs.
    fn room_added_here(&self, user: i64, room: i64, kind: RoomKind, peer: Option<i64>) {
        self.forget_missing(room);
        self.user(
            user,
            UserMsg::RoomAdded {
                room,
                kind,
                peer,
                last_seq: 0,
                read: 0,
            },
        );
    }

    /// Start applying the other nodes' chat events (no-op on one node).
    /// Must run inside an actix system.
    pub fn start_cluster(&self, stop: crate::shutdown::Shutdown) {
        let Some(bus) = &self.inner.cluster else {
            return;
        };
        let mut rx = bus.subscribe_others(TOPIC_CHAT);
        let me = bus.node().to_string();
        if let Some(presence) = self.inner.presence.clone() {
            // Keep this node's presence claims alive (they lapse if the
            // node dies).
            let hub = Arc::downgrade(&self.inner);
            let node = me.clone();
            stop.clone()
                .every(crate::store::redis::PRESENCE_REFRESH, move || {
                    let users: Option<Vec<i64>> = hub
                        .upgrade()
                        .map(|inner| ChatHub { inner }.users_read().keys().copied().collect());
                    let (presence, node) = (presence.clone(), node.clone());
                    async move {
                        let Some(users) = users else { return };
                        if let Err(e) = presence.set_online(&node, &users).await {
                            tracing::warn!(error = %e, "presence refresh failed");
                        }
                    }
                });
        }
        let hub = Arc::downgrade(&self.inner);
        let mut stop = stop;
        actix::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let received = tokio::select! {
                    () = stop.wait() => break,
                    r = rx.recv() => r,
                };
                let event = match received {
                    Ok(e) => e,
                    Err(RecvError::Lagged(n)) => {
                        // Messages are recovered by the rooms' gap fill;
                        // receipts and typing of that moment are lost.
                        tracing::warn!(skipped = n, "cluster events skipped (node too slow)");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                };
                if event.node == me {
                    continue;
                }
                let Some(inner) = hub.upgrade() else { break };
                let hub = ChatHub { inner };
                hub.metrics().cluster_events_in.inc();
                if let Some((room, remote)) = Remote::from_event(&event) {
                    hub.room_remote(room, remote, event.data["last_seq"].as_i64());
                } else if let Some((user, room, kind, peer)) = cluster::decode_room_added(&event) {
                    hub.room_added_here(user, room, kind, peer);
                } else if let Some(r) = cluster::decode_revoked(&event) {
                    hub.revoke_here(&r);
                } else if let Some((user, online, peers)) = cluster::decode_presence(&event) {
                    hub.for_online(peers, |_, t| {
                        t.send(&hub, UserMsg::Presence { user, online });
                    });
                } else {
                    tracing::debug!(kind = %event.kind, "unknown cluster event ignored");
                }
            }
        });
    }

    /// Apply another node's room event. A room without an actor here gets
    /// one only if anybody is connected to this node (the actor then finds
    /// out whether they are members); a room started by a message delivers
    /// from that message's seq on, one started by another event from the
    /// seq after the sender's `last_seq`: the load may already see later
    /// messages whose own events are still behind this one.
    fn room_remote(&self, room_id: i64, remote: Remote, last_seq: Option<i64>) {
        let mut rooms = self.rooms();
        let slot = match rooms.entry(room_id) {
            std::collections::hash_map::Entry::Occupied(slot) => slot.into_mut(),
            std::collections::hash_map::Entry::Vacant(vacant) => {
                if self.users_read().is_empty() {
                    return;
                }
                let floor = match &remote {
                    Remote::Message(m) => Some(m.seq - 1),
                    _ => last_seq,
                };
                vacant.insert(Slot {
                    addr: RoomActor::with_floor(room_id, self.clone(), floor).start(),
                    enqueued: 0,
                })
            }
        };
        slot.enqueued += 1;
        slot.addr.do_send(RoomMsg::Remote(remote));
    }

    // The registries hold no invariant a panicking holder could break
    // half-way (single inserts and removes), so a poisoned lock is used as is.
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Slot<RoomActor>>> {
        self.inner.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn users_read(&self) -> std::sync::RwLockReadGuard<'_, IdMap<UserSlot>> {
        self.inner.users.read().unwrap_or_else(|p| p.into_inner())
    }

    fn users_write(&self) -> std::sync::RwLockWriteGuard<'_, IdMap<UserSlot>> {
        self.inner.users.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn settings(&self) -> &ChatSettings {
        &self.inner.settings
    }

    pub fn sql(&self) -> &Arc<SqlStore> {
        &self.inner.sql
    }

    pub fn messages(&self) -> &Arc<dyn MessageStore> {
        &self.inner.messages
    }

    pub fn committer(&self) -> &Committer {
        &self.inner.committer
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    pub fn next_session_id(&self) -> u64 {
        self.inner.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Send to a room's actor, starting it if needed.
    pub fn room(&self, room_id: i64, msg: RoomMsg) {
        if msg.from_client() {
            if self.known_missing(room_id) {
                msg.refuse_missing(room_id);
                return;
            }
        } else {
            // Anything else implies the room exists (now).
            self.forget_missing(room_id);
        }
        let mut rooms = self.rooms();
        let slot = rooms.entry(room_id).or_insert_with(|| Slot {
            addr: RoomActor::new(room_id, self.clone()).start(),
            enqueued: 0,
        });
        slot.enqueued += 1;
        slot.addr.do_send(msg);
    }

    /// A room actor found its room missing in the store: refuse clients'
    /// frames for it without starting actors for a while.
    pub(crate) fn note_missing_room(&self, room_id: i64) {
        let mut missing = self.missing();
        let now = std::time::Instant::now();
        if missing.len() >= MISSING_ROOMS_MAX {
            missing.retain(|_, at| now.duration_since(*at) < MISSING_ROOM_TTL);
            if missing.len() >= MISSING_ROOMS_MAX {
                missing.clear();
            }
        }
        missing.insert(room_id, now);
    }

    fn known_missing(&self, room_id: i64) -> bool {
        let mut missing = self.missing();
        match missing.get(&room_id) {
            Some(at) if at.elapsed() < MISSING_ROOM_TTL => true,
            Some(_) => {
                missing.remove(&room_id);
                false
            }
            None => false,
        }
    }

    fn forget_missing(&self, room_id: i64) {
        let mut missing = self.missing();
        if !missing.is_empty() {
            missing.remove(&room_id);
        }
    }

    fn missing(&self) -> std::sync::MutexGuard<'_, HashMap<i64, std::time::Instant>> {
        self.inner.missing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by a room actor that wants to stop: true (and unregistered)
    /// only if every message enqueued for it has been handled.
    pub(crate) fn retire_room(&self, room_id: i64, addr: &Addr<RoomActor>, handled: u64) -> bool {
        let mut rooms = self.rooms();
        match rooms.get(&room_id) {
            Some(slot) if slot.addr == *addr && slot.enqueued == handled => {
                rooms.remove(&room_id);
                true
            }
            _ => false,
        }
    }

    /// Drop a room actor from the registry regardless of its counters
    /// (it stopped on its own, e.g. after failing to load).
    pub(crate) fn forget_room(&self, room_id: i64, addr: &Addr<RoomActor>) {
        let mut rooms = self.rooms();
        if rooms.get(&room_id).is_some_and(|slot| slot.addr == *addr) {
            rooms.remove(&room_id);
        }
    }

    /// Run `f` for each of `ids` that is online, under one registry lock
    /// (a room's fan-out takes the lock once, not once per member).
    /// Call `f` for each of `ids` connected here, with the user's target,
    /// under the user registry's read lock (so `f` must not send
    /// `RoomAdded`, see [`UserTarget::send`]).
    pub fn for_online<I, F>(&self, ids: I, mut f: F)
    where
        I: IntoIterator<Item = i64>,
        F: FnMut(i64, &UserTarget),
    {
        let users = self.users_read();
        for id in ids {
            if let Some(slot) = users.get(&id) {
                f(id, &slot.target);
            }
        }
    }

    /// Number of live room actors (for metrics and tests).
    pub fn active_rooms(&self) -> usize {
        self.rooms().len()
    }

    /// Send to a user if the user is connected; offline users need no live
    /// events (they read state from the store when they return).
    pub fn user(&self, user_id: i64, msg: UserMsg) {
        let target = self.users_read().get(&user_id).map(|s| s.target.clone());
        if let Some(target) = target {
            target.send(self, msg);
        }
    }

    pub fn is_online(&self, user_id: i64) -> bool {
        self.inner
            .users
            .read()
            .map(|u| u.contains_key(&user_id))
            .unwrap_or(false)
    }

    /// Register a new connection of a user, starting their actor if needed.
    /// Take one of `user_id`'s `max_connections_per_user` places on this
    /// node, or `None` when all are taken. Checking and taking happen under
    /// one lock, so concurrent upgrades cannot overshoot. The place is
    /// given back when the returned slot is dropped (the session task
    /// holds it until the connection has ended).
    pub fn reserve_connection(&self, user_id: i64) -> Option<ConnectionSlot> {
        let max = self.inner.settings.max_connections_per_user;
        let mut open = self.connections_lock();
        let n = open.entry(user_id).or_insert(0);
        if *n >= max {
            if *n == 0 {
                open.remove(&user_id);
            }
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            hub: self.clone(),
            user_id,
        })
    }

    fn connections_lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, usize>> {
        self.inner
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn attach(&self, session: SessionHandle) {
        let mut users = self.users_write();
        let user_id = session.user_id;
        let slot = users.entry(user_id).or_insert_with(|| {
            let shared = Arc::new(UserShared::default());
            UserSlot {
                target: UserTarget {
                    addr: UserActor::new(user_id, self.clone(), shared.clone()).start(),
                    shared,
                },
                enqueued: 0,
            }
        });
        slot.enqueued += 1;
        slot.target.shared.add_session(session.clone());
        slot.target.addr.do_send(UserMsg::Attach(session));
        // After the session is in: a fan-out that sees the new epoch
        // rebuilds its roster with it.
        self.online_changed();
    }

    /// A connection was added to or removed from a user here.
    pub(crate) fn online_changed(&self) {
        self.inner.online_epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// See [`HubInner::online_epoch`].
    pub(crate) fn online_epoch(&self) -> u64 {
        self.inner.online_epoch.load(Ordering::SeqCst)
    }

    /// The links of every connection of `members` on this node, appended
    /// to `out` (a room's roster).
    pub(crate) fn online_links<I>(&self, members: I, out: &mut Vec<Arc<link::Link>>)
    where
        I: IntoIterator<Item = i64>,
    {
        self.for_online(members, |_, t| t.shared.links_into(out));
    }

    /// The cell holding how far this node's fan-out has delivered `room`.
    pub(crate) fn delivered_cell(&self, room: i64) -> Arc<AtomicI64> {
        let mut d = self
            .inner
            .delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(cell) = d.cells.get(&room).and_then(std::sync::Weak::upgrade) {
            return cell;
        }
        if d.cells.len() >= d.sweep_at {
            d.cells.retain(|_, w| w.strong_count() > 0);
            d.sweep_at = (d.cells.len() * 2).max(1024);
        }
        let cell = Arc::new(AtomicI64::new(0));
        d.cells.insert(room, Arc::downgrade(&cell));
        cell
    }

    /// `user` wrote message `seq` of `room` (see [`UserTarget::wrote`]).
    pub(crate) fn user_wrote(&self, user: i64, room: i64, seq: i64) {
        if let Some(slot) = self.users_read().get(&user) {
            slot.target.wrote(self, room, seq);
        }
    }

    pub fn detach(&self, user_id: i64, session_id: u64) {
        self.user(user_id, UserMsg::Detach(session_id));
    }

    /// Like [`ChatHub::retire_room`], counting attaches.
    pub(crate) fn retire_user(
        &self,
        user_id: i64,
        addr: &Addr<UserActor>,
        attaches_handled: u64,
    ) -> bool {
        let mut users = self.users_write();
        match users.get(&user_id) {
            Some(slot) if slot.target.addr == *addr && slot.enqueued == attaches_handled => {
                users.remove(&user_id);
                true
            }
            _ => false,
        }
    }

    /// Close this node's connections opened with sessions that `r` ended.
    pub fn revoke_here(&self, r: &Revocation) {
        self.user(r.user(), UserMsg::Revoke(r.clone()));
    }

    /// Apply the accounts' revocations here and tell the other nodes.
    /// Must run inside an actix system.
    pub fn start_revocations(
        &self,
        mut revoked: tokio::sync::broadcast::Receiver<Revocation>,
        mut stop: crate::shutdown::Shutdown,
    ) {
        let hub = self.clone();
        actix::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let r = tokio::select! {
                    () = stop.wait() => break,
                    r = revoked.recv() => r,
                };
                match r {
                    Ok(r) => {
                        hub.revoke_here(&r);
                        if let Some(bus) = &hub.inner.cluster {
                            bus.publish_nowait(TOPIC_CHAT, cluster::revoked_event(&r));
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        // The periodic session check of each connection
                        // closes what was missed.
                        tracing::warn!(missed = n, "session revocations skipped");
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        });
    }

    /// Sessions watch this and close with 1012 ("service restart") when
    /// the application drains, so clients reconnect and resume.
    pub fn closing(&self) -> crate::shutdown::Shutdown {
        self.inner.closing.clone()
    }

    /// Last step: flush pending writes.
    pub async fn shutdown(&self) {
        self.inner.committer.flush().await;
    }
}
