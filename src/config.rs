//! Layered configuration: built-in defaults < `jangteo.toml` < `JANGTEO_*`
//! environment < command-line flags.
//!
//! Every setting has one snake_case name used in all layers (`listen` in the
//! file, `JANGTEO_LISTEN` in the environment, `--listen` or `--set listen=..`
//! on the command line). The layers are merged as plain strings first and
//! parsed once at the end, so an error always names the setting *and* the
//! layer it came from. Unknown keys are errors, not warnings: a typo in a
//! production setting must stop the process, not be ignored silently.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::actors::ChatSettings;
pub use crate::service::accounts::AccountSettings;
pub use crate::service::catalog::ShopSettings;
pub use crate::service::oauth::{GoogleSettings, KakaoSettings, OAuthSettings};
pub use crate::service::outbox::OutboxSettings;

/// Environment variable that names the config file; not a setting itself.
pub const CONFIG_FILE_ENV: &str = "JANGTEO_CONFIG";
/// `JANGTEO_*` variables that are not settings: the project's scripts use
/// them (install cache, service state, tool overrides) and a server started
/// from such a shell inherits them. They are skipped, not refused; every
/// other unknown `JANGTEO_*` variable is still an error (a typo).
pub const TOOLING_ENV: &[&str] = &[
    "JANGTEO_CACHE",
    "JANGTEO_SERVICES_DIR",
    "JANGTEO_CARGO",
    "JANGTEO_BIN",
];
/// Prefix of every setting in the environment.
pub const ENV_PREFIX: &str = "JANGTEO_";
/// Config file read from the working directory when no path is given.
pub const DEFAULT_CONFIG_FILE: &str = "jangteo.toml";

