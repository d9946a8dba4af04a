//! Storage ports (traits) and their adapters.
//!
//! `Application::build` picks one adapter per port from the settings:
//!
//! - [`SessionStore`]: the SQL database ([`sql::SqlStore`]), or Redis
//!   ([`redis::RedisStore`]) with `redis_url`.
//! - [`RateLimiter`]: in-process ([`memory::MemoryRateLimiter`]), or Redis.
//! - [`cache::Cache`]: in-process ([`cache::MemoryCache`]), or Redis.
//! - [`MessageStore`]: the SQL database, or MongoDB
//!   ([`mongo::MongoMessages`]) with `mongodb_url`.
//! - [`Presence`]: Redis, used only when the bus is Kafka (several nodes);
//!   on one node the chat hub's own registry answers.
//! - [`media::MediaStorage`]: files under `data_dir/media`
//!   ([`media::DiskMedia`]) on every engine.
//!
//! Relational data (accounts, rooms and members, listings, reservations,
//! reviews) has no trait: its single adapter, [`sql::SqlStore`], speaks
//! both SQLite and MySQL/MariaDB through sqlx's `Any` driver, so each query
//! is written once, and its method set *is* the relational port. See
//! docs/ARCHITECTURE.md for why.

pub mod cache;
mod error;
pub mod media;
pub mod memory;
pub mod mongo;
pub mod redis;
pub mod sql;

use async_trait::async_trait;

use crate::domain::account::{Role, Status};
pub use error::StoreError;

/// A user row as stored.
#[derive(Debug, Clone)]
pub struct UserRecord {
    pub id: i64,
    /// `None` once the account is withdrawn (frees the address for a new sign-up).
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub nickname: String,
    pub role: Role,
    pub status: Status,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the address was proven to be the user's (the emailed link, a
    /// provider that verified it, or the operator's CLI); `None`: not yet.
    pub email_verified_at: Option<i64>,
}

/// A server-side session. The key is the SHA-256 of the bearer token; the
/// token itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// The session if it exists and has not expired at `now`.
    async fn find_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError>;
    /// Slide the expiry forward.
    async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError>;
    /// Revoke every session of a user, optionally keeping one.
    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError>;
}

/// The state of one rate-limit counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub count: u32,
    /// Seconds until the counter resets (0 when it is empty).
    pub resets_in_secs: u64,
}

/// Fixed-window counters keyed by string (e.g. `login:email:a@b.c`).
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Count one event; the window starts at the first event.
    async fn hit(&self, key: &str, window_secs: u64) -> Result<Window, StoreError>;
    async fn peek(&self, key: &str) -> Result<Window, StoreError>;
    /// Take one count back (an attempt that turned out legitimate).
    async fn release(&self, key: &str) -> Result<(), StoreError>;
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
}

use crate::domain::chat::{MemberRole, MessageKind, RoomKind};

#[derive(Debug, Clone)]
pub struct RoomRecord {
    pub id: i64,
    pub kind: RoomKind,
    pub name: String,
    pub description: String,
    pub capacity: i64,
    pub passcode_hash: Option<String>,
    pub owner_id: Option<i64>,
    pub member_count: i64,
    pub last_seq: i64,
    pub last_activity_at: i64,
    pub created_at: i64,
    /// Direct rooms about a listing carry it.
    pub listing_id: Option<i64>,
    /// Open rooms may require a minimum manner score to join.
    pub min_manner_score: Option<f64>,
    /// An open room of a neighbourhood: its region (읍/면/동 code).
    pub region_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRecord {
    pub room_id: i64,
    pub user_id: i64,
    pub role: MemberRole,
    pub joined_at: i64,
    /// History is visible from this seq on (exclusive).
    pub visible_from: i64,
    pub last_read_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    pub room_id: i64,
    pub seq: i64,
    pub sender_id: i64,
    pub client_msg_id: Option<String>,
    pub kind: MessageKind,
    pub body: String,
    /// JSON text of a system message's payload.
    pub payload: Option<String>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

/// A message to append; its seq is assigned by the store at commit.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub room_id: i64,
    pub sender_id: i64,
    pub client_msg_id: Option<String>,
    pub kind: MessageKind,
    pub body: String,
    pub payload: Option<String>,
    pub created_at: i64,
}

/// In a batch's read-pointer moves, `user`'s pointer in `room` goes to
/// `seq` unless it is already past it (pointers only move forward).
pub(crate) fn note_read(
    reads: &mut std::collections::HashMap<(i64, i64), i64>,
    room: i64,
    user: i64,
    seq: i64,
) {
    let r = reads.entry((room, user)).or_insert(seq);
    *r = (*r).max(seq);
}

/// A batch's write: an append is returned for the caller to store; a read
/// is noted in `reads` ([`note_read`]) and returns `None`.
pub(crate) fn append_or_note_read<'a>(
    write: &'a ChatWrite,
    reads: &mut std::collections::HashMap<(i64, i64), i64>,
) -> Option<&'a NewMessage> {
    match write {
        ChatWrite::Append(m) => Some(m),
        ChatWrite::Read {
            room_id,
            user_id,
            seq,
        } => {
            note_read(reads, *room_id, *user_id, *seq);
            None
        }
    }
}

