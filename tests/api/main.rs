//! HTTP acceptance tests: one binary for the whole API keeps link time down.

mod accounts;
mod chat;
mod chat_rooms;
#[path = "../common/mod.rs"]
mod common;
mod errors;
mod fuzz;
mod helpers;
mod market;
mod system;
mod unread_model;