/// Every known setting with its default (`None`: derived or optional) and a
/// one-line description used by `docs/OPERATIONS.md` and error messages.
pub const SETTINGS: &[(&str, Option<&str>, &str)] = &[
    (
        "listen",
        Some("127.0.0.1:8080"),
        "address to bind; port 0 picks a free port",
    ),
    (
        "env",
        Some("development"),
        "`development` or `production`; production refuses the built-in sandbox payment provider",
    ),
    (
        "data_dir",
        Some("./data"),
        "directory for the SQLite file and uploaded media",
    ),
    (
        "database_url",
        None,
        "sqlite://PATH (default: sqlite://<data_dir>/jangteo.db) or mysql://USER[:PASS]@HOST:PORT/DB (MySQL 8, MariaDB 10.11)",
    ),
    (
        "log",
        Some("info"),
        "tracing filter, e.g. `info` or `jangteo=debug,actix_web=info`",
    ),
    ("log_format", Some("text"), "`text` or `json`"),
    ("workers", None, "HTTP worker threads (default: CPU count)"),
    (
        "session_ttl_secs",
        Some("1209600"),
        "idle lifetime of a session; each use extends it (sliding window)",
    ),
    (
        "cookie_secure",
        Some("false"),
        "mark the session cookie Secure (set true behind HTTPS)",
    ),
    (
        "max_body_bytes",
        Some("65536"),
        "largest JSON request body accepted",
    ),
    (
        "max_uri_bytes",
        Some("8192"),
        "longest request URI (path and query) accepted; longer gets 414 uri_too_long (256..=65534)",
    ),
    (
        "login_max_failures",
        Some("5"),
        "login attempts per (email, address) within the window before 429",
    ),
    (
        "login_window_secs",
        Some("900"),
        "window for counting failed logins",
    ),
    (
        "signup_max_per_address",
        Some("20"),
        "sign-ups per client address within signup_window_secs before 429",
    ),
    (
        "signup_window_secs",
        Some("3600"),
        "window for counting sign-ups per address",
    ),
    (
        "trust_forwarded_for",
        Some("false"),
        "take the client address from X-Forwarded-For (only behind a trusted proxy)",
    ),
    (
        "argon2_memory_kib",
        Some("19456"),
        "Argon2id memory cost (OWASP minimum 19 MiB)",
    ),
    ("argon2_iterations", Some("2"), "Argon2id time cost"),
    (
        "shutdown_timeout_secs",
        Some("10"),
        "grace period on SIGINT/SIGTERM: for open requests, then again for background work (an outbox job in flight)",
    ),
    (
        "chat_send_rate",
        Some("5"),
        "messages per second per user in an open room (token bucket)",
    ),
    (
        "chat_send_burst",
        Some("20"),
        "burst size of the send rate limit",
    ),
    (
        "chat_direct_send_rate",
        Some("10"),
        "messages per second per user in a direct room (token bucket)",
    ),
    (
        "chat_direct_send_burst",
        Some("20"),
        "burst size of the direct-room send rate limit",
    ),
    (
        "chat_open_room_receipts",
        Some("false"),
        "send read receipts in open rooms too (direct rooms always do)",
    ),
    (
        "chat_room_idle_secs",
        Some("300"),
        "room actors stop after this long without traffic",
    ),
    (
        "chat_badge_delay_ms",
        Some("100"),
        "badge updates are coalesced over this window",
    ),
    (
        "chat_commit_delay_us",
        None,
        "under sustained load a chat commit waits this many microseconds for more messages to share its fsync (0..=20000; 0: never waits); unset: 2000 on SQLite, 500 on the network stores",
    ),
    (
        "ws_outbound_queue",
        Some("1024"),
        "frames queued per connection before a slow client is disconnected",
    ),
    ("ws_heartbeat_secs", Some("15"), "server ping interval"),
    (
        "ws_idle_timeout_secs",
        Some("45"),
        "close a connection that sent nothing (not even a pong) for this long",
    ),
    (
        "ws_session_check_secs",
        Some("60"),
        "re-check a connection's login session this often (expired or ended: close with 4001)",
    ),
    (
        "ws_sync_window_ms",
        Some("300"),
        "a new connection holds live events until its first frame or this long",
    ),
    (
        "notify_chat_debounce_secs",
        Some("30"),
        "a room with new messages tells each offline member at most once per this window (one notification with the count and the latest message)",
    ),
    (
        "ws_frames_per_sec",
        Some("50"),
        "client frames per second per connection (bursts of twice that); the excess is dropped with one rate_limited error per second",
    ),
    (
        "ws_max_frame_bytes",
        Some("65536"),
        "largest WebSocket frame accepted from a client",
    ),
    (
        "ws_max_connections_per_user",
        Some("10"),
        "open WebSocket connections one user may hold on each node; more get 429 rate_limited before the upgrade",
    ),
    (
        "sse_keepalive_secs",
        Some("15"),
        "how often a notification stream (SSE) sends a keep-alive comment; a client that went away is noticed at the latest one or two of these later",
    ),
    (
        "ws_allowed_origins",
        Some(""),
        "comma-separated origins (scheme://host[:port]) whose pages may open /ws and make cookie-authenticated changes, besides the server's own (public_url's origin and the request's Host); empty: only the server's own",
    ),
    (
        "sqlite_synchronous",
        Some("full"),
        "`full`: fsync every commit (acked = on disk); `normal`: acked = safe from a process crash, not from power loss",
    ),
    (
        "redis_url",
        None,
        "redis://HOST:PORT: sessions, rate limits and caches in Redis (default: in-process / SQLite)",
    ),
    ("redis_prefix", Some("jangteo:"), "prefix of every Redis key"),
    (
        "database_pool_size",
        Some("16"),
        "MySQL: connections in the pool (SQLite always uses one writer and 8 readers)",
    ),
    (
        "mongodb_url",
        None,
        "mongodb://HOST:PORT/DB: chat messages in MongoDB (default: the SQL database); DB defaults to `jangteo`",
    ),
    (
        "kafka_brokers",
        None,
        "HOST:PORT,...: cross-node chat delivery and alarm events through Kafka (default: in-process bus, one node)",
    ),
    (
        "kafka_topic_prefix",
        Some(""),
        "prefix of every Kafka topic name (several clusters or test runs on one broker)",
    ),
    (
        "kafka_partitions",
        Some("8"),
        "partitions of each topic when Jangteo creates it",
    ),
    (
        "kafka_linger_ms",
        Some("0"),
        "how long the producer gathers events into one request",
    ),
    (
        "kafka_fetch_wait_ms",
        Some("10"),
        "longest a consumer's fetch waits at the broker for new events",
    ),
    (
        "node_id",
        None,
        "this node's name in the cluster (default: hostname-pid)",
    ),
    (
        "order_payment_window_secs",
        Some("600"),
        "how long a new order waits for its payment before it expires and its stock goes back",
    ),
    (
        "webhook_per_minute_per_address",
        Some("600"),
        "payment provider webhooks accepted per source address per minute (429 rate_limited beyond)",
    ),
    (
        "webhook_queue_max",
        Some("1000"),
        "payment reconciles that may wait at once; a webhook beyond it gets 503 busy and is delivered again by the provider",
    ),
    (
        "uploads_per_hour",
        Some("60"),
        "image uploads one user may make per hour (429 rate_limited beyond)",
    ),
    (
        "media_quota_mib",
        Some("1024"),
        "MiB of uploaded originals one user may keep; an upload past it gets 409 limit_reached",
    ),
    (
        "media_orphan_hours",
        Some("24"),
        "uploads that no listing, product or review uses are deleted after this many hours (fractions allowed; 0: at the next sweep, for tests)",
    ),
    (
        "media_sweep_secs",
        Some("600"),
        "how often each node looks for unused uploads to delete",
    ),
    (
        "max_unpaid_orders",
        Some("5"),
        "orders (shop and used listings) one buyer may have waiting for payment at once; more get 409 limit_reached",
    ),
    (
        "max_unpaid_units",
        Some("30"),
        "units of shop products one buyer may hold in orders waiting for payment at once; more get 409 limit_reached",
    ),
    (
        "listing_reorder_cooldown_secs",
        Some("1800"),
        "after a buyer's order of a used listing is cancelled or expires, how long before the same buyer may order it again (429 rate_limited)",
    ),
    (
        "listings_per_hour",
        Some("20"),
        "listings one user may post per hour (429 rate_limited after that)",
    ),
    (
        "keyword_alerts_per_seller_per_hour",
        Some("3"),
        "keyword alerts one watcher receives about one seller's new listings per hour at most; the rest are not announced",
    ),
    (
        "outbox_poll_ms",
        Some("200"),
        "how often the outbox worker looks for due jobs (order expiry, stock restores)",
    ),
    (
        "outbox_kinds",
        None,
        "comma-separated job kinds this node works (default: all); e.g. a node that only expires orders",
    ),
    (
        "smtp_url",
        None,
        "SMTP server for emails: smtp://HOST:PORT (plain), smtp://USER:PASS@HOST:587?tls=required (STARTTLS) or smtps://USER:PASS@HOST:465; unset: emails are written to data_dir/outbox-mail/ as .eml files",
    ),
    (
        "public_url",
        Some("http://127.0.0.1:8080"),
        "the address users reach the service at; links in emails start with it",
    ),
    (
        "mail_from",
        Some("장터 <no-reply@jangteo.local>"),
        "the From of every email",
    ),
    (
        "mail_daily_max_per_recipient",
        Some("20"),
        "emails one address receives per UTC day at most (verification links included); the rest of that day's are dropped and logged",
    ),
    (
        "email_verify_hours",
        Some("48"),
        "how long an emailed verification link works",
    ),
    (
        "email_verify_resend_max",
        Some("3"),
        "verification emails a user may ask to be sent again per hour (429 rate_limited after that)",
    ),
    (
        "cancel_window_hours",
        Some("24"),
        "a buyer may cancel (refund) paid order lines this many hours after payment; admins at any time",
    ),
    (
        "payment_timeout_ms",
        Some("10000"),
        "timeout of one call to a payment provider (Toss, KakaoPay)",
    ),
    (
        "payment_retry_base_ms",
        Some("120000"),
        "first pause before a failed provider cancel is retried from the outbox; it doubles (2, 4, 8 ... min), at most an hour",
    ),
    (
        "payment_max_attempts",
        Some("7"),
        "attempts of a provider cancel from the outbox before it is given up and shown to admins",
    ),
    (
        "payment_return_url",
        Some("http://127.0.0.1:8080/pay/return"),
        "where KakaoPay sends the buyer back (with `provider`, `order` and `result` query parameters added)",
    ),
    (
        "toss_secret_key",
        None,
        "Toss Payments secret key (`test_sk_...` or `live_sk_...`); set to enable the `toss` provider",
    ),
    (
        "toss_base_url",
        Some("https://api.tosspayments.com"),
        "Toss Payments API base (tests point it at a local fake)",
    ),
    (
        "toss_client_key",
        None,
        "Toss Payments client key (`test_ck_...` or `live_ck_...`; public): with `toss_secret_key`, the web client opens Toss's payment widget",
    ),
    (
        "toss_sdk_url",
        Some("https://js.tosspayments.com/v2/standard"),
        "where the web client loads Toss's payment widget script from (tests point it at a local fake)",
    ),
    (
        "kakaopay_secret_key",
        None,
        "KakaoPay secret key (`DEV...` or `PRD...`); with `kakaopay_cid`, enables the `kakaopay` provider",
    ),
    (
        "kakaopay_cid",
        None,
        "KakaoPay merchant id (`TC0ONETIME` for tests)",
    ),
    (
        "kakaopay_base_url",
        Some("https://open-api.kakaopay.com"),
        "KakaoPay API base (tests point it at a local fake)",
    ),
    (
        "kakao_client_id",
        None,
        "Kakao Login REST API key (the app's client id); set to enable sign-in with Kakao",
    ),
    (
        "kakao_client_secret",
        None,
        "Kakao Login client secret, if the app has one switched on",
    ),
    (
        "kakao_redirect_url",
        None,
        "the Redirect URI registered with Kakao (default: <public_url>/api/auth/kakao/callback)",
    ),
    (
        "kakao_auth_url",
        Some("https://kauth.kakao.com"),
        "Kakao's authorization server (authorize and token endpoints; tests point it at a local fake)",
    ),
    (
        "kakao_api_url",
        Some("https://kapi.kakao.com"),
        "Kakao's API server (the user profile, /v2/user/me)",
    ),
    (
        "google_client_id",
        None,
        "Google OAuth client id (`....apps.googleusercontent.com`); with `google_client_secret`, enables sign-in with Google",
    ),
    (
        "google_client_secret",
        None,
        "Google OAuth client secret",
    ),
    (
        "google_redirect_url",
        None,
        "the authorized redirect URI registered with Google (default: <public_url>/api/auth/google/callback)",
    ),
    (
        "google_issuer",
        Some("https://accounts.google.com"),
        "Google's OpenID Connect issuer; its endpoints and keys come from <issuer>/.well-known/openid-configuration",
    ),
    (
        "oauth_flow_ttl_secs",
        Some("600"),
        "how long a sign-in with Kakao or Google may take between leaving for the provider and coming back",
    ),
    (
        "oauth_timeout_ms",
        Some("10000"),
        "timeout of one call to Kakao or Google",
    ),
    (
        "review_request_delay_secs",
        Some("259200"),
        "how long after a shop order is paid its buyer is asked to review the products (default 3 days)",
    ),
    (
        "low_stock_threshold",
        Some("3"),
        "a shop option with this many or fewer in stock is shown as low, and admins are told once (stock.low)",
    ),
    (
        "reservation_max_secs",
        Some("604800"),
        "latest end of a timed reservation, in seconds from now (default 7 days)",
    ),
    (
        "reservation_sweep_secs",
        Some("30"),
        "with Kafka: every node re-arms all pending reservation timers this often (a dead node's timers still fire; expiry is a conditional update, so once)",
    ),
    (
        "cluster_gap_fill_ms",
        Some("150"),
        "how long a node waits for a missing seq from Kafka before reading it from the store",
    ),
    (
        "cluster_catchup_ms",
        Some("10000"),
        "a room actor that starts on a node of a cluster delivers, from the store, the messages committed this recently (their Kafka events may still be on the way); at most half of chat_room_idle_secs",
    ),
    (
        "metrics_enabled",
        Some("true"),
        "serve Prometheus metrics at GET /metrics (false: 404)",
    ),
    (
        "metrics_token",
        None,
        "when set, GET /metrics requires `Authorization: Bearer <token>` (16..=512 visible ASCII characters); unset: public",
    ),
    (
        "media_max_bytes",
        Some("10485760"),
        "largest image upload accepted",
    ),
];

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File(PathBuf),
    Env(String),
    Cli,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "built-in default"),
            Source::File(p) => write!(f, "config file {}", p.display()),
            Source::Env(name) => write!(f, "environment variable {name}"),
            Source::Cli => write!(f, "command line"),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown setting `{key}` (from {origin}); known settings: {known}")]
    Unknown {
        key: String,
        origin: Source,
        known: String,
    },
    #[error("invalid value for setting `{key}` (from {origin}): {reason}")]
    Invalid {
        key: String,
        origin: Source,
        reason: String,
    },
    #[error("cannot read config file {path}: {reason}")]
    File { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration of one process, grouped by the part of the
/// application that reads it: `AppState::build` hands each group to its
/// subsystem whole (`config.chat` to the chat hub, `config.accounts` to the
/// accounts service) instead of copying fields one by one. The setting
/// names stay flat (`chat_send_rate`, `ws_heartbeat_secs`); the grouping is
/// only how the parsed values are held.
#[derive(Debug, Clone)]
pub struct Config {
    /// `production` turns off what must never face real users (the
    /// sandbox payment provider).
    pub production: bool,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub log: String,
    pub log_format: LogFormat,
    pub workers: Option<usize>,
    pub shutdown_timeout: Duration,
    pub http: HttpSettings,
    pub accounts: AccountSettings,
    pub password: PasswordSettings,
    pub chat: ChatSettings,
    pub market: MarketSettings,
    pub shop: ShopSettings,
    pub payments: PaymentSettings,
    pub oauth: OAuthSettings,
    pub mail: MailSettings,
    pub outbox: OutboxSettings,
    pub media_max_bytes: usize,
    pub uploads: UploadSettings,
    pub metrics: MetricsSettings,
    pub engines: EngineSettings,
}

/// What one user may upload, and when unused uploads go.
#[derive(Debug, Clone, Copy)]
pub struct UploadSettings {
    pub per_hour: u32,
    pub quota_bytes: i64,
    pub orphan_after: Duration,
    pub sweep_every: Duration,
}

/// Where emails go.
#[derive(Clone)]
pub struct MailSettings {
    pub smtp_url: Option<String>,
    pub from: String,
    /// `public_url` without a trailing slash.
    pub public_url: String,
    pub daily_max_per_recipient: u32,
}

impl std::fmt::Debug for MailSettings {
    // The SMTP URL may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("from", &self.from)
            .field("public_url", &self.public_url)
            .finish()
    }
}

