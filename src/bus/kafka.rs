//! The Kafka bus (rdkafka, bundled librdkafka): the distributed twin of
//! [`super::InProcessBus`].
//!
//! - Topics are `<kafka_topic_prefix><name>` and are created at start with
//!   `kafka_partitions` partitions (brokers that do not auto-create topics,
//!   like the test broker, need this; an existing topic is left alone).
//! - Records are keyed by [`Event::key`] (a room id for chat events, a
//!   listing or user id for alarms), so one key's events stay in one
//!   partition, in the order one producer wrote them. Each record carries
//!   its node in a header (`jangteo-node`), so the chat hub's reader
//!   ([`Bus::subscribe_others`]) skips the node's own records without
//!   decoding them (with two nodes, half of what each one reads).
//! - [`Bus::subscribe`] reads every partition of a topic from its current
//!   end, without a consumer group: each node needs *every* chat event (it
//!   delivers to its own sessions), so there is nothing to share out and no
//!   rebalance to wait for. Offsets are never committed; a node that
//!   restarts has no sessions left to deliver to (clients resume from the
//!   store), so it starts at the end again.
//! - [`Bus::subscribe_from`] is the durable variant (the notifications
//!   consumer): it starts at positions the caller saved (in the store, not
//!   in Kafka), hands every event its (partition, offset), and blocks the
//!   reading thread while the consumer is behind instead of dropping.
//! - Publishing never waits for the broker on the chat path
//!   ([`Bus::publish_nowait`]): the record goes into librdkafka's queue,
//!   which keeps retrying for `message.timeout.ms` (5 minutes) while the
//!   broker is away. Messages are durable in the store before they are
//!   acknowledged, so a broker outage delays cross-node delivery but loses
//!   nothing; see docs/ARCHITECTURE.md.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers as _, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use tokio::sync::{broadcast, mpsc};

use super::{Bus, BusError, Event};

/// How long a record may wait in the producer queue for the broker.
const MESSAGE_TIMEOUT_MS: &str = "300000";
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);
/// The record header naming the node that published it: a live
/// subscriber skips its own node's records by it, before decoding them.
const NODE_HEADER: &str = "jangteo-node";

pub struct KafkaBus {
    brokers: String,
    prefix: String,
    node: String,
    /// `fetch.wait.max.ms` of every consumer (setting `kafka_fetch_wait_ms`).
    fetch_wait_ms: u32,
    producer: FutureProducer,
    /// Live readers by (topic, others only).
    subscriptions: Mutex<HashMap<(String, bool), broadcast::Sender<Event>>>,
    stop: Arc<AtomicBool>,
}

fn kafka_err(e: impl std::fmt::Display) -> BusError {
    BusError::Other(format!("kafka: {e}"))
}

/// A broker that is down, unreachable or slow is `Unavailable` (worth a
/// retry); any other client error is `Other`.
fn client_err(e: KafkaError) -> BusError {
    use RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(
            C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::MessageTimedOut
            | C::OperationTimedOut
            | C::RequestTimedOut
            | C::BrokerNotAvailable
            | C::NetworkException,
        ) => BusError::Unavailable(format!("kafka: {e}")),
        _ => kafka_err(e),
    }
}

