//! Notifications: every event a user should hear about becomes exactly one
//! notification, kept in an inbox and pushed live.
//!
//! **Consumer.** Every node reads every event of the alarms topic (the
//! in-process bus, or Kafka without a consumer group, like the chat topic)
//! and turns it into notices (`domain::notification`). Each (event id,
//! user) is one row under a unique key, so a redelivered event, or the same
//! event handled by two nodes, creates one notification: the first insert
//! wins, the others find the row. Every node then pushes the row to the
//! user's WebSocket sessions **on that node** (`notification` and
//! `notification_badge` frames): a device is connected to one node, so it
//! gets the frame once. Why not a consumer group? A group hands each event
//! to one node, which then must forward the frame to the nodes that hold
//! the user's sockets (one more hop through Kafka for every notification);
//! reading everything everywhere costs one idempotent lookup per event and
//! node, and the alarms topic is small next to the chat topic. With Kafka
//! each node reads on from the furthest position any node saved
//! (`consumer_positions`), so events published while no node consumed are
//! handled at the next start; embedded, the outbox job itself makes the
//! notifications before it is done (`service::events`). See
//! docs/ARCHITECTURE.md.
//!
//! **Preferences** are per kind and channel with defaults from
//! `domain::notification::KINDS`; a kind switched off in the app is still
//! recorded (hidden) so that it stays deduplicated.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::sync::broadcast;

use crate::actors::user::UserMsg;
use crate::actors::ChatHub;
use crate::bus::{Bus, Event, TOPIC_ALARMS};
use crate::domain::events::Alarm;
use crate::domain::ids::UserId;
use crate::domain::notification::{self, Audience, KINDS};
use crate::domain::now_ms;
use crate::error::{area_error, Refuse};
use crate::protocol::frames;
use crate::service::outbox::JobError;
use crate::shutdown::Shutdown;
use crate::store::sql::{KeywordAdd, NewNotification, NotificationRecord, SqlStore};

area_error! {
    /// What the notification service (inbox, preferences, streams) answers instead of a result.
    pub enum NotificationError {
        own {}
        from {}
    }
}

/// The notifications consumer's name for its saved positions.
const CONSUMER: &str = "notifications";
/// How often the consumer saves how far it got (a crash replays at most
/// this much, harmlessly: handling is idempotent).
const SAVE_POSITIONS_EVERY: Duration = Duration::from_secs(1);
/// Tries per event before it is given up (about half a minute of backoff).
const HANDLE_ATTEMPTS: u32 = 10;

/// Saved keywords per user.
pub const MAX_KEYWORDS: usize = 30;

fn normalise_keyword(keyword: &str) -> Result<String, NotificationError> {
    let k = keyword.trim().to_lowercase();
    let n = k.chars().count();
    if !(2..=20).contains(&n) || k.chars().any(char::is_control) {
        return Err(NotificationError::field("keyword", "2..=20 characters"));
    }
    Ok(k)
}

/// Users fanned out to per query when a broadcast goes to everyone.
const BROADCAST_PAGE: i64 = 500;

#[derive(Clone)]
pub struct Notifications {
    sql: Arc<SqlStore>,
    hub: ChatHub,
    bus: Arc<dyn Bus>,
    streams: Arc<Streams>,
    /// Keyword alerts one watcher gets about one seller per hour.
    alerts_per_seller: u32,
}

/// The SSE streams open on this node, per user: each gets every event
/// text sent to its user. Closing drops the senders, which ends the streams.
#[derive(Default)]
struct Streams {
    by_user: std::sync::Mutex<HashMap<i64, broadcast::Sender<String>>>,
    closed: std::sync::atomic::AtomicBool,
}

impl Streams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, broadcast::Sender<String>>> {
        self.by_user.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, user: i64, text: String) {
        let mut map = self.lock();
        if let Some(tx) = map.get(&user) {
            if tx.send(text).is_err() {
                // Nobody listens any more.
                map.remove(&user);
            }
        }
    }
}

/// How many notifications a resuming stream replays at most.
const SSE_REPLAY: i64 = 100;

/// One SSE event: `id` (notifications only), `event`, one `data` line.
fn sse(id: Option<i64>, event: &str, data: &str) -> String {
    match id {
        Some(id) => format!("id: {id}\nevent: {event}\ndata: {data}\n\n"),
        None => format!("event: {event}\ndata: {data}\n\n"),
    }
}

