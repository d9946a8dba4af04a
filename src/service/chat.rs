//! Chat use cases behind the REST API: rooms, membership, moderation,
//! history, read pointers, edits. Every rule that needs the database is
//! checked here against the store (the source of truth); live state is then
//! told to the actors, which never decide membership on their own.

use std::sync::Arc;

use crate::actors::handle::ChatError as HubError;
use serde_json::json;

use super::password::PasswordHasher;
use crate::actors::user::UserMsg;
use crate::actors::ChatHub;
use crate::domain::account::{FieldErrors, Status};
use crate::domain::chat::{self, MemberRole, MessageKind, RoomKind};
use crate::domain::ids::UserId;
use crate::domain::now_ms;
use crate::domain::region::{Region, Regions};
use crate::error::{area_error, Code, Refuse};
use crate::protocol::frames;
use crate::service::attempts::{self, Limit};
use crate::service::market;
use crate::store::sql::{JoinOutcome, MyRoom, NewOpenRoom, SqlStore};
use crate::store::{MemberRecord, MessageRecord, MessageStore, RateLimiter, RoomRecord};

area_error! {
    /// What the chat service (rooms, messages, members) answers instead of a result.
    pub enum ChatError {
        own {}
        from {}
    }
}

/// How long a REST read waits for its pointer to be committed.
const READ_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Clone)]
pub struct Chat {
    sql: Arc<SqlStore>,
    messages: Arc<dyn MessageStore>,
    hub: ChatHub,
    hasher: PasswordHasher,
    limiter: Arc<dyn RateLimiter>,
    max_passcode_failures: u32,
    passcode_window_secs: u64,
}

/// Which page of history.
#[derive(Debug, Clone, Copy)]
pub enum Page {
    Latest,
    Before(i64),
    After(i64),
}

/// A neighbourhood room refused to someone without a verified
/// neighbourhood that takes its region in.
fn neighbourhood_required(region: &Region) -> ChatError {
    ChatError::new(
        Code::NeighbourhoodRequired,
        format!(
            "this room belongs to {}: verify a neighbourhood near it first",
            region.name
        ),
    )
    .with_details(json!({ "region": region.code }))
}

/// An open room as created (`POST /api/rooms` with `kind: open`).
#[derive(Debug, Clone, Default)]
pub struct OpenRoomInput {
    pub name: String,
    pub description: Option<String>,
    pub capacity: Option<i64>,
    pub passcode: Option<String>,
    pub min_manner_score: Option<f64>,
    /// A neighbourhood room: the region code; the creator must be verified there.
    pub region: Option<String>,
}

fn not_member() -> ChatError {
    ChatError::new(Code::NotMember, "you are not a member of this room")
}

impl Chat {
    pub fn new(
        sql: Arc<SqlStore>,
        messages: Arc<dyn MessageStore>,
        hub: ChatHub,
        hasher: PasswordHasher,
        limiter: Arc<dyn RateLimiter>,
        max_passcode_failures: u32,
        passcode_window_secs: u64,
    ) -> Chat {
        Chat {
            sql,
            messages,
            hub,
            hasher,
            limiter,
            max_passcode_failures,
            passcode_window_secs,
        }
    }

    pub fn hub(&self) -> &ChatHub {
        &self.hub
    }

    async fn room(&self, room_id: i64) -> Result<RoomRecord, ChatError> {
        self.sql
            .chat()
            .room(room_id)
            .await?
            .ok_or_else(|| ChatError::not_found("room"))
    }

    /// The room and the caller's membership; 403 `not_member` if none.
    pub async fn membership(
        &self,
        user: i64,
        room_id: i64,
    ) -> Result<(RoomRecord, MemberRecord), ChatError> {
        let room = self.room(room_id).await?;
        let member = self
            .sql
            .chat()
            .member(room_id, user)
            .await?
            .ok_or_else(not_member)?;
        Ok((room, member))
    }

