//! The direct chat about a listing between a buyer and its seller.

use super::*;

impl Market {
    /// The buyer's chat with the seller about a listing (get or create).
    pub async fn chat(
        &self,
        buyer: UserId,
        id: ListingId,
    ) -> Result<(RoomRecord, bool), MarketError> {
        let buyer = buyer.get();
        let id = id.get();
        let l = self.live_listing(id).await?;
        if l.status == ListingStatus::Hidden {
            return Err(MarketError::not_found("listing"));
        }
        if l.seller_id == buyer {
            return Err(MarketError::new(Code::Conflict, "this is your own listing"));
        }
        self.active_user(l.seller_id).await?;
        if self
            .sql
            .market()
            .blocked_between(buyer, l.seller_id)
            .await?
        {
            return Err(MarketError::new(
                Code::Blocked,
                "you cannot chat with this user",
            ));
        }
        let key = format!("{}:{}", chat::direct_key(buyer, l.seller_id), l.id);
        let (room, created) = self
            .sql
            .chat()
            .get_or_create_direct(&key, buyer, l.seller_id, Some(l.id), now_ms())
            .await?;
        if created {
            for (me, them) in [(buyer, l.seller_id), (l.seller_id, buyer)] {
                self.hub.room_added(me, room, RoomKind::Direct, Some(them));
            }
            self.invalidate_feed().await;
        }
        let record = self
            .sql
            .chat()
            .room(room)
            .await?
            .ok_or_else(|| MarketError::internal("room vanished"))?;
        Ok((record, created))
    }

    /// Who chatted about a listing (seller only).
    pub async fn chats(
        &self,
        seller: UserId,
        id: ListingId,
    ) -> Result<Vec<(i64, UserRecord, i64)>, MarketError> {
        let seller = seller.get();
        let id = id.get();
        let l = self.owned_listing(seller, id).await?;
        let mut out = Vec::new();
        for (room, buyer, last) in self.sql.market().listing_chats(l.id, seller).await? {
            if let Some(u) = self.sql.accounts().user_by_id(buyer).await? {
                out.push((room, u, last));
            }
        }
        Ok(out)
    }
}
