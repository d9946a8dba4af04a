//! Prometheus metrics, one registry per application instance (so parallel
//! test servers in one process do not share counters).

use prometheus::{
    Encoder as _, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub ws_sessions: IntGauge,
    pub ws_overflow_disconnects: IntCounter,
    pub chat_messages: IntCounter,
    pub chat_batch_size: Histogram,
    pub chat_commit_seconds: Histogram,
    pub chat_commit_failures: IntCounter,
    pub chat_durable_seconds: Histogram,
    pub sqlite_checkpoint_seconds: Histogram,
    pub cluster_events_in: IntCounter,
    pub cluster_gap_fills: IntCounter,
    pub outbox_jobs: IntCounterVec,
    pub orders_placed: IntCounter,
    pub orders_refused: IntCounterVec,
}

/// Seconds, 0.25 ms to 256 ms in doublings: waits of the chat commit path.
const WAIT_BUCKETS: [f64; 11] = [
    0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
];

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new_custom(Some("jangteo".into()), None)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern, method and status",
            ),
            &["method", "route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "HTTP request latency by route pattern",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["method", "route"],
        )?;
        let ws_sessions = IntGauge::new("ws_sessions", "Open WebSocket sessions")?;
        let ws_overflow_disconnects = IntCounter::new(
            "ws_overflow_disconnects_total",
            "Sessions closed because their outbound queue overflowed",
        )?;
        let chat_messages = IntCounter::new(
            "chat_messages_total",
            "Chat messages committed and fanned out",
        )?;
        let chat_batch_size = Histogram::with_opts(
            HistogramOpts::new("chat_commit_batch_size", "Writes per group commit").buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ]),
        )?;
        let chat_commit_seconds = Histogram::with_opts(
            HistogramOpts::new("chat_commit_seconds", "Duration of one group commit").buckets(
                vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
            ),
        )?;
        let chat_commit_failures =
            IntCounter::new("chat_commit_failures_total", "Group commits that failed")?;
        // The two parts of a message's wait before its ack and fan-out: the
        // queue in front of the committer plus the commit itself.
        let chat_durable_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "chat_durable_seconds",
                "From a chat write's submission to the end of the commit that stored it",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )?;
        let sqlite_checkpoint_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "sqlite_checkpoint_seconds",
                "Duration of one background WAL checkpoint (embedded engine)",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )?;
        let cluster_events_in = IntCounter::new(
            "cluster_events_received_total",
            "Chat events received from other nodes",
        )?;
        let cluster_gap_fills = IntCounter::new(
            "cluster_gap_fills_total",
            "Times a room read missing seqs from the store instead of the bus",
        )?;
        let outbox_jobs = IntCounterVec::new(
            Opts::new(
                "outbox_jobs_total",
                "Outbox jobs worked by this node, by kind and outcome (done, retry, dead)",
            ),
            &["kind", "outcome"],
        )?;
        let orders_placed = IntCounter::new("orders_placed_total", "Orders placed")?;
        let orders_refused = IntCounterVec::new(
            Opts::new(
                "orders_refused_total",
                "Orders refused, by reason (out_of_stock, unavailable, invalid)",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(outbox_jobs.clone()))?;
        registry.register(Box::new(orders_placed.clone()))?;
        registry.register(Box::new(orders_refused.clone()))?;
        registry.register(Box::new(cluster_events_in.clone()))?;
        registry.register(Box::new(cluster_gap_fills.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(ws_sessions.clone()))?;
        registry.register(Box::new(ws_overflow_disconnects.clone()))?;
        registry.register(Box::new(chat_messages.clone()))?;
        registry.register(Box::new(chat_batch_size.clone()))?;
        registry.register(Box::new(chat_commit_seconds.clone()))?;
        registry.register(Box::new(chat_commit_failures.clone()))?;
        registry.register(Box::new(chat_durable_seconds.clone()))?;
        registry.register(Box::new(sqlite_checkpoint_seconds.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            ws_sessions,
            ws_overflow_disconnects,
            chat_messages,
            chat_batch_size,
            chat_commit_seconds,
            chat_commit_failures,
            chat_durable_seconds,
            sqlite_checkpoint_seconds,
            cluster_events_in,
            cluster_gap_fills,
            outbox_jobs,
            orders_placed,
            orders_refused,
        })
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
