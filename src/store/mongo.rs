//! Chat messages in MongoDB: the distributed engine's [`MessageStore`].
//!
//! One collection, `messages`, one document per message:
//!
//! ```text
//! { room: i64, seq: i64, sender: i64, cid: string|null, dedup: string,
//!   kind: "text"|"system", body: string, payload: string|null,
//!   ts: i64, edited_at: i64|null, deleted_at: i64|null }
//! ```
//!
//! Indexes:
//! - `room_seq` unique `(room, seq)`: history reads by seq range, and the
//!   arbiter of seq assignment (below).
//! - `room_sender_dedup` unique `(room, sender, dedup)`: `dedup` is the
//!   client's `client_msg_id`, or `~<seq>` for system messages (which have
//!   none), so a resent message can never be stored twice, on any node.
//!
//! Seq assignment needs no counter document and no transaction: a batch
//! for a room reads the room's highest seq, inserts its messages (ordered)
//! as the following seqs, and if another node took one of those seqs first
//! the unique index refuses it: the documents before it are stored, the
//! rest are numbered again from the new top. In the steady state a node
//! knows each busy room's top from its last batch, and a whole batch, all
//! rooms, is one ordered insert (see `write_batch`). Seqs therefore stay
//! gap-free: a seq exists only if its document was inserted. Writes use the journal
//! write concern, so an acknowledged message survives a server crash.
//!
//! The room summary in the relational store (`rooms.last_seq`, activity
//! time, members' read pointers) is advanced after the insert, monotonically
//! (`GREATEST`). If a node dies between the two, the summary lags until the
//! room's next message; history and resume read MongoDB and lose nothing.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::TryStreamExt as _;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{CollectionOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, IndexModel};

use super::sql::SqlStore;
use super::{Appended, ChatWrite, MessageRecord, MessageStore, NewMessage, StoreError};
use crate::domain::chat::MessageKind;

/// Duplicate key (unique index) error code.
const DUPLICATE_KEY: i32 = 11000;
/// Rounds of renumbering a batch that keeps losing races for seqs.
const MAX_ROUNDS: usize = 50;

pub struct MongoMessages {
    client: Client,
    messages: Collection<Document>,
    sql: Arc<SqlStore>,
    /// The top seq this node last stored per room: the guess for the next
    /// batch (right unless another node wrote the room since; the unique
    /// index catches that).
    tops: std::sync::Mutex<HashMap<i64, i64>>,
}

/// Rooms whose top seq a node remembers (then it starts over).
const MAX_REMEMBERED_ROOMS: usize = 100_000;

fn err(e: mongodb::error::Error) -> StoreError {
    if matches!(
        *e.kind,
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
    ) {
        StoreError::Unavailable(format!("mongodb: {e}"))
    } else {
        StoreError::Other(format!("mongodb: {e}"))
    }
}

fn int(d: &Document, key: &str) -> Option<i64> {
    match d.get(key)? {
        Bson::Int64(v) => Some(*v),
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Double(v) => Some(*v as i64),
        _ => None,
    }
}

fn opt_int(d: &Document, key: &str) -> Option<i64> {
    int(d, key)
}

fn string(d: &Document, key: &str) -> Option<String> {
    match d.get(key)? {
        Bson::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn record(d: &Document) -> Result<MessageRecord, StoreError> {
    let bad = || StoreError::Other(format!("malformed message document: {d}"));
    let kind = string(d, "kind").ok_or_else(bad)?;
    Ok(MessageRecord {
        room_id: int(d, "room").ok_or_else(bad)?,
        seq: int(d, "seq").ok_or_else(bad)?,
        sender_id: int(d, "sender").ok_or_else(bad)?,
        client_msg_id: string(d, "cid"),
        kind: MessageKind::parse(&kind).ok_or_else(bad)?,
        body: string(d, "body").ok_or_else(bad)?,
        payload: string(d, "payload"),
        created_at: int(d, "ts").ok_or_else(bad)?,
        edited_at: opt_int(d, "edited_at"),
        deleted_at: opt_int(d, "deleted_at"),
    })
}

fn document(m: &NewMessage, seq: i64) -> Document {
    let dedup = match &m.client_msg_id {
        Some(cid) => cid.clone(),
        None => format!("~{seq}"),
    };
    doc! {
        "room": m.room_id,
        "seq": seq,
        "sender": m.sender_id,
        "cid": m.client_msg_id.clone().map_or(Bson::Null, Bson::String),
        "dedup": dedup,
        "kind": m.kind.as_str(),
        "body": m.body.clone(),
        "payload": m.payload.clone().map_or(Bson::Null, Bson::String),
        "ts": m.created_at,
        "edited_at": Bson::Null,
        "deleted_at": Bson::Null,
    }
}

/// `msgs` as documents numbered `top + 1...`.
fn documents<'a>(
    top: i64,
    msgs: &'a [(usize, &NewMessage)],
) -> impl Iterator<Item = Document> + 'a {
    msgs.iter()
        .enumerate()
        .map(move |(i, (_, m))| document(m, top + 1 + i as i64))
}

