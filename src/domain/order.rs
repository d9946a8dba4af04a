//! Shop orders: the state machine, order numbers, lines and totals.
//!
//! ```text
//! pending_payment --pay--------> paid --cancel part--> partially_cancelled --cancel rest--> cancelled
//!        |                         \------cancel all----------------------------------------/
//!        |--expire--> expired
//!        \--cancel by buyer--> cancelled_by_user
//! ```
//!
//! Stock is reserved when the order is created and given back exactly once
//! when a pending order expires or is cancelled by its buyer (the outbox's
//! `stock_restore` job), or when a paid line is cancelled. Whether an event
//! gives stock back is decided here ([`Transition::restores_stock`]), not by
//! each caller.

use serde::{Deserialize, Serialize};

use crate::domain::money::Won;

/// Quantity bounds of one cart or order line.
pub const MIN_QUANTITY: u32 = 1;
pub const MAX_QUANTITY: u32 = 99;
/// Lines in one order.
pub const MAX_LINES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    PartiallyCancelled,
    Cancelled,
    Expired,
    CancelledByUser,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::PartiallyCancelled,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::CancelledByUser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::PartiallyCancelled => "partially_cancelled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
            OrderStatus::CancelledByUser => "cancelled_by_user",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// No transition leaves this state.
    pub fn is_final(self) -> bool {
        Transition::ALL
            .iter()
            .all(|t| transition(self, *t).is_none())
    }
}

/// What may happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The provider confirmed the payment.
    Pay,
    /// The payment window passed unpaid.
    Expire,
    /// The buyer gave up before paying.
    CancelByUser,
    /// Some paid lines were cancelled (refunded), not all.
    CancelPart,
    /// Everything still paid was cancelled (refunded).
    CancelAll,
}

impl Transition {
    pub const ALL: [Transition; 5] = [
        Transition::Pay,
        Transition::Expire,
        Transition::CancelByUser,
        Transition::CancelPart,
        Transition::CancelAll,
    ];

    /// Whether this transition hands the reserved stock of the lines it
    /// covers back to the shelf.
    pub fn restores_stock(self) -> bool {
        !matches!(self, Transition::Pay)
    }
}

/// The state machine. `None`: not allowed (409 `invalid_state`).
pub fn transition(from: OrderStatus, t: Transition) -> Option<OrderStatus> {
    use OrderStatus::*;
    use Transition::*;
    match (from, t) {
        (PendingPayment, Pay) => Some(Paid),
        (PendingPayment, Expire) => Some(Expired),
        (PendingPayment, CancelByUser) => Some(CancelledByUser),
        (Paid | PartiallyCancelled, CancelPart) => Some(PartiallyCancelled),
        (Paid | PartiallyCancelled, CancelAll) => Some(Cancelled),
        _ => None,
    }
}

/// Order numbers: `YYMMDD-` and ten characters of an alphabet without look-
/// alikes (no 0/O, 1/I/L), e.g. `261127-7KQ2MX9PWD`. Readable over the
/// phone, unique by a unique index (a collision is retried), and not
/// guessable in sequence: the ten characters are random (about 49 bits).
pub const ORDER_NUMBER_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
pub const ORDER_NUMBER_RANDOM_LEN: usize = 10;

/// Build an order number from a UTC date and random bytes (one per
/// character; each is reduced onto the alphabet).
pub fn order_number(utc_ms: i64, random: &[u8; ORDER_NUMBER_RANDOM_LEN]) -> String {
    let (y, m, d) = civil_date(utc_ms.div_euclid(86_400_000));
    let mut out = format!("{:02}{m:02}{d:02}-", y.rem_euclid(100));
    let n = ORDER_NUMBER_ALPHABET.len();
    for b in random {
        out.push(char::from(ORDER_NUMBER_ALPHABET[usize::from(*b) % n]));
    }
    out
}

/// Whether `s` has the shape of an order number (cheap check before a
/// lookup; the lookup decides).
pub fn is_order_number(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 7 + ORDER_NUMBER_RANDOM_LEN
        && bytes.iter().take(6).all(u8::is_ascii_digit)
        && bytes.get(6) == Some(&b'-')
        && bytes
            .iter()
            .skip(7)
            .all(|b| ORDER_NUMBER_ALPHABET.contains(b))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's civil-from-days algorithm).
fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// One line as ordered: the price is the one at order time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinePrice {
    pub unit_price: Won,
    pub quantity: u32,
}

