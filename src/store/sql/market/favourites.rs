//! Favourites.

use super::*;
use crate::store::sql::MarketSql;

impl MarketSql<'_> {
    /// Add a favourite; false if it was there already.
    pub async fn add_favourite(
        &self,
        user: i64,
        listing_id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        retrying("add_favourite", || async {
            let mut tx = self.begin_write().await?;
            let added = sqlx::query(
                "INSERT INTO favourites (user_id, listing_id, created_at) VALUES (?, ?, ?)",
            )
            .bind(user)
            .bind(listing_id)
            .bind(now)
            .execute(&mut *tx)
            .await;
            if !inserted(added)? {
                return Ok(false);
            }
            sqlx::query("UPDATE listings SET favourite_count = favourite_count + 1 WHERE id = ?")
                .bind(listing_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    pub async fn remove_favourite(&self, user: i64, listing_id: i64) -> Result<bool, StoreError> {
        retrying("remove_favourite", || async {
            let mut tx = self.begin_write().await?;
            let r = sqlx::query("DELETE FROM favourites WHERE user_id = ? AND listing_id = ?")
                .bind(user)
                .bind(listing_id)
                .execute(&mut *tx)
                .await?;
            if r.rows_affected() == 0 {
                return Ok(false);
            }
            sqlx::query("UPDATE listings SET favourite_count = favourite_count - 1 WHERE id = ?")
                .bind(listing_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    pub async fn is_favourite(&self, user: i64, listing_id: i64) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT listing_id FROM favourites WHERE user_id = ? AND listing_id = ?",
        )
        .bind(user)
        .bind(listing_id)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }

    /// A user's favourite listings (not deleted), most recently added first.
    pub async fn favourites(&self, user: i64) -> Result<Vec<ListingRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LISTING_COLUMNS} FROM favourites f JOIN listings l ON l.id = f.listing_id \
             WHERE f.user_id = ? AND l.deleted_at IS NULL ORDER BY f.created_at DESC, l.id DESC LIMIT 500"
        ))
        .bind(user)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(listing).collect()
    }
}
