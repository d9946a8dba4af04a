//! Marketplace rules: listing fields and states, feed cursors, review tags
//! and the manner score.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::domain::account::FieldErrors;

pub const TITLE_MAX_CHARS: usize = 100;
pub const DESCRIPTION_MAX_CHARS: usize = 5000;
pub const MAX_IMAGES: usize = 10;
pub const PRICE_MAX: i64 = 10_000_000_000; // 100억 원: a sanity bound, not a policy
pub const REPORT_REASON_MAX_CHARS: usize = 500;
pub const REVIEW_TEXT_MAX_CHARS: usize = 500;

/// Categories, as stable codes (the app shows Korean labels).
pub const CATEGORIES: &[&str] = &[
    "digital",
    "appliances",
    "furniture",
    "kids",
    "clothing",
    "beauty",
    "sports",
    "books",
    "games",
    "pets",
    "plants",
    "tickets",
    "food",
    "other",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListingStatus {
    Selling,
    Reserved,
    Sold,
    Hidden,
}

impl ListingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ListingStatus::Selling => "selling",
            ListingStatus::Reserved => "reserved",
            ListingStatus::Sold => "sold",
            ListingStatus::Hidden => "hidden",
        }
    }

    pub fn parse(s: &str) -> Option<ListingStatus> {
        match s {
            "selling" => Some(ListingStatus::Selling),
            "reserved" => Some(ListingStatus::Reserved),
            "sold" => Some(ListingStatus::Sold),
            "hidden" => Some(ListingStatus::Hidden),
            _ => None,
        }
    }
}

/// What moves a listing from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The seller reserves it for a buyer.
    Reserve,
    /// The reservation is cancelled or expires.
    Release,
    /// The seller marks it sold.
    Sell,
    /// The seller hides it from the feed.
    Hide,
    /// The seller shows a hidden listing again.
    Unhide,
}

/// The state machine: `selling -> reserved -> sold`, `reserved -> selling`,
/// `selling | reserved -> sold`, any live state `-> hidden`, `hidden ->
/// selling`. Replacing a reservation (reserve while reserved) is allowed.
/// `sold` is final except for hiding.
pub fn transition(from: ListingStatus, t: Transition) -> Option<ListingStatus> {
    use ListingStatus::*;
    use Transition::*;
    match (from, t) {
        (Selling | Reserved, Reserve) => Some(Reserved),
        (Reserved, Release) => Some(Selling),
        (Selling | Reserved, Sell) => Some(Sold),
        (Selling | Reserved | Sold, Hide) => Some(Hidden),
        (Hidden, Unhide) => Some(Selling),
        _ => None,
    }
}

/// Validate and normalise listing fields (any may be absent on PATCH).
pub fn check_fields(
    title: Option<&str>,
    description: Option<&str>,
    price: Option<i64>,
    category: Option<&str>,
    errors: &mut FieldErrors,
) -> (Option<String>, Option<String>) {
    let title = title.map(|t| t.trim().to_string());
    if let Some(t) = &title {
        let n = t.chars().count();
        if n == 0 || n > TITLE_MAX_CHARS {
            errors.insert("title", format!("must be 1..={TITLE_MAX_CHARS} characters"));
        }
    }
    let description = description.map(|d| d.trim().to_string());
    if let Some(d) = &description {
        if d.chars().count() > DESCRIPTION_MAX_CHARS {
            errors.insert(
                "description",
                format!("must be at most {DESCRIPTION_MAX_CHARS} characters"),
            );
        }
    }
    if let Some(p) = price {
        if !(0..=PRICE_MAX).contains(&p) {
            errors.insert("price", "must be a whole number of won, 0 or more".into());
        }
    }
    if let Some(c) = category {
        if !CATEGORIES.contains(&c) {
            errors.insert(
                "category",
                format!("must be one of {}", CATEGORIES.join(", ")),
            );
        }
    }
    (title, description)
}

/// Text that substring search runs over.
pub fn search_text(title: &str, description: &str) -> String {
    format!("{} {}", title, description).to_lowercase()
}

/// Feed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    Recent,
    PriceAsc,
    PriceDesc,
}

/// Where the previous page ended. Encoded opaquely for clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub sort: Sort,
    pub price: i64,
    pub id: i64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Review tags, as stable codes.
pub const REVIEW_TAGS: &[&str] = &[
    "kind",
    "punctual",
    "fast_response",
    "as_described",
    "fair_price",
    "good_packaging",
    "rude",
    "late",
    "no_show",
    "not_as_described",
];

