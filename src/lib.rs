//! Jangteo: a chat-centric marketplace backend.
//!
//! [`Application::build`] wires configuration, stores, services and the HTTP
//! server; it binds its listener immediately, so a test can ask for port 0 and
//! read the real port before the server runs.

pub mod actors;
pub mod alloc;
pub mod bus;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod metrics;
pub mod payments;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context as _;

use actix::Actor as _;

use crate::actors::timers::{TimerHandler, Timers};
use crate::actors::ChatHub;
use crate::bus::{Bus, InProcessBus};
use crate::config::Config;
use crate::metrics::Metrics;
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
use crate::shutdown::ShutdownTrigger;
use crate::store::cache::{Cache, MemoryCache};
use crate::store::media::DiskMedia;
use crate::store::memory::MemoryRateLimiter;
use crate::store::sql::SqlStore;

/// Everything a request handler may reach, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub sql: Arc<SqlStore>,
    /// Set when `redis_url` is configured.
    pub redis: Option<Arc<store::redis::RedisStore>>,
    pub accounts: Accounts,
    /// Sign-in with Kakao and Google.
    pub oauth: OAuth,
    pub hub: ChatHub,
    pub chat: Chat,
    pub market: Market,
    pub catalog: Catalog,
    pub orders: Orders,
    pub payments: Payments,
    pub notifications: Notifications,
    pub media: Media,
    pub bus: Arc<dyn Bus>,
    /// Set when `kafka_brokers` is configured (same object as `bus`).
    pub kafka: Option<Arc<bus::kafka::KafkaBus>>,
    /// Set when `mongodb_url` is configured.
    pub mongo: Option<Arc<store::mongo::MongoMessages>>,
    pub metrics: Arc<Metrics>,
    /// Fired when the application stops; background work listens to it.
    pub shutdown: ShutdownTrigger,
}

