//! Favourites: mark and unmark a listing.

use super::*;

impl Market {
    pub async fn favourite(
        &self,
        user: UserId,
        id: ListingId,
        on: bool,
    ) -> Result<(), MarketError> {
        let user = user.get();
        let id = id.get();
        let l = self.live_listing(id).await?;
        if l.status == ListingStatus::Hidden && l.seller_id != user {
            return Err(MarketError::not_found("listing"));
        }
        let changed = if on {
            self.sql.market().add_favourite(user, id, now_ms()).await?
        } else {
            self.sql.market().remove_favourite(user, id).await?
        };
        if changed {
            self.invalidate_feed().await;
        }
        Ok(())
    }

    pub async fn favourites(&self, user: UserId) -> Result<Vec<FeedItem>, MarketError> {
        let user = user.get();
        let rows = self.sql.market().favourites(user).await?;
        let visible: Vec<ListingRecord> = rows
            .into_iter()
            .filter(|l| l.status != ListingStatus::Hidden || l.seller_id == user)
            .collect();
        self.feed_items(&visible).await
    }
}