pub const MANNER_START: f64 = 36.5;
pub const MANNER_GOOD_STEP: f64 = 0.2;
pub const MANNER_BAD_STEP: f64 = 1.0;

/// Manner score ("매너온도"): starts at 36.5; each good review +0.2, each
/// bad review -1.0 (a bad experience weighs five good ones); clamped to
/// 0.0..=99.0 and rounded to one decimal.
pub fn manner_score(good: i64, bad: i64) -> f64 {
    let raw = MANNER_START + MANNER_GOOD_STEP * good as f64 - MANNER_BAD_STEP * bad as f64;
    (raw.clamp(0.0, 99.0) * 10.0).round() / 10.0
}

/// Something that happened to a listing that its chats and the bus hear
/// about. One place spells each: the Korean notice posted in every chat
/// about the listing, the machine payload of that notice (`event`, see
/// docs/PROTOCOL.md) and the alarm event on the bus (`kind`, schema 1,
/// docs/ARCHITECTURE.md "Events on the bus"), so the two names of one event
/// cannot drift apart.
#[derive(Debug, Clone, PartialEq)]
pub enum ListingEvent {
    PriceChanged {
        listing: i64,
        old_price: i64,
        new_price: i64,
    },
    Reserved {
        listing: i64,
        seller: i64,
        buyer: i64,
        buyer_nickname: String,
        until: Option<i64>,
        reservation: i64,
    },
    ReservationCancelled {
        listing: i64,
        seller: i64,
        buyer: i64,
        reservation: i64,
    },
    ReservationExpired {
        listing: i64,
        seller: i64,
        buyer: i64,
        reservation: i64,
    },
    Sold {
        listing: i64,
        seller: i64,
        buyer: Option<i64>,
    },
}

impl ListingEvent {
    /// The `event` of the chat notice's payload.
    pub fn chat_event(&self) -> &'static str {
        match self {
            ListingEvent::PriceChanged { .. } => "price_changed",
            ListingEvent::Reserved { .. } => "reserved",
            ListingEvent::ReservationCancelled { .. } => "reservation_cancelled",
            ListingEvent::ReservationExpired { .. } => "reservation_expired",
            ListingEvent::Sold { .. } => "sold",
        }
    }

    /// The alarm kind on the bus, for the events users are notified of.
    pub fn bus_kind(&self) -> Option<crate::domain::events::Alarm> {
        use crate::domain::events::Alarm;
        match self {
            ListingEvent::PriceChanged { .. } => Some(Alarm::ListingPriceChanged),
            ListingEvent::Reserved { .. } => Some(Alarm::ReservationCreated),
            ListingEvent::ReservationCancelled { .. } => Some(Alarm::ReservationCancelled),
            ListingEvent::ReservationExpired { .. } => Some(Alarm::ReservationExpired),
            ListingEvent::Sold { .. } => Some(Alarm::ListingSold),
        }
    }

    /// The text posted in the listing's chats.
    pub fn notice(&self) -> String {
        match self {
            ListingEvent::PriceChanged {
                old_price,
                new_price,
                ..
            } => format!(
                "가격이 {}원에서 {}원으로 바뀌었어요.",
                won(*old_price),
                won(*new_price)
            ),
            ListingEvent::Reserved { buyer_nickname, .. } => {
                format!("{buyer_nickname}님과 예약중이에요.")
            }
            ListingEvent::ReservationCancelled { .. } => "예약이 취소되었어요.".to_string(),
            ListingEvent::ReservationExpired { .. } => {
                "예약 시간이 지나 다시 판매중이에요.".to_string()
            }
            ListingEvent::Sold { .. } => "판매완료되었어요.".to_string(),
        }
    }

    /// The notice's machine payload: `event` plus the facts.
    pub fn chat_payload(&self) -> serde_json::Value {
        let mut v = self.facts(false);
        v["event"] = serde_json::Value::from(self.chat_event());
        v
    }

    /// The bus event's data: the facts, with the seller.
    pub fn bus_data(&self) -> serde_json::Value {
        self.facts(true)
    }

    fn facts(&self, with_seller: bool) -> serde_json::Value {
        use serde_json::json;
        let mut v = match self {
            ListingEvent::PriceChanged {
                listing,
                old_price,
                new_price,
            } => json!({"listing": listing, "old_price": old_price, "new_price": new_price}),
            ListingEvent::Reserved {
                listing,
                buyer,
                until,
                reservation,
                ..
            } => {
                json!({"listing": listing, "buyer": buyer, "until": until, "reservation": reservation})
            }
            ListingEvent::ReservationCancelled {
                listing,
                buyer,
                reservation,
                ..
            }
            | ListingEvent::ReservationExpired {
                listing,
                buyer,
                reservation,
                ..
            } => json!({"listing": listing, "buyer": buyer, "reservation": reservation}),
            ListingEvent::Sold { listing, buyer, .. } => {
                json!({"listing": listing, "buyer": buyer})
            }
        };
        if with_seller {
            if let Some(seller) = self.seller() {
                v["seller"] = json!(seller);
            }
        }
        v
    }

    fn seller(&self) -> Option<i64> {
        match self {
            ListingEvent::PriceChanged { .. } => None,
            ListingEvent::Reserved { seller, .. }
            | ListingEvent::ReservationCancelled { seller, .. }
            | ListingEvent::ReservationExpired { seller, .. }
            | ListingEvent::Sold { seller, .. } => Some(*seller),
        }
    }

    pub fn listing(&self) -> i64 {
        match self {
            ListingEvent::PriceChanged { listing, .. }
            | ListingEvent::Reserved { listing, .. }
            | ListingEvent::ReservationCancelled { listing, .. }
            | ListingEvent::ReservationExpired { listing, .. }
            | ListingEvent::Sold { listing, .. } => *listing,
        }
    }
}

