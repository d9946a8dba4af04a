//! The kinds of event on the alarms topic (`jangteo.alarms.v1`), one enum
//! that the producers (services, the room actors) and the consumer (the
//! notifications service and [`super::notification::notices`]) share, so a
//! kind is spelled once. On the wire an event keeps its dotted string
//! (`Event::kind`); a kind this build does not know parses to `None` and is
//! ignored, so a newer node's events do not upset an older one.
//!
//! The chat family between nodes (`jangteo.chat.v1`) has its own enum,
//! `actors::cluster::Remote`, with its encoder and decoder side by side.

use std::fmt;

/// An event on the alarms topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alarm {
    PaymentApproved,
    PaymentCancelled,
    PaymentFailed,
    /// A refund the provider did not take (admins hear of it).
    PaymentCancelFailed,
    /// A payment compensation given up (admins hear of it).
    PaymentCompensationFailed,
    OrderExpired,
    /// A paid order's buyer is asked for product reviews (delayed).
    OrderReviewRequest,
    /// An option crossed into low stock.
    StockLow,
    ReservationCreated,
    ReservationCancelled,
    ReservationExpired,
    ListingSold,
    ListingPriceChanged,
    /// A new listing (keyword alerts).
    ListingCreated,
    ReviewReceived,
    /// An administrator's announcement to everyone.
    AdminBroadcast,
    /// A room's latest message, for members who are not connected.
    ChatActivity,
    /// A user's unread count changed (every node tells its sessions).
    NotificationBadge,
}

impl Alarm {
    pub const ALL: [Alarm; 18] = [
        Alarm::PaymentApproved,
        Alarm::PaymentCancelled,
        Alarm::PaymentFailed,
        Alarm::PaymentCancelFailed,
        Alarm::PaymentCompensationFailed,
        Alarm::OrderExpired,
        Alarm::OrderReviewRequest,
        Alarm::StockLow,
        Alarm::ReservationCreated,
        Alarm::ReservationCancelled,
        Alarm::ReservationExpired,
        Alarm::ListingSold,
        Alarm::ListingPriceChanged,
        Alarm::ListingCreated,
        Alarm::ReviewReceived,
        Alarm::AdminBroadcast,
        Alarm::ChatActivity,
        Alarm::NotificationBadge,
    ];

    /// The kind on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Alarm::PaymentApproved => "payment.approved",
            Alarm::PaymentCancelled => "payment.cancelled",
            Alarm::PaymentFailed => "payment.failed",
            Alarm::PaymentCancelFailed => "payment.cancel_failed",
            Alarm::PaymentCompensationFailed => "payment.compensation_failed",
            Alarm::OrderExpired => "order.expired",
            Alarm::OrderReviewRequest => "order.review_request",
            Alarm::StockLow => "stock.low",
            Alarm::ReservationCreated => "reservation.created",
            Alarm::ReservationCancelled => "reservation.cancelled",
            Alarm::ReservationExpired => "reservation.expired",
            Alarm::ListingSold => "listing.sold",
            Alarm::ListingPriceChanged => "listing.price_changed",
            Alarm::ListingCreated => "listing.created",
            Alarm::ReviewReceived => "review.received",
            Alarm::AdminBroadcast => "admin.broadcast",
            Alarm::ChatActivity => "chat.activity",
            Alarm::NotificationBadge => "notification.badge",
        }
    }

    /// The kind of a received event; `None` for one this build does not
    /// know.
    pub fn parse(kind: &str) -> Option<Alarm> {
        Alarm::ALL.into_iter().find(|a| a.as_str() == kind)
    }
}

impl fmt::Display for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_and_none_is_spelled_twice() {
        let mut seen = std::collections::HashSet::new();
        for a in Alarm::ALL {
            assert_eq!(Alarm::parse(a.as_str()), Some(a));
            assert!(seen.insert(a.as_str()), "{a} twice");
        }
        assert_eq!(Alarm::parse("chat.future"), None);
    }
}
