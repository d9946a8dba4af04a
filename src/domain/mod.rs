//! Plain types and rules, with no I/O: what is a valid email or nickname,
//! which roles exist, what others see of a withdrawn user. Everything here is
//! unit-tested in place; services and handlers call these rules instead of
//! restating them.

pub mod account;
pub mod chat;
pub mod events;
pub mod ids;
pub mod listing;
pub mod money;
pub mod notification;
pub mod order;
pub mod product;
pub mod region;

use std::time::{SystemTime, UNIX_EPOCH};

/// Current time as UTC epoch milliseconds, the one time format we store.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