impl MongoMessages {
    /// Connect and create the indexes. The database is the URL's path
    /// (`mongodb://host:27017/jangteo`), `jangteo` if it has none.
    pub async fn connect(url: &str, sql: Arc<SqlStore>) -> Result<MongoMessages, StoreError> {
        let client = Client::with_uri_str(url).await.map_err(err)?;
        let db = client
            .default_database()
            .unwrap_or_else(|| client.database("jangteo"));
        let messages = db.collection_with_options::<Document>(
            "messages",
            CollectionOptions::builder()
                .write_concern(WriteConcern::builder().journal(true).build())
                .build(),
        );
        let unique = |name: &str| {
            Some(
                IndexOptions::builder()
                    .unique(true)
                    .name(name.to_string())
                    .build(),
            )
        };
        messages
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"room": 1, "seq": 1})
                    .options(unique("room_seq"))
                    .build(),
            )
            .await
            .map_err(err)?;
        messages
            .create_index(
                IndexModel::builder()
                    .keys(doc! {"room": 1, "sender": 1, "dedup": 1})
                    .options(unique("room_sender_dedup"))
                    .build(),
            )
            .await
            .map_err(err)?;
        Ok(MongoMessages {
            client,
            messages,
            sql,
            tops: std::sync::Mutex::new(HashMap::new()),
        })
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .database("admin")
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(err)
    }

    async fn top_seq(&self, room: i64) -> Result<i64, StoreError> {
        let top = self
            .messages
            .find_one(doc! {"room": room})
            .sort(doc! {"seq": -1})
            .projection(doc! {"seq": 1})
            .await
            .map_err(err)?;
        Ok(top.as_ref().and_then(|d| int(d, "seq")).unwrap_or(0))
    }

    /// Stored copies of `(sender, client_msg_id)` pairs in one room.
    async fn stored(
        &self,
        room: i64,
        keys: &[(i64, &str)],
    ) -> Result<HashMap<(i64, String), (i64, i64)>, StoreError> {
        if keys.is_empty() {
            return Ok(HashMap::new());
        }
        let any: Vec<Document> = keys
            .iter()
            .map(|(sender, cid)| doc! {"sender": *sender, "dedup": *cid})
            .collect();
        let docs: Vec<Document> = self
            .messages
            .find(doc! {"room": room, "$or": any})
            .projection(doc! {"sender": 1, "dedup": 1, "seq": 1, "ts": 1})
            .await
            .map_err(err)?
            .try_collect()
            .await
            .map_err(err)?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                Some((
                    (int(d, "sender")?, string(d, "dedup")?),
                    (int(d, "seq")?, int(d, "ts")?),
                ))
            })
            .collect())
    }

    /// Store one room's appends (`(position, message)` in batch order);
    /// returns `(position, outcome)`.
    fn remembered_top(&self, room: i64) -> Option<i64> {
        self.tops
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&room)
            .copied()
    }

    fn remember_top(&self, room: i64, top: i64) {
        let mut tops = self.tops.lock().unwrap_or_else(|p| p.into_inner());
        if tops.len() >= MAX_REMEMBERED_ROOMS && !tops.contains_key(&room) {
            tops.clear();
        }
        let t = tops.entry(room).or_insert(top);
        *t = (*t).max(top);
    }

    /// Insert `docs` in order; how many went in (all, or up to the first
    /// duplicate key).
    async fn insert_ordered(&self, docs: Vec<Document>) -> Result<usize, StoreError> {
        let n = docs.len();
        if n == 0 {
            return Ok(0);
        }
        match self.messages.insert_many(docs).ordered(true).await {
            Ok(_) => Ok(n),
            Err(e) => match &*e.kind {
                ErrorKind::InsertMany(failure)
                    if failure.write_concern_error.is_none()
                        && failure
                            .write_errors
                            .as_ref()
                            .is_some_and(|w| w.iter().all(|x| x.code == DUPLICATE_KEY)) =>
                {
                    Ok(failure
                        .write_errors
                        .as_ref()
                        .and_then(|w| w.iter().map(|x| x.index).min())
                        .unwrap_or(0))
                }
                _ => Err(err(e)),
            },
        }
    }

    /// Store `msgs` (in order) as seqs `top + 1...` until the first one a
    /// unique index refuses; record them in `done`, remember the new top,
    /// and return how many went in.
    async fn insert_after(
        &self,
        room: i64,
        top: i64,
        msgs: &[(usize, &NewMessage)],
        done: &mut Vec<(usize, Appended)>,
    ) -> Result<usize, StoreError> {
        let inserted = self.insert_ordered(documents(top, msgs).collect()).await?;
        self.stored_after(room, top, &msgs[..inserted], done);
        Ok(inserted)
    }

    /// Record `stored` (in order) in `done` as seqs `top + 1...`, and
    /// remember the room's new top.
    fn stored_after(
        &self,
        room: i64,
        top: i64,
        stored: &[(usize, &NewMessage)],
        done: &mut Vec<(usize, Appended)>,
    ) {
        for (i, (pos, m)) in stored.iter().enumerate() {
            done.push((
                *pos,
                Appended::New {
                    seq: top + 1 + i as i64,
                    ts: m.created_at,
                },
            ));
        }
        if !stored.is_empty() {
            self.remember_top(room, top + stored.len() as i64);
        }
    }

    /// Store one room's appends the careful way: resends and repeats
    /// found first, then the rest numbered from the room's real top, again
    /// while another node keeps taking the seqs. `done` holds what the
    /// fast path already stored.
    async fn append_careful(
        &self,
        room: i64,
        mut todo: Vec<(usize, &NewMessage)>,
        mut done: Vec<(usize, Appended)>,
    ) -> Result<Vec<(usize, Appended)>, StoreError> {
        for _ in 0..MAX_ROUNDS {
            // Resends of stored messages, and repeats within the batch.
            let keys: Vec<(i64, &str)> = todo
                .iter()
                .filter_map(|(_, m)| m.client_msg_id.as_deref().map(|c| (m.sender_id, c)))
                .collect();
            let mut known = self.stored(room, &keys).await?;
            let mut fresh: Vec<(usize, &NewMessage)> = Vec::new();
            let mut repeats: Vec<(usize, &NewMessage)> = Vec::new();
            let mut first_in_batch: HashMap<(i64, String), usize> = HashMap::new();
            for (pos, m) in todo {
                if let Some(cid) = &m.client_msg_id {
                    let key = (m.sender_id, cid.clone());
                    if let Some((seq, ts)) = known.get(&key) {
                        done.push((pos, Appended::Duplicate { seq: *seq, ts: *ts }));
                        continue;
                    }
                    if first_in_batch.contains_key(&key) {
                        repeats.push((pos, m));
                        continue;
                    }
                    first_in_batch.insert(key, pos);
                }
                fresh.push((pos, m));
            }
            let top = self.top_seq(room).await?;
            let inserted = self.insert_after(room, top, &fresh, &mut done).await?;
            for (i, (_, m)) in fresh.iter().enumerate().take(inserted) {
                if let Some(cid) = &m.client_msg_id {
                    known.insert(
                        (m.sender_id, cid.clone()),
                        (top + 1 + i as i64, m.created_at),
                    );
                }
            }
            let mut next: Vec<(usize, &NewMessage)> = fresh.into_iter().skip(inserted).collect();
            for (pos, m) in repeats {
                let key = (m.sender_id, m.client_msg_id.clone().unwrap_or_default());
                match known.get(&key) {
                    Some((seq, ts)) => done.push((pos, Appended::Duplicate { seq: *seq, ts: *ts })),
                    // Its first copy lost a seq race: both go round again.
                    None => next.push((pos, m)),
                }
            }
            todo = next;
            todo.sort_by_key(|(pos, _)| *pos);
            if todo.is_empty() {
                return Ok(done);
            }
        }
        Err(StoreError::Other(format!(
            "room {room}: could not claim seqs after {MAX_ROUNDS} rounds"
        )))
    }
}

