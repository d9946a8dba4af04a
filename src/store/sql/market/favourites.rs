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
        self.toggle_favourite(user, listing_id, Some(now)).await
    }

    /// Remove a favourite; false if it was not there.
    pub async fn remove_favourite(&self, user: i64, listing_id: i64) -> Result<bool, StoreError> {
        self.toggle_favourite(user, listing_id, None).await
    }

    /// Add (`Some(now)`) or remove a favourite and move the listing's count
    /// with it, in one transaction; false if nothing changed.
    async fn toggle_favourite(
        &self,
        user: i64,
        listing_id: i64,
        add: Option<i64>,
    ) -> Result<bool, StoreError> {
        retrying("toggle_favourite", || async {
            let mut tx = self.begin_write().await?;
            let changed = match add {
                Some(now) => inserted(
                    sqlx::query(
                        "INSERT INTO favourites (user_id, listing_id, created_at) VALUES (?, ?, ?)",
                    )
                    .bind(user)
                    .bind(listing_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await,
                )?,
                None => {
                    sqlx::query("DELETE FROM favourites WHERE user_id = ? AND listing_id = ?")
                        .bind(user)
                        .bind(listing_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                        == 1
                }
            };
            if !changed {
                return Ok(false);
            }
            sqlx::query("UPDATE listings SET favourite_count = favourite_count + ? WHERE id = ?")
                .bind(if add.is_some() { 1i64 } else { -1 })
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