impl AppState {
    /// Open the stores (migrating the database) and build the services.
    /// Must run inside an actix system (the chat engine spawns tasks).
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let sql = Arc::new(
            SqlStore::connect_with(
                &config.engines.database_url,
                config.engines.sqlite_synchronous,
                config.engines.database_pool_size,
            )
            .await
            .with_context(|| format!("opening database {}", config.engines.database_url))?,
        );
        sql.migrate().await.context("applying migrations")?;
        let shutdown = ShutdownTrigger::new();
        let metrics = Arc::new(Metrics::new()?);
        if sql.dialect() == store::sql::Dialect::Sqlite {
            // WAL checkpoints off the commit path (see SqlStore::checkpoint);
            // MySQL/MariaDB has none to run (nor a histogram of zeros).
            let sql = Arc::downgrade(&sql);
            let metrics = metrics.clone();
            let mut stop = shutdown.listener();
            actix::spawn(async move {
                let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
                loop {
                    tokio::select! {
                        () = stop.wait() => break,
                        _ = every.tick() => {}
                    }
                    let Some(sql) = sql.upgrade() else { break };
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
        let hasher = PasswordHasher::new(config.password.memory_kib, config.password.iterations)?;
        let engines = &config.engines;
        let redis = match &engines.redis_url {
            Some(url) => Some(Arc::new(
                store::redis::RedisStore::connect(url, &engines.redis_prefix)
                    .await
                    .with_context(|| format!("connecting to Redis at {url}"))?,
            )),
            None => None,
        };
        let (sessions, limiter, cache): (
            Arc<dyn store::SessionStore>,
            Arc<dyn store::RateLimiter>,
            Arc<dyn Cache>,
        ) = match &redis {
            Some(r) => (r.clone(), r.clone(), r.clone()),
            None => (
                sql.clone(),
                Arc::new(MemoryRateLimiter::new()),
                Arc::new(MemoryCache::new()),
            ),
        };
        let market_limiter = limiter.clone();
        let webhook_limiter = limiter.clone();
        let upload_limiter = limiter.clone();
        let accounts = Accounts::new(
            sql.clone(),
            sessions,
            limiter.clone(),
            hasher.clone(),
            config.accounts.clone(),
        );
        let oauth = OAuth::new(
            sql.clone(),
            accounts.clone(),
            limiter.clone(),
            config.oauth.clone(),
        )
        .map_err(|e| anyhow::anyhow!("oauth: {}", e.message))?;
        let kafka = match &engines.kafka_brokers {
            Some(brokers) => Some(Arc::new(
                bus::kafka::KafkaBus::connect(
                    brokers,
                    &engines.kafka_topic_prefix,
                    &engines.node_id,
                    engines.kafka_partitions,
                    engines.kafka_linger_ms,
                    engines.kafka_fetch_wait_ms,
                    &[bus::TOPIC_CHAT, bus::TOPIC_ALARMS],
                )
                .await
                .with_context(|| format!("connecting to Kafka at {brokers}"))?,
            )),
            None => None,
        };
        let bus: Arc<dyn Bus> = match &kafka {
            Some(k) => k.clone(),
            None => Arc::new(InProcessBus::new()),
        };
        let mongo = match &engines.mongodb_url {
            Some(url) => Some(Arc::new(
                store::mongo::MongoMessages::connect(url, sql.clone())
                    .await
                    .with_context(|| format!("connecting to MongoDB at {url}"))?,
            )),
            None => None,
        };
        let messages: Arc<dyn store::MessageStore> = match &mongo {
            Some(m) => m.clone(),
            None => sql.clone(),
        };
        let hub = ChatHub::new(
            sql.clone(),
            messages.clone(),
            config.chat.clone(),
            metrics.clone(),
            bus.clone(),
            redis.clone().map(|r| -> Arc<dyn store::Presence> { r }),
        );
        hub.start_cluster(shutdown.listener());
        hub.start_revocations(accounts.revocations(), shutdown.listener());
        tracing::info!(
            node = %engines.node_id,
            database = if sql.dialect() == store::sql::Dialect::Sqlite { "sqlite" } else { "mysql" },
            messages = if mongo.is_some() { "mongodb" } else { "sql" },
            sessions = if redis.is_some() { "redis" } else { "sql" },
            bus = if kafka.is_some() { "kafka" } else { "in-process" },
            "engines"
        );
        let chat = Chat::new(
            sql.clone(),
            messages.clone(),
            hub.clone(),
            hasher,
            limiter,
            config.accounts.login_max_failures,
            config.accounts.login_window.as_secs(),
        );
        let storage = Arc::new(DiskMedia::new(&config.data_dir.join("media"))?);
        let media = Media::new(
            sql.clone(),
            storage,
            config.media_max_bytes,
            service::media::UploadLimits {
                per_hour: config.uploads.per_hour,
                quota_bytes: config.uploads.quota_bytes,
                orphan_after: config.uploads.orphan_after,
                limiter: upload_limiter,
            },
        );
        {
            // Unused uploads go after `media_orphan_hours`, on every node
            // (the deletes are conditional, so nodes do not collide).
            let media = media.clone();
            let every = config.uploads.sweep_every;
            let mut stop = shutdown.listener();
            actix::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = stop.wait() => break,
                        _ = tick.tick() => {}
                    }
                    if let Err(e) = media.sweep_orphans().await {
                        tracing::warn!(error = %e.message, "sweeping unused uploads failed");
                    }
                }
            });
        }
        // The timer actor calls back into the market service, which owns
        // the timer actor's address: tie the knot through a cell.
        let market_cell: Arc<std::sync::OnceLock<Market>> = Arc::new(std::sync::OnceLock::new());
        let handler: TimerHandler = {
            let cell = market_cell.clone();
            Arc::new(move |id| {
                let cell = cell.clone();
                Box::pin(async move {
                    if let Some(market) = cell.get() {
                        market.expire_reservation(id).await;
                    }
                })
            })
        };
        let timers = Timers::new(handler, shutdown.listener()).start();
        let market = Market::new(
            sql.clone(),
            messages,
            hub.clone(),
            bus.clone(),
            cache.clone(),
            timers,
            service::market::MarketPolicy {
                reservation_max: config.market.reservation_max,
                listings_per_hour: config.market.listings_per_hour,
                limiter: market_limiter,
            },
        );
        let _ = market_cell.set(market.clone());
        let catalog = Catalog::new(sql.clone(), config.shop);
        let orders = Orders::new(
            sql.clone(),
            catalog.clone(),
            market.clone(),
            cache.clone(),
            metrics.clone(),
            config.shop,
        );
        // The outbox worker: order expiry and stock restores on any node.
        let mut worker = OutboxWorker::new(
            sql.clone(),
            engines.node_id.clone(),
            config.outbox.clone(),
            metrics.clone(),
        );
        for (kind, handler) in orders.job_handlers() {
            worker = worker.handle(kind, handler, RetryPolicy::DEFAULT);
        }
        // Payments: Toss and KakaoPay when their keys are set, and the
        // built-in sandbox unless env=production.
        let pay = config.payments.clone();
        let mut gateways: Vec<Arc<dyn payments::PaymentGateway>> = Vec::new();
        if let Some((secret_key, base_url)) = pay.toss.clone() {
            let toss = payments::toss::Toss::new(payments::toss::TossSettings {
                secret_key,
                base_url,
                timeout: pay.timeout,
            })
            .map_err(|e| anyhow::anyhow!("payments: toss: {e}"))?;
            gateways.push(Arc::new(toss));
        }
        if let Some((secret_key, cid, base_url)) = pay.kakaopay.clone() {
            let kakao = payments::kakaopay::KakaoPay::new(payments::kakaopay::KakaoPaySettings {
                secret_key,
                cid,
                base_url,
                timeout: pay.timeout,
            })
            .map_err(|e| anyhow::anyhow!("payments: kakaopay: {e}"))?;
            gateways.push(Arc::new(kakao));
        }
        if config.production {
            if gateways.is_empty() {
                tracing::error!("payments: env=production refuses the sandbox provider, and no other is configured");
            }
        } else {
            tracing::warn!("payments: the SANDBOX provider is enabled: no real money moves");
            gateways.push(Arc::new(payments::sandbox::Sandbox::new(sql.clone())));
        }
        let payments = Payments::new(
            sql.clone(),
            orders.clone(),
            market.clone(),
            gateways,
            PaymentPolicy {
                cancel_window: pay.cancel_window,
                return_url: pay.return_url.clone(),
                retry_first: pay.retry_first,
                review_request_delay: config.shop.review_request_delay,
                webhooks: service::payments::WebhookLimits {
                    per_minute: pay.webhook_per_minute,
                    queue_max: pay.webhook_queue_max,
                    limiter: webhook_limiter,
                },
            },
        );
        tracing::info!(providers = ?payments.providers(), "payments ready");
        let provider_retry = RetryPolicy {
            first: pay.retry_first,
            cap: std::time::Duration::from_secs(3600),
            max_attempts: pay.max_attempts,
        };
        for (kind, handler, on_dead) in payments.job_handlers() {
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
            sql.clone(),
            accounts.clone(),
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
        // Notifications: every node consumes the alarms topic, subscribed
        // before the worker publishes anything.
        let notifications = Notifications::new(
            sql.clone(),
            hub.clone(),
            bus.clone(),
            config.market.keyword_alerts_per_seller,
        );
        notifications.start(shutdown.listener()).await;
        // Events written by business transactions, published after commit
        // (embedded: made into notifications before the job is done).
        let local = (!bus.distributed()).then(|| notifications.clone());
        let (kind, handler) = service::events::publish_handler(bus.clone(), local);
        worker = worker.handle(kind, handler, RetryPolicy::DEFAULT);
        worker.start(shutdown.listener());
        Ok(AppState {
            config: Arc::new(config),
            sql,
            redis,
            accounts,
            oauth,
            hub,
            chat,
            market,
            catalog,
            orders,
            payments,
            notifications,
            media,
            bus,
            kafka,
            mongo,
            metrics,
            shutdown,
        })
    }
}

