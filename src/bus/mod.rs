//! The event bus port. Domain events (reservation expired, listing sold,
//! review received, ...) are published here; the notification pipeline
//! consumes them. The embedded engine uses [`InProcessBus`]; the distributed
//! engine publishes to Kafka topics with the same names and payloads.
//!
//! Payloads are JSON objects with a schema version:
//! `{"schema": 1, "kind": "reservation.expired", "key": "<listing id>",
//!   "at": <epoch ms>, "data": {...}}`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::error::StoreError;

/// Alarm events for notifications (reservations, chats to offline users,
/// payments, reviews). Keyed by listing or user id.
pub const TOPIC_ALARMS: &str = "jangteo.alarms.v1";

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema: u32,
    pub kind: String,
    /// Partitioning key (events with one key stay in order).
    pub key: String,
    pub at: i64,
    pub data: Value,
}

impl Event {
    pub fn new(kind: &str, key: impl ToString, data: Value) -> Event {
        Event {
            schema: SCHEMA_VERSION,
            kind: kind.to_string(),
            key: key.to_string(),
            at: crate::domain::now_ms(),
            data,
        }
    }
}

#[async_trait]
pub trait Bus: Send + Sync {
    async fn publish(&self, topic: &str, event: Event) -> Result<(), StoreError>;
    /// Live subscription (events published from now on).
    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Event>;
}

/// In-process bus: one broadcast channel per topic.
#[derive(Default)]
pub struct InProcessBus {
    topics: Mutex<HashMap<String, broadcast::Sender<Event>>>,
}

impl InProcessBus {
    pub fn new() -> InProcessBus {
        InProcessBus::default()
    }

    fn sender(&self, topic: &str) -> broadcast::Sender<Event> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        topics
            .entry(topic.to_string())
            .or_insert_with(|| broadcast::channel(1024).0)
            .clone()
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, topic: &str, event: Event) -> Result<(), StoreError> {
        tracing::debug!(topic, kind = %event.kind, key = %event.key, "event");
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.sender(topic).send(event);
        Ok(())
    }

    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Event> {
        self.sender(topic).subscribe()
    }
}
