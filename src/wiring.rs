//! How [`crate::AppState`] is put together: one function per subsystem,
//! each taking what it needs and returning its handle, in the order
//! `AppState::build` calls them.
//!
//! - [`Engines::open`]: the database (migrated), Redis, MongoDB, Kafka, and
//!   what each engine stands in for (sessions, limits, cache, messages, bus);
//! - [`accounts`]: accounts and OAuth;
//! - [`chat`]: the chat hub (actors, committer, cluster consumer) and the
//!   chat service;
//! - [`media`], [`market`] (with the reservation timer actor), [`shop`]
//!   (catalog and orders), [`payments`] (the providers configured here);
//! - [`notifications`] and, last, the [`outbox`] worker that runs every
//!   subsystem's jobs.
//!
//! Every background task started here holds a listener from
//! [`ShutdownTrigger::task`], so `Application::run` waits for it.

use std::sync::Arc;

use actix::Actor as _;
use anyhow::Context as _;

use crate::actors::timers::{TimerHandler, Timers};
use crate::actors::ChatHub;
use crate::bus::{self, Bus, InProcessBus};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::payments as gateways;
use crate::service;
use crate::service::accounts::Accounts;
use crate::service::catalog::Catalog;
use crate::service::chat::Chat;
use crate::service::market::Market;
use crate::service::media::Media;
use crate::service::notifications::Notifications;
use crate::service::oauth::OAuth;
use crate::service::orders::Orders;
use crate::service::outbox::{OutboxWorker, RetryPolicy};
use crate::service::password::PasswordHasher;
use crate::service::payments::{PaymentPolicy, Payments};
use crate::shutdown::{Shutdown, ShutdownTrigger};
use crate::store::cache::{Cache, MemoryCache};
use crate::store::media::DiskMedia;
use crate::store::memory::MemoryRateLimiter;
use crate::store::sql::{Dialect, SqlStore};
use crate::store::{self, MessageStore, Presence, RateLimiter, SessionStore};

/// The storage and messaging engines this node runs on, and what stands in
/// for each optional one (embedded: SQLite and in-process; distributed:
/// MySQL/MariaDB, Redis, MongoDB, Kafka).
pub struct Engines {
    pub sql: Arc<SqlStore>,
    /// Set when `redis_url` is configured.
    pub redis: Option<Arc<store::redis::RedisStore>>,
    /// Set when `mongodb_url` is configured.
    pub mongo: Option<Arc<store::mongo::MongoMessages>>,
    /// Set when `kafka_brokers` is configured (same object as `bus`).
    pub kafka: Option<Arc<bus::kafka::KafkaBus>>,
    pub bus: Arc<dyn Bus>,
    /// MongoDB, or the database.
    pub messages: Arc<dyn MessageStore>,
    /// Redis, or the database.
    pub sessions: Arc<dyn SessionStore>,
    /// Redis, or in memory.
    pub limiter: Arc<dyn RateLimiter>,
    /// Redis, or in memory.
    pub cache: Arc<dyn Cache>,
}

