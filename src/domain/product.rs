//! Shop products: states, options and what a buyer is told about stock.
//!
//! A product is what the operator sells (name, brand, base price); an
//! option (size x colour ...) is the unit that has its own SKU, price delta
//! and stock. The price of an option is `base_price + price_delta`, never
//! below zero.

use serde::{Deserialize, Serialize};

use crate::domain::account::FieldErrors;
use crate::domain::money::{Won, MAX_WON};

pub const NAME_MAX_CHARS: usize = 100;
pub const BRAND_MAX_CHARS: usize = 50;
pub const DESCRIPTION_MAX_CHARS: usize = 5_000;
pub const OPTION_LABEL_MAX_CHARS: usize = 50;
pub const SKU_MAX_CHARS: usize = 40;
pub const MAX_OPTIONS: usize = 100;
/// Shop categories, as stable codes (the app shows Korean labels).
pub const PRODUCT_CATEGORIES: &[&str] = &[
    "bags",
    "watches",
    "jewelry",
    "shoes",
    "clothing",
    "accessories",
    "beauty",
    "other",
];
/// Stock of one option: a sanity bound.
pub const MAX_STOCK: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductStatus {
    /// Being prepared: admins only.
    Draft,
    OnSale,
    /// Set by the operator; an option with no stock is sold out on its own
    /// without changing the product's status.
    SoldOut,
    /// Taken off the shop: admins only; carts show its lines unavailable.
    Hidden,
}

impl ProductStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProductStatus::Draft => "draft",
            ProductStatus::OnSale => "on_sale",
            ProductStatus::SoldOut => "sold_out",
            ProductStatus::Hidden => "hidden",
        }
    }

    pub fn parse(s: &str) -> Option<ProductStatus> {
        [
            ProductStatus::Draft,
            ProductStatus::OnSale,
            ProductStatus::SoldOut,
            ProductStatus::Hidden,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Whether the public sees it at all.
    pub fn is_public(self) -> bool {
        matches!(self, ProductStatus::OnSale | ProductStatus::SoldOut)
    }

    /// Whether it may be put in a cart or ordered.
    pub fn is_buyable(self) -> bool {
        self == ProductStatus::OnSale
    }
}

/// Product list order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductSort {
    Newest,
    PriceAsc,
    PriceDesc,
    /// Most wishlisted first.
    Popular,
}

/// Where the previous page of products ended: the sort it belongs to, the
/// sort key (price or wishlist count; unused for `newest`) and the id.
/// Opaque to clients. Paging is by key, not offset, so products added
/// meanwhile neither repeat nor push others off a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductCursor {
    pub sort: ProductSort,
    pub key: i64,
    pub id: i64,
}

impl ProductCursor {
    pub fn encode(&self) -> String {
        use base64::Engine as _;
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(s: &str) -> Option<ProductCursor> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// What substring search looks in: name, brand and description, lower-cased
/// (Korean is unaffected; English matches case-insensitively), as for
/// listings.
pub fn search_text(name: &str, brand: &str, description: &str) -> String {
    format!("{name} {brand} {description}").to_lowercase()
}

/// What the product page and the cart say about an option's stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StockState {
    InStock,
    /// At or below the low-stock threshold: "only N left".
    Low,
    SoldOut,
}

pub fn stock_state(stock: i64, low_threshold: i64) -> StockState {
    if stock <= 0 {
        StockState::SoldOut
    } else if stock <= low_threshold {
        StockState::Low
    } else {
        StockState::InStock
    }
}

/// Whether a stock change from `before` to `after` crosses into low stock
/// (the moment to tell the admins once, not on every later sale).
pub fn became_low(before: i64, after: i64, low_threshold: i64) -> bool {
    before > low_threshold && after <= low_threshold
}

/// The price of one option.
pub fn option_price(base: Won, delta: i64) -> Option<Won> {
    base.get().checked_add(delta).and_then(Won::bounded)
}

/// Check a product's own fields (any may be absent on PATCH).
pub fn check_product(
    name: Option<&str>,
    brand: Option<&str>,
    description: Option<&str>,
    base_price: Option<i64>,
    errors: &mut FieldErrors,
) {
    let mut chars = |field: &'static str, v: Option<&str>, min: usize, max: usize| {
        if let Some(v) = v {
            let n = v.trim().chars().count();
            if n < min || n > max {
                errors.insert(field, format!("must be {min}..={max} characters"));
            }
        }
    };
    chars("name", name, 1, NAME_MAX_CHARS);
    chars("brand", brand, 1, BRAND_MAX_CHARS);
    chars("description", description, 0, DESCRIPTION_MAX_CHARS);
    if base_price.is_some_and(|p| !(0..=MAX_WON).contains(&p)) {
        errors.insert("base_price", format!("must be 0..={MAX_WON} won"));
    }
}