/// A synchronous group commit: see [`MessageStore::blocking_writer`].
pub type BlockingWriter =
    std::sync::Arc<dyn Fn(&[ChatWrite]) -> Result<Vec<Option<Appended>>, StoreError> + Send + Sync>;

/// One write of a group commit.
#[derive(Debug, Clone)]
pub enum ChatWrite {
    /// Append with the room's next seq; also moves the sender's read
    /// pointer to it (the unread rule in `domain::chat`).
    Append(NewMessage),
    /// Move a member's read pointer forward (never back).
    Read {
        room_id: i64,
        user_id: i64,
        seq: i64,
    },
}

/// Outcome of one append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    New {
        seq: i64,
        ts: i64,
    },
    /// The same (room, sender, client_msg_id) was stored before: the
    /// original seq and time, and nothing new was written.
    Duplicate {
        seq: i64,
        ts: i64,
    },
}

/// Who is connected anywhere in the cluster (distributed engine: Redis).
/// On one node the hub's own registry answers instead.
#[async_trait]
pub trait Presence: Send + Sync {
    /// `node` has these users connected (called when one connects, and
    /// periodically for all, since an entry expires unless refreshed).
    async fn set_online(&self, node: &str, users: &[i64]) -> Result<(), StoreError>;
    /// `node` no longer has `user`; true if the user is still connected to
    /// some other node.
    async fn set_offline(&self, node: &str, user: i64) -> Result<bool, StoreError>;
    /// Of `users`, those connected to any node.
    async fn online(&self, users: &[i64]) -> Result<std::collections::HashSet<i64>, StoreError>;
}

/// The chat message store: history, resume replays and the group commit's
/// writes. Messages live in the SQL database next to the rooms (SQLite, or
/// MySQL/MariaDB) unless `mongodb_url` puts them in MongoDB. Either way the
/// store assigns each room's seqs as it stores the messages, without gaps,
/// and answers a resent (room, sender, client_msg_id) with the original
/// seq ([`Appended::Duplicate`]) instead of storing it twice.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Apply `writes` in order in one durable commit: either all of them
    /// are on disk when this returns `Ok`, or none is. One result per
    /// write (`None` for reads).
    async fn write_batch(&self, writes: &[ChatWrite]) -> Result<Vec<Option<Appended>>, StoreError>;
    /// The same commit as [`MessageStore::write_batch`], run on the
    /// caller's thread, if this store can (the embedded engine's chat
    /// writer): the committer then runs on a thread of its own and calls
    /// it directly, with no task or thread hop per batch.
    fn blocking_writer(&self) -> Option<BlockingWriter> {
        None
    }
    /// Messages with seq > `after`, ascending, at most `limit`.
    async fn messages_after(
        &self,
        room_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError>;
    /// Messages with `floor` < seq < `before`, ascending, the newest `limit` of them.
    async fn messages_before(
        &self,
        room_id: i64,
        before: i64,
        floor: i64,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError>;
    async fn message(&self, room_id: i64, seq: i64) -> Result<Option<MessageRecord>, StoreError>;
    /// Edit (`Some(body)`) or delete (`None`) a message in place.
    async fn update_message(
        &self,
        room_id: i64,
        seq: i64,
        body: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError>;
}
