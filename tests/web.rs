//! The web client in a real browser: headless Chromium driven through
//! WebDriver against a server on a random port (two nodes with
//! `JT_TEST_NODES=2`: each browser on its own node). Screenshots of the
//! main screens land in `JT_SCREENSHOT_DIR` (default
//! `target/web-screenshots`; `docs/screenshots` is where the README's come
//! from).

#![expect(
    clippy::expect_used,
    clippy::panic,
    reason = "tests assert by panicking"
)]
#![expect(
    dead_code,
    unused_imports,
    reason = "the API suite's helpers are shared, not all used here"
)]

#[path = "web/browser.rs"]
mod browser;
#[path = "common/mod.rs"]
mod common;
#[path = "api/fake_oauth.rs"]
mod fake_oauth;
#[path = "api/fake_pay.rs"]
mod fake_pay;
#[path = "web/flows.rs"]
mod flows;
#[path = "api/helpers.rs"]
mod helpers;