impl Engines {
    /// Open every configured engine (migrating the database) and start the
    /// SQLite checkpoint loop.
    pub async fn open(
        config: &Config,
        metrics: &Arc<Metrics>,
        shutdown: &ShutdownTrigger,
    ) -> anyhow::Result<Engines> {
        let e = &config.engines;
        let sql = Arc::new(
            SqlStore::connect_with(&e.database_url, e.sqlite_synchronous, e.database_pool_size)
                .await
                .with_context(|| format!("opening database {}", e.database_url))?,
        );
        sql.migrate().await.context("applying migrations")?;
        if sql.dialect() == Dialect::Sqlite {
            // WAL checkpoints off the commit path (see SqlStore::checkpoint);
            // MySQL/MariaDB has none to run (nor a histogram of zeros).
            spawn_checkpoints(&sql, metrics.clone(), shutdown.task("sqlite checkpoints"));
        }
        let redis = match &e.redis_url {
            Some(url) => Some(Arc::new(
                store::redis::RedisStore::connect(url, &e.redis_prefix)
                    .await
                    .with_context(|| format!("connecting to Redis at {url}"))?,
            )),
            None => None,
        };
        let kafka = match &e.kafka_brokers {
            Some(brokers) => Some(Arc::new(
                bus::kafka::KafkaBus::connect(
                    brokers,
                    &e.kafka_topic_prefix,
                    &e.node_id,
                    e.kafka_partitions,
                    e.kafka_linger_ms,
                    e.kafka_fetch_wait_ms,
                    &[bus::TOPIC_CHAT, bus::TOPIC_ALARMS],
                )
                .await
                .with_context(|| format!("connecting to Kafka at {brokers}"))?,
            )),
            None => None,
        };
        let mongo = match &e.mongodb_url {
            Some(url) => Some(Arc::new(
                store::mongo::MongoMessages::connect(url, sql.clone())
                    .await
                    .with_context(|| format!("connecting to MongoDB at {url}"))?,
            )),
            None => None,
        };
        let bus: Arc<dyn Bus> = match &kafka {
            Some(k) => k.clone(),
            None => Arc::new(InProcessBus::new()),
        };
        let messages: Arc<dyn MessageStore> = match &mongo {
            Some(m) => m.clone(),
            None => sql.clone(),
        };
        let (sessions, limiter, cache): (
            Arc<dyn SessionStore>,
            Arc<dyn RateLimiter>,
            Arc<dyn Cache>,
        ) = match &redis {
            Some(r) => (r.clone(), r.clone(), r.clone()),
            None => (
                sql.clone(),
                Arc::new(MemoryRateLimiter::new()),
                Arc::new(MemoryCache::new()),
            ),
        };
        tracing::info!(
            node = %e.node_id,
            database = if sql.dialect() == Dialect::Sqlite { "sqlite" } else { "mysql" },
            messages = if mongo.is_some() { "mongodb" } else { "sql" },
            sessions = if redis.is_some() { "redis" } else { "sql" },
            bus = if kafka.is_some() { "kafka" } else { "in-process" },
            "engines"
        );
        Ok(Engines {
            sql,
            redis,
            mongo,
            kafka,
            bus,
            messages,
            sessions,
            limiter,
            cache,
        })
    }

    /// Every configured engine answers? One after another (a broker that
    /// does not answer costs its own timeout, not everyone's); each result
    /// keeps only its message.
    pub async fn readiness(&self) -> Vec<(&'static str, Result<(), String>)> {
        fn outcome(r: Result<(), impl std::fmt::Display>) -> Result<(), String> {
            r.map_err(|e| e.to_string())
        }
        let mut results = vec![("database", outcome(self.sql.ping().await))];
        if let Some(redis) = &self.redis {
            results.push(("redis", outcome(redis.ping().await)));
        }
        if let Some(mongo) = &self.mongo {
            results.push(("mongodb", outcome(mongo.ping().await)));
        }
        if let Some(kafka) = &self.kafka {
            results.push(("kafka", outcome(kafka.ping().await)));
        }
        results
    }

    /// Last step of a shutdown: flush the producer, close the pools.
    pub async fn close(&self) {
        if let Some(kafka) = &self.kafka {
            kafka.close();
        }
        self.sql.close().await;
    }
}