    /// A room as the caller may see it: open rooms to anyone (to decide
    /// whether to join), direct rooms to their two members only.
    pub async fn view(
        &self,
        user: i64,
        room_id: i64,
    ) -> Result<(RoomRecord, Option<MemberRecord>), ChatError> {
        let room = self.room(room_id).await?;
        let member = self.sql.chat().member(room_id, user).await?;
        if room.kind == RoomKind::Direct && member.is_none() {
            return Err(not_member());
        }
        Ok((room, member))
    }

    pub async fn create_open(
        &self,
        owner: i64,
        input: OpenRoomInput,
    ) -> Result<RoomRecord, ChatError> {
        let (name, passcode, min_manner_score) = (
            input.name.as_str(),
            input.passcode.as_deref(),
            input.min_manner_score,
        );
        let description = input
            .description
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_string();
        let capacity = input.capacity.unwrap_or(chat::DEFAULT_CAPACITY);
        let mut errors = FieldErrors::new();
        let name = chat::check_open_room(name, &description, capacity, passcode, &mut errors);
        if min_manner_score.is_some_and(|m| !(0.0..=99.0).contains(&m)) {
            errors.insert("min_manner_score", "must be between 0 and 99".into());
        }
        let region = match input.region.as_deref() {
            None => None,
            Some(code) => {
                let found = Regions::get().by_code(code);
                if found.is_none() {
                    errors.insert("region", "not a region code (GET /api/regions)".into());
                }
                found
            }
        };
        ChatError::check_fields(errors)?;
        if let Some(region) = region {
            let mine = market::verified(&self.sql, UserId(owner), now_ms()).await?;
            if !mine.iter().any(|n| n.region.code == region.code) {
                return Err(neighbourhood_required(region));
            }
        }
        let passcode_hash = match passcode {
            Some(p) => Some(self.hasher.hash(p.to_string()).await?),
            None => None,
        };
        let id = self
            .sql
            .chat()
            .create_open_room(
                &NewOpenRoom {
                    owner: UserId(owner),
                    name: &name,
                    description: &description,
                    capacity,
                    passcode_hash: passcode_hash.as_deref(),
                    min_manner_score,
                    region: region.map(|r| r.code.as_str()),
                },
                now_ms(),
            )
            .await?;
        self.hub.room_added(owner, id, RoomKind::Open, None);
        self.room(id).await
    }

    /// The one direct room between `user` and `peer`; `true` if created now.
    pub async fn direct(&self, user: i64, peer: i64) -> Result<(RoomRecord, bool), ChatError> {
        if user == peer {
            ChatError::check_fields(FieldErrors::from([(
                "peer",
                "cannot chat with yourself".to_string(),
            )]))?;
        }
        let other = self.sql.accounts().user_by_id(peer).await?;
        if !other.is_some_and(|u| u.status == Status::Active) {
            return Err(ChatError::not_found("user"));
        }
        let (id, created) = self
            .sql
            .chat()
            .get_or_create_direct(&chat::direct_key(user, peer), user, peer, None, now_ms())
            .await?;
        if created {
            for (me, them) in [(user, peer), (peer, user)] {
                self.hub.room_added(me, id, RoomKind::Direct, Some(them));
            }
        }
        Ok((self.room(id).await?, created))
    }

    /// A user's manner score (`domain::listing::manner_score`).
    pub async fn manner_score(&self, user: i64) -> Result<f64, ChatError> {
        let s = self.sql.market().review_summary(user).await?;
        Ok(crate::domain::listing::manner_score(s.good, s.bad))
    }