pub struct Application {
    address: SocketAddr,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(config.listen)
            .with_context(|| format!("binding {}", config.listen))?;
        let address = listener.local_addr()?;
        let state = web::Data::new(AppState::build(config).await?);
        // Reservation timers that were pending when the server stopped (or
        // came due while it was down) are armed again; due ones fire now.
        let restored = state
            .market
            .restore_timers()
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        tracing::info!(restored, "reservation timers restored");
        if state.kafka.is_some() {
            // Several nodes: a timer armed on a node that died must still
            // fire. Every node re-arms all pending ones now and then
            // (re-arming replaces; expiry happens once, see Market).
            let market = state.market.clone();
            let every = state.config.market.reservation_sweep;
            let mut stop = state.shutdown.listener();
            actix_web::rt::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tokio::select! {
                        () = stop.wait() => break,
                        _ = tick.tick() => {}
                    }
                    if let Err(e) = market.restore_timers().await {
                        tracing::warn!(error = %e.message, "reservation sweep failed");
                    }
                }
            });
        }
        let server = http::server::build(
            listener,
            state.clone(),
            state.config.workers,
            state.config.shutdown_timeout,
        )?;
        tracing::info!("listening on http://{address}");
        Ok(Application {
            address,
            server,
            state,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The shared state, for embedding and for tests that need to reach
    /// behind the API (e.g. to take a backend away).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serve until SIGINT/SIGTERM; see [`Application::run`].
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run(shutdown_signal()).await
    }

    /// Serve until `shutdown` resolves, then stop in order: close every
    /// WebSocket session (1012, clients reconnect and resume), stop
    /// accepting and let in-flight requests finish within the grace period,
    /// stop background work (timers, sweeps, the cluster consumer), flush
    /// batched chat writes, close the stores. When this returns the port is
    /// closed and nothing of this application runs any more.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = actix_web::rt::spawn(self.server);
        let result = tokio::select! {
            done = &mut server => done,
            () = shutdown => {
                tracing::info!("shutting down: closing WebSocket sessions");
                self.state.hub.close_sessions();
                self.state.notifications.close_streams();
                handle.stop(true).await;
                server.await
            }
        };
        tracing::info!("HTTP server stopped; flushing chat writes and closing stores");
        self.state.shutdown.fire();
        self.state.hub.shutdown().await;
        if let Some(kafka) = &self.state.kafka {
            kafka.close();
        }
        self.state.sql.close().await;
        tracing::info!("shutdown complete");
        result.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())))
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; SIGINT only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
