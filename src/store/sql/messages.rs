//! Chat messages in the relational store: the [`MessageStore`] of the
//! embedded engine (SQLite) and of MySQL/MariaDB. A batch is one
//! transaction, so the seqs it assigns are either all durable or all rolled
//! back: a failed commit never leaves a hole in a room's sequence. On
//! SQLite the chat writer thread runs it (`chat_writer.rs`); on MySQL the
//! pool's connections do, below.

use crate::store::sql::ChatSql;
use std::collections::HashMap;

use async_trait::async_trait;

use super::{placeholders, retrying, SqlStore};
use crate::domain::chat::MessageKind;
use std::sync::Arc;

use crate::store::{
    Appended, BlockingWriter, ChatWrite, MessageRecord, MessageStore, NewMessage, StoreError,
};

const MESSAGE_COLUMNS: &str =
    "room_id, seq, sender_id, client_msg_id, kind, body, payload, created_at, edited_at, deleted_at";

/// Client ids looked up per statement (3 binds each).
const DEDUP_CHUNK: usize = 300;
/// Rows per multi-row insert (8 binds each).
const INSERT_CHUNK: usize = 100;
/// Ids or pairs per IN / CASE statement.
const IN_CHUNK: usize = 200;

type MessageRow = (
    i64,
    i64,
    i64,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
);

fn message(row: MessageRow) -> Result<MessageRecord, StoreError> {
    let (
        room_id,
        seq,
        sender_id,
        client_msg_id,
        kind,
        body,
        payload,
        created_at,
        edited_at,
        deleted_at,
    ) = row;
    Ok(MessageRecord {
        room_id,
        seq,
        sender_id,
        client_msg_id,
        kind: MessageKind::parse(&kind)
            .ok_or_else(|| StoreError::Other(format!("message kind {kind:?}")))?,
        body,
        payload,
        created_at,
        edited_at,
        deleted_at,
    })
}

