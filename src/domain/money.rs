//! Money: an integer number of Korean won.
//!
//! The won has no minor unit in practice (Toss and KakaoPay take integer
//! amounts), so a `Won` is an `i64` with checked arithmetic: a total that
//! would overflow is an error, never a wrapped number. Totals are computed
//! here and in `domain::order`, never in SQL or HTTP code.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The largest amount any price, line or order may reach: 100억 원, a sanity
/// bound far above any real basket (and exactly representable in a JSON
/// number and a JavaScript client).
pub const MAX_WON: i64 = 10_000_000_000;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Won(pub i64);

impl Won {
    pub const ZERO: Won = Won(0);

    pub const fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` past [`MAX_WON`] (or below zero).
    pub fn checked_add(self, other: Won) -> Option<Won> {
        self.0.checked_add(other.0).and_then(Won::bounded)
    }

    /// `self * n`, or `None` past [`MAX_WON`].
    pub fn checked_mul(self, n: u32) -> Option<Won> {
        self.0.checked_mul(i64::from(n)).and_then(Won::bounded)
    }

    /// `self - other`, or `None` below zero.
    pub fn checked_sub(self, other: Won) -> Option<Won> {
        self.0.checked_sub(other.0).and_then(Won::bounded)
    }

    /// An amount within `0..=MAX_WON`.
    pub fn bounded(v: i64) -> Option<Won> {
        (0..=MAX_WON).contains(&v).then_some(Won(v))
    }

    /// The sum of `amounts`, or `None` past [`MAX_WON`].
    pub fn sum<I: IntoIterator<Item = Won>>(amounts: I) -> Option<Won> {
        amounts
            .into_iter()
            .try_fold(Won::ZERO, |acc, w| acc.checked_add(w))
    }
}

impl fmt::Display for Won {
    /// `12,300원`, as the app shows prices.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.0.unsigned_abs().to_string();
        let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{grouped}원")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_is_checked_and_bounded() {
        assert_eq!(Won(1_000).checked_add(Won(500)), Some(Won(1_500)));
        assert_eq!(Won(MAX_WON).checked_add(Won(1)), None);
        assert_eq!(Won(i64::MAX).checked_add(Won(1)), None);
        assert_eq!(Won(3_000).checked_mul(99), Some(Won(297_000)));
        assert_eq!(Won(MAX_WON).checked_mul(2), None);
        assert_eq!(Won(100).checked_sub(Won(101)), None);
        assert_eq!(Won::bounded(-1), None);
        assert_eq!(Won::sum([Won(1), Won(2), Won(3)]), Some(Won(6)));
        assert_eq!(Won::sum([Won(MAX_WON), Won(1)]), None);
    }

    #[test]
    fn shown_with_thousands_separators() {
        assert_eq!(Won(0).to_string(), "0원");
        assert_eq!(Won(999).to_string(), "999원");
        assert_eq!(Won(1_000).to_string(), "1,000원");
        assert_eq!(Won(1_234_567).to_string(), "1,234,567원");
        assert_eq!(Won(-12_300).to_string(), "-12,300원");
    }
}
