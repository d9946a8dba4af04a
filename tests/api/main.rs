//! HTTP acceptance tests: one binary for the whole API keeps link time down.

// Test code asserts by panicking, helpers included (clippy.toml exempts
// only `#[test]` functions themselves).
#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "tests assert by panicking"
)]

mod abuse;
mod accounts;
mod chat;
mod chat_rooms;
#[path = "../common/mod.rs"]
mod common;
mod email;
mod errors;
mod fake_oauth;
mod fake_pay;
mod fuzz;
mod helpers;
mod market;
mod notifications;
mod oauth;
mod orders;
mod pay_flows;
mod payments;
mod providers;
mod refunds;
mod regions;
mod shop;
mod smtp_sink;
mod system;
mod unread_model;