impl ChatSql<'_> {
    /// For a message store kept elsewhere (MongoDB): move rooms' `last_seq`
    /// and activity time, and members' read pointers, forward (never back)
    /// after their messages were stored. `rooms`: `(room, seq, at)`;
    /// `reads`: `(room, user, seq)`.
    pub async fn advance_rooms(
        &self,
        rooms: &[(i64, i64, i64)],
        reads: &[(i64, i64, i64)],
    ) -> Result<(), StoreError> {
        if rooms.is_empty() && reads.is_empty() {
            return Ok(());
        }
        retrying("advance_rooms", || async {
        let greatest = self.greatest();
        let mut rooms = rooms.to_vec();
        // Same lock order as every other room transaction.
        rooms.sort_unstable();
        let mut tx = self.begin_write().await?;
        for (room, seq, at) in &rooms {
            sqlx::query(&format!(
                "UPDATE rooms SET last_seq = {greatest}(last_seq, ?), last_activity_at = {greatest}(last_activity_at, ?) WHERE id = ?"
            ))
            .bind(*seq)
            .bind(*at)
            .bind(*room)
            .execute(&mut *tx)
            .await?;
        }
        let mut reads = reads.to_vec();
        reads.sort_unstable();
        for (room, user, seq) in &reads {
            sqlx::query(&format!(
                "UPDATE room_members SET last_read_seq = {greatest}(last_read_seq, ?) WHERE room_id = ? AND user_id = ?"
            ))
            .bind(*seq)
            .bind(*room)
            .bind(*user)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }).await
    }

    // The statements of a batch on MySQL/MariaDB (SQLite's run on the chat
    // writer thread, `chat_writer.rs`): chunked multi-row forms, so a batch
    // is a handful of round trips whatever its size.

    /// `(room, sender, client id) -> (seq, ts)` of messages already stored.
    async fn stored_copies(
        &self,
        conn: &mut sqlx::AnyConnection,
        keyed: &[(i64, i64, &str)],
    ) -> Result<HashMap<(i64, i64, String), (i64, i64)>, StoreError> {
        let mut stored = HashMap::new();
        if keyed.is_empty() {
            return Ok(stored);
        }
        for chunk in keyed.chunks(DEDUP_CHUNK) {
            let cond = vec!["(room_id = ? AND sender_id = ? AND client_msg_id = ?)"; chunk.len()]
                .join(" OR ");
            let sql = format!("SELECT room_id, sender_id, client_msg_id, seq, created_at FROM messages WHERE {cond}");
            let mut q = sqlx::query_as::<_, (i64, i64, String, i64, i64)>(&sql);
            for (room, sender, cid) in chunk {
                q = q.bind(*room).bind(*sender).bind(*cid);
            }
            for (room, sender, cid, seq, ts) in q.fetch_all(&mut *conn).await? {
                stored.insert((room, sender, cid), (seq, ts));
            }
        }
        Ok(stored)
    }

    /// `(room, last_seq)` of the rooms (locked for the transaction on MySQL).
    async fn room_seqs(
        &self,
        conn: &mut sqlx::AnyConnection,
        rooms: &[i64],
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        if rooms.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(rooms.len());
        for chunk in rooms.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT id, last_seq FROM rooms WHERE id IN ({}) ORDER BY id{}",
                placeholders(chunk.len()),
                self.for_update()
            );
            let mut q = sqlx::query_as::<_, (i64, i64)>(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            out.extend(q.fetch_all(&mut *conn).await?);
        }
        Ok(out)
    }

    async fn insert_messages(
        &self,
        conn: &mut sqlx::AnyConnection,
        rows: &[(&NewMessage, i64)],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)"; chunk.len()].join(", ");
            let sql = format!("INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {values}");
            let mut q = sqlx::query(&sql);
            for (m, seq) in chunk {
                q = q
                    .bind(m.room_id)
                    .bind(*seq)
                    .bind(m.sender_id)
                    .bind(m.client_msg_id.as_deref())
                    .bind(m.kind.as_str())
                    .bind(m.body.as_str())
                    .bind(m.payload.as_deref())
                    .bind(m.created_at);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Set each room's `last_seq` and activity time: `(room, seq, at)`.
    async fn advance_seqs(
        &self,
        conn: &mut sqlx::AnyConnection,
        advanced: &[(i64, i64, i64)],
    ) -> Result<(), StoreError> {
        if advanced.is_empty() {
            return Ok(());
        }
        for chunk in advanced.chunks(IN_CHUNK) {
            let sql = format!(
                "UPDATE rooms SET last_seq = CASE id {} END, last_activity_at = CASE id {} END WHERE id IN ({})",
                "WHEN ? THEN ? ".repeat(chunk.len()),
                "WHEN ? THEN ? ".repeat(chunk.len()),
                placeholders(chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for (id, seq, _) in chunk {
                q = q.bind(*id).bind(*seq);
            }
            for (id, _, at) in chunk {
                q = q.bind(*id).bind(*at);
            }
            for (id, _, _) in chunk {
                q = q.bind(*id);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Move read pointers forward, never back: `((room, user), seq)`.
    async fn move_reads(
        &self,
        conn: &mut sqlx::AnyConnection,
        moves: &[((i64, i64), i64)],
    ) -> Result<(), StoreError> {
        if moves.is_empty() {
            return Ok(());
        }
        let greatest = self.greatest();
        for chunk in moves.chunks(IN_CHUNK) {
            let sql = format!(
                "UPDATE room_members SET last_read_seq = {greatest}(last_read_seq, CASE {} ELSE last_read_seq END) WHERE {}",
                "WHEN room_id = ? AND user_id = ? THEN ? ".repeat(chunk.len()),
                vec!["(room_id = ? AND user_id = ?)"; chunk.len()].join(" OR ")
            );
            let mut q = sqlx::query(&sql);
            for ((room, user), seq) in chunk {
                q = q.bind(*room).bind(*user).bind(*seq);
            }
            for ((room, user), _) in chunk {
                q = q.bind(*room).bind(*user);
            }
            q.execute(&mut *conn).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn write_batch(&self, writes: &[ChatWrite]) -> Result<Vec<Option<Appended>>, StoreError> {
        if let Some(writer) = &self.chat_writer {
            return writer.write(writes.to_vec()).await;
        }
        retrying("write_batch", || async {
            // Set-based: a constant handful of statements per batch, whatever
            // its size (each is a network round trip).
            let mut tx = self.begin_write().await?;
            let now_rooms: Vec<i64> = {
                let mut r: Vec<i64> = writes
                    .iter()
                    .filter_map(|w| match w {
                        ChatWrite::Append(m) => Some(m.room_id),
                        ChatWrite::Read { .. } => None,
                    })
                    .collect();
                r.sort_unstable();
                r.dedup();
                r
            };
            // 1. Earlier copies of the client ids in this batch.
            let keyed: Vec<(i64, i64, &str)> = writes
                .iter()
                .filter_map(|w| match w {
                    ChatWrite::Append(m) => m
                        .client_msg_id
                        .as_deref()
                        .map(|c| (m.room_id, m.sender_id, c)),
                    ChatWrite::Read { .. } => None,
                })
                .collect();
            let stored = self.chat().stored_copies(&mut tx, &keyed).await?;
            // 2. Where each room's sequence stands.
            let mut last: HashMap<i64, (i64, i64)> = self
                .chat()
                .room_seqs(&mut tx, &now_rooms)
                .await?
                .into_iter()
                .map(|(id, seq)| (id, (seq, 0)))
                .collect();
            // 3. Assign seqs in order; collect rows and read-pointer moves.
            let mut results = Vec::with_capacity(writes.len());
            let mut rows: Vec<(&NewMessage, i64)> = Vec::new();
            let mut seen: HashMap<(i64, i64, &str), (i64, i64)> = HashMap::new();
            let mut reads: HashMap<(i64, i64), i64> = HashMap::new();
            for write in writes {
                let Some(m) = crate::store::append_or_note_read(write, &mut reads) else {
                    results.push(None);
                    continue;
                };
                if let Some(cid) = m.client_msg_id.as_deref() {
                    let earlier = seen
                        .get(&(m.room_id, m.sender_id, cid))
                        .copied()
                        .or_else(|| {
                            stored
                                .get(&(m.room_id, m.sender_id, cid.to_string()))
                                .copied()
                        });
                    if let Some((seq, ts)) = earlier {
                        results.push(Some(Appended::Duplicate { seq, ts }));
                        continue;
                    }
                }
                let Some(room) = last.get_mut(&m.room_id) else {
                    return Err(StoreError::Other(format!(
                        "message for unknown room {}",
                        m.room_id
                    )));
                };
                room.0 += 1;
                room.1 = m.created_at;
                let seq = room.0;
                rows.push((m, seq));
                if let Some(cid) = m.client_msg_id.as_deref() {
                    seen.insert((m.room_id, m.sender_id, cid), (seq, m.created_at));
                }
                crate::store::note_read(&mut reads, m.room_id, m.sender_id, seq);
                results.push(Some(Appended::New {
                    seq,
                    ts: m.created_at,
                }));
            }
            // 4. The new rows.
            self.chat().insert_messages(&mut tx, &rows).await?;
            // 5. Advance the rooms touched.
            let mut advanced: Vec<(i64, i64, i64)> = last
                .iter()
                .filter(|(_, (_, at))| *at > 0)
                .map(|(id, (seq, at))| (*id, *seq, *at))
                .collect();
            advanced.sort_unstable();
            self.chat().advance_seqs(&mut tx, &advanced).await?;
            // 6. Move read pointers forward (never back).
            let mut moves: Vec<((i64, i64), i64)> = reads.into_iter().collect();
            moves.sort_unstable();
            self.chat().move_reads(&mut tx, &moves).await?;
            tx.commit().await?;
            Ok(results)
        })
        .await
    }

    fn blocking_writer(&self) -> Option<BlockingWriter> {
        let writer = self.chat_writer.clone()?;
        Some(Arc::new(move |writes: &[ChatWrite]| writer.commit(writes)))
    }

    async fn messages_after(
        &self,
        room_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(room_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(message).collect()
    }

    async fn messages_before(
        &self,
        room_id: i64,
        before: i64,
        floor: i64,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let rows: Vec<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND seq < ? AND seq > ? ORDER BY seq DESC LIMIT ?"
        ))
        .bind(room_id)
        .bind(before)
        .bind(floor)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        let mut out: Vec<MessageRecord> =
            rows.into_iter().map(message).collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    async fn message(&self, room_id: i64, seq: i64) -> Result<Option<MessageRecord>, StoreError> {
        let row: Option<MessageRow> = sqlx::query_as(&format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE room_id = ? AND seq = ?"
        ))
        .bind(room_id)
        .bind(seq)
        .fetch_optional(self.reader())
        .await?;
        row.map(message).transpose()
    }

    async fn update_message(
        &self,
        room_id: i64,
        seq: i64,
        body: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        match body {
            Some(body) => {
                sqlx::query(
                    "UPDATE messages SET body = ?, edited_at = ? WHERE room_id = ? AND seq = ?",
                )
                .bind(body)
                .bind(now)
                .bind(room_id)
                .bind(seq)
                .execute(self.writer())
                .await?;
            }
            None => {
                sqlx::query("UPDATE messages SET body = '', payload = NULL, deleted_at = ? WHERE room_id = ? AND seq = ?")
                    .bind(now)
                    .bind(room_id)
                    .bind(seq)
                    .execute(self.writer())
                    .await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewMessage;

    fn text(room: i64, sender: i64, cid: &str) -> ChatWrite {
        ChatWrite::Append(NewMessage {
            room_id: room,
            sender_id: sender,
            client_msg_id: Some(cid.to_string()),
            kind: MessageKind::Text,
            body: format!("body {cid}"),
            payload: None,
            created_at: 1000,
        })
    }

    /// A fresh database with users a and b and their direct room: (the
    /// directory, to keep it, the store, a, b, the room).
    async fn fixture() -> (tempfile::TempDir, SqlStore, i64, i64, i64) {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = SqlStore::connect(&url).await.expect("connect");
        store.migrate().await.expect("migrate");
        let a = store
            .accounts()
            .insert_user("a@x.com", "h", "aa", crate::domain::account::Role::User, 1)
            .await
            .expect("user");
        let b = store
            .accounts()
            .insert_user("b@x.com", "h", "bb", crate::domain::account::Role::User, 1)
            .await
            .expect("user");
        let (room, _) = store
            .chat()
            .get_or_create_direct("1:2", a, b, None, 1)
            .await
            .expect("room");
        (dir, store, a, b, room)
    }

    #[tokio::test]
    async fn batches_assign_gap_free_seqs_and_deduplicate() {
        let (_dir, store, a, b, r1) = fixture().await;
        let (r2, _) = store
            .chat()
            .get_or_create_direct("1:2:x", a, b, None, 1)
            .await
            .expect("room");

        let out = store
            .write_batch(&[
                text(r1, a, "x"),
                text(r1, a, "x"), // duplicate inside the batch
                text(r2, a, "x"), // same id, other room: a new message
                text(r1, b, "x"), // same id, other sender: a new message
                ChatWrite::Read {
                    room_id: r1,
                    user_id: b,
                    seq: 1,
                },
                text(r1, a, "y"),
            ])
            .await
            .expect("batch");
        assert_eq!(
            out,
            vec![
                Some(Appended::New { seq: 1, ts: 1000 }),
                Some(Appended::Duplicate { seq: 1, ts: 1000 }),
                Some(Appended::New { seq: 1, ts: 1000 }),
                Some(Appended::New { seq: 2, ts: 1000 }),
                None,
                Some(Appended::New { seq: 3, ts: 1000 }),
            ]
        );
        // Across batches too; and the sequence continues without a gap.
        let out = store
            .write_batch(&[text(r1, a, "y"), text(r1, a, "z")])
            .await
            .expect("batch");
        assert_eq!(
            out,
            vec![
                Some(Appended::Duplicate { seq: 3, ts: 1000 }),
                Some(Appended::New { seq: 4, ts: 1000 })
            ]
        );
        let room = store.chat().room(r1).await.expect("room").expect("exists");
        assert_eq!(room.last_seq, 4);
        let seqs: Vec<i64> = store
            .messages_after(r1, 0, 10)
            .await
            .expect("history")
            .iter()
            .map(|m| m.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        // Writers have read up to their last message; b read to 2 (its own), not back to 1.
        assert_eq!(
            store
                .chat()
                .member(r1, a)
                .await
                .expect("m")
                .expect("a")
                .last_read_seq,
            4
        );
        assert_eq!(
            store
                .chat()
                .member(r1, b)
                .await
                .expect("m")
                .expect("b")
                .last_read_seq,
            2
        );
        // Read pointers never move back.
        store
            .write_batch(&[ChatWrite::Read {
                room_id: r1,
                user_id: a,
                seq: 1,
            }])
            .await
            .expect("batch");
        assert_eq!(
            store
                .chat()
                .member(r1, a)
                .await
                .expect("m")
                .expect("a")
                .last_read_seq,
            4
        );
    }

    /// The batch travels as JSON text into SQLite (`json_each`): whatever a
    /// body holds comes back byte for byte, and a batch that cannot be
    /// stored whole stores nothing.
    /// The chat writer (its own connection) and the sqlx writer share the
    /// database: transactions that read and then write, on the other side,
    /// neither fail nor lose a chat commit while chat commits run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chat_commits_and_other_writes_share_the_database() {
        let (_dir, store, a, _b, room) = fixture().await;
        let store = std::sync::Arc::new(store);
        let chat = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    let out = store
                        .write_batch(&[text(room, a, &format!("c{i}"))])
                        .await
                        .expect("chat commit");
                    assert!(matches!(out[0], Some(Appended::New { .. })));
                }
            })
        };
        let other = {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..300 {
                    let mut tx = store.begin_write().await.expect("begin");
                    let (seq,): (i64,) = sqlx::query_as("SELECT last_seq FROM rooms WHERE id = ?")
                        .bind(room)
                        .fetch_one(&mut *tx)
                        .await
                        .expect("read");
                    tokio::task::yield_now().await;
                    sqlx::query("UPDATE rooms SET description = ? WHERE id = ?")
                        .bind(format!("{i} at {seq}"))
                        .bind(room)
                        .execute(&mut *tx)
                        .await
                        .expect("write after read");
                    tx.commit().await.expect("commit");
                }
            })
        };
        chat.await.expect("chat task");
        other.await.expect("other task");
        let stored = store.messages_after(room, 0, 1000).await.expect("history");
        let seqs: Vec<i64> = stored.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn bodies_round_trip_exactly_and_a_failed_batch_stores_nothing() {
        let (_dir, store, a, _b, room) = fixture().await;
        let bodies = [
            "안녕하세요 🥕 \"quoted\" back\\slash",
            "line\nbreak\ttab \u{0} nul \u{1f} unit sep",
            "  leading and trailing  ",
            "[1, 2] {\"not\": \"json\"} ->> 0",
        ];
        let mut writes: Vec<ChatWrite> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                ChatWrite::Append(NewMessage {
                    room_id: room,
                    sender_id: a,
                    client_msg_id: Some(format!("c{i}")),
                    kind: MessageKind::Text,
                    body: (*body).to_string(),
                    payload: None,
                    created_at: 2000 + i as i64,
                })
            })
            .collect();
        writes.push(ChatWrite::Append(NewMessage {
            room_id: room,
            sender_id: a,
            client_msg_id: None,
            kind: MessageKind::System,
            body: "system".into(),
            payload: Some(r#"{"event":"joined","user":1}"#.into()),
            created_at: 3000,
        }));
        store.write_batch(&writes).await.expect("batch");
        let stored = store.messages_after(room, 0, 10).await.expect("history");
        assert_eq!(stored.len(), 5);
        for (i, body) in bodies.iter().enumerate() {
            assert_eq!(stored[i].body, *body);
            assert_eq!(
                stored[i].client_msg_id.as_deref(),
                Some(format!("c{i}").as_str())
            );
            assert_eq!(stored[i].created_at, 2000 + i as i64);
        }
        assert_eq!(stored[4].kind, MessageKind::System);
        assert_eq!(stored[4].client_msg_id, None);
        assert_eq!(
            stored[4].payload.as_deref(),
            Some(r#"{"event":"joined","user":1}"#)
        );
        assert_eq!(
            store
                .chat()
                .room(room)
                .await
                .expect("room")
                .expect("exists")
                .last_activity_at,
            3000
        );

        // A message for a room that does not exist fails the whole batch.
        let failed = store
            .write_batch(&[text(room, a, "kept-out"), text(room + 1000, a, "nowhere")])
            .await;
        assert!(failed.is_err());
        assert_eq!(
            store
                .messages_after(room, 0, 10)
                .await
                .expect("history")
                .len(),
            5
        );
        assert_eq!(
            store
                .chat()
                .room(room)
                .await
                .expect("room")
                .expect("exists")
                .last_seq,
            5
        );
        // ... and the writer is usable afterwards.
        let out = store
            .write_batch(&[text(room, a, "kept-out")])
            .await
            .expect("batch");
        assert_eq!(out, vec![Some(Appended::New { seq: 6, ts: 1000 })]);
    }
}
