//! Reservations and sales (with row locks where two requests race).

use super::*;
use crate::store::sql::MarketSql;

impl MarketSql<'_> {
    /// Reserve `listing` for `buyer`, replacing an active reservation.
    /// Returns (new id, the replaced reservation). `events` are derived
    /// from the new reservation's id and written with it.
    pub async fn reserve(
        &self,
        listing_id: i64,
        buyer: i64,
        until: Option<i64>,
        events: JobsFor<'_>,
        now: i64,
    ) -> Result<(i64, Option<ReservationRecord>), StoreError> {
        retrying("reserve", || async {
        let mut tx = self.begin_write().await?;
        self.lock_listing(&mut tx, listing_id).await?;
        let old: Option<ReservationRow> = sqlx::query_as(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE active_listing_id = ?"
        ))
        .bind(listing_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(old) = &old {
            sqlx::query("UPDATE reservations SET status = 'replaced', active_listing_id = NULL, ended_at = ? WHERE id = ?")
                .bind(now)
                .bind(old.0)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO reservations (listing_id, buyer_id, active_listing_id, until, status, created_at) \
             VALUES (?, ?, ?, ?, 'active', ?)",
        )
        .bind(listing_id)
        .bind(buyer)
        .bind(listing_id)
        .bind(until)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let id = last_insert_id(&mut tx, self.dialect()).await?;
        sqlx::query("UPDATE listings SET status = 'reserved', updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(listing_id)
            .execute(&mut *tx)
            .await?;
        enqueue_all(&mut tx, &events(id), now).await?;
        self.outbox().commit_with_jobs(tx).await?;
        Ok((id, old.map(reservation)))
    })
        .await
    }

    /// Lock a listing's row for the rest of the transaction (MySQL):
    /// reservation and sale transactions take it first, so they serialise
    /// per listing and lock in one order.
    pub(super) async fn lock_listing(
        &self,
        conn: &mut sqlx::AnyConnection,
        listing_id: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "SELECT id FROM listings WHERE id = ?{}",
            self.for_update()
        ))
        .bind(listing_id)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(())
    }

    pub async fn active_reservation(
        &self,
        listing_id: i64,
    ) -> Result<Option<ReservationRecord>, StoreError> {
        let row: Option<ReservationRow> = sqlx::query_as(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE active_listing_id = ?"
        ))
        .bind(listing_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(reservation))
    }

    pub async fn reservation(&self, id: i64) -> Result<Option<ReservationRecord>, StoreError> {
        let row: Option<ReservationRow> = sqlx::query_as(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(reservation))
    }

    /// End reservation `id` if it is still active, with `status`
    /// (`cancelled` or `expired`), and put its listing back on sale.
    /// Returns false if it had already ended: this conditional update is
    /// what makes a timer fire at most once, and never after a cancel.
    /// `jobs` are written only if this call ended it.
    pub async fn end_reservation(
        &self,
        id: i64,
        status: &str,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("end_reservation", || async {
        let mut tx = self.begin_write().await?;
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT listing_id FROM reservations WHERE id = ? AND status = 'active'",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((listing_id,)) = row else {
            return Ok(false);
        };
        self.lock_listing(&mut tx, listing_id).await?;
        // The conditional update decides: of several nodes ending the same
        // reservation (timers fire on every node), exactly one changes it.
        let ended = sqlx::query("UPDATE reservations SET status = ?, active_listing_id = NULL, ended_at = ? WHERE id = ? AND status = 'active'")
            .bind(status)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if ended.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE listings SET status = 'selling', updated_at = ? WHERE id = ? AND status = 'reserved'")
            .bind(now)
            .bind(listing_id)
            .execute(&mut *tx)
            .await?;
        enqueue_all(&mut tx, jobs, now).await?;
        self.outbox().commit_with_jobs(tx).await?;
        Ok(true)
    })
        .await
    }

    /// Every active reservation with an expiry (to rebuild timers).
    pub async fn timed_reservations(&self) -> Result<Vec<ReservationRecord>, StoreError> {
        let rows: Vec<ReservationRow> = sqlx::query_as(&format!(
            "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE status = 'active' AND until IS NOT NULL"
        ))
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(reservation).collect())
    }

    /// Mark sold (to `buyer` if known); completes an active reservation.
    /// False if the listing was not selling or reserved (and `jobs` are
    /// then not written).
    pub async fn mark_sold(
        &self,
        listing_id: i64,
        buyer: Option<i64>,
        jobs: &[NewJob],
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("mark_sold", || async {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE listings SET status = 'sold', buyer_id = ?, sold_at = ?, updated_at = ? \
             WHERE id = ? AND status IN ('selling', 'reserved') AND deleted_at IS NULL",
        )
        .bind(buyer)
        .bind(now)
        .bind(now)
        .bind(listing_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE reservations SET status = 'completed', active_listing_id = NULL, ended_at = ? WHERE active_listing_id = ?",
        )
        .bind(now)
        .bind(listing_id)
        .execute(&mut *tx)
        .await?;
        enqueue_all(&mut tx, jobs, now).await?;
        self.outbox().commit_with_jobs(tx).await?;
        Ok(true)
    })
        .await
    }
}