/// A notification as clients see it (REST and the `notification` frame).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    pub id: i64,
    /// One of the kinds of `GET /api/me/notification_settings`.
    pub kind: String,
    pub title: String,
    pub body: String,
    /// Where the client opens it, e.g. `/orders/261127-7KQ2MX9PWD`.
    pub link: String,
    pub read: bool,
    pub created_at: i64,
}

impl From<&NotificationRecord> for NotificationView {
    fn from(r: &NotificationRecord) -> NotificationView {
        NotificationView {
            id: r.id,
            kind: r.kind.clone(),
            title: r.title.clone(),
            body: r.body.clone(),
            link: r.link.clone(),
            read: r.read_at.is_some(),
            created_at: r.created_at,
        }
    }
}

/// One kind's channels for a user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PrefView {
    pub kind: String,
    pub description: String,
    pub in_app: bool,
    pub email: bool,
}

impl Notifications {
    pub fn new(
        sql: Arc<SqlStore>,
        hub: ChatHub,
        bus: Arc<dyn Bus>,
        alerts_per_seller: u32,
    ) -> Notifications {
        Notifications {
            sql,
            hub,
            bus,
            streams: Arc::new(Streams::default()),
            alerts_per_seller,
        }
    }

    /// Consume the alarms topic until `stop` fires, from where the nodes
    /// got to (the positions saved in the store; Kafka) so that events
    /// published while every node was down, or read by a node that died
    /// before handling them, are handled when a node starts. Start this
    /// before the outbox worker publishes anything.
    pub async fn start(&self, mut stop: Shutdown) {
        let from = if self.bus.distributed() {
            self.sql
                .notifications().consumer_positions(CONSUMER)
                .await
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "notifications: saved positions unreadable; reading from the end");
                    HashMap::new()
                })
        } else {
            HashMap::new()
        };
        let mut events = self.bus.subscribe_from(TOPIC_ALARMS, &from);
        let this = self.clone();
        actix::spawn(async move {
            let mut done: HashMap<i32, i64> = HashMap::new();
            let mut tick = tokio::time::interval(SAVE_POSITIONS_EVERY);
            loop {
                let event = tokio::select! {
                    () = stop.wait() => break,
                    _ = tick.tick() => {
                        this.save_positions(&mut done).await;
                        continue;
                    }
                    e = events.recv() => e,
                };
                let Some(event) = event else { break };
                if !event.handled {
                    this.handle_retrying(&event, &mut stop).await;
                }
                if let Some((partition, offset)) = event.position {
                    done.insert(partition, offset + 1);
                }
            }
            this.save_positions(&mut done).await;
        });
    }

    /// Handle one event; a failure (the store away) is retried with
    /// backoff for about half a minute before the event is given up, loudly.
    async fn handle_retrying(&self, event: &Event, stop: &mut Shutdown) {
        let mut wait = Duration::from_millis(100);
        let mut done = HashSet::new();
        for attempt in 1..=HANDLE_ATTEMPTS {
            match self.handle_once(event, &mut done).await {
                Ok(()) => return,
                Err(e) if attempt == HANDLE_ATTEMPTS => {
                    tracing::error!(kind = %event.kind, id = %event.id, error = %e, "notification not made; event given up");
                }
                Err(e) => {
                    tracing::warn!(kind = %event.kind, id = %event.id, attempt, error = %e, "notification not made yet; retrying");
                    tokio::select! {
                        () = stop.wait() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn save_positions(&self, done: &mut HashMap<i32, i64>) {
        if done.is_empty() {
            return;
        }
        match self
            .sql
            .notifications()
            .save_consumer_positions(CONSUMER, done, now_ms())
            .await
        {
            Ok(()) => done.clear(),
            Err(e) => tracing::warn!(error = %e, "notifications: positions not saved; retrying"),
        }
    }

    /// Turn one event into its notifications (idempotent by event id).
    pub async fn handle(&self, event: &Event) -> Result<(), JobError> {
        self.handle_once(event, &mut HashSet::new()).await
    }

    /// The same, skipping the users in `done` and adding each user whose
    /// notification was made and pushed (so a retry after a failure part
    /// way through does not push their frames twice).
    async fn handle_once(&self, event: &Event, done: &mut HashSet<i64>) -> Result<(), JobError> {
        if event.id.is_empty() {
            // Events from before ids existed cannot be deduplicated.
            return Ok(());
        }
        let Some(kind) = event.alarm_kind() else {
            return Ok(());
        };
        if kind == Alarm::ChatActivity {
            return self.chat_activity(event).await;
        }
        if kind == Alarm::NotificationBadge {
            return self.badge_event(event).await;
        }
        if kind == Alarm::OrderReviewRequest {
            // Not for an order cancelled in full meanwhile.
            let number = event
                .data
                .get("order")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            let order = self.sql.orders().order_by_number(number).await?;
            if order.is_none_or(|o| o.status == crate::domain::order::OrderStatus::Cancelled) {
                return Ok(());
            }
        }
        for n in notification::notices(kind, &event.data) {
            let mut body = n.body.clone();
            let mut seller = None;
            if let Some(listing) = n.listing {
                let l = self.sql.market().listing(listing).await?;
                seller = l.as_ref().map(|l| l.seller_id);
                let title = l.map(|l| l.title).unwrap_or_default();
                body = body.replace("{title}", &title);
            }
            match &n.to {
                Audience::User(u) => self.deliver(event, *u, &n, &body, done).await?,
                Audience::Admins => {
                    for u in self.sql.notifications().admin_ids().await? {
                        self.deliver(event, u, &n, &body, done).await?;
                    }
                }
                Audience::Favourites(listing) => {
                    for u in self.sql.notifications().favourited_by(*listing).await? {
                        if Some(u) != seller {
                            self.deliver(event, u, &n, &body, done).await?;
                        }
                    }
                }
                Audience::KeywordWatchers(text) => {
                    let mut last = None;
                    for (u, keyword) in self
                        .sql
                        .notifications()
                        .keyword_matches(&text.to_lowercase())
                        .await?
                    {
                        // One notification per user, naming their first match.
                        if Some(u) == seller || last == Some(u) {
                            continue;
                        }
                        last = Some(u);
                        // A seller posting in bulk reaches each watcher a
                        // few times an hour, not once per listing.
                        if let Some(s) = seller {
                            if !self
                                .sql
                                .notifications()
                                .take_alert_quota(u, s, &event.id, self.alerts_per_seller, now_ms())
                                .await?
                            {
                                continue;
                            }
                        }
                        let body = body.replace("{keyword}", &keyword);
                        self.deliver(event, u, &n, &body, done).await?;
                    }
                }
                Audience::Everyone => {
                    let mut after = 0;
                    loop {
                        let page = self
                            .sql
                            .notifications()
                            .active_user_ids(after, BROADCAST_PAGE)
                            .await?;
                        for &u in &page {
                            self.deliver(event, u, &n, &body, done).await?;
                        }
                        match page.last() {
                            Some(&last) if page.len() as i64 == BROADCAST_PAGE => after = last,
                            _ => break,
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn deliver(
        &self,
        event: &Event,
        user: i64,
        n: &notification::Notice,
        body: &str,
        done: &mut HashSet<i64>,
    ) -> Result<(), JobError> {
        if done.contains(&user) {
            return Ok(());
        }
        let (in_app, email) = self.channels(user, n.kind).await?;
        let (row, _created) = self
            .sql
            .notifications()
            .insert_notification(
                &NewNotification {
                    user_id: user,
                    event_id: &event.id,
                    kind: n.kind,
                    title: &n.title,
                    body,
                    link: &n.link,
                    in_app,
                    email,
                },
                now_ms(),
            )
            .await?;
        self.push(user, &row).await?;
        done.insert(user);
        Ok(())
    }

    /// New messages in a room: every member without a live connection
    /// anywhere, who has not muted the room, is not blocked with the
    /// sender and has unread messages there, gets (or sees updated) one
    /// notification per room and debounce window, with the unread count and
    /// the latest preview. The window is the notification's key, so two
    /// nodes announcing the same room in one window still make one.
    async fn chat_activity(&self, event: &Event) -> Result<(), JobError> {
        let d = &event.data;
        let (Some(room), Some(seq), Some(sender)) = (
            d.get("room").and_then(serde_json::Value::as_i64),
            d.get("seq").and_then(serde_json::Value::as_i64),
            d.get("sender").and_then(serde_json::Value::as_i64),
        ) else {
            return Ok(());
        };
        let preview = d
            .get("preview")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("");
        let at = d
            .get("at")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(event.at);
        let window = i64::try_from(self.hub.settings().notify_debounce.as_millis())
            .unwrap_or(30_000)
            .max(1);
        let key = format!("chat:{room}:{}", at / window);
        let err = |e: crate::store::StoreError| e.to_string();
        let Some(info) = self.sql.chat().room(room).await.map_err(err)? else {
            return Ok(());
        };
        let nickname = self
            .sql
            .accounts()
            .user_by_id(sender)
            .await
            .map_err(err)?
            .map(|u| u.nickname)
            .unwrap_or_default();
        let direct = info.kind == crate::domain::chat::RoomKind::Direct;
        let title = if direct || info.name.is_empty() {
            nickname.clone()
        } else {
            info.name.clone()
        };
        for (user, last_read, muted) in self
            .sql
            .notifications()
            .chat_alarm_targets(room)
            .await
            .map_err(err)?
        {
            let unread = seq - last_read;
            if user == sender || muted || unread <= 0 {
                continue;
            }
            if self
                .sql
                .market()
                .blocked_between(user, sender)
                .await
                .map_err(err)?
            {
                continue;
            }
            if self.hub.online_anywhere(user).await {
                continue;
            }
            let (in_app, _) = self.channels(user, "chat.message").await?;
            if !in_app {
                continue;
            }
            let body = if unread > 1 {
                format!("{nickname}: {preview} (새 메시지 {unread}개)")
            } else {
                format!("{nickname}: {preview}")
            };
            let (row, _) = self
                .sql
                .notifications()
                .upsert_chat_notification(
                    &NewNotification {
                        user_id: user,
                        event_id: &key,
                        kind: "chat.message",
                        title: &title,
                        body: &body,
                        link: &format!("/chats/{room}"),
                        in_app: true,
                        email: false,
                    },
                    now_ms(),
                )
                .await
                .map_err(err)?;
            self.push(user, &row).await?;
        }
        Ok(())
    }

    /// Send a row to the user's live sessions and SSE streams on this node.
    async fn push(&self, user: i64, row: &NotificationRecord) -> Result<(), JobError> {
        let streaming = self.streams.lock().contains_key(&user);
        if !(row.in_app && row.read_at.is_none() && (streaming || self.hub.is_online(user))) {
            return Ok(());
        }
        let item = serde_json::to_value(NotificationView::from(row)).unwrap_or_default();
        let unread = self.unread(UserId(user)).await?;
        self.hub
            .user(user, UserMsg::Event(frames::notification(&item)));
        if streaming {
            self.streams
                .send(user, sse(Some(row.id), "notification", &item.to_string()));
        }
        self.send_badge(user, unread, streaming);
        Ok(())
    }

    /// Send `unread` to the user's sessions (and streams, when
    /// `streaming`) on this node.
    fn send_badge(&self, user: i64, unread: i64, streaming: bool) {
        self.hub
            .user(user, UserMsg::Event(frames::notification_badge(unread)));
        if streaming {
            self.streams.send(
                user,
                sse(None, "badge", &json!({ "unread": unread }).to_string()),
            );
        }
    }

    /// Mute or unmute a room's chat notifications (members only).
    pub async fn mute_room(
        &self,
        user: UserId,
        room: i64,
        muted: bool,
    ) -> Result<(), NotificationError> {
        if !self
            .sql
            .notifications()
            .set_room_muted(room, user.get(), muted)
            .await?
        {
            return Err(NotificationError::new(
                crate::error::Code::NotMember,
                "you are not a member of this room",
            ));
        }
        Ok(())
    }

    /// The user's (in_app, email) for a kind: their choice or the default.
    async fn channels(&self, user: i64, kind: &str) -> Result<(bool, bool), JobError> {
        let prefs = self.sql.notifications().notification_prefs(user).await?;
        if let Some((_, a, e)) = prefs.iter().find(|(k, _, _)| k == kind) {
            return Ok((*a, *e));
        }
        Ok(notification::kind_info(kind).map_or((true, false), |k| (k.in_app, k.email)))
    }

    pub async fn list(
        &self,
        user: UserId,
        unread_only: bool,
        before: Option<i64>,
        limit: i64,
    ) -> Result<(Vec<NotificationView>, i64), NotificationError> {
        let rows = self
            .sql
            .notifications()
            .notifications(user.get(), unread_only, before, limit)
            .await?;
        let unread = self
            .sql
            .notifications()
            .unread_notifications(user.get())
            .await?;
        Ok((rows.iter().map(NotificationView::from).collect(), unread))
    }

    pub async fn unread(&self, user: UserId) -> Result<i64, NotificationError> {
        Ok(self
            .sql
            .notifications()
            .unread_notifications(user.get())
            .await?)
    }

    /// The badge changed on one device (read, read all, delete): every
    /// device of the user on every node hears it, through the alarms topic
    /// (each node pushes to its own sessions when the event comes by).
    async fn badge_changed(&self, user: UserId) -> Result<i64, NotificationError> {
        let unread = self
            .sql
            .notifications()
            .unread_notifications(user.get())
            .await?;
        self.bus.publish_nowait(
            TOPIC_ALARMS,
            Event::alarm(
                Alarm::NotificationBadge,
                user.get(),
                json!({"user": user.get(), "unread": unread}),
            ),
        );
        Ok(unread)
    }

    /// A `notification.badge` event: tell this node's sessions and streams
    /// of the user the count as it is now.
    async fn badge_event(&self, event: &Event) -> Result<(), JobError> {
        let Some(user) = event.data.get("user").and_then(serde_json::Value::as_i64) else {
            return Ok(());
        };
        let streaming = self.streams.lock().contains_key(&user);
        if !(streaming || self.hub.is_online(user)) {
            return Ok(());
        }
        let unread = self.unread(UserId(user)).await?;
        self.send_badge(user, unread, streaming);
        Ok(())
    }

    /// Open an SSE stream for a user: first the notifications after
    /// `last_event_id` (a resume; at most 100, oldest first) and the badge,
    /// then every new one live. Ends when the node shuts down.
    pub async fn stream(
        &self,
        user: UserId,
        last_event_id: Option<i64>,
    ) -> Result<(Vec<String>, broadcast::Receiver<String>), NotificationError> {
        // Subscribe first, then read the backlog: nothing falls between.
        let rx = {
            let mut map = self.streams.lock();
            if self
                .streams
                .closed
                .load(std::sync::atomic::Ordering::Acquire)
            {
                return Err(NotificationError::new(
                    crate::error::Code::Unavailable,
                    "the server is shutting down; reconnect",
                ));
            }
            map.entry(user.get())
                .or_insert_with(|| broadcast::channel(256).0)
                .subscribe()
        };
        let mut first = Vec::new();
        if let Some(after) = last_event_id {
            for row in self
                .sql
                .notifications()
                .notifications_after(user.get(), after, SSE_REPLAY)
                .await?
            {
                let item = serde_json::to_value(NotificationView::from(&row)).unwrap_or_default();
                first.push(sse(Some(row.id), "notification", &item.to_string()));
            }
        }
        let unread = self
            .sql
            .notifications()
            .unread_notifications(user.get())
            .await?;
        first.push(sse(None, "badge", &json!({ "unread": unread }).to_string()));
        Ok((first, rx))
    }

    /// End every SSE stream of this node (shutdown: before the HTTP server
    /// waits for open requests).
    pub fn close_streams(&self) {
        self.streams
            .closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.streams.lock().clear();
    }

    pub async fn read(&self, user: UserId, id: i64) -> Result<i64, NotificationError> {
        if !self
            .sql
            .notifications()
            .read_notification(user.get(), id, now_ms())
            .await?
        {
            return Err(NotificationError::not_found("notification"));
        }
        self.badge_changed(user).await
    }

    pub async fn read_all(&self, user: UserId) -> Result<i64, NotificationError> {
        self.sql
            .notifications()
            .read_all_notifications(user.get(), now_ms())
            .await?;
        self.badge_changed(user).await
    }

    pub async fn delete(&self, user: UserId, id: i64) -> Result<i64, NotificationError> {
        if !self
            .sql
            .notifications()
            .delete_notification(user.get(), id, now_ms())
            .await?
        {
            return Err(NotificationError::not_found("notification"));
        }
        self.badge_changed(user).await
    }

    pub async fn prefs(&self, user: UserId) -> Result<Vec<PrefView>, NotificationError> {
        let mine: HashMap<String, (bool, bool)> = self
            .sql
            .notifications()
            .notification_prefs(user.get())
            .await?
            .into_iter()
            .map(|(k, a, e)| (k, (a, e)))
            .collect();
        Ok(KINDS
            .iter()
            .filter(|k| !k.kind.starts_with("admin.") || mine.contains_key(k.kind))
            .map(|k| {
                let (in_app, email) = mine.get(k.kind).copied().unwrap_or((k.in_app, k.email));
                PrefView {
                    kind: k.kind.to_string(),
                    description: k.description.to_string(),
                    in_app,
                    email,
                }
            })
            .collect())
    }

    /// Change some kinds' channels (`None`: keep).
    pub async fn set_prefs(
        &self,
        user: UserId,
        changes: &[(String, Option<bool>, Option<bool>)],
    ) -> Result<Vec<PrefView>, NotificationError> {
        if changes.is_empty() || changes.len() > KINDS.len() {
            return Err(NotificationError::field(
                "items",
                format!("1..={} kinds", KINDS.len()),
            ));
        }
        for (kind, _, _) in changes {
            if notification::kind_info(kind).is_none() {
                return Err(NotificationError::field(
                    "items",
                    format!("unknown kind {kind:?}"),
                ));
            }
        }
        let current = self.prefs(user).await?;
        for (kind, in_app, email) in changes {
            let (a, e) = current
                .iter()
                .find(|p| &p.kind == kind)
                .map(|p| (p.in_app, p.email))
                .or_else(|| notification::kind_info(kind).map(|k| (k.in_app, k.email)))
                .unwrap_or((true, false));
            self.sql
                .notifications()
                .set_notification_pref(user.get(), kind, in_app.unwrap_or(a), email.unwrap_or(e))
                .await?;
        }
        self.prefs(user).await
    }

    pub async fn keywords(&self, user: UserId) -> Result<Vec<(String, i64)>, NotificationError> {
        Ok(self.sql.notifications().keywords(user.get()).await?)
    }

    /// Save a keyword (trimmed, lower-cased, 2..=20 characters, at most
    /// [`MAX_KEYWORDS`] per user). True if it is new.
    pub async fn add_keyword(
        &self,
        user: UserId,
        keyword: &str,
    ) -> Result<(String, bool), NotificationError> {
        let k = normalise_keyword(keyword)?;
        let mine = self.sql.notifications().keywords(user.get()).await?;
        if mine.iter().any(|(m, _)| *m == k) {
            return Ok((k, false));
        }
        match self
            .sql
            .notifications()
            .add_keyword(user.get(), &k, MAX_KEYWORDS, now_ms())
            .await?
        {
            KeywordAdd::Added => Ok((k, true)),
            KeywordAdd::Exists => Ok((k, false)),
            KeywordAdd::Full => Err(NotificationError::field(
                "keyword",
                format!("at most {MAX_KEYWORDS} keywords; remove one first"),
            )),
        }
    }

    pub async fn remove_keyword(
        &self,
        user: UserId,
        keyword: &str,
    ) -> Result<(), NotificationError> {
        let k = normalise_keyword(keyword).map_err(|_| NotificationError::not_found("keyword"))?;
        if !self
            .sql
            .notifications()
            .remove_keyword(user.get(), &k)
            .await?
        {
            return Err(NotificationError::not_found("keyword"));
        }
        Ok(())
    }

    /// An admin's notice to every active user.
    pub async fn broadcast(
        &self,
        admin: UserId,
        title: &str,
        body: &str,
        link: &str,
    ) -> Result<String, NotificationError> {
        let event = Event::alarm(
            Alarm::AdminBroadcast,
            admin.get(),
            json!({"title": title, "body": body, "link": link, "admin": admin.get()}),
        );
        // Through the outbox: accepted means it will go out, broker or not.
        self.sql
            .outbox()
            .enqueue_job(
                &crate::service::events::publish_job(TOPIC_ALARMS, &event),
                now_ms(),
            )
            .await?;
        Ok(event.id)
    }
}