#[async_trait]
impl MessageStore for MongoMessages {
    async fn write_batch(&self, writes: &[ChatWrite]) -> Result<Vec<Option<Appended>>, StoreError> {
        let mut by_room: BTreeMap<i64, Vec<(usize, &NewMessage)>> = BTreeMap::new();
        let mut reads: HashMap<(i64, i64), i64> = HashMap::new();
        for (pos, w) in writes.iter().enumerate() {
            if let Some(m) = crate::store::append_or_note_read(w, &mut reads) {
                by_room.entry(m.room_id).or_default().push((pos, m));
            }
        }
        let mut results: Vec<Option<Appended>> = vec![None; writes.len()];
        let mut advanced: Vec<(i64, i64, i64)> = Vec::new();
        // Fast path, one round trip for the whole batch: every room whose
        // top this node remembers is numbered from it, and all of them go
        // in one ordered insert, room after room. The unique indexes object
        // to anything wrong (a resend, a repeat, a seq another node took):
        // the insert stops there, and that room's rest and every room after
        // it go the careful way. One insert per batch instead of one per
        // room matters: each is a journal wait on the server.
        let mut fast: Vec<(i64, i64, Vec<(usize, &NewMessage)>, usize)> = Vec::new();
        let mut careful: Vec<(i64, Vec<(usize, &NewMessage)>, Vec<(usize, Appended)>)> = Vec::new();
        let mut docs: Vec<Document> = Vec::new();
        for (room, todo) in by_room {
            match self.remembered_top(room) {
                Some(top) => {
                    let start = docs.len();
                    docs.extend(documents(top, &todo));
                    fast.push((room, top, todo, start));
                }
                None => careful.push((room, todo, Vec::new())),
            }
        }
        let inserted = self.insert_ordered(docs).await?;
        let mut done: Vec<(i64, Vec<(usize, Appended)>)> = Vec::new();
        for (room, top, mut todo, start) in fast {
            let took = inserted.saturating_sub(start).min(todo.len());
            let mut stored = Vec::with_capacity(todo.len());
            self.stored_after(room, top, &todo[..took], &mut stored);
            todo.drain(..took);
            if todo.is_empty() {
                done.push((room, stored));
            } else {
                careful.push((room, todo, stored));
            }
        }
        // Rooms are independent: the careful ones claim their seqs
        // concurrently (the driver's pool bounds the parallelism).
        done.extend(
            futures_util::future::try_join_all(careful.into_iter().map(
                |(room, todo, stored)| async move {
                    Ok::<_, StoreError>((room, self.append_careful(room, todo, stored).await?))
                },
            ))
            .await?,
        );
        for (room, outcomes) in done {
            let mut top = None;
            for (pos, outcome) in outcomes {
                if let (Appended::New { seq, ts }, ChatWrite::Append(m)) = (outcome, &writes[pos]) {
                    crate::store::note_read(&mut reads, room, m.sender_id, seq);
                    top = Some(top.map_or((seq, ts), |(s, t): (i64, i64)| (s.max(seq), t.max(ts))));
                }
                results[pos] = Some(outcome);
            }
            if let Some((seq, ts)) = top {
                advanced.push((room, seq, ts));
            }
        }
        let moves: Vec<(i64, i64, i64)> = reads.into_iter().map(|((r, u), s)| (r, u, s)).collect();
        self.sql.chat().advance_rooms(&advanced, &moves).await?;
        Ok(results)
    }

