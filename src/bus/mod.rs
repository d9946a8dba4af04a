//! The event bus port. Domain events (reservation expired, listing sold,
//! review received, ...) are published here; the notification pipeline
//! consumes them. The embedded engine uses [`InProcessBus`]; the distributed
//! engine publishes to Kafka topics with the same names and payloads.
//!
//! Payloads are JSON objects with a schema version:
//! `{"schema": 1, "id": "<32 hex>", "kind": "reservation.expired",
//!   "key": "<listing id>", "at": <epoch ms>, "data": {...}}`. The `id` is
//! unique per event and survives redelivery: consumers deduplicate by it.

mod error;
pub mod kafka;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::domain::events::Alarm;

pub use error::BusError;

/// Alarm events for notifications (reservations, chats to offline users,
/// payments, reviews). Keyed by listing or user id.
pub const TOPIC_ALARMS: &str = "jangteo.alarms.v1";

/// Cross-node chat events (messages after commit, receipts, typing,
/// membership, presence). Keyed by room id (presence: user id). Only
/// published when there are other nodes to hear them.
pub const TOPIC_CHAT: &str = "jangteo.chat.v1";

pub const SCHEMA_VERSION: u32 = 1;

/// Events a durable subscription buffers before its reader waits.
pub const DURABLE_QUEUE: usize = 4_096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub schema: u32,
    /// Unique per event (random, 128 bits); the same on every delivery.
    #[serde(default)]
    pub id: String,
    pub kind: String,
    /// Partitioning key (events with one key stay in order).
    pub key: String,
    pub at: i64,
    pub data: Value,
    /// The node that published it (set by the bus).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
    /// Where a durable subscription read it (Kafka partition, offset);
    /// never on the wire.
    #[serde(skip)]
    pub position: Option<(i32, i64)>,
    /// Already turned into notifications before it was published (the
    /// embedded engine's outbox does that, see `service::events`); never on
    /// the wire.
    #[serde(skip)]
    pub handled: bool,
}

impl Event {
    pub fn new(kind: &str, key: impl ToString, data: Value) -> Event {
        Event {
            schema: SCHEMA_VERSION,
            id: new_event_id(),
            kind: kind.to_string(),
            key: key.to_string(),
            at: crate::domain::now_ms(),
            data,
            node: String::new(),
            position: None,
            handled: false,
        }
    }

    /// An event on the alarms topic.
    pub fn alarm(kind: Alarm, key: impl ToString, data: Value) -> Event {
        Event::new(kind.as_str(), key, data)
    }

    /// The alarm kind of this event, if it is one this build knows.
    pub fn alarm_kind(&self) -> Option<Alarm> {
        Alarm::parse(&self.kind)
    }
}

/// A fresh event id: 32 lowercase hex characters.
pub fn new_event_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[async_trait]
pub trait Bus: Send + Sync {
    /// Publish and wait until the bus has it.
    async fn publish(&self, topic: &str, event: Event) -> Result<(), BusError>;
    /// Publish without waiting (hot paths: actors must not block on the
    /// broker). Failures are logged.
    fn publish_nowait(&self, topic: &str, event: Event);
    /// Live subscription (events published from now on).
    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Event>;
    /// Live subscription to what *other* nodes publish: a bus that can
    /// tell its own records apart (Kafka, by a record header) drops them
    /// before decoding; by default every event, and the subscriber drops
    /// its own by [`Event::node`].
    fn subscribe_others(&self, topic: &str) -> broadcast::Receiver<Event> {
        self.subscribe(topic)
    }
    /// A subscription of its own for a consumer that keeps its place:
    /// reading starts at `from` (partition -> next offset) and, where a
    /// partition has none, at its end; every event carries its
    /// `position`. The in-process bus has no history: a live subscription.
    ///
    /// The receiver applies backpressure (a bounded queue the reader waits
    /// on) instead of dropping what a slow consumer has not read.
    fn subscribe_from(&self, topic: &str, from: &HashMap<i32, i64>) -> mpsc::Receiver<Event> {
        let _ = from;
        let mut live = self.subscribe(topic);
        let (tx, rx) = mpsc::channel(DURABLE_QUEUE);
        tokio::spawn(async move {
            loop {
                match live.recv().await {
                    Ok(event) => {
                        if tx.send(event).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::error!(missed = n, "a consumer fell behind the in-process bus");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        rx
    }
    /// This node's id (stamped on what it publishes).
    fn node(&self) -> &str {
        ""
    }
    /// True if other nodes may hear what this bus publishes (Kafka); the
    /// in-process bus has no one to tell about chat traffic.
    fn distributed(&self) -> bool {
        false
    }
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
    async fn publish(&self, topic: &str, event: Event) -> Result<(), BusError> {
        tracing::debug!(topic, kind = %event.kind, key = %event.key, "event");
        // No subscriber is not an error: nobody is listening yet.
        let _ = self.sender(topic).send(event);
        Ok(())
    }

    fn publish_nowait(&self, topic: &str, event: Event) {
        let _ = self.sender(topic).send(event);
    }

    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Event> {
        self.sender(topic).subscribe()
    }
}
