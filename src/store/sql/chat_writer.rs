//! The embedded engine's chat writer: its own SQLite connection (rusqlite)
//! on which each group commit of chat writes runs as one transaction,
//! synchronously, from `BEGIN IMMEDIATE` to `COMMIT`, on the committer's
//! thread (`actors/committer.rs`).
//!
//! Why not the shared sqlx writer: sqlx runs every statement on its
//! connection's worker thread and hands the result back to the caller's
//! task, so a commit of seven statements was fourteen thread hand-offs and
//! as many task wake-ups, and the measured commit cost (about 250 µs of CPU
//! per message at 50,000 deliveries/s) was mostly those, not SQLite's
//! B-tree work (docs/BENCHMARKS.md, "The commit path"). Here a batch costs
//! one wake-up of the committer's thread, and each statement is a cached
//! prepared statement stepped in place.
//!
//! Two connections now write the same database (this one, and sqlx's for
//! everything else). SQLite lets one write at a time: each side takes the
//! write lock at the start of its transaction (`BEGIN IMMEDIATE` here and
//! in [`super::SqlStore::begin_write`]), and waits in a busy handler while
//! the other holds it. Chat commits are short (no network, no awaits), so a
//! REST write waits at most one commit; this side's handler polls every
//! 50 µs at first so a chat commit is not held back by SQLite's 1 ms
//! minimum sleep.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension as _, TransactionBehavior};

use crate::store::{Appended, ChatWrite, StoreError};

type Outcome = Result<Vec<Option<Appended>>, StoreError>;

/// The writer's connection. The committer's thread commits through it
/// directly ([`ChatWriter::commit`]); the async path of `MessageStore`
/// (tests, tools) goes through `spawn_blocking`.
pub(crate) struct ChatWriter {
    conn: Mutex<Connection>,
}

/// How long a commit waits for the other writer before giving up (as the
/// sqlx connections' `busy_timeout`).
const BUSY_LIMIT: Duration = Duration::from_secs(5);

/// Short polls before the 1 ms ones.
const SHORT_POLLS: i32 = 40;

/// SQLite's busy handler (`attempt` counts from 0): 40 polls 50 µs apart
/// (a REST write holds the lock for well under a millisecond), then one a
/// millisecond until [`BUSY_LIMIT`].
fn busy(attempt: i32) -> bool {
    let limit = i32::try_from(BUSY_LIMIT.as_millis()).unwrap_or(i32::MAX);
    if attempt < SHORT_POLLS {
        std::thread::sleep(Duration::from_micros(50));
        true
    } else if attempt - SHORT_POLLS < limit {
        std::thread::sleep(Duration::from_millis(1));
        true
    } else {
        false
    }
}

impl ChatWriter {
    /// Open the writer's connection to the database file at `path` (which
    /// the sqlx pools created and put in WAL mode).
    pub(super) fn open(path: &Path, synchronous: &'static str) -> Result<ChatWriter, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let sync = if synchronous == "NORMAL" {
            "NORMAL"
        } else {
            "FULL"
        };
        // The same settings as the sqlx writer (see `connect_with`).
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; \
             PRAGMA wal_autocheckpoint = 16384; PRAGMA temp_store = MEMORY; \
             PRAGMA foreign_keys = ON;"
        ))?;
        conn.busy_handler(Some(busy))?;
        conn.set_prepared_statement_cache_capacity(16);
        Ok(ChatWriter {
            conn: Mutex::new(conn),
        })
    }

    /// Commit `writes` as one transaction, on the calling thread: every
    /// append gets its room's next seq, or all of them are rolled back.
    pub(crate) fn commit(&self, writes: &[ChatWrite]) -> Outcome {
        // Only one committer runs; a poisoned lock means a commit panicked
        // mid-way, and its transaction was rolled back when the
        // `Transaction` dropped: the connection is usable as is.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        commit(&mut conn, writes)
    }

    /// [`ChatWriter::commit`] from async code.
    pub(super) async fn write(self: &Arc<Self>, writes: Vec<ChatWrite>) -> Outcome {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.commit(&writes))
            .await
            .map_err(|e| StoreError::Other(format!("chat writer: {e}")))?
    }
}

/// One group commit. Statement per row, each prepared once per connection:
/// with no thread hop per statement, a handful of microseconds each.
fn commit(conn: &mut Connection, writes: &[ChatWrite]) -> Outcome {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(writes.len());
    // room -> (last seq, time of its last new message)
    let mut rooms: HashMap<i64, (i64, i64)> = HashMap::new();
    // (room, user) -> the read pointer to move to
    let mut reads: HashMap<(i64, i64), i64> = HashMap::new();
    {
        let mut stored = tx.prepare_cached(
            "SELECT seq, created_at FROM messages \
             WHERE room_id = ?1 AND sender_id = ?2 AND client_msg_id = ?3",
        )?;
        let mut room_seq = tx.prepare_cached("SELECT last_seq FROM rooms WHERE id = ?1")?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO messages (room_id, seq, sender_id, client_msg_id, kind, body, payload, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        for write in writes {
            let Some(m) = crate::store::append_or_note_read(write, &mut reads) else {
                results.push(None);
                continue;
            };
            // An earlier copy (in an earlier batch, or earlier in
            // this one: the transaction sees its own rows).
            if let Some(cid) = m.client_msg_id.as_deref() {
                let earlier = stored
                    .query_row(params![m.room_id, m.sender_id, cid], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                if let Some((seq, ts)) = earlier {
                    results.push(Some(Appended::Duplicate { seq, ts }));
                    continue;
                }
            }
            let room = match rooms.get_mut(&m.room_id) {
                Some(room) => room,
                None => {
                    let Some(last) = room_seq
                        .query_row(params![m.room_id], |r| r.get::<_, i64>(0))
                        .optional()?
                    else {
                        // (Dropping `tx` rolls the batch back.)
                        return Err(StoreError::Other(format!(
                            "message for unknown room {}",
                            m.room_id
                        )));
                    };
                    rooms.entry(m.room_id).or_insert((last, 0))
                }
            };
            room.0 += 1;
            room.1 = m.created_at;
            let seq = room.0;
            insert.execute(params![
                m.room_id,
                seq,
                m.sender_id,
                m.client_msg_id,
                m.kind.as_str(),
                m.body,
                m.payload,
                m.created_at
            ])?;
            crate::store::note_read(&mut reads, m.room_id, m.sender_id, seq);
            results.push(Some(Appended::New {
                seq,
                ts: m.created_at,
            }));
        }
        let mut advance = tx.prepare_cached(
            "UPDATE rooms SET last_seq = ?2, last_activity_at = ?3 WHERE id = ?1",
        )?;
        let mut advanced: Vec<_> = rooms.into_iter().collect();
        advanced.sort_unstable();
        for (room, (seq, at)) in advanced {
            advance.execute(params![room, seq, at])?;
        }
        let mut read = tx.prepare_cached(
            "UPDATE room_members SET last_read_seq = MAX(last_read_seq, ?3) \
             WHERE room_id = ?1 AND user_id = ?2",
        )?;
        let mut moves: Vec<_> = reads.into_iter().collect();
        moves.sort_unstable();
        for ((room, user), seq) in moves {
            read.execute(params![room, user, seq])?;
        }
    }
    tx.commit()?;
    Ok(results)
}