    async fn messages_after(
        &self,
        room_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let docs: Vec<Document> = self
            .messages
            .find(doc! {"room": room_id, "seq": {"$gt": after}})
            .sort(doc! {"seq": 1})
            .limit(limit.max(1))
            .await
            .map_err(err)?
            .try_collect()
            .await
            .map_err(err)?;
        docs.iter().map(record).collect()
    }

    async fn messages_before(
        &self,
        room_id: i64,
        before: i64,
        floor: i64,
        limit: i64,
    ) -> Result<Vec<MessageRecord>, StoreError> {
        let docs: Vec<Document> = self
            .messages
            .find(doc! {"room": room_id, "seq": {"$gt": floor, "$lt": before}})
            .sort(doc! {"seq": -1})
            .limit(limit.max(1))
            .await
            .map_err(err)?
            .try_collect()
            .await
            .map_err(err)?;
        let mut out: Vec<MessageRecord> = docs.iter().map(record).collect::<Result<_, _>>()?;
        out.reverse();
        Ok(out)
    }

    async fn message(&self, room_id: i64, seq: i64) -> Result<Option<MessageRecord>, StoreError> {
        self.messages
            .find_one(doc! {"room": room_id, "seq": seq})
            .await
            .map_err(err)?
            .as_ref()
            .map(record)
            .transpose()
    }

    async fn update_message(
        &self,
        room_id: i64,
        seq: i64,
        body: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let change = match body {
            Some(body) => doc! {"$set": {"body": body, "edited_at": now}},
            None => doc! {"$set": {"body": "", "payload": Bson::Null, "deleted_at": now}},
        };
        self.messages
            .update_one(doc! {"room": room_id, "seq": seq}, change)
            .await
            .map_err(err)?;
        Ok(())
    }
}