/// Payment providers and the refund policy.
#[derive(Clone)]
pub struct PaymentSettings {
    /// Toss: secret key and API base.
    pub toss: Option<(String, String)>,
    /// Toss's browser side: the public client key and the widget script's
    /// URL (only with `toss`).
    pub toss_widget: Option<(String, String)>,
    /// KakaoPay: secret key, cid and API base.
    pub kakaopay: Option<(String, String, String)>,
    pub timeout: Duration,
    pub cancel_window: Duration,
    pub retry_first: Duration,
    pub max_attempts: i64,
    pub return_url: String,
    /// Provider webhooks per source address per minute.
    pub webhook_per_minute: u32,
    /// Reconciles that may wait at once.
    pub webhook_queue_max: i64,
}

impl std::fmt::Debug for PaymentSettings {
    // Secret keys stay out of logs and panics.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field("toss", &self.toss.as_ref().map(|(_, base)| base))
            .field("toss_widget", &self.toss_widget)
            .field(
                "kakaopay",
                &self.kakaopay.as_ref().map(|(_, cid, base)| (cid, base)),
            )
            .field("timeout", &self.timeout)
            .field("cancel_window", &self.cancel_window)
            .field("retry_first", &self.retry_first)
            .field("max_attempts", &self.max_attempts)
            .field("return_url", &self.return_url)
            .finish()
    }
}

/// What the HTTP layer checks on every request.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub cookie_secure: bool,
    pub max_body_bytes: usize,
    pub max_uri_bytes: usize,
    pub trust_forwarded_for: bool,
    /// Lower-cased `scheme://host[:port]` entries, allowed besides the
    /// server's own origin (see `http::origin`).
    pub ws_allowed_origins: Vec<String>,
    /// The lower-cased origin of `public_url`.
    pub public_origin: String,
    /// Keep-alive comment interval of notification streams.
    pub sse_keepalive: Duration,
}

/// Argon2id costs.
#[derive(Debug, Clone, Copy)]
pub struct PasswordSettings {
    pub memory_kib: u32,
    pub iterations: u32,
}

/// The used-goods marketplace.
#[derive(Debug, Clone, Copy)]
pub struct MarketSettings {
    /// Several nodes: how often every node re-arms pending reservations.
    pub reservation_sweep: Duration,
    /// How far ahead a reservation's `until` may be.
    pub reservation_max: Duration,
    /// Listings one user may post per hour.
    pub listings_per_hour: u32,
    /// Keyword alerts one watcher gets about one seller per hour.
    pub keyword_alerts_per_seller: u32,
}