/// Check one option: label, SKU, price delta (the resulting price must be
/// within bounds) and stock.
pub fn check_option(
    label: &str,
    sku: &str,
    base: Won,
    price_delta: i64,
    stock: i64,
    errors: &mut FieldErrors,
) {
    let n = label.trim().chars().count();
    if n == 0 || n > OPTION_LABEL_MAX_CHARS {
        errors.insert(
            "options.label",
            format!("must be 1..={OPTION_LABEL_MAX_CHARS} characters"),
        );
    }
    if sku.is_empty()
        || sku.len() > SKU_MAX_CHARS
        || !sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        errors.insert(
            "options.sku",
            format!("must be 1..={SKU_MAX_CHARS} of A-Z a-z 0-9 - _"),
        );
    }
    if option_price(base, price_delta).is_none() {
        errors.insert(
            "options.price_delta",
            "makes the option's price negative or too large".into(),
        );
    }
    if !(0..=MAX_STOCK).contains(&stock) {
        errors.insert("options.stock", format!("must be 0..={MAX_STOCK}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_junk() {
        let c = ProductCursor {
            sort: ProductSort::Popular,
            key: 12,
            id: 345,
        };
        assert_eq!(ProductCursor::decode(&c.encode()), Some(c));
        assert_eq!(ProductCursor::decode("not a cursor"), None);
        assert_eq!(
            search_text("Classic Flap", "CHANEL", "램스킨"),
            "classic flap chanel 램스킨"
        );
    }

    #[test]
    fn statuses() {
        for s in ["draft", "on_sale", "sold_out", "hidden"] {
            assert_eq!(ProductStatus::parse(s).map(ProductStatus::as_str), Some(s));
        }
        assert_eq!(ProductStatus::parse("deleted"), None);
        assert!(ProductStatus::OnSale.is_buyable());
        assert!(!ProductStatus::SoldOut.is_buyable());
        assert!(ProductStatus::SoldOut.is_public());
        assert!(!ProductStatus::Draft.is_public() && !ProductStatus::Hidden.is_public());
    }

    #[test]
    fn stock_states_and_the_low_crossing() {
        assert_eq!(stock_state(0, 3), StockState::SoldOut);
        assert_eq!(stock_state(-1, 3), StockState::SoldOut);
        assert_eq!(stock_state(3, 3), StockState::Low);
        assert_eq!(stock_state(4, 3), StockState::InStock);
        assert!(became_low(4, 3, 3));
        assert!(became_low(10, 0, 3));
        assert!(!became_low(3, 2, 3), "already low: told once");
        assert!(!became_low(5, 4, 3));
    }

    #[test]
    fn option_prices_stay_in_bounds() {
        assert_eq!(option_price(Won(10_000), 2_000), Some(Won(12_000)));
        assert_eq!(option_price(Won(10_000), -10_000), Some(Won(0)));
        assert_eq!(option_price(Won(10_000), -10_001), None);
        assert_eq!(option_price(Won(MAX_WON), 1), None);
        assert_eq!(option_price(Won(1), i64::MAX), None);
    }

    #[test]
    fn field_checks_name_every_bad_field() {
        let mut e = FieldErrors::new();
        check_product(Some(" "), Some("샤넬"), None, Some(-1), &mut e);
        assert!(e.contains_key("name") && e.contains_key("base_price"));
        assert!(!e.contains_key("brand"));
        let mut e = FieldErrors::new();
        check_option("270mm / 블랙", "NK-270_BK", Won(100), -50, 5, &mut e);
        assert!(e.is_empty(), "{e:?}");
        check_option("", "bad sku!", Won(100), -101, -1, &mut e);
        assert_eq!(e.len(), 4, "{e:?}");
    }
}
