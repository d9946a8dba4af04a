//! Blocks between users.

use super::*;
use crate::store::sql::MarketSql;

impl MarketSql<'_> {
    pub async fn block(&self, blocker: i64, blocked: i64, now: i64) -> Result<(), StoreError> {
        let r =
            sqlx::query("INSERT INTO blocks (blocker_id, blocked_id, created_at) VALUES (?, ?, ?)")
                .bind(blocker)
                .bind(blocked)
                .bind(now)
                .execute(self.writer())
                .await;
        inserted(r).map(|_| ())
    }

    pub async fn unblock(&self, blocker: i64, blocked: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("DELETE FROM blocks WHERE blocker_id = ? AND blocked_id = ?")
            .bind(blocker)
            .bind(blocked)
            .execute(self.writer())
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// True if either user blocked the other.
    pub async fn blocked_between(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT blocker_id FROM blocks WHERE (blocker_id = ? AND blocked_id = ?) OR (blocker_id = ? AND blocked_id = ?) LIMIT 1",
        )
        .bind(a)
        .bind(b)
        .bind(b)
        .bind(a)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }

    pub async fn blocked_by(&self, user: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as(
            "SELECT blocked_id FROM blocks WHERE blocker_id = ? ORDER BY created_at",
        )
        .bind(user)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Direct rooms (plain and per listing) between two users.
    pub async fn direct_rooms_between(&self, a: i64, b: i64) -> Result<Vec<i64>, StoreError> {
        let key = crate::domain::chat::direct_key(a, b);
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT id FROM rooms WHERE direct_key = ? OR direct_key LIKE ?")
                .bind(&key)
                .bind(format!("{key}:%"))
                .fetch_all(self.reader())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }
}