impl KafkaBus {
    /// Connect, and create `topics` (unprefixed names) if they are missing.
    pub async fn connect(
        brokers: &str,
        prefix: &str,
        node: &str,
        partitions: i32,
        linger_ms: u32,
        fetch_wait_ms: u32,
        topics: &[&str],
    ) -> Result<KafkaBus, BusError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", format!("jangteo-{node}"))
            .set("message.timeout.ms", MESSAGE_TIMEOUT_MS)
            .set("linger.ms", linger_ms.to_string())
            .set("broker.address.family", "v4")
            .create()
            .map_err(client_err)?;
        let bus = KafkaBus {
            brokers: brokers.to_string(),
            prefix: prefix.to_string(),
            node: node.to_string(),
            fetch_wait_ms,
            producer,
            subscriptions: Mutex::new(HashMap::new()),
            stop: Arc::new(AtomicBool::new(false)),
        };
        bus.create_topics(topics, partitions).await?;
        Ok(bus)
    }

    fn topic(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    async fn create_topics(&self, topics: &[&str], partitions: i32) -> Result<(), BusError> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("broker.address.family", "v4")
            .create()
            .map_err(client_err)?;
        let names: Vec<String> = topics.iter().map(|t| self.topic(t)).collect();
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .map(|n| NewTopic::new(n, partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(METADATA_TIMEOUT));
        let results = tokio::time::timeout(
            METADATA_TIMEOUT + Duration::from_secs(5),
            admin.create_topics(&new, &options),
        )
        .await
        .map_err(|_| {
            BusError::Unavailable(format!(
                "kafka: no answer from {} creating topics",
                self.brokers
            ))
        })?
        .map_err(client_err)?;
        for result in results {
            match result {
                Ok(name) => tracing::info!(topic = %name, partitions, "created Kafka topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((name, code)) => {
                    return Err(kafka_err(format!("creating topic {name}: {code}")));
                }
            }
        }
        Ok(())
    }

    /// Stop the subscription threads and wait (bounded) for queued records
    /// to reach the broker.
    pub fn close(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.producer.flush(Duration::from_secs(5));
    }

    fn consumer(&self) -> Result<BaseConsumer, BusError> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", format!("jangteo-{}", self.node))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            // A broker answers a fetch as soon as a record is there
            // (Apache Kafka's long polling) or after this wait; tansu, the
            // test broker, always waits it out, so there it is both the
            // cross-node latency and the idle polling rate.
            .set("fetch.wait.max.ms", self.fetch_wait_ms.to_string())
            .set("fetch.min.bytes", "1")
            .set("broker.address.family", "v4")
            .create()
            .map_err(client_err)
    }

    /// Assign every partition of `topic` at its offset in `from` (clamped
    /// to what the broker still holds) or else at its current end
    /// (blocking; a few round trips). Exact offsets, not `Offset::End`, so
    /// nothing published after this returns is missed.
    fn assign(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        from: &HashMap<i32, i64>,
    ) -> Result<(), BusError> {
        let metadata = consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .map_err(client_err)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if partitions.is_empty() {
            return Err(kafka_err(format!("topic {topic} has no partitions")));
        }
        let mut list = TopicPartitionList::new();
        for p in partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, METADATA_TIMEOUT)
                .map_err(client_err)?;
            let at = from.get(&p).map_or(high, |&o| o.clamp(low, high));
            list.add_partition_offset(topic, p, Offset::Offset(at))
                .map_err(client_err)?;
        }
        consumer.assign(&list).map_err(client_err)
    }

    /// Read `topic` from `from` (see [`KafkaBus::assign`]) on a thread of
    /// its own, handing each event (with its position) to `deliver` until
    /// it returns false or the bus closes.
    fn spawn_reader(
        &self,
        topic: &str,
        from: &HashMap<i32, i64>,
        skip_own: bool,
        mut deliver: impl FnMut(Event) -> bool + Send + 'static,
    ) {
        let full = self.topic(topic);
        // A topic created a moment ago may take a moment to show up in the
        // broker's metadata: try a few times.
        let mut attempt = 0;
        let assigned = loop {
            let r = self
                .consumer()
                .and_then(|c| self.assign(&c, &full, from).map(|()| c));
            attempt += 1;
            match r {
                Err(e) if attempt < 10 => {
                    tracing::debug!(topic = %full, error = %e, "Kafka subscription not ready; retrying");
                    std::thread::sleep(Duration::from_millis(300));
                }
                r => break r,
            }
        };
        let consumer = match assigned {
            Ok(c) => c,
            Err(e) => {
                // Without a subscription this node cannot hear the others;
                // say so loudly (readiness keeps checking the broker).
                tracing::error!(topic = %full, error = %e, "Kafka subscription failed");
                return;
            }
        };
        let stop = self.stop.clone();
        let own = skip_own.then(|| self.node.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("kafka-{topic}"))
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    let Some(result) = consumer.poll(Duration::from_millis(100)) else {
                        continue;
                    };
                    let message = match result {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(topic = %full, error = %e, "Kafka consumer error");
                            continue;
                        }
                    };
                    if let (Some(own), Some(headers)) = (own.as_deref(), message.headers()) {
                        if headers.iter().any(|h| {
                            h.key == NODE_HEADER && h.value == Some(own.as_bytes())
                        }) {
                            continue;
                        }
                    }
                    let Some(bytes) = message.payload() else {
                        continue;
                    };
                    match serde_json::from_slice::<Event>(bytes) {
                        Ok(mut event) => {
                            event.position = Some((message.partition(), message.offset()));
                            if !deliver(event) {
                                break;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(topic = %full, error = %e, "undecodable Kafka record skipped");
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the Kafka consumer thread");
        }
    }

    /// The live reader of `topic` (one per topic and kind, shared by its
    /// subscribers), skipping this node's own records if `others_only`.
    fn live(&self, topic: &str, others_only: bool) -> broadcast::Receiver<Event> {
        let mut subs = self.subscriptions.lock().unwrap_or_else(|p| p.into_inner());
        let key = (topic.to_string(), others_only);
        if let Some(tx) = subs.get(&key) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(16_384);
        subs.insert(key, tx.clone());
        self.spawn_reader(topic, &HashMap::new(), others_only, move |event| {
            // Nobody listening right now is not a reason to stop.
            let _ = tx.send(event);
            true
        });
        rx
    }

    /// Broker reachable (metadata answers)?
    pub async fn ping(&self) -> Result<(), BusError> {
        let consumer = self.consumer()?;
        tokio::task::spawn_blocking(move || {
            consumer
                .fetch_metadata(None, Duration::from_secs(2))
                .map(|_| ())
                .map_err(client_err)
        })
        .await
        .map_err(kafka_err)?
    }

    fn record_bytes(event: &Event) -> Result<Vec<u8>, BusError> {
        Ok(serde_json::to_vec(event)?)
    }

    /// The headers of every record this node publishes.
    fn headers(&self) -> OwnedHeaders {
        OwnedHeaders::new().insert(Header {
            key: NODE_HEADER,
            value: Some(self.node.as_str()),
        })
    }
}

