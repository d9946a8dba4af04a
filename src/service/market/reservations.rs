//! Reservations (also timed, with their timers), and sales.

use super::*;

impl Market {
    /// Reserve for a buyer who chatted about it, optionally until a time.
    /// Replaces an earlier reservation (whose timer never fires then).
    pub async fn reserve(
        &self,
        seller: UserId,
        id: ListingId,
        buyer: UserId,
        until: Option<i64>,
    ) -> Result<ListingDetail, MarketError> {
        let seller = seller.get();
        let id = id.get();
        let buyer = buyer.get();
        let l = self.owned_listing(seller, id).await?;
        if listing::transition(l.status, Transition::Reserve).is_none() {
            return Err(invalid_state(format!(
                "a {} listing cannot be reserved",
                l.status.as_str()
            )));
        }
        let now = now_ms();
        let max_secs = self.reservation_max.as_secs();
        let latest =
            now.saturating_add(i64::try_from(max_secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        match until {
            Some(u) if u <= now => MarketError::check_fields(FieldErrors::from([(
                "until",
                "must be in the future".to_string(),
            )]))?,
            Some(u) if u > latest => MarketError::check_fields(FieldErrors::from([(
                "until",
                format!("must be at most {max_secs} s from now"),
            )]))?,
            _ => {}
        }
        if buyer == seller
            || self
                .sql
                .market()
                .listing_room_of(id, buyer)
                .await?
                .is_none()
        {
            return Err(MarketError::new(
                Code::InvalidParameter,
                "the buyer must have a chat about this listing",
            ));
        }
        let buyer_user = self.active_user(buyer).await?;
        let reserved = |reservation| ListingEvent::Reserved {
            listing: id,
            seller,
            buyer,
            buyer_nickname: buyer_user.nickname.clone(),
            until,
            reservation,
        };
        let events = |reservation| event_jobs(&reserved(reservation));
        let (reservation, replaced) = self
            .sql
            .market()
            .reserve(id, buyer, until, &events, now)
            .await?;
        if let Some(old) = replaced {
            self.timers.do_send(Cancel { id: old.id });
        }
        if let Some(at) = until {
            self.timers.do_send(Schedule {
                id: reservation,
                at_ms: at,
            });
        }
        self.emit(&l, reserved(reservation)).await?;
        self.invalidate_feed().await;
        self.detail_of(Some(seller), id, false).await
    }

    /// End reservation `r` of listing `l` as expired or cancelled, its bus
    /// event written with the change, and post why in the listing's chats.
    /// False if it had ended already (nothing written, nothing posted).
    async fn end_reservation_as(
        &self,
        l: &ListingRecord,
        r: &crate::store::sql::ReservationRecord,
        expired: bool,
    ) -> Result<bool, MarketError> {
        let (listing, seller, buyer, reservation) = (l.id, l.seller_id, r.buyer_id, r.id);
        let (status, event) = if expired {
            let event = ListingEvent::ReservationExpired {
                listing,
                seller,
                buyer,
                reservation,
            };
            ("expired", event)
        } else {
            let event = ListingEvent::ReservationCancelled {
                listing,
                seller,
                buyer,
                reservation,
            };
            ("cancelled", event)
        };
        if !self
            .sql
            .market()
            .end_reservation(r.id, status, &event_jobs(&event), now_ms())
            .await?
        {
            return Ok(false);
        }
        self.emit(l, event).await?;
        Ok(true)
    }

    /// Cancel the active reservation of a listing (timer cancelled) and
    /// post why. Returns whether there was one.
    pub(super) async fn end_active_reservation(
        &self,
        l: &ListingRecord,
    ) -> Result<bool, MarketError> {
        let Some(r) = self.sql.market().active_reservation(l.id).await? else {
            return Ok(false);
        };
        self.timers.do_send(Cancel { id: r.id });
        self.end_reservation_as(l, &r, false).await
    }

    /// Cancel the reservation: the seller, or the buyer it is for.
    pub async fn cancel_reservation(&self, user: UserId, id: ListingId) -> Result<(), MarketError> {
        let user = user.get();
        let id = id.get();
        let l = self.live_listing(id).await?;
        let r = self
            .sql
            .market()
            .active_reservation(id)
            .await?
            .ok_or_else(|| MarketError::not_found("reservation"))?;
        if user != l.seller_id && user != r.buyer_id {
            return Err(not_owner());
        }
        self.end_active_reservation(&l).await?;
        self.invalidate_feed().await;
        Ok(())
    }

    /// Timer callback: the reservation's time is up. Idempotent: only the
    /// first call for a still-active reservation changes anything.
    pub async fn expire_reservation(&self, reservation_id: i64) {
        if let Err(e) = self.try_expire(reservation_id).await {
            tracing::error!(reservation_id, error = %e, "expiring a reservation failed");
        }
    }

    pub(super) async fn try_expire(&self, reservation_id: i64) -> Result<(), MarketError> {
        let Some(r) = self.sql.market().reservation(reservation_id).await? else {
            return Ok(());
        };
        let Some(l) = self.sql.market().listing(r.listing_id).await? else {
            return Ok(());
        };
        if !self.end_reservation_as(&l, &r, true).await? {
            return Ok(());
        }
        tracing::info!(reservation = r.id, listing = l.id, "reservation expired");
        self.invalidate_feed().await;
        Ok(())
    }

    /// Re-arm the timers of every timed reservation (at start).
    pub async fn restore_timers(&self) -> Result<usize, MarketError> {
        let timed = self.sql.market().timed_reservations().await?;
        for r in &timed {
            if let Some(at) = r.until {
                self.timers.do_send(Schedule {
                    id: r.id,
                    at_ms: at,
                });
            }
        }
        Ok(timed.len())
    }

    /// How many reservation timers are armed on this node; `None` once the
    /// timer actor has stopped (the application shut down).
    pub async fn pending_timers(&self) -> Option<usize> {
        self.timers.send(crate::actors::timers::Pending).await.ok()
    }

    pub async fn mark_sold(
        &self,
        seller: UserId,
        id: ListingId,
        buyer: Option<UserId>,
    ) -> Result<ListingDetail, MarketError> {
        let seller = seller.get();
        let id = id.get();
        let buyer = buyer.map(UserId::get);
        let l = self.owned_listing(seller, id).await?;
        if listing::transition(l.status, Transition::Sell).is_none() {
            return Err(invalid_state(format!(
                "a {} listing cannot be sold",
                l.status.as_str()
            )));
        }
        if let Some(b) = buyer {
            if b == seller || self.sql.market().listing_room_of(id, b).await?.is_none() {
                return Err(MarketError::new(
                    Code::InvalidParameter,
                    "the buyer must have a chat about this listing",
                ));
            }
        }
        let reservation = self.sql.market().active_reservation(id).await?;
        let event = ListingEvent::Sold {
            listing: id,
            seller,
            buyer,
        };
        if !self
            .sql
            .market()
            .mark_sold(id, buyer, &event_jobs(&event), now_ms())
            .await?
        {
            return Err(MarketError::new(
                Code::Conflict,
                "the listing changed meanwhile; retry",
            ));
        }
        if let Some(r) = reservation {
            self.timers.do_send(Cancel { id: r.id });
        }
        self.emit(&l, event).await?;
        self.invalidate_feed().await;
        self.detail_of(Some(seller), id, false).await
    }
}

/// The bus event of an order's hold on a listing (the order's transaction
/// writes it with the reservation).
pub fn hold_jobs(listing: ListingId, seller: i64, buyer: UserId, reservation: i64) -> Vec<NewJob> {
    event_jobs(&ListingEvent::Reserved {
        listing: listing.get(),
        seller,
        buyer: buyer.get(),
        buyer_nickname: String::new(),
        until: None,
        reservation,
    })
}

/// The bus event of a listing sold through a paid order (the payment's
/// transaction writes it).
pub fn sold_jobs(listing: ListingId, seller: i64, buyer: UserId) -> Vec<NewJob> {
    event_jobs(&ListingEvent::Sold {
        listing: listing.get(),
        seller,
        buyer: Some(buyer.get()),
    })
}

/// Holds that shop orders of used listings put on them (`service::orders`):
/// the store reserved the listing in the order's transaction (with its bus
/// event, `hold_jobs`); these tell the listing's chats, and end the hold
/// when the order does.
impl Market {
    /// A buyer's order now holds the listing (reserved for them, untimed:
    /// the order's expiry ends it).
    pub async fn order_hold_started(
        &self,
        listing: ListingId,
        buyer: UserId,
        reservation: i64,
    ) -> Result<(), MarketError> {
        let Some(l) = self.sql.market().listing(listing.get()).await? else {
            return Ok(());
        };
        let buyer_user = self.active_user(buyer.get()).await?;
        self.emit(
            &l,
            ListingEvent::Reserved {
                listing: l.id,
                seller: l.seller_id,
                buyer: buyer.get(),
                buyer_nickname: buyer_user.nickname,
                until: None,
                reservation,
            },
        )
        .await?;
        self.invalidate_feed().await;
        Ok(())
    }

    /// The order was paid: the store sold the listing in the payment's
    /// transaction (with `sold_jobs`); tell its chats.
    pub async fn order_sold(&self, listing: ListingId, buyer: UserId) -> Result<(), MarketError> {
        let Some(l) = self.sql.market().listing(listing.get()).await? else {
            return Ok(());
        };
        self.emit(
            &l,
            ListingEvent::Sold {
                listing: l.id,
                seller: l.seller_id,
                buyer: Some(buyer.get()),
            },
        )
        .await?;
        self.invalidate_feed().await;
        Ok(())
    }

    /// A paid used-listing order was cancelled and refunded: the cancel's
    /// transaction put the listing back on sale; the feed learns it.
    pub async fn order_refunded(&self, _listing: ListingId) {
        self.invalidate_feed().await;
    }

    /// The order ended unpaid: end its reservation (if it is still the
    /// active one; idempotent) and put the listing back on sale.
    pub async fn order_hold_ended(
        &self,
        reservation: i64,
        expired: bool,
    ) -> Result<(), MarketError> {
        let Some(r) = self.sql.market().reservation(reservation).await? else {
            return Ok(());
        };
        let Some(l) = self.sql.market().listing(r.listing_id).await? else {
            return Ok(());
        };
        if !self.end_reservation_as(&l, &r, expired).await? {
            return Ok(());
        }
        self.invalidate_feed().await;
        Ok(())
    }
}