impl LinePrice {
    pub fn amount(self) -> Option<Won> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// Why a basket cannot become an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BasketError {
    Empty,
    TooManyLines,
    BadQuantity { line: usize },
    TooExpensive,
}

/// Check the lines and compute the order total.
pub fn total(lines: &[LinePrice]) -> Result<Won, BasketError> {
    if lines.is_empty() {
        return Err(BasketError::Empty);
    }
    if lines.len() > MAX_LINES {
        return Err(BasketError::TooManyLines);
    }
    if let Some(line) = lines.iter().position(|l| !quantity_ok(l.quantity)) {
        return Err(BasketError::BadQuantity { line });
    }
    lines
        .iter()
        .map(|l| l.amount())
        .try_fold(Won::ZERO, |acc, a| a.and_then(|a| acc.checked_add(a)))
        .ok_or(BasketError::TooExpensive)
}

pub fn quantity_ok(q: u32) -> bool {
    (MIN_QUANTITY..=MAX_QUANTITY).contains(&q)
}

/// What one buyer may hold unpaid at once. The store reads what the buyer
/// holds inside the order's transaction (under the buyer's row lock on
/// MySQL), so parallel orders cannot pass it together; the rule is here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerLimits {
    pub unpaid_orders: i64,
    pub unpaid_units: i64,
    /// After a listing order of this buyer ended unpaid (cancelled or
    /// expired), how long before they may order the same listing again.
    pub reorder_cooldown_ms: i64,
}

/// What a buyer holds when they place one more order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuyerHolds {
    /// Their orders waiting for payment.
    pub unpaid_orders: i64,
    /// Shop units in those orders.
    pub unpaid_units: i64,
    /// When their last order of the same used listing ended unpaid
    /// (epoch ms), if the new order is for a listing and one did.
    pub listing_order_ended_at: Option<i64>,
}

/// Why a buyer may not place one more order now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuyerRefusal {
    /// A [`BuyerLimits`] limit would be passed: its name and value.
    Limit { limit: &'static str, max: i64 },
    /// Their last order of this listing ended unpaid too recently;
    /// milliseconds until they may order it again.
    Cooldown(i64),
}

