//! Domain services: the use cases, orchestrating domain rules and the store
//! and bus ports. HTTP handlers and WebSocket sessions call these; they never
//! reach for the store directly when a rule is involved.

pub mod accounts;
pub mod attempts;
pub mod catalog;
pub mod chat;
pub mod events;
pub mod gate;
pub mod mail;
pub mod market;
pub mod media;
pub mod notifications;
pub mod oauth;
pub mod orders;
pub mod outbox;
pub mod password;
pub mod payments;