/// 12000 -> "12,000".
pub fn won(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ListingStatus::*;
    use Transition::*;

    #[test]
    fn state_machine() {
        assert_eq!(transition(Selling, Reserve), Some(Reserved));
        assert_eq!(
            transition(Reserved, Reserve),
            Some(Reserved),
            "replace a reservation"
        );
        assert_eq!(transition(Reserved, Release), Some(Selling));
        assert_eq!(transition(Selling, Sell), Some(Sold));
        assert_eq!(transition(Reserved, Sell), Some(Sold));
        assert_eq!(transition(Sold, Hide), Some(Hidden));
        assert_eq!(transition(Hidden, Unhide), Some(Selling));
        for (from, t) in [
            (Selling, Release),
            (Sold, Reserve),
            (Sold, Sell),
            (Sold, Release),
            (Hidden, Reserve),
            (Hidden, Sell),
            (Selling, Unhide),
            (Hidden, Hide),
        ] {
            assert_eq!(transition(from, t), None, "{from:?} {t:?}");
        }
    }

    #[test]
    fn fields() {
        let mut e = FieldErrors::new();
        let (t, d) = check_fields(
            Some("  아이폰13 팝니다 "),
            Some(" 상태 좋아요 "),
            Some(0),
            Some("digital"),
            &mut e,
        );
        assert!(e.is_empty());
        assert_eq!(t.as_deref(), Some("아이폰13 팝니다"));
        assert_eq!(d.as_deref(), Some("상태 좋아요"));
        check_fields(
            Some(""),
            Some(&"x".repeat(5001)),
            Some(-1),
            Some("cars"),
            &mut e,
        );
        for f in ["title", "description", "price", "category"] {
            assert!(e.contains_key(f), "{f}");
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            sort: Sort::PriceAsc,
            price: 15000,
            id: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not a cursor"), None);
    }

    #[test]
    fn manner() {
        assert_eq!(manner_score(0, 0), 36.5);
        assert_eq!(manner_score(5, 0), 37.5);
        assert_eq!(manner_score(5, 1), 36.5);
        assert_eq!(manner_score(0, 100), 0.0);
        assert_eq!(manner_score(10_000, 0), 99.0);
    }

    #[test]
    fn search_text_is_lower_case() {
        assert_eq!(search_text("iPhone 13", "아이폰"), "iphone 13 아이폰");
    }

    #[test]
    fn listing_events_spell_both_names_in_one_place() {
        let e = ListingEvent::ReservationExpired {
            listing: 7,
            seller: 1,
            buyer: 2,
            reservation: 9,
        };
        assert_eq!(e.chat_payload()["event"], "reservation_expired");
        assert_eq!(
            e.bus_kind(),
            Some(crate::domain::events::Alarm::ReservationExpired)
        );
        assert_eq!(e.bus_data()["seller"], 1);
        assert!(e.chat_payload().get("seller").is_none());
        let p = ListingEvent::PriceChanged {
            listing: 7,
            old_price: 1_200_000,
            new_price: 950_000,
        };
        assert_eq!(
            p.notice(),
            "가격이 1,200,000원에서 950,000원으로 바뀌었어요."
        );
        assert_eq!(
            p.bus_kind(),
            Some(crate::domain::events::Alarm::ListingPriceChanged)
        );
        assert_eq!(won(12_000), "12,000");
        assert_eq!(won(999), "999");
    }
}