#[derive(Debug, Clone)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// `None`: `/metrics` is public (when enabled).
    pub token: Option<String>,
}

/// Which adapter serves each port, and how to reach it.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub database_url: String,
    /// `FULL` or `NORMAL` (see `sqlite_synchronous`).
    pub sqlite_synchronous: &'static str,
    pub database_pool_size: u32,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub mongodb_url: Option<String>,
    pub kafka_brokers: Option<String>,
    pub kafka_topic_prefix: String,
    pub kafka_partitions: i32,
    /// The producer's `linger.ms`.
    pub kafka_linger_ms: u32,
    /// Longest wait of one fetch at the broker (`fetch.wait.max.ms`).
    pub kafka_fetch_wait_ms: u32,
    pub node_id: String,
}

/// `hostname-pid`: unique per process on a machine, readable in logs.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| {
            h.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(40)
                .collect::<String>()
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    format!("{host}-{}", std::process::id())
}

/// The raw layers before parsing: setting name -> (value, where it came from).
#[derive(Debug, Default, Clone)]
pub struct Layers {
    values: BTreeMap<String, (String, Source)>,
}

fn is_known(key: &str) -> bool {
    SETTINGS.iter().any(|(k, _, _)| *k == key)
}

fn known_list() -> String {
    SETTINGS
        .iter()
        .map(|(k, _, _)| *k)
        .collect::<Vec<_>>()
        .join(", ")
}

impl Layers {
    /// Start from the built-in defaults.
    pub fn defaults() -> Self {
        let mut layers = Layers::default();
        for (key, default, _) in SETTINGS {
            if let Some(v) = default {
                layers
                    .values
                    .insert((*key).to_string(), ((*v).to_string(), Source::Default));
            }
        }
        layers
    }

    /// Set one value; unknown keys are rejected.
    pub fn set(
        &mut self,
        key: &str,
        value: impl Into<String>,
        source: Source,
    ) -> Result<(), ConfigError> {
        if !is_known(key) {
            return Err(ConfigError::Unknown {
                key: key.to_string(),
                origin: source,
                known: known_list(),
            });
        }
        self.values.insert(key.to_string(), (value.into(), source));
        Ok(())
    }

