//! Direct rooms about a listing.

use super::*;
use crate::store::sql::MarketSql;

impl MarketSql<'_> {
    /// Buyers who chatted about a listing: (room, buyer, last activity).
    pub async fn listing_chats(
        &self,
        listing_id: i64,
        seller: i64,
    ) -> Result<Vec<(i64, i64, i64)>, StoreError> {
        let rows: Vec<(i64, i64, i64)> = sqlx::query_as(
            "SELECT r.id, m.user_id, r.last_activity_at FROM rooms r JOIN room_members m ON m.room_id = r.id \
             WHERE r.listing_id = ? AND m.user_id <> ? ORDER BY r.last_activity_at DESC",
        )
        .bind(listing_id)
        .bind(seller)
        .fetch_all(self.reader())
        .await?;
        Ok(rows)
    }

    /// Rooms about a listing.
    pub async fn listing_room_ids(&self, listing_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM rooms WHERE listing_id = ?")
            .bind(listing_id)
            .fetch_all(self.reader())
            .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// The room about `listing_id` between the seller and `buyer`, if any.
    pub async fn listing_room_of(
        &self,
        listing_id: i64,
        buyer: i64,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT r.id FROM rooms r JOIN room_members m ON m.room_id = r.id WHERE r.listing_id = ? AND m.user_id = ?",
        )
        .bind(listing_id)
        .bind(buyer)
        .fetch_optional(self.reader())
        .await?;
        Ok(row.map(|r| r.0))
    }
}