/// Checkpoint SQLite's WAL every 500 ms, off the commit path.
fn spawn_checkpoints(sql: &Arc<SqlStore>, metrics: Arc<Metrics>, stop: Shutdown) {
    let sql = Arc::downgrade(sql);
    stop.every(std::time::Duration::from_millis(500), move || {
        let (sql, metrics) = (sql.upgrade(), metrics.clone());
        async move {
            let Some(sql) = sql else { return };
            let started = std::time::Instant::now();
            if let Err(e) = sql.checkpoint().await {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
            metrics
                .sqlite_checkpoint_seconds
                .observe(started.elapsed().as_secs_f64());
        }
    });
}

/// Accounts (sessions, limits, password hashing) and OAuth sign-in.
pub fn accounts(
    config: &Config,
    engines: &Engines,
    hasher: &PasswordHasher,
) -> anyhow::Result<(Accounts, OAuth)> {
    let accounts = Accounts::new(
        engines.sql.clone(),
        engines.sessions.clone(),
        engines.limiter.clone(),
        hasher.clone(),
        config.accounts.clone(),
    );
    let oauth = OAuth::new(
        engines.sql.clone(),
        accounts.clone(),
        engines.limiter.clone(),
        config.oauth.clone(),
    )
    .map_err(|e| anyhow::anyhow!("oauth: {e}"))?;
    Ok((accounts, oauth))
}

/// The chat hub (its actors, the committer, and with several nodes the
/// cluster consumer and presence), revocations relayed to live sessions,
/// and the chat service.
pub fn chat(
    config: &Config,
    engines: &Engines,
    metrics: &Arc<Metrics>,
    accounts: &Accounts,
    hasher: PasswordHasher,
    shutdown: &ShutdownTrigger,
) -> (ChatHub, Chat) {
    let hub = ChatHub::new(
        engines.sql.clone(),
        engines.messages.clone(),
        config.chat.clone(),
        metrics.clone(),
        engines.bus.clone(),
        engines.redis.clone().map(|r| -> Arc<dyn Presence> { r }),
        shutdown.listener(),
    );
    hub.start_cluster(shutdown.task("cluster consumer"));
    hub.start_revocations(accounts.revocations(), shutdown.task("revocations"));
    let chat = Chat::new(
        engines.sql.clone(),
        engines.messages.clone(),
        hub.clone(),
        hasher,
        engines.limiter.clone(),
        config.accounts.login_max_failures,
        config.accounts.login_window.as_secs(),
    );
    (hub, chat)
}

/// Uploads, and the sweep of unused ones (every node; the deletes are
/// conditional, so nodes do not collide).
pub fn media(
    config: &Config,
    engines: &Engines,
    shutdown: &ShutdownTrigger,
) -> anyhow::Result<Media> {
    let storage = Arc::new(DiskMedia::new(&config.data_dir.join("media"))?);
    let media = Media::new(
        engines.sql.clone(),
        storage,
        config.media_max_bytes,
        service::media::UploadLimits {
            per_hour: config.uploads.per_hour,
            quota_bytes: config.uploads.quota_bytes,
            orphan_after: config.uploads.orphan_after,
            limiter: engines.limiter.clone(),
        },
    );
    let sweeping = media.clone();
    shutdown
        .task("upload sweep")
        .every(config.uploads.sweep_every, move || {
            let sweeping = sweeping.clone();
            async move {
                if let Err(e) = sweeping.sweep_orphans().await {
                    tracing::warn!(error = %e, "sweeping unused uploads failed");
                }
            }
        });
    Ok(media)
}

/// The marketplace, with the reservation timer actor it owns.
pub fn market(
    config: &Config,
    engines: &Engines,
    hub: &ChatHub,
    shutdown: &ShutdownTrigger,
) -> Market {
    // The timer actor calls back into the market service, which owns the
    // timer actor's address: tie the knot through a cell.
    let cell: Arc<std::sync::OnceLock<Market>> = Arc::new(std::sync::OnceLock::new());
    let handler: TimerHandler = {
        let cell = cell.clone();
        Arc::new(move |id| {
            let cell = cell.clone();
            Box::pin(async move {
                if let Some(market) = cell.get() {
                    market.expire_reservation(id).await;
                }
            })
        })
    };
    let timers = Timers::new(handler, shutdown.task("reservation timers")).start();
    let market = Market::new(
        engines.sql.clone(),
        engines.messages.clone(),
        hub.clone(),
        engines.bus.clone(),
        engines.cache.clone(),
        timers,
        service::market::MarketPolicy {
            reservation_max: config.market.reservation_max,
            listings_per_hour: config.market.listings_per_hour,
            limiter: engines.limiter.clone(),
            neighbourhood_verify: config.market.neighbourhood_verify,
        },
    );
    let _ = cell.set(market.clone());
    market
}

/// The shop: catalog and orders.
pub fn shop(
    config: &Config,
    engines: &Engines,
    market: &Market,
    metrics: &Arc<Metrics>,
) -> (Catalog, Orders) {
    let catalog = Catalog::new(engines.sql.clone(), config.shop);
    let orders = Orders::new(
        engines.sql.clone(),
        catalog.clone(),
        market.clone(),
        engines.cache.clone(),
        metrics.clone(),
        config.shop,
    );
    (catalog, orders)
}

/// Payments: Toss and KakaoPay when their keys are set, and the built-in
/// sandbox unless env=production.
pub fn payments(
    config: &Config,
    engines: &Engines,
    orders: &Orders,
    market: &Market,
) -> anyhow::Result<Payments> {
    let pay = &config.payments;
    let mut providers: Vec<Arc<dyn gateways::PaymentGateway>> = Vec::new();
    if let Some((secret_key, base_url)) = pay.toss.clone() {
        let toss = gateways::toss::Toss::new(gateways::toss::TossSettings {
            secret_key,
            base_url,
            timeout: pay.timeout,
        })
        .map_err(|e| anyhow::anyhow!("payments: toss: {e}"))?;
        providers.push(Arc::new(toss));
    }
    if let Some((secret_key, cid, base_url)) = pay.kakaopay.clone() {
        let kakao = gateways::kakaopay::KakaoPay::new(gateways::kakaopay::KakaoPaySettings {
            secret_key,
            cid,
            base_url,
            timeout: pay.timeout,
        })
        .map_err(|e| anyhow::anyhow!("payments: kakaopay: {e}"))?;
        providers.push(Arc::new(kakao));
    }
    if config.production {
        if providers.is_empty() {
            tracing::error!(
                "payments: env=production refuses the sandbox provider, and no other is configured"
            );
        }
    } else {
        tracing::warn!("payments: the SANDBOX provider is enabled: no real money moves");
        providers.push(Arc::new(gateways::sandbox::Sandbox::new(
            engines.sql.clone(),
        )));
    }
    let payments = Payments::new(
        engines.sql.clone(),
        orders.clone(),
        market.clone(),
        providers,
        PaymentPolicy {
            cancel_window: pay.cancel_window,
            return_url: pay.return_url.clone(),
            retry_first: pay.retry_first,
            review_request_delay: config.shop.review_request_delay,
            webhooks: service::payments::WebhookLimits {
                per_minute: pay.webhook_per_minute,
                queue_max: pay.webhook_queue_max,
                limiter: engines.limiter.clone(),
            },
        },
    );
    tracing::info!(providers = ?payments.providers(), "payments ready");
    Ok(payments)
}

/// Notifications: every node consumes the alarms topic, subscribed before
/// the outbox worker publishes anything.
pub async fn notifications(
    config: &Config,
    engines: &Engines,
    hub: &ChatHub,
    shutdown: &ShutdownTrigger,
) -> Notifications {
    let notifications = Notifications::new(
        engines.sql.clone(),
        hub.clone(),
        engines.bus.clone(),
        config.market.keyword_alerts_per_seller,
    );
    notifications
        .start(shutdown.task("notifications consumer"))
        .await;
    notifications
}

/// The services whose jobs the outbox worker runs.
pub struct JobSources<'a> {
    pub accounts: &'a Accounts,
    pub orders: &'a Orders,
    pub payments: &'a Payments,
    pub notifications: &'a Notifications,
}

