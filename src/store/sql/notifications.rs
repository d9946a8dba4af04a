//! Notifications and their preferences.

use super::outbox::enqueue;
use super::{is_unique_violation, retrying, NewJob};
use crate::store::sql::NotificationsSql;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: i64,
    pub user_id: i64,
    pub event_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: String,
    pub in_app: bool,
    pub read_at: Option<i64>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    pub user_id: i64,
    pub event_id: &'a str,
    pub kind: &'a str,
    pub title: &'a str,
    pub body: &'a str,
    pub link: &'a str,
    pub in_app: bool,
    /// Also mail it: an `email_send` outbox job is written with the row
    /// (only by the insert that creates it, so one email per row).
    pub email: bool,
}

/// The outbox kind that mails one notification.
pub const JOB_EMAIL_SEND: &str = "email_send";

/// What [`SqlStore::add_keyword`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordAdd {
    Added,
    /// The user has this keyword already.
    Exists,
    /// The user has the maximum of keywords.
    Full,
}

type Row = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
);
const COLUMNS: &str = "id, user_id, event_id, kind, title, body, link, in_app, read_at, created_at";

fn record(r: Row) -> NotificationRecord {
    NotificationRecord {
        id: r.0,
        user_id: r.1,
        event_id: r.2,
        kind: r.3,
        title: r.4,
        body: r.5,
        link: r.6,
        in_app: r.7 != 0,
        read_at: r.8,
        created_at: r.9,
    }
}