#[async_trait]
impl Bus for KafkaBus {
    async fn publish(&self, topic: &str, mut event: Event) -> Result<(), BusError> {
        event.node.clone_from(&self.node);
        let payload = KafkaBus::record_bytes(&event)?;
        let topic = self.topic(topic);
        let record = FutureRecord::to(&topic)
            .key(&event.key)
            .payload(&payload)
            .headers(self.headers());
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| client_err(e))
    }

    fn publish_nowait(&self, topic: &str, mut event: Event) {
        event.node.clone_from(&self.node);
        let payload = match KafkaBus::record_bytes(&event) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "event not serialisable");
                return;
            }
        };
        let topic = self.topic(topic);
        let record = FutureRecord::to(&topic)
            .key(&event.key)
            .payload(&payload)
            .headers(self.headers());
        // The delivery future is not awaited: librdkafka delivers (and
        // retries) on its own thread; dropping the future only drops the
        // report.
        if let Err((e, _)) = self.producer.send_result(record) {
            tracing::error!(topic, error = %e, "Kafka producer queue refused an event");
        }
    }

    fn subscribe(&self, topic: &str) -> broadcast::Receiver<Event> {
        self.live(topic, false)
    }

    fn subscribe_others(&self, topic: &str) -> broadcast::Receiver<Event> {
        self.live(topic, true)
    }

    fn subscribe_from(&self, topic: &str, from: &HashMap<i32, i64>) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(super::DURABLE_QUEUE);
        // Waits while the consumer is behind; stops once it is gone.
        self.spawn_reader(topic, from, false, move |event| {
            tx.blocking_send(event).is_ok()
        });
        rx
    }

    fn node(&self) -> &str {
        &self.node
    }

    fn distributed(&self) -> bool {
        true
    }
}

impl Drop for KafkaBus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}
