//! Reports and the admin queue.

use super::*;
use crate::store::sql::MarketSql;

impl MarketSql<'_> {
    pub async fn insert_report(
        &self,
        reporter: i64,
        kind: &str,
        target: i64,
        room: Option<i64>,
        reason: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        let mut conn = self.writer().acquire().await?;
        sqlx::query(
            "INSERT INTO reports (reporter_id, target_kind, target_id, room_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(reporter)
        .bind(kind)
        .bind(target)
        .bind(room)
        .bind(reason)
        .bind(now)
        .execute(&mut *conn)
        .await?;
        last_insert_id(&mut conn, self.dialect()).await
    }

    pub async fn reports(
        &self,
        before_id: i64,
        limit: i64,
    ) -> Result<Vec<ReportRecord>, StoreError> {
        let rows: Vec<ReportRow> = sqlx::query_as(
            "SELECT id, reporter_id, target_kind, target_id, room_id, reason, created_at FROM reports \
             WHERE id < ? ORDER BY id DESC LIMIT ?",
        )
        .bind(before_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| ReportRecord {
                id: r.0,
                reporter_id: r.1,
                target_kind: r.2,
                target_id: r.3,
                room_id: r.4,
                reason: r.5,
                created_at: r.6,
            })
            .collect())
    }
}