impl NotificationsSql<'_> {
    /// Insert a notification unless this event already gave this user one.
    /// Returns the row and whether this call created it.
    pub async fn insert_notification(
        &self,
        n: &NewNotification<'_>,
        now: i64,
    ) -> Result<(NotificationRecord, bool), StoreError> {
        if let Some(existing) = self
            .notification_of_event(n.event_id, n.user_id, false)
            .await?
        {
            return Ok((existing, false));
        }
        let title: String = n.title.chars().take(200).collect();
        let body: String = n.body.chars().take(2000).collect();
        let link: String = n.link.chars().take(500).collect();
        let attempt = async {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO notifications (user_id, event_id, kind, title, body, link, in_app, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(n.user_id)
            .bind(n.event_id)
            .bind(n.kind)
            .bind(&title)
            .bind(&body)
            .bind(&link)
            .bind(i64::from(n.in_app))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if n.email {
                let (id,): (i64,) = sqlx::query_as(
                    "SELECT id FROM notifications WHERE event_id = ? AND user_id = ?",
                )
                .bind(n.event_id)
                .bind(n.user_id)
                .fetch_one(&mut *tx)
                .await?;
                enqueue(
                    &mut tx,
                    &NewJob {
                        kind: JOB_EMAIL_SEND,
                        payload: serde_json::json!({ "notification": id }),
                        dedup_key: format!("{JOB_EMAIL_SEND}:{id}"),
                        due_at: now,
                    },
                    now,
                )
                .await?;
            }
            self.outbox().commit_with_jobs(tx).await?;
            Ok::<(), StoreError>(())
        };
        let created = match attempt.await {
            Ok(()) => true,
            Err(StoreError::Sql(e)) if is_unique_violation(&e) => false,
            Err(e) => return Err(e),
        };
        match self
            .notification_of_event(n.event_id, n.user_id, true)
            .await?
        {
            Some(row) => Ok((row, created)),
            None => Err(StoreError::Other(
                "notification vanished after insert".into(),
            )),
        }
    }

    pub async fn notification(&self, id: i64) -> Result<Option<NotificationRecord>, StoreError> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM notifications WHERE id = ?"))
                .bind(id)
                .fetch_optional(self.writer())
                .await?;
        Ok(row.map(record))
    }

    /// The row this event gave this user. `locking`: a locking read (in a
    /// transaction of its own), which sees the latest committed row rather
    /// than a snapshot that may predate an insert that beat ours (seen on
    /// MariaDB with two nodes inserting the same notification).
    async fn notification_of_event(
        &self,
        event_id: &str,
        user_id: i64,
        locking: bool,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM notifications WHERE event_id = ? AND user_id = ?{}",
            if locking { self.for_update() } else { "" }
        );
        let query = sqlx::query_as::<_, Row>(&sql).bind(event_id).bind(user_id);
        let row = if locking {
            let mut tx = self.begin_write().await?;
            let row = query.fetch_optional(&mut *tx).await?;
            tx.commit().await?;
            row
        } else {
            query.fetch_optional(self.writer()).await?
        };
        Ok(row.map(record))
    }

    /// A user's inbox, newest first, keyset-paged by id.
    pub async fn notifications(
        &self,
        user_id: i64,
        unread_only: bool,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = ? AND in_app = 1 \
             AND (? = 0 OR read_at IS NULL) AND id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(user_id)
        .bind(i64::from(unread_only))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(record).collect())
    }

    /// A user's notifications after `after`, oldest first (SSE resume).
    pub async fn notifications_after(
        &self,
        user_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE user_id = ? AND in_app = 1 AND id > ? \
             ORDER BY id LIMIT ?"
        ))
        .bind(user_id)
        .bind(after)
        .bind(limit)
        .fetch_all(self.writer())
        .await?;
        Ok(rows.into_iter().map(record).collect())
    }

    pub async fn unread_notifications(&self, user_id: i64) -> Result<i64, StoreError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM notifications WHERE user_id = ? AND in_app = 1 AND read_at IS NULL",
        )
        .bind(user_id)
        .fetch_one(self.writer())
        .await?;
        Ok(n)
    }

    /// Mark one of the user's notifications read; false if it is not theirs.
    pub async fn read_notification(
        &self,
        user_id: i64,
        id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let exists: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM notifications WHERE id = ? AND user_id = ? AND in_app = 1",
        )
        .bind(id)
        .bind(user_id)
        .fetch_optional(self.writer())
        .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("UPDATE notifications SET read_at = ? WHERE id = ? AND read_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(true)
    }

    pub async fn read_all_notifications(&self, user_id: i64, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE notifications SET read_at = ? WHERE user_id = ? AND read_at IS NULL AND in_app = 1",
        )
        .bind(now)
        .bind(user_id)
        .execute(self.writer())
        .await?;
        Ok(r.rows_affected())
    }

    /// Delete from the inbox. The row stays as the event's dedup key
    /// (hidden), so a redelivery does not bring it back.
    pub async fn delete_notification(
        &self,
        user_id: i64,
        id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE notifications SET in_app = 0, read_at = COALESCE(read_at, ?) \
             WHERE id = ? AND user_id = ? AND in_app = 1",
        )
        .bind(now)
        .bind(id)
        .bind(user_id)
        .execute(self.writer())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The user's explicit preferences: (kind, in_app, email).
    pub async fn notification_prefs(
        &self,
        user_id: i64,
    ) -> Result<Vec<(String, bool, bool)>, StoreError> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT kind, in_app, email FROM notification_prefs WHERE user_id = ? ORDER BY kind",
        )
        .bind(user_id)
        .fetch_all(self.writer())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(k, a, e)| (k, a != 0, e != 0))
            .collect())
    }

    pub async fn set_notification_pref(
        &self,
        user_id: i64,
        kind: &str,
        in_app: bool,
        email: bool,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM notification_prefs WHERE user_id = ? AND kind = ?")
            .bind(user_id)
            .bind(kind)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO notification_prefs (user_id, kind, in_app, email) VALUES (?, ?, ?, ?)",
        )
        .bind(user_id)
        .bind(kind)
        .bind(i64::from(in_app))
        .bind(i64::from(email))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Active administrators.
    pub async fn admin_ids(&self) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM users WHERE role = 'admin' AND status = 'active' ORDER BY id",
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Active users after `after`, by id (broadcasts walk them in pages).
    pub async fn active_user_ids(&self, after: i64, limit: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT id FROM users WHERE status = 'active' AND id > ? ORDER BY id LIMIT ?",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

impl NotificationsSql<'_> {
    /// A user's keywords, oldest first: (keyword, created_at).
    pub async fn keywords(&self, user_id: i64) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT keyword, created_at FROM keyword_alerts WHERE user_id = ? ORDER BY created_at, keyword",
        )
        .bind(user_id)
        .fetch_all(self.writer())
        .await?)
    }

    /// Save a keyword unless the user has `max` already: the count is part
    /// of the insert, so parallel saves cannot overshoot.
    pub async fn add_keyword(
        &self,
        user_id: i64,
        keyword: &str,
        max: usize,
        now: i64,
    ) -> Result<KeywordAdd, StoreError> {
        retrying("add_keyword", || async {
            let mut tx = self.begin_write().await?;
            // One user's saves one at a time (MySQL: the user's row lock),
            // so parallel saves queue instead of deadlocking on gap locks.
            self.lock_user(&mut tx, user_id).await?;
            let r = sqlx::query(
                "INSERT INTO keyword_alerts (user_id, keyword, created_at) \
                 SELECT ?, ?, ? FROM (SELECT 1 AS one) AS one \
                 WHERE (SELECT COUNT(*) FROM keyword_alerts WHERE user_id = ?) < ?",
            )
            .bind(user_id)
            .bind(keyword)
            .bind(now)
            .bind(user_id)
            .bind(i64::try_from(max).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await;
            let outcome = match r {
                Ok(done) if done.rows_affected() == 1 => KeywordAdd::Added,
                Ok(_) => KeywordAdd::Full,
                Err(e) if is_unique_violation(&e) => KeywordAdd::Exists,
                Err(e) => return Err(e.into()),
            };
            tx.commit().await?;
            Ok(outcome)
        })
        .await
    }

    /// May `watcher` be told of `seller`'s listing (event `event_id`)?
    /// Yes while fewer than `max` alerts about that seller reached them in
    /// the last hour (the row is written by the same conditional insert),
    /// or when this event was counted already (another node, a retry).
    pub async fn take_alert_quota(
        &self,
        watcher: i64,
        seller: i64,
        event_id: &str,
        max: u32,
        now: i64,
    ) -> Result<bool, StoreError> {
        let hour_ago = now - 3_600_000;
        let mut tx = self.begin_write().await?;
        // One watcher's count at a time (MySQL: the user's row lock).
        self.lock_user(&mut tx, watcher).await?;
        let r = sqlx::query(
            "INSERT INTO keyword_alert_log (watcher_id, event_id, seller_id, created_at) \
             SELECT ?, ?, ?, ? FROM (SELECT 1 AS one) AS one \
             WHERE (SELECT COUNT(*) FROM keyword_alert_log \
                    WHERE watcher_id = ? AND seller_id = ? AND created_at > ?) < ?",
        )
        .bind(watcher)
        .bind(event_id)
        .bind(seller)
        .bind(now)
        .bind(watcher)
        .bind(seller)
        .bind(hour_ago)
        .bind(i64::from(max))
        .execute(&mut *tx)
        .await;
        let taken = match r {
            Ok(done) => done.rows_affected() == 1,
            Err(e) if is_unique_violation(&e) => true,
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        sqlx::query("DELETE FROM keyword_alert_log WHERE created_at < ?")
            .bind(now - 7_200_000)
            .execute(self.writer())
            .await?;
        Ok(taken)
    }

    pub async fn remove_keyword(&self, user_id: i64, keyword: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM keyword_alerts WHERE user_id = ? AND keyword = ?")
            .bind(user_id)
            .bind(keyword)
            .execute(self.writer())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// (user, keyword) of every saved keyword found in `text` (lower-cased
    /// by the caller), by active users.
    pub async fn keyword_matches(&self, text: &str) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT k.user_id, k.keyword FROM keyword_alerts k JOIN users u ON u.id = k.user_id \
             WHERE u.status = 'active' AND INSTR(?, k.keyword) > 0 ORDER BY k.user_id, k.keyword",
        )
        .bind(text)
        .fetch_all(self.reader())
        .await?)
    }

    /// Who favourited a listing.
    pub async fn favourited_by(&self, listing_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT user_id FROM favourites WHERE listing_id = ? ORDER BY user_id")
                .bind(listing_id)
                .fetch_all(self.reader())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}