/// The outbox worker, with every subsystem's job handlers (order expiry,
/// stock restores, provider calls, email, event publishing), started on
/// this node.
pub fn outbox(
    config: &Config,
    engines: &Engines,
    metrics: &Arc<Metrics>,
    jobs: JobSources<'_>,
    shutdown: &ShutdownTrigger,
) -> anyhow::Result<()> {
    let mut worker = OutboxWorker::new(
        engines.sql.clone(),
        config.engines.node_id.clone(),
        config.outbox.clone(),
        metrics.clone(),
    );
    for (kind, handler) in jobs.orders.job_handlers() {
        worker = worker.handle(kind, handler, RetryPolicy::DEFAULT);
    }
    let pay = &config.payments;
    let provider_retry = RetryPolicy {
        first: pay.retry_first,
        cap: std::time::Duration::from_secs(3600),
        max_attempts: pay.max_attempts,
    };
    for (kind, handler, on_dead) in jobs.payments.job_handlers() {
        let policy = if kind == service::payments::JOB_PAYMENT_RECONCILE {
            RetryPolicy::DEFAULT
        } else {
            provider_retry
        };
        worker = worker.handle(kind, handler, policy);
        if let Some(dead) = on_dead {
            worker = worker.on_dead(kind, dead);
        }
    }
    // Email: mailed from the outbox (SMTP, or .eml files by default).
    let mailer = service::mail::Mailer::new(
        engines.sql.clone(),
        jobs.accounts.clone(),
        config.mail.daily_max_per_recipient,
        config.mail.smtp_url.as_deref(),
        &config.data_dir,
        &config.mail.from,
        &config.mail.public_url,
    )
    .map_err(|e| anyhow::anyhow!("mail: {e}"))?;
    for (kind, handler) in [mailer.job_handler(), mailer.verify_job_handler()] {
        worker = worker.handle(kind, handler, RetryPolicy::DEFAULT);
    }
    // Events written by business transactions, published after commit
    // (embedded: made into notifications before the job is done).
    let local = (!engines.bus.distributed()).then(|| jobs.notifications.clone());
    let (kind, handler) = service::events::publish_handler(engines.bus.clone(), local);
    worker = worker.handle(kind, handler, RetryPolicy::DEFAULT);
    worker.start(shutdown.task("outbox worker"));
    Ok(())
}