    /// Merge a TOML document (the contents of `jangteo.toml`).
    pub fn merge_toml(&mut self, text: &str, path: &Path) -> Result<(), ConfigError> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        for (key, value) in table {
            let source = Source::File(path.to_path_buf());
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Float(f) => f.to_string(),
                other => {
                    return Err(ConfigError::Invalid {
                        key,
                        origin: source,
                        reason: format!(
                            "expected a string, number or boolean, got {}",
                            other.type_str()
                        ),
                    })
                }
            };
            self.set(&key, text, source)?;
        }
        Ok(())
    }

    /// Merge every `JANGTEO_*` variable. `JANGTEO_CONFIG` names the file and
    /// the [`TOOLING_ENV`] variables belong to the scripts: both are
    /// skipped; any other unknown `JANGTEO_*` variable is an error.
    pub fn merge_env<I>(&mut self, vars: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if name == CONFIG_FILE_ENV || TOOLING_ENV.contains(&name.as_str()) {
                continue;
            }
            let key = rest.to_ascii_lowercase();
            self.set(&key, value, Source::Env(name.clone()))?;
        }
        Ok(())
    }

    /// Merge `key=value` pairs given on the command line.
    pub fn merge_cli<I, S>(&mut self, pairs: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (S, String)>,
        S: AsRef<str>,
    {
        for (key, value) in pairs {
            let key = key.as_ref().replace('-', "_");
            self.set(&key, value, Source::Cli)?;
        }
        Ok(())
    }

    fn get(&self, key: &str) -> Option<&(String, Source)> {
        self.values.get(key)
    }

    fn parse<T>(&self, key: &str) -> Result<T, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: fmt::Display,
    {
        let (raw, source) = self.get(key).ok_or_else(|| ConfigError::Invalid {
            key: key.to_string(),
            origin: Source::Default,
            reason: "missing".to_string(),
        })?;
        raw.trim().parse::<T>().map_err(|e| ConfigError::Invalid {
            key: key.to_string(),
            origin: source.clone(),
            reason: format!("{e} (got {raw:?})"),
        })
    }

    fn invalid(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        let source = self
            .get(key)
            .map(|(_, s)| s.clone())
            .unwrap_or(Source::Default);
        ConfigError::Invalid {
            key: key.to_string(),
            origin: source,
            reason: reason.into(),
        }
    }

    fn payments(&self) -> Result<PaymentSettings, ConfigError> {
        let toss = match self.secret("toss_secret_key")? {
            Some(key) => Some((key, self.url("toss_base_url")?)),
            None => None,
        };
        let kakaopay = match (
            self.secret("kakaopay_secret_key")?,
            self.secret("kakaopay_cid")?,
        ) {
            (Some(key), Some(cid)) => Some((key, cid, self.url("kakaopay_base_url")?)),
            (None, None) => None,
            _ => {
                return Err(self.invalid(
                    "kakaopay_cid",
                    "kakaopay_secret_key and kakaopay_cid are set together",
                ))
            }
        };
        let toss_widget = match (&toss, self.secret("toss_client_key")?) {
            (Some(_), Some(client_key)) => Some((client_key, self.url("toss_sdk_url")?)),
            _ => None,
        };
        Ok(PaymentSettings {
            toss,
            toss_widget,
            kakaopay,
            timeout: match self.positive_u64("payment_timeout_ms")? {
                ms @ 1..=120_000 => Duration::from_millis(ms),
                _ => return Err(self.invalid("payment_timeout_ms", "expected 1..=120000")),
            },
            cancel_window: match self.parse::<u64>("cancel_window_hours")? {
                h @ 0..=8_760 => Duration::from_secs(h * 3600),
                _ => return Err(self.invalid("cancel_window_hours", "expected 0..=8760 (a year)")),
            },
            retry_first: match self.positive_u64("payment_retry_base_ms")? {
                ms @ 1..=3_600_000 => Duration::from_millis(ms),
                _ => return Err(self.invalid("payment_retry_base_ms", "expected 1..=3600000")),
            },
            max_attempts: match self.positive_u64("payment_max_attempts")? {
                n @ 1..=50 => i64::try_from(n).unwrap_or(7),
                _ => return Err(self.invalid("payment_max_attempts", "expected 1..=50")),
            },
            webhook_per_minute: match self.parse::<u32>("webhook_per_minute_per_address")? {
                n @ 1..=1_000_000 => n,
                _ => {
                    return Err(
                        self.invalid("webhook_per_minute_per_address", "expected 1..=1000000")
                    )
                }
            },
            webhook_queue_max: match self.parse::<i64>("webhook_queue_max")? {
                n @ 1..=1_000_000 => n,
                _ => return Err(self.invalid("webhook_queue_max", "expected 1..=1000000")),
            },
            return_url: self.url("payment_return_url")?,
        })
    }

    /// The optional value of a setting holding a secret or an id: empty
    /// means unset; otherwise visible ASCII, at most 500 bytes.
    fn secret(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            Some((v, _)) if v.is_empty() => Ok(None),
            Some((v, _)) => {
                if v.len() > 500 || !v.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(self.invalid(key, "expected visible ASCII characters"));
                }
                Ok(Some(v.clone()))
            }
            None => Ok(None),
        }
    }

    /// An http(s) URL setting, without a trailing slash.
    fn url(&self, key: &str) -> Result<String, ConfigError> {
        let v: String = self.parse(key)?;
        if !(v.starts_with("http://") || v.starts_with("https://")) || v.len() > 500 {
            return Err(self.invalid(key, "expected an http:// or https:// URL"));
        }
        Ok(v.trim_end_matches('/').to_string())
    }

    fn oauth(&self) -> Result<OAuthSettings, ConfigError> {
        let public: String = self.parse("public_url")?;
        let public = public.trim_end_matches('/').to_string();
        let redirect = |key: &str, provider: &str| -> Result<String, ConfigError> {
            match self.get(key) {
                Some((v, _)) if !v.is_empty() => self.url(key),
                _ => Ok(format!("{public}/api/auth/{provider}/callback")),
            }
        };
        let kakao = match self.secret("kakao_client_id")? {
            Some(client_id) => Some(KakaoSettings {
                client_id,
                client_secret: self.secret("kakao_client_secret")?,
                redirect_url: redirect("kakao_redirect_url", "kakao")?,
                auth_url: self.url("kakao_auth_url")?,
                api_url: self.url("kakao_api_url")?,
            }),
            None => None,
        };
        let google = match (
            self.secret("google_client_id")?,
            self.secret("google_client_secret")?,
        ) {
            (Some(client_id), Some(client_secret)) => Some(GoogleSettings {
                client_id,
                client_secret,
                redirect_url: redirect("google_redirect_url", "google")?,
                issuer: self.url("google_issuer")?,
            }),
            (None, None) => None,
            _ => {
                return Err(self.invalid(
                    "google_client_secret",
                    "google_client_id and google_client_secret are set together",
                ))
            }
        };
        Ok(OAuthSettings {
            kakao,
            google,
            flow_ttl: match self.positive_u64("oauth_flow_ttl_secs")? {
                s @ 1..=3_600 => Duration::from_secs(s),
                _ => return Err(self.invalid("oauth_flow_ttl_secs", "expected 1..=3600")),
            },
            timeout: match self.positive_u64("oauth_timeout_ms")? {
                ms @ 1..=120_000 => Duration::from_millis(ms),
                _ => return Err(self.invalid("oauth_timeout_ms", "expected 1..=120000")),
            },
        })
    }

    fn positive_u64(&self, key: &str) -> Result<u64, ConfigError> {
        let v: u64 = self.parse(key)?;
        if v == 0 {
            return Err(self.invalid(key, "must be greater than 0"));
        }
        Ok(v)
    }

    fn positive_f64(&self, key: &str) -> Result<f64, ConfigError> {
        let v: f64 = self.parse(key)?;
        if !(v.is_finite() && v > 0.0) {
            return Err(self.invalid(key, "must be a positive number"));
        }
        Ok(v)
    }

    /// A comma-separated list of web origins, `scheme://host[:port]` each
    /// (as browsers send them in `Origin`: no path, no trailing slash),
    /// lower-cased. Empty entries are skipped; `null` is not an origin one
    /// can allow (sandboxed frames and files all send it).
    fn origins(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        let raw: String = self.parse(key)?;
        let mut out = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let entry = entry.trim_end_matches('/').to_ascii_lowercase();
            let valid = entry.split_once("://").is_some_and(|(scheme, rest)| {
                !scheme.is_empty()
                    && scheme
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                    && !rest.is_empty()
                    && !rest.contains('/')
                    && rest.chars().all(|c| c.is_ascii_graphic())
            });
            if !valid {
                return Err(self.invalid(
                    key,
                    format!("expected scheme://host[:port] entries, got {entry:?}"),
                ));
            }
            out.push(entry);
        }
        Ok(out)
    }

    /// Parse every setting; the first failure names its setting and layer.
    pub fn resolve(&self) -> Result<Config, ConfigError> {
        let data_dir = PathBuf::from(self.parse::<String>("data_dir")?);
        let database_url = match self.get("database_url") {
            Some((url, _)) => url.trim().to_string(),
            None => format!("sqlite://{}", data_dir.join("jangteo.db").display()),
        };
        if !["sqlite:", "mysql:", "mariadb:"]
            .iter()
            .any(|p| database_url.starts_with(p))
        {
            return Err(self.invalid(
                "database_url",
                "expected sqlite://PATH or mysql://USER@HOST:PORT/DATABASE",
            ));
        }
        if database_url.contains(":memory:") || database_url.contains("mode=memory") {
            return Err(self.invalid(
                "database_url",
                "in-memory SQLite is not supported (the store uses separate reader and writer connections)",
            ));
        }
        let log_format = match self.parse::<String>("log_format")?.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(self.invalid(
                    "log_format",
                    format!("expected `text` or `json`, got {other:?}"),
                ))
            }
        };
        let log: String = self.parse("log")?;
        if tracing_subscriber::EnvFilter::try_new(&log).is_err() {
            return Err(self.invalid("log", format!("not a valid tracing filter: {log:?}")));
        }
        let workers = match self.get("workers") {
            Some(_) => Some(self.positive_u64("workers")? as usize),
            None => None,
        };
        let max_body_bytes = self.positive_u64("max_body_bytes")? as usize;
        // Above 65534 bytes the HTTP layer (the `http` crate's `Uri`)
        // refuses the request itself, with a bare 400 and no envelope.
        let max_uri_bytes: usize = self.parse("max_uri_bytes")?;
        if !(256..=65_534).contains(&max_uri_bytes) {
            return Err(self.invalid("max_uri_bytes", "expected 256..=65534"));
        }
        let argon2_memory_kib: u32 = self.parse("argon2_memory_kib")?;
        if argon2_memory_kib < 8 {
            return Err(self.invalid("argon2_memory_kib", "must be at least 8"));
        }
        let argon2_iterations: u32 = self.parse("argon2_iterations")?;
        if argon2_iterations == 0 {
            return Err(self.invalid("argon2_iterations", "must be at least 1"));
        }
        let login_max_failures: u32 = self.parse("login_max_failures")?;
        if login_max_failures == 0 {
            return Err(self.invalid("login_max_failures", "must be at least 1"));
        }
        let metrics_token = match self.get("metrics_token") {
            Some((token, _)) => {
                if !(16..=512).contains(&token.len())
                    || !token.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(self.invalid(
                        "metrics_token",
                        "expected 16..=512 visible ASCII characters (no spaces)",
                    ));
                }
                Some(token.clone())
            }
            None => None,
        };
        let production = match self.parse::<String>("env")?.as_str() {
            "development" => false,
            "production" => true,
            other => {
                return Err(self.invalid(
                    "env",
                    format!("expected `development` or `production`, got {other:?}"),
                ))
            }
        };
        Ok(Config {
            production,
            listen: self.parse("listen")?,
            data_dir,
            log,
            log_format,
            workers,
            shutdown_timeout: Duration::from_secs(self.parse("shutdown_timeout_secs")?),
            http: HttpSettings {
                cookie_secure: self.parse("cookie_secure")?,
                max_body_bytes,
                max_uri_bytes,
                trust_forwarded_for: self.parse("trust_forwarded_for")?,
                ws_allowed_origins: self.origins("ws_allowed_origins")?,
                public_origin: crate::http::origin::origin_of(&self.url("public_url")?)
                    .unwrap_or_default(),
                sse_keepalive: Duration::from_secs(self.positive_u64("sse_keepalive_secs")?),
            },
            accounts: AccountSettings {
                session_ttl: Duration::from_secs(self.positive_u64("session_ttl_secs")?),
                login_max_failures,
                login_window: Duration::from_secs(self.positive_u64("login_window_secs")?),
                signup_max_per_address: self.parse("signup_max_per_address")?,
                signup_window: Duration::from_secs(self.positive_u64("signup_window_secs")?),
                verify_ttl: match self.positive_u64("email_verify_hours")? {
                    h @ 1..=720 => Duration::from_secs(h * 3600),
                    _ => {
                        return Err(self.invalid("email_verify_hours", "expected 1..=720 (30 days)"))
                    }
                },
                verify_resend_max: match self.parse::<u32>("email_verify_resend_max")? {
                    n @ 1..=100 => n,
                    _ => return Err(self.invalid("email_verify_resend_max", "expected 1..=100")),
                },
            },
            password: PasswordSettings {
                memory_kib: argon2_memory_kib,
                iterations: argon2_iterations,
            },
            chat: self.chat()?,
            market: MarketSettings {
                reservation_sweep: Duration::from_secs(
                    self.positive_u64("reservation_sweep_secs")?,
                ),
                // At most 10 years: `until` is epoch ms in an i64.
                reservation_max: match self.positive_u64("reservation_max_secs")? {
                    s @ 1..=315_360_000 => Duration::from_secs(s),
                    _ => {
                        return Err(self
                            .invalid("reservation_max_secs", "expected 1..=315360000 (10 years)"))
                    }
                },
                listings_per_hour: match self.parse::<u32>("listings_per_hour")? {
                    n @ 1..=1_000_000 => n,
                    _ => return Err(self.invalid("listings_per_hour", "expected 1..=1000000")),
                },
                keyword_alerts_per_seller: match self
                    .parse::<u32>("keyword_alerts_per_seller_per_hour")?
                {
                    n @ 1..=1_000_000 => n,
                    _ => {
                        return Err(self
                            .invalid("keyword_alerts_per_seller_per_hour", "expected 1..=1000000"))
                    }
                },
            },
            shop: ShopSettings {
                review_request_delay: match self.positive_u64("review_request_delay_secs")? {
                    s @ 1..=2_592_000 => Duration::from_secs(s),
                    _ => {
                        return Err(self.invalid(
                            "review_request_delay_secs",
                            "expected 1..=2592000 (30 days)",
                        ))
                    }
                },
                low_stock_threshold: match self.parse::<i64>("low_stock_threshold")? {
                    n @ 0..=1_000_000 => n,
                    _ => return Err(self.invalid("low_stock_threshold", "expected 0..=1000000")),
                },
                payment_window: match self.positive_u64("order_payment_window_secs")? {
                    s @ 1..=86_400 => Duration::from_secs(s),
                    _ => {
                        return Err(
                            self.invalid("order_payment_window_secs", "expected 1..=86400 (a day)")
                        )
                    }
                },
                buyer_limits: crate::store::sql::BuyerLimits {
                    unpaid_orders: match self.parse::<i64>("max_unpaid_orders")? {
                        n @ 1..=1_000_000 => n,
                        _ => return Err(self.invalid("max_unpaid_orders", "expected 1..=1000000")),
                    },
                    unpaid_units: match self.parse::<i64>("max_unpaid_units")? {
                        n @ 1..=100_000_000 => n,
                        _ => return Err(self.invalid("max_unpaid_units", "expected 1..=100000000")),
                    },
                    reorder_cooldown_ms: match self.parse::<i64>("listing_reorder_cooldown_secs")? {
                        s @ 0..=2_592_000 => s * 1000,
                        _ => {
                            return Err(self.invalid(
                                "listing_reorder_cooldown_secs",
                                "expected 0..=2592000 (30 days)",
                            ))
                        }
                    },
                },
            },
            payments: self.payments()?,
            oauth: self.oauth()?,
            mail: MailSettings {
                smtp_url: match self.get("smtp_url") {
                    Some((v, _)) if v.is_empty() => None,
                    Some((v, _)) => {
                        if !(v.starts_with("smtp://") || v.starts_with("smtps://")) {
                            return Err(
                                self.invalid("smtp_url", "expected smtp://... or smtps://...")
                            );
                        }
                        Some(v.clone())
                    }
                    None => None,
                },
                public_url: {
                    let v: String = self.parse("public_url")?;
                    if !(v.starts_with("http://") || v.starts_with("https://")) || v.len() > 300 {
                        return Err(
                            self.invalid("public_url", "expected an http:// or https:// URL")
                        );
                    }
                    v.trim_end_matches('/').to_string()
                },
                from: {
                    let v: String = self.parse("mail_from")?;
                    if v.trim().is_empty() || v.len() > 200 {
                        return Err(
                            self.invalid("mail_from", "expected `Name <address>` or an address")
                        );
                    }
                    v
                },
                daily_max_per_recipient: match self.parse::<u32>("mail_daily_max_per_recipient")? {
                    n @ 1..=10_000 => n,
                    _ => {
                        return Err(
                            self.invalid("mail_daily_max_per_recipient", "expected 1..=10000")
                        )
                    }
                },
            },
            outbox: OutboxSettings {
                poll: Duration::from_millis(self.positive_u64("outbox_poll_ms")?),
                lease: Duration::from_secs(60),
                kinds: match self.get("outbox_kinds") {
                    Some((list, _)) => {
                        let kinds: Vec<String> = list
                            .split(',')
                            .map(|k| k.trim().to_string())
                            .filter(|k| !k.is_empty())
                            .collect();
                        if kinds.is_empty()
                            || kinds
                                .iter()
                                .any(|k| !crate::service::outbox::ALL_KINDS.contains(&k.as_str()))
                        {
                            return Err(self.invalid(
                                "outbox_kinds",
                                format!(
                                    "expected some of {}",
                                    crate::service::outbox::ALL_KINDS.join(", ")
                                ),
                            ));
                        }
                        Some(kinds)
                    }
                    None => None,
                },
            },
            media_max_bytes: self.positive_u64("media_max_bytes")? as usize,
            uploads: UploadSettings {
                per_hour: match self.parse::<u32>("uploads_per_hour")? {
                    n @ 1..=1_000_000 => n,
                    _ => return Err(self.invalid("uploads_per_hour", "expected 1..=1000000")),
                },
                quota_bytes: match self.parse::<i64>("media_quota_mib")? {
                    n @ 1..=1_048_576 => n * 1024 * 1024,
                    _ => return Err(self.invalid("media_quota_mib", "expected 1..=1048576")),
                },
                orphan_after: match self.parse::<f64>("media_orphan_hours")? {
                    h if (0.0..=8_760.0).contains(&h) => Duration::from_secs_f64(h * 3600.0),
                    _ => return Err(self.invalid("media_orphan_hours", "expected 0..=8760")),
                },
                sweep_every: Duration::from_secs(self.positive_u64("media_sweep_secs")?),
            },
            metrics: MetricsSettings {
                enabled: self.parse("metrics_enabled")?,
                token: metrics_token,
            },
            engines: self.engines(database_url)?,
        })
    }

    fn chat(&self) -> Result<ChatSettings, ConfigError> {
        Ok(ChatSettings {
            send_rate_per_sec: self.positive_f64("chat_send_rate")?,
            send_burst: self.positive_f64("chat_send_burst")?.max(1.0),
            direct_send_rate_per_sec: self.positive_f64("chat_direct_send_rate")?,
            direct_send_burst: self.positive_f64("chat_direct_send_burst")?.max(1.0),
            open_room_receipts: self.parse("chat_open_room_receipts")?,
            room_idle: Duration::from_secs(self.positive_u64("chat_room_idle_secs")?),
            badge_delay: Duration::from_millis(self.parse("chat_badge_delay_ms")?),
            commit_delay: match self.get("chat_commit_delay_us") {
                None => None,
                Some(_) => match self.parse::<u64>("chat_commit_delay_us")? {
                    us @ 0..=20_000 => Some(Duration::from_micros(us)),
                    _ => return Err(self.invalid("chat_commit_delay_us", "expected 0..=20000")),
                },
            },
            outbound_queue: self.positive_u64("ws_outbound_queue")? as usize,
            heartbeat: Duration::from_secs(self.positive_u64("ws_heartbeat_secs")?),
            idle_timeout: Duration::from_secs(self.positive_u64("ws_idle_timeout_secs")?),
            session_check: Duration::from_secs(self.positive_u64("ws_session_check_secs")?),
            sync_window: Duration::from_millis(self.parse("ws_sync_window_ms")?),
            max_frame_bytes: self.positive_u64("ws_max_frame_bytes")? as usize,
            frames_per_sec: self.positive_f64("ws_frames_per_sec")?,
            gap_fill: Duration::from_millis(self.positive_u64("cluster_gap_fill_ms")?),
            catchup: Duration::from_millis(self.parse("cluster_catchup_ms")?)
                .min(Duration::from_secs(self.positive_u64("chat_room_idle_secs")?) / 2),
            max_connections_per_user: self.positive_u64("ws_max_connections_per_user")? as usize,
            notify_debounce: Duration::from_secs(self.positive_u64("notify_chat_debounce_secs")?),
        })
    }

    fn engines(&self, database_url: String) -> Result<EngineSettings, ConfigError> {
        Ok(EngineSettings {
            database_url,
            sqlite_synchronous: match self.parse::<String>("sqlite_synchronous")?.as_str() {
                "full" => "FULL",
                "normal" => "NORMAL",
                other => {
                    return Err(self.invalid(
                        "sqlite_synchronous",
                        format!("expected `full` or `normal`, got {other:?}"),
                    ))
                }
            },
            database_pool_size: self.positive_u64("database_pool_size")?.min(1024) as u32,
            redis_url: match self.get("redis_url") {
                Some((url, _)) if url.starts_with("redis://") || url.starts_with("rediss://") => {
                    Some(url.clone())
                }
                Some(_) => return Err(self.invalid("redis_url", "expected redis://HOST:PORT")),
                None => None,
            },
            redis_prefix: self.parse("redis_prefix")?,
            mongodb_url: match self.get("mongodb_url") {
                Some((url, _))
                    if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") =>
                {
                    Some(url.clone())
                }
                Some(_) => {
                    return Err(self.invalid("mongodb_url", "expected mongodb://HOST:PORT/DB"))
                }
                None => None,
            },
            kafka_brokers: match self.get("kafka_brokers") {
                Some((list, _)) => {
                    let ok = !list.is_empty()
                        && list.split(',').all(|hp| {
                            hp.rsplit_once(':')
                                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok())
                        });
                    if !ok {
                        return Err(
                            self.invalid("kafka_brokers", "expected HOST:PORT[,HOST:PORT...]")
                        );
                    }
                    Some(list.clone())
                }
                None => None,
            },
            kafka_topic_prefix: self.parse("kafka_topic_prefix")?,
            kafka_partitions: match self.positive_u64("kafka_partitions")? {
                n @ 1..=1024 => n as i32,
                _ => return Err(self.invalid("kafka_partitions", "expected 1..=1024")),
            },
            kafka_linger_ms: match self.parse::<u64>("kafka_linger_ms")? {
                n @ 0..=1000 => n as u32,
                _ => return Err(self.invalid("kafka_linger_ms", "expected 0..=1000")),
            },
            kafka_fetch_wait_ms: match self.positive_u64("kafka_fetch_wait_ms")? {
                n @ 1..=5000 => n as u32,
                _ => return Err(self.invalid("kafka_fetch_wait_ms", "expected 1..=5000")),
            },
            node_id: match self.get("node_id") {
                Some((id, _)) => {
                    if id.is_empty()
                        || id.len() > 64
                        || !id
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    {
                        return Err(self
                            .invalid("node_id", "expected 1..64 characters of A-Z a-z 0-9 - _ ."));
                    }
                    id.clone()
                }
                None => default_node_id(),
            },
        })
    }
}