impl NotificationsSql<'_> {
    /// Members of a room as the chat notifier needs them:
    /// (user, last read seq, muted).
    pub async fn chat_alarm_targets(
        &self,
        room_id: i64,
    ) -> Result<Vec<(i64, i64, bool)>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT user_id, last_read_seq, muted FROM room_members WHERE room_id = ? ORDER BY user_id",
        )
        .bind(room_id)
        .fetch_all(self.writer())
        .await?;
        Ok(rows.into_iter().map(|(u, r, m)| (u, r, m != 0)).collect())
    }

    /// Mute or unmute a room for a member; false if not a member.
    pub async fn set_room_muted(
        &self,
        room_id: i64,
        user_id: i64,
        muted: bool,
    ) -> Result<bool, StoreError> {
        let exists: Option<(i64,)> =
            sqlx::query_as("SELECT user_id FROM room_members WHERE room_id = ? AND user_id = ?")
                .bind(room_id)
                .bind(user_id)
                .fetch_optional(self.writer())
                .await?;
        if exists.is_none() {
            return Ok(false);
        }
        sqlx::query("UPDATE room_members SET muted = ? WHERE room_id = ? AND user_id = ?")
            .bind(i64::from(muted))
            .bind(room_id)
            .bind(user_id)
            .execute(self.writer())
            .await?;
        Ok(true)
    }

    /// The chat notification of one window: created, or (still unread)
    /// brought up to date with the latest count and preview.
    pub async fn upsert_chat_notification(
        &self,
        n: &NewNotification<'_>,
        now: i64,
    ) -> Result<(NotificationRecord, bool), StoreError> {
        let (row, created) = self.insert_notification(n, now).await?;
        if created || row.read_at.is_some() || (row.title == n.title && row.body == n.body) {
            return Ok((row, created));
        }
        let title: String = n.title.chars().take(200).collect();
        let body: String = n.body.chars().take(2000).collect();
        sqlx::query(
            "UPDATE notifications SET title = ?, body = ? WHERE id = ? AND read_at IS NULL",
        )
        .bind(title)
        .bind(body)
        .bind(row.id)
        .execute(self.writer())
        .await?;
        match self.notification(row.id).await? {
            Some(r) => Ok((r, false)),
            None => Ok((row, false)),
        }
    }
}