impl BuyerLimits {
    /// May a buyer holding `holds` order `units` more shop units (0 for a
    /// used listing) at `now`?
    pub fn refusal(&self, holds: &BuyerHolds, units: i64, now: i64) -> Option<BuyerRefusal> {
        if holds.unpaid_orders >= self.unpaid_orders {
            return Some(BuyerRefusal::Limit {
                limit: "unpaid_orders",
                max: self.unpaid_orders,
            });
        }
        if units > 0 && holds.unpaid_units.saturating_add(units) > self.unpaid_units {
            return Some(BuyerRefusal::Limit {
                limit: "unpaid_units",
                max: self.unpaid_units,
            });
        }
        if let (Some(ended), true) = (holds.listing_order_ended_at, self.reorder_cooldown_ms > 0) {
            let wait = ended.saturating_add(self.reorder_cooldown_ms) - now;
            if wait > 0 {
                return Some(BuyerRefusal::Cooldown(wait));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buyer_limits_count_orders_units_and_the_reorder_cooldown() {
        let limits = BuyerLimits {
            unpaid_orders: 2,
            unpaid_units: 5,
            reorder_cooldown_ms: 1_000,
        };
        let holds = |orders, units, ended| BuyerHolds {
            unpaid_orders: orders,
            unpaid_units: units,
            listing_order_ended_at: ended,
        };
        let limit = |limit, max| Some(BuyerRefusal::Limit { limit, max });
        let off = BuyerLimits {
            reorder_cooldown_ms: 0,
            ..limits
        };
        // (limits, holds, units ordered, now, expected)
        for (why, limits, holds, units, now, expected) in [
            (
                "exactly at the limit",
                limits,
                holds(1, 3, None),
                2,
                0,
                None,
            ),
            (
                "one unit over",
                limits,
                holds(1, 3, None),
                3,
                0,
                limit("unpaid_units", 5),
            ),
            (
                "two orders waiting",
                limits,
                holds(2, 3, None),
                0,
                0,
                limit("unpaid_orders", 2),
            ),
            (
                "cooling down",
                limits,
                holds(1, 3, Some(10_000)),
                0,
                10_400,
                Some(BuyerRefusal::Cooldown(600)),
            ),
            (
                "cooled down",
                limits,
                holds(1, 3, Some(10_000)),
                0,
                11_000,
                None,
            ),
            (
                "no cooldown set",
                off,
                holds(1, 3, Some(10_000)),
                0,
                10_400,
                None,
            ),
        ] {
            assert_eq!(limits.refusal(&holds, units, now), expected, "{why}");
        }
    }
    use OrderStatus::*;
    use Transition::*;

    #[test]
    fn the_state_machine() {
        assert_eq!(transition(PendingPayment, Pay), Some(Paid));
        assert_eq!(transition(PendingPayment, Expire), Some(Expired));
        assert_eq!(
            transition(PendingPayment, CancelByUser),
            Some(CancelledByUser)
        );
        assert_eq!(transition(Paid, CancelPart), Some(PartiallyCancelled));
        assert_eq!(
            transition(PartiallyCancelled, CancelPart),
            Some(PartiallyCancelled)
        );
        assert_eq!(transition(Paid, CancelAll), Some(Cancelled));
        assert_eq!(transition(PartiallyCancelled, CancelAll), Some(Cancelled));
        // A paid order never expires; an unpaid one is never refunded; a
        // late payment for an expired order is refused.
        assert_eq!(transition(Paid, Expire), None);
        assert_eq!(transition(PendingPayment, CancelAll), None);
        assert_eq!(transition(Expired, Pay), None);
        assert_eq!(transition(Paid, Pay), None);
        for s in [Cancelled, Expired, CancelledByUser] {
            assert!(s.is_final(), "{s:?}");
        }
        for s in [PendingPayment, Paid, PartiallyCancelled] {
            assert!(!s.is_final(), "{s:?}");
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(OrderStatus::parse("PAID"), None);
    }

    #[test]
    fn only_payment_keeps_the_stock() {
        assert!(!Pay.restores_stock());
        for t in [Expire, CancelByUser, CancelPart, CancelAll] {
            assert!(t.restores_stock(), "{t:?}");
        }
    }

    #[test]
    fn order_numbers_are_dated_and_readable() {
        // 2026-11-27T10:00:00Z
        let at = 1_795_773_600_000;
        let n = order_number(at, &[0, 1, 2, 3, 4, 5, 6, 7, 8, 30]);
        assert_eq!(n, "261127-23456789AZ");
        assert!(is_order_number(&n));
        let n = order_number(0, &[255; ORDER_NUMBER_RANDOM_LEN]);
        assert!(n.starts_with("700101-"), "{n}");
        assert!(is_order_number(&n));
        for bad in [
            "",
            "261127-23456789A",
            "261127_23456789AB",
            "261127-0000000000",
            "2611271-23456789AB",
        ] {
            assert!(!is_order_number(bad), "{bad}");
        }
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(11_016), (2000, 2, 29));
    }

    #[test]
    fn totals_are_checked() {
        let l = |p, q| LinePrice {
            unit_price: Won(p),
            quantity: q,
        };
        assert_eq!(total(&[l(12_000, 2), l(500, 3)]), Ok(Won(25_500)));
        assert_eq!(total(&[]), Err(BasketError::Empty));
        assert_eq!(
            total(&[l(1, 1), l(1, 0)]),
            Err(BasketError::BadQuantity { line: 1 })
        );
        assert_eq!(
            total(&[l(1, 100)]),
            Err(BasketError::BadQuantity { line: 0 })
        );
        assert_eq!(
            total(&[l(crate::domain::money::MAX_WON, 1), l(1, 1)]),
            Err(BasketError::TooExpensive)
        );
        assert_eq!(
            total(&vec![l(1, 1); MAX_LINES + 1]),
            Err(BasketError::TooManyLines)
        );
    }
}