impl Config {
    /// Load the configuration of a process: defaults, then the config file
    /// (explicit path, `JANGTEO_CONFIG`, or `./jangteo.toml` if present), the
    /// environment, and the command-line pairs.
    pub fn load<E>(
        explicit_file: Option<&Path>,
        env: E,
        cli: Vec<(String, String)>,
    ) -> Result<Config, ConfigError>
    where
        E: IntoIterator<Item = (String, String)>,
    {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut layers = Layers::defaults();
        let from_env = env
            .iter()
            .find(|(k, _)| k == CONFIG_FILE_ENV)
            .map(|(_, v)| PathBuf::from(v));
        let (file, required) = match (explicit_file, from_env) {
            (Some(p), _) => (p.to_path_buf(), true),
            (None, Some(p)) => (p, true),
            (None, None) => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => layers.merge_toml(&text, &file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {}
            Err(e) => {
                return Err(ConfigError::File {
                    path: file,
                    reason: e.to_string(),
                })
            }
        }
        layers.merge_env(env)?;
        layers.merge_cli(cli)?;
        layers.resolve()
    }

    /// Defaults overridden by `pairs` only (no file, no environment): what
    /// tests and embedders use.
    pub fn from_pairs<I, S>(pairs: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (S, String)>,
        S: AsRef<str>,
    {
        let mut layers = Layers::defaults();
        layers.merge_cli(pairs)?;
        layers.resolve()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_resolve() {
        let c = Layers::defaults().resolve().expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.engines.database_url, "sqlite://./data/jangteo.db");
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn layers_override_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("j.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1000\"\nlog = \"debug\"\nmax_body_bytes = 10\n",
        )
        .expect("write");
        let c = Config::load(
            Some(&file),
            env(&[
                ("JANGTEO_LISTEN", "127.0.0.1:2000"),
                ("JANGTEO_LOG", "warn"),
                ("PATH", "/bin"),
            ]),
            vec![("listen".into(), "127.0.0.1:0".into())],
        )
        .expect("valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:0");
        assert_eq!(c.log, "warn");
        assert_eq!(c.http.max_body_bytes, 10);
    }

    #[test]
    fn data_dir_moves_default_database() {
        let c = Config::from_pairs([("data_dir", "/tmp/x".to_string())]).expect("valid");
        assert_eq!(c.engines.database_url, "sqlite:///tmp/x/jangteo.db");
    }

    #[test]
    fn unknown_env_is_named() {
        let err = Config::load(None, env(&[("JANGTEO_LISTN", "x")]), vec![]).expect_err("unknown");
        let msg = err.to_string();
        assert!(
            msg.contains("`listn`") && msg.contains("JANGTEO_LISTN"),
            "{msg}"
        );
    }

    #[test]
    fn the_scripts_variables_are_not_settings() {
        let vars = env(&[
            ("JANGTEO_CACHE", "/tmp/cache"),
            ("JANGTEO_SERVICES_DIR", "/tmp/state"),
            ("JANGTEO_LOG", "warn"),
        ]);
        let c = Config::load(None, vars, vec![]).expect("the scripts' variables are skipped");
        assert_eq!(c.log, "warn");
        let err = Config::load(None, env(&[("JANGTEO_CACHES", "x")]), vec![]).expect_err("typo");
        assert!(err.to_string().contains("JANGTEO_CACHES"), "{err}");
    }

    #[test]
    fn unknown_file_key_is_named() {
        let mut l = Layers::defaults();
        let err = l
            .merge_toml("colour = 1", Path::new("j.toml"))
            .expect_err("unknown");
        assert!(err.to_string().contains("`colour`"));
    }

    #[test]
    fn invalid_values_are_named() {
        for (key, value) in [
            ("listen", "nowhere"),
            ("max_body_bytes", "-1"),
            ("log_format", "xml"),
            ("cookie_secure", "yes please"),
            ("database_url", "postgres://x"),
            ("session_ttl_secs", "0"),
            ("log", "[[["),
            ("mongodb_url", "http://mongo:27017"),
            ("kafka_brokers", "kafka"),
            ("kafka_brokers", "a:9092,,b:9092"),
            ("kafka_brokers", "a:notaport"),
            ("kafka_partitions", "0"),
            ("kafka_partitions", "5000"),
            ("kafka_fetch_wait_ms", "0"),
            ("kafka_fetch_wait_ms", "5001"),
            ("kafka_linger_ms", "1001"),
            ("kafka_linger_ms", "-1"),
            ("node_id", "has space"),
            ("node_id", ""),
            ("cluster_gap_fill_ms", "0"),
            ("cluster_catchup_ms", "soon"),
            ("reservation_sweep_secs", "0"),
            ("database_pool_size", "0"),
            ("max_uri_bytes", "100"),
            ("metrics_token", ""),
            ("metrics_token", "short"),
            ("metrics_token", "has a space in it somewhere"),
            ("metrics_enabled", "maybe"),
            ("reservation_max_secs", "0"),
            ("low_stock_threshold", "-1"),
            ("env", "staging"),
            ("order_payment_window_secs", "0"),
            ("outbox_poll_ms", "0"),
            ("outbox_kinds", "send_email"),
            ("chat_direct_send_rate", "0"),
            ("chat_direct_send_burst", "-1"),
            ("ws_max_connections_per_user", "0"),
            ("ws_allowed_origins", "example.com"),
            ("ws_allowed_origins", "https://example.com/app"),
            ("ws_allowed_origins", "null"),
            ("ws_allowed_origins", "https://"),
            ("reservation_max_secs", "999999999999"),
            ("max_uri_bytes", "65535"),
            ("chat_commit_delay_us", "20001"),
            ("chat_commit_delay_us", "soon"),
            ("media_orphan_hours", "-0.5"),
            ("media_orphan_hours", "NaN"),
            ("media_orphan_hours", "8761"),
        ] {
            let err = Config::from_pairs([(key, value.to_string())]).expect_err(key);
            assert!(
                err.to_string().contains(&format!("`{key}`")),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn the_commit_delay_and_fractional_orphan_hours_parse() {
        let c = Config::from_pairs([
            ("chat_commit_delay_us", "0".to_string()),
            ("media_orphan_hours", "0.5".to_string()),
        ])
        .expect("valid");
        assert_eq!(c.chat.commit_delay, Some(Duration::ZERO));
        assert_eq!(c.uploads.orphan_after, Duration::from_secs(1800));
        let c = Config::from_pairs([("media_orphan_hours", "24".to_string())]).expect("valid");
        assert_eq!(c.chat.commit_delay, None, "unset: the engine's default");
    }

    #[test]
    fn distributed_settings_parse() {
        let c = Config::from_pairs([
            (
                "mongodb_url",
                "mongodb://127.0.0.1:27017/jangteo".to_string(),
            ),
            ("kafka_brokers", "127.0.0.1:9092,10.0.0.2:9093".to_string()),
            ("node_id", "node-1.a_b".to_string()),
        ])
        .expect("valid");
        assert_eq!(
            c.engines.kafka_brokers.as_deref(),
            Some("127.0.0.1:9092,10.0.0.2:9093")
        );
        assert_eq!(c.engines.node_id, "node-1.a_b");
        assert_eq!(c.engines.kafka_partitions, 8);
        assert_eq!(c.engines.kafka_fetch_wait_ms, 10);
        assert_eq!(c.engines.kafka_linger_ms, 0);
        // Unset: the embedded twins, and a node id of its own.
        let d = Config::from_pairs(Vec::<(&str, String)>::new()).expect("defaults");
        assert!(
            d.engines.mongodb_url.is_none()
                && d.engines.kafka_brokers.is_none()
                && d.engines.redis_url.is_none()
        );
        assert!(d
            .engines
            .node_id
            .ends_with(&format!("-{}", std::process::id())));
    }

    #[test]
    fn operations_doc_lists_every_setting() {
        let doc =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md"))
                .expect("doc");
        for (key, _, _) in SETTINGS {
            assert!(
                doc.contains(&format!("| `{key}` |")),
                "docs/OPERATIONS.md lacks `{key}`"
            );
        }
    }

    #[test]
    fn allowed_origins_are_normalised() {
        let c = Config::from_pairs([(
            "ws_allowed_origins",
            " https://Jangteo.example/ ,, http://localhost:3000,capacitor://localhost".to_string(),
        )])
        .expect("valid");
        assert_eq!(
            c.http.ws_allowed_origins,
            [
                "https://jangteo.example",
                "http://localhost:3000",
                "capacitor://localhost"
            ]
        );
        let d = Config::from_pairs(Vec::<(&str, String)>::new()).expect("defaults");
        assert!(d.http.ws_allowed_origins.is_empty());
    }

    #[test]
    fn missing_explicit_file_fails() {
        let err = Config::load(Some(Path::new("/nonexistent/j.toml")), env(&[]), vec![])
            .expect_err("missing");
        assert!(matches!(err, ConfigError::File { .. }));
    }
}