/// Durable consumers' places on the bus.
impl NotificationsSql<'_> {
    /// Partition -> next offset to read, for `consumer`.
    pub async fn consumer_positions(
        &self,
        consumer: &str,
    ) -> Result<std::collections::HashMap<i32, i64>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT partition_id, next_offset FROM consumer_positions WHERE consumer = ?",
        )
        .bind(consumer)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(p, o)| Some((i32::try_from(p).ok()?, o)))
            .collect())
    }

    /// Move `consumer`'s places forward (never back: several nodes save
    /// theirs, and the furthest one counts, because every node handles
    /// every event before it saves past it).
    pub async fn save_consumer_positions(
        &self,
        consumer: &str,
        positions: &std::collections::HashMap<i32, i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        for (&partition, &next) in positions {
            for _ in 0..2 {
                let moved = sqlx::query(
                    "UPDATE consumer_positions SET next_offset = ?, updated_at = ? \
                     WHERE consumer = ? AND partition_id = ? AND next_offset < ?",
                )
                .bind(next)
                .bind(now)
                .bind(consumer)
                .bind(i64::from(partition))
                .bind(next)
                .execute(self.writer())
                .await?;
                if moved.rows_affected() > 0 {
                    break;
                }
                let inserted = sqlx::query(
                    "INSERT INTO consumer_positions (consumer, partition_id, next_offset, updated_at) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(consumer)
                .bind(i64::from(partition))
                .bind(next)
                .bind(now)
                .execute(self.writer())
                .await;
                match inserted {
                    Ok(_) => break,
                    // There is a row: at or past `next` (done), or another
                    // node inserted it meanwhile (update once more).
                    Err(e) if is_unique_violation(&e) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}