    /// Open rooms by name, newest first; `near`: only the rooms of the
    /// regions the user's active neighbourhood sees.
    pub async fn search(
        &self,
        user: i64,
        q: &str,
        near: bool,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RoomRecord>, ChatError> {
        let regions = if near {
            match market::active_area(&self.sql, UserId(user)).await? {
                Some(codes) => Some(codes),
                None => {
                    return Err(ChatError::new(
                        Code::NeighbourhoodRequired,
                        "set your neighbourhood first (POST /api/me/neighbourhoods)",
                    ))
                }
            }
        } else {
            None
        };
        Ok(self
            .sql
            .chat()
            .search_open_rooms(
                q.trim(),
                regions.as_deref(),
                before_id.unwrap_or(i64::MAX),
                limit,
            )
            .await?)
    }

    async fn nickname(&self, user: i64) -> String {
        match self.sql.accounts().user_by_id(user).await {
            Ok(Some(u)) if u.status == Status::Active => u.nickname,
            _ => crate::domain::account::WITHDRAWN_NICKNAME.to_string(),
        }
    }

    /// Post a system message and wait (bounded) until it is committed, so
    /// what the caller does next comes after it in the room, on any node.
    /// A system message about a member: their nickname, then `rest`, with
    /// `payload.event` and `payload.user`.
    async fn notice(&self, room: i64, actor: i64, about: i64, rest: &str, event: &str) {
        let nick = self.nickname(about).await;
        let payload = json!({"event": event, "user": about});
        self.hub
            .post_system(room, actor, format!("{nick}{rest}"), payload)
            .await;
    }

    pub async fn join(
        &self,
        user: i64,
        room_id: i64,
        passcode: Option<&str>,
    ) -> Result<RoomRecord, ChatError> {
        let room = self.room(room_id).await?;
        if room.kind == RoomKind::Direct {
            return Err(ChatError::new(
                Code::Conflict,
                "direct rooms cannot be joined",
            ));
        }
        if self.sql.chat().member(room_id, user).await?.is_some() {
            return Ok(room);
        }
        if let Some(region) = room
            .region_code
            .as_deref()
            .and_then(|c| Regions::get().by_code(c))
        {
            let mine = market::verified(&self.sql, UserId(user), now_ms()).await?;
            if !market::takes_in(&mine, region) {
                return Err(neighbourhood_required(region));
            }
        }
        if let Some(min) = room.min_manner_score {
            let mine = self.manner_score(user).await?;
            if mine < min {
                return Err(ChatError::forbidden(format!(
                    "this room requires a manner score of at least {min:.1} (yours: {mine:.1})"
                )));
            }
        }
        if let Some(hash) = &room.passcode_hash {
            // Counted before the check, so concurrent guesses cannot pass
            // the limit (see service::attempts).
            let limit = [Limit::new(
                format!("passcode:{room_id}:{user}"),
                self.max_passcode_failures,
            )];
            attempts::claim(&self.limiter, &limit, self.passcode_window_secs).await?;
            let ok = match passcode {
                Some(p) => {
                    self.hasher
                        .verify(p.to_string(), Some(hash.clone()))
                        .await?
                }
                None => false,
            };
            if !ok {
                return Err(ChatError::new(
                    Code::BadPasscode,
                    "wrong or missing passcode",
                ));
            }
            self.limiter.reset(&limit[0].key).await?;
        }
        match self.sql.chat().join_room(room_id, user, now_ms()).await? {
            JoinOutcome::Joined { visible_from } => {
                self.hub.add_member(MemberRecord {
                    room_id,
                    user_id: user,
                    role: MemberRole::Member,
                    joined_at: now_ms(),
                    visible_from,
                    last_read_seq: visible_from,
                });
                self.notice(room_id, user, user, "님이 들어왔습니다.", "joined")
                    .await;
                self.hub.user(
                    user,
                    UserMsg::RoomAdded {
                        room: room_id,
                        kind: RoomKind::Open,
                        peer: None,
                        last_seq: visible_from,
                        read: visible_from,
                    },
                );
                self.room(room_id).await
            }
            JoinOutcome::AlreadyMember => self.room(room_id).await,
            JoinOutcome::Full => Err(ChatError::new(Code::RoomFull, "the room is full")),
            JoinOutcome::Banned => Err(ChatError::new(
                Code::Banned,
                "you are banned from this room",
            )),
            JoinOutcome::NoRoom => Err(ChatError::not_found("room")),
        }
    }

    pub async fn leave(&self, user: i64, room_id: i64) -> Result<(), ChatError> {
        let (room, member) = self.membership(user, room_id).await?;
        if room.kind == RoomKind::Direct {
            return Err(ChatError::new(
                Code::Conflict,
                "direct rooms cannot be left",
            ));
        }
        if member.role == MemberRole::Owner && room.member_count > 1 {
            return Err(ChatError::new(
                Code::Conflict,
                "hand over ownership before leaving",
            ));
        }
        if self.sql.chat().remove_member(room_id, user).await? {
            self.notice(room_id, user, user, "님이 나갔습니다.", "left")
                .await;
            self.hub.remove_member(room_id, user, "left");
        }
        Ok(())
    }

    /// Owner (or an admin) moderating an open room.
    async fn moderator(
        &self,
        actor: i64,
        is_admin: bool,
        room_id: i64,
        target: i64,
    ) -> Result<RoomRecord, ChatError> {
        let room = self.room(room_id).await?;
        if room.kind == RoomKind::Direct {
            return Err(ChatError::new(
                Code::Conflict,
                "direct rooms have no moderation",
            ));
        }
        if room.owner_id != Some(actor) && !is_admin {
            return Err(ChatError::new(
                Code::NotOwner,
                "only the room owner may do this",
            ));
        }
        if room.owner_id == Some(target) {
            return Err(ChatError::new(
                Code::Conflict,
                "the owner cannot be removed",
            ));
        }
        Ok(room)
    }

    pub async fn kick(
        &self,
        actor: i64,
        is_admin: bool,
        room_id: i64,
        target: i64,
    ) -> Result<(), ChatError> {
        self.moderator(actor, is_admin, room_id, target).await?;
        if !self.sql.chat().remove_member(room_id, target).await? {
            return Err(not_member_target());
        }
        self.removed(actor, room_id, target, "kicked").await;
        Ok(())
    }

    pub async fn ban(
        &self,
        actor: i64,
        is_admin: bool,
        room_id: i64,
        target: i64,
    ) -> Result<(), ChatError> {
        self.moderator(actor, is_admin, room_id, target).await?;
        if self.sql.accounts().user_by_id(target).await?.is_none() {
            return Err(ChatError::not_found("user"));
        }
        self.sql
            .chat()
            .ban(room_id, target, actor, now_ms())
            .await?;
        if self.sql.chat().remove_member(room_id, target).await? {
            self.removed(actor, room_id, target, "banned").await;
        }
        Ok(())
    }

    async fn removed(&self, actor: i64, room_id: i64, target: i64, reason: &'static str) {
        // Remove first: the target's sessions stop receiving the room at
        // once, then the others see why.
        self.hub.remove_member(room_id, target, reason);
        let rest = if reason == "banned" {
            "님을 차단했습니다."
        } else {
            "님을 내보내기했습니다."
        };
        self.notice(room_id, actor, target, rest, reason).await;
    }

    pub async fn unban(
        &self,
        actor: i64,
        is_admin: bool,
        room_id: i64,
        target: i64,
    ) -> Result<(), ChatError> {
        self.moderator(actor, is_admin, room_id, target).await?;
        if !self.sql.chat().unban(room_id, target).await? {
            return Err(ChatError::not_found("ban"));
        }
        Ok(())
    }

    pub async fn transfer(
        &self,
        actor: i64,
        room_id: i64,
        target: i64,
    ) -> Result<RoomRecord, ChatError> {
        let room = self.room(room_id).await?;
        if room.kind == RoomKind::Direct {
            return Err(ChatError::new(Code::Conflict, "direct rooms have no owner"));
        }
        if room.owner_id != Some(actor) {
            return Err(ChatError::new(
                Code::NotOwner,
                "only the room owner may do this",
            ));
        }
        if target == actor {
            return Ok(room);
        }
        if self.sql.chat().member(room_id, target).await?.is_none() {
            return Err(not_member_target());
        }
        self.sql.chat().set_owner(room_id, actor, target).await?;
        self.notice(
            room_id,
            actor,
            target,
            "님이 방장이 되었습니다.",
            "owner_changed",
        )
        .await;
        self.room(room_id).await
    }

    pub async fn members(&self, user: i64, room_id: i64) -> Result<Vec<MemberRecord>, ChatError> {
        self.membership(user, room_id).await?;
        Ok(self.sql.chat().members(room_id).await?)
    }

    /// My rooms (latest activity first) with their last message, and the
    /// total unread badge.
    pub async fn my_rooms(
        &self,
        user: i64,
    ) -> Result<(Vec<(MyRoom, Option<MessageRecord>)>, i64), ChatError> {
        let rooms = self.sql.chat().user_rooms(user).await?;
        let mut total = 0;
        let mut out = Vec::with_capacity(rooms.len());
        for r in rooms {
            total += chat::unread(r.room.last_seq, r.member.last_read_seq);
            let last = if r.room.last_seq > r.member.visible_from {
                self.messages.message(r.room.id, r.room.last_seq).await?
            } else {
                None
            };
            out.push((r, last));
        }
        Ok((out, total))
    }

    pub async fn history(
        &self,
        user: i64,
        room_id: i64,
        page: Page,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, ChatError> {
        let (_, member) = self.membership(user, room_id).await?;
        let floor = member.visible_from;
        Ok(match page {
            Page::Latest => {
                self.messages
                    .messages_before(room_id, i64::MAX, floor, limit)
                    .await?
            }
            Page::Before(seq) => {
                self.messages
                    .messages_before(room_id, seq, floor, limit)
                    .await?
            }
            Page::After(seq) => {
                self.messages
                    .messages_after(room_id, seq.max(floor), limit)
                    .await?
            }
        })
    }

    /// Same effect as the WebSocket `read` frame; returns the unread count.
    pub async fn read(&self, user: i64, room_id: i64, seq: i64) -> Result<i64, ChatError> {
        self.membership(user, room_id).await?;
        match self.hub.read(room_id, user, seq).await {
            Ok(unread) => {
                // Read-your-writes on every node: answer once the pointer
                // (written behind by the committer, FIFO) is in the store,
                // so a room list served by another node right after this
                // shows the same count.
                if tokio::time::timeout(READ_FLUSH_TIMEOUT, self.hub.committer().flush())
                    .await
                    .is_err()
                {
                    tracing::warn!(room = room_id, "read pointer not committed in time");
                }
                Ok(unread)
            }
            Err(HubError::NotMember) => Err(not_member()),
            Err(HubError::NoRoom) => Err(ChatError::not_found("room")),
            Err(HubError::Timeout) => Err(ChatError::new(
                Code::Unavailable,
                "the room did not answer in time; try again",
            )),
        }
    }

    /// Edit (`Some(body)`) or delete (`None`) one's own message; members see
    /// a `message_updated` event. Edits only within the edit window.
    pub async fn update_message(
        &self,
        user: i64,
        is_admin: bool,
        room_id: i64,
        seq: i64,
        body: Option<&str>,
    ) -> Result<MessageRecord, ChatError> {
        if is_admin {
            self.room(room_id).await?;
        } else {
            self.membership(user, room_id).await?;
        }
        let m = self
            .messages
            .message(room_id, seq)
            .await?
            .ok_or_else(|| ChatError::not_found("message"))?;
        if m.sender_id != user && !(is_admin && body.is_none()) {
            return Err(ChatError::forbidden("only the sender may change a message"));
        }
        if m.kind != MessageKind::Text {
            return Err(ChatError::new(
                Code::Conflict,
                "system messages cannot be changed",
            ));
        }
        if m.deleted_at.is_some() {
            return Err(ChatError::new(Code::Conflict, "the message was deleted"));
        }
        let now = now_ms();
        if let Some(body) = body {
            chat::check_body(body).map_err(|why| {
                ChatError::new(Code::ValidationFailed, why.clone())
                    .with_details(json!({"body": why}))
            })?;
            if now - m.created_at > chat::EDIT_WINDOW_MS {
                return Err(ChatError::new(
                    Code::Conflict,
                    "the edit window (15 minutes) has passed",
                ));
            }
        }
        self.messages
            .update_message(room_id, seq, body, now)
            .await?;
        let updated = self
            .messages
            .message(room_id, seq)
            .await?
            .ok_or_else(|| ChatError::not_found("message"))?;
        self.hub
            .broadcast(room_id, frames::message_updated(&updated));
        Ok(updated)
    }
}

fn not_member_target() -> ChatError {
    ChatError::new(Code::NotFound, "that user is not a member of this room")
}
