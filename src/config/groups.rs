//! The resolved configuration, grouped by the part of the application
//! that reads it, and how the declared settings fill the groups.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::kinds::LogFormat;
use super::settings::Settings;
use super::{ConfigError, Layers};
pub use crate::actors::ChatSettings;
pub use crate::service::accounts::AccountSettings;
pub use crate::service::catalog::ShopSettings;
pub use crate::service::oauth::{GoogleSettings, KakaoSettings, OAuthSettings};
pub use crate::service::outbox::OutboxSettings;

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
    /// How long a neighbourhood stays verified.
    pub neighbourhood_verify: Duration,
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

impl Settings {
    /// Hand each parsed setting to the group that reads it, and check what
    /// spans several settings (pairs that are set together, values derived
    /// from others). `layers` only names the layer in such an error.
    pub(super) fn into_config(self, layers: &Layers) -> Result<Config, ConfigError> {
        let s = self;
        let data_dir = PathBuf::from(&s.data_dir);
        let database_url = s
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("jangteo.db").display()));
        let redirect = |url: Option<String>, provider: &str| {
            url.unwrap_or_else(|| format!("{}/api/auth/{provider}/callback", s.public_url))
        };
        let kakao = s.kakao_client_id.map(|client_id| KakaoSettings {
            client_id,
            client_secret: s.kakao_client_secret,
            redirect_url: redirect(s.kakao_redirect_url, "kakao"),
            auth_url: s.kakao_auth_url,
            api_url: s.kakao_api_url,
        });
        let google = match (s.google_client_id, s.google_client_secret) {
            (Some(client_id), Some(client_secret)) => Some(GoogleSettings {
                client_id,
                client_secret,
                redirect_url: redirect(s.google_redirect_url, "google"),
                issuer: s.google_issuer,
            }),
            (None, None) => None,
            _ => {
                return Err(layers.invalid(
                    "google_client_secret",
                    "google_client_id and google_client_secret are set together",
                ))
            }
        };
        let toss = s.toss_secret_key.map(|key| (key, s.toss_base_url));
        let toss_widget = match (&toss, s.toss_client_key) {
            (Some(_), Some(client_key)) => Some((client_key, s.toss_sdk_url)),
            _ => None,
        };
        let kakaopay = match (s.kakaopay_secret_key, s.kakaopay_cid) {
            (Some(key), Some(cid)) => Some((key, cid, s.kakaopay_base_url)),
            (None, None) => None,
            _ => {
                return Err(layers.invalid(
                    "kakaopay_cid",
                    "kakaopay_secret_key and kakaopay_cid are set together",
                ))
            }
        };
        Ok(Config {
            production: s.env,
            listen: s.listen,
            data_dir,
            log: s.log,
            log_format: s.log_format,
            workers: s.workers,
            shutdown_timeout: s.shutdown_timeout_secs,
            http: HttpSettings {
                cookie_secure: s.cookie_secure,
                max_body_bytes: s.max_body_bytes,
                max_uri_bytes: s.max_uri_bytes,
                trust_forwarded_for: s.trust_forwarded_for,
                ws_allowed_origins: s.ws_allowed_origins,
                public_origin: crate::http::origin::origin_of(&s.public_url).unwrap_or_default(),
                sse_keepalive: s.sse_keepalive_secs,
            },
            accounts: AccountSettings {
                session_ttl: s.session_ttl_secs,
                login_max_failures: s.login_max_failures,
                login_window: s.login_window_secs,
                signup_max_per_address: s.signup_max_per_address,
                signup_window: s.signup_window_secs,
                verify_ttl: s.email_verify_hours,
                verify_resend_max: s.email_verify_resend_max,
            },
            password: PasswordSettings {
                memory_kib: s.argon2_memory_kib,
                iterations: s.argon2_iterations,
            },
            chat: ChatSettings {
                send_rate_per_sec: s.chat_send_rate,
                send_burst: s.chat_send_burst.max(1.0),
                direct_send_rate_per_sec: s.chat_direct_send_rate,
                direct_send_burst: s.chat_direct_send_burst.max(1.0),
                open_room_receipts: s.chat_open_room_receipts,
                room_idle: s.chat_room_idle_secs,
                badge_delay: s.chat_badge_delay_ms,
                commit_delay: s.chat_commit_delay_us,
                outbound_queue: s.ws_outbound_queue,
                heartbeat: s.ws_heartbeat_secs,
                idle_timeout: s.ws_idle_timeout_secs,
                session_check: s.ws_session_check_secs,
                sync_window: s.ws_sync_window_ms,
                max_frame_bytes: s.ws_max_frame_bytes,
                frames_per_sec: s.ws_frames_per_sec,
                gap_fill: s.cluster_gap_fill_ms,
                // An earlier actor of this node cannot have delivered
                // messages younger than half the idle time (see the doc).
                catchup: s.cluster_catchup_ms.min(s.chat_room_idle_secs / 2),
                max_connections_per_user: s.ws_max_connections_per_user,
                notify_debounce: s.notify_chat_debounce_secs,
            },
            market: MarketSettings {
                reservation_sweep: s.reservation_sweep_secs,
                reservation_max: s.reservation_max_secs,
                listings_per_hour: s.listings_per_hour,
                keyword_alerts_per_seller: s.keyword_alerts_per_seller_per_hour,
                neighbourhood_verify: s.neighbourhood_verify_days,
            },
            shop: ShopSettings {
                review_request_delay: s.review_request_delay_secs,
                low_stock_threshold: s.low_stock_threshold,
                payment_window: s.order_payment_window_secs,
                buyer_limits: crate::domain::order::BuyerLimits {
                    unpaid_orders: s.max_unpaid_orders,
                    unpaid_units: s.max_unpaid_units,
                    reorder_cooldown_ms: s.listing_reorder_cooldown_secs * 1000,
                },
            },
            payments: PaymentSettings {
                toss,
                toss_widget,
                kakaopay,
                timeout: s.payment_timeout_ms,
                cancel_window: s.cancel_window_hours,
                retry_first: s.payment_retry_base_ms,
                max_attempts: s.payment_max_attempts,
                return_url: s.payment_return_url,
                webhook_per_minute: s.webhook_per_minute_per_address,
                webhook_queue_max: s.webhook_queue_max,
            },
            oauth: OAuthSettings {
                kakao,
                google,
                flow_ttl: s.oauth_flow_ttl_secs,
                timeout: s.oauth_timeout_ms,
            },
            mail: MailSettings {
                smtp_url: s.smtp_url,
                from: s.mail_from,
                public_url: s.public_url,
                daily_max_per_recipient: s.mail_daily_max_per_recipient,
            },
            outbox: OutboxSettings {
                poll: s.outbox_poll_ms,
                lease: Duration::from_secs(60),
                kinds: s.outbox_kinds,
            },
            media_max_bytes: s.media_max_bytes,
            uploads: UploadSettings {
                per_hour: s.uploads_per_hour,
                quota_bytes: s.media_quota_mib * 1024 * 1024,
                orphan_after: s.media_orphan_hours,
                sweep_every: s.media_sweep_secs,
            },
            metrics: MetricsSettings {
                enabled: s.metrics_enabled,
                token: s.metrics_token,
            },
            engines: EngineSettings {
                database_url,
                sqlite_synchronous: s.sqlite_synchronous,
                database_pool_size: s.database_pool_size,
                redis_url: s.redis_url,
                redis_prefix: s.redis_prefix,
                mongodb_url: s.mongodb_url,
                kafka_brokers: s.kafka_brokers,
                kafka_topic_prefix: s.kafka_topic_prefix,
                kafka_partitions: s.kafka_partitions,
                kafka_linger_ms: s.kafka_linger_ms,
                kafka_fetch_wait_ms: s.kafka_fetch_wait_ms,
                node_id: s.node_id,
            },
        })
    }
}
