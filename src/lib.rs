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
pub mod protocol;
pub mod service;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod wiring;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::web;
use anyhow::Context as _;

use crate::actors::ChatHub;
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
use crate::service::outbox::Outbox;
use crate::service::password::PasswordHasher;
use crate::service::payments::Payments;
use crate::shutdown::ShutdownTrigger;
use crate::wiring::Engines;

/// Everything a request handler may reach, shared by all workers: the
/// services. The engines under them stay behind [`AppState::engines`].
pub struct AppState {
    pub config: Arc<Config>,
    pub accounts: Accounts,
    pub oauth: OAuth,
    pub hub: ChatHub,
    pub chat: Chat,
    pub market: Market,
    pub catalog: Catalog,
    pub orders: Orders,
    pub payments: Payments,
    pub notifications: Notifications,
    pub media: Media,
    pub outbox: Outbox,
    pub metrics: Arc<Metrics>,
    /// Fired when the application stops; background work listens to it.
    pub shutdown: ShutdownTrigger,
    engines: Engines,
}

impl AppState {
    /// Open the engines (migrating the database) and build the services,
    /// one subsystem after another (see [`wiring`]). Must run inside an
    /// actix system (the chat engine spawns tasks).
    pub async fn build(config: Config) -> anyhow::Result<AppState> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
        let shutdown = ShutdownTrigger::new();
        let metrics = Arc::new(Metrics::new()?);
        let engines = Engines::open(&config, &metrics, &shutdown).await?;
        let hasher = PasswordHasher::new(config.password.memory_kib, config.password.iterations)?;
        let (accounts, oauth) = wiring::accounts(&config, &engines, &hasher)?;
        let (hub, chat) = wiring::chat(&config, &engines, &metrics, &accounts, hasher, &shutdown);
        let media = wiring::media(&config, &engines, &shutdown)?;
        let market = wiring::market(&config, &engines, &hub, &shutdown);
        let (catalog, orders) = wiring::shop(&config, &engines, &market, &metrics);
        let payments = wiring::payments(&config, &engines, &orders, &market)?;
        let notifications = wiring::notifications(&config, &engines, &hub, &shutdown).await;
        let jobs = wiring::JobSources {
            accounts: &accounts,
            orders: &orders,
            payments: &payments,
            notifications: &notifications,
        };
        wiring::outbox(&config, &engines, &metrics, jobs, &shutdown)?;
        Ok(AppState {
            config: Arc::new(config),
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
            outbox: Outbox::new(engines.sql.clone()),
            metrics,
            shutdown,
            engines,
        })
    }

    /// The engines (database, Redis, MongoDB, Kafka, the bus), for
    /// readiness, embedding and tests that reach behind the API.
    pub fn engines(&self) -> &Engines {
        &self.engines
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
            .map_err(|e| anyhow::anyhow!(e.to_string()))?;
        tracing::info!(restored, "reservation timers restored");
        if state.engines.kafka.is_some() {
            // Several nodes: a timer armed on a node that died must still
            // fire. Every node re-arms all pending ones now and then
            // (re-arming replaces; expiry happens once, see Market).
            let market = state.market.clone();
            state.shutdown.task("reservation sweep").every(
                state.config.market.reservation_sweep,
                move || {
                    let market = market.clone();
                    async move {
                        if let Err(e) = market.restore_timers().await {
                            tracing::warn!(error = %e, "reservation sweep failed");
                        }
                    }
                },
            );
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
    /// WebSocket session (1012, clients reconnect and resume) and event
    /// stream, stop accepting and let in-flight requests finish within the
    /// grace period, stop background work (the outbox worker, timers,
    /// sweeps, the cluster consumer) and wait for it within the same grace
    /// period, flush batched chat writes, close the stores. When this
    /// returns the port is closed and nothing of this application runs any
    /// more; a task that outlived the grace period is named in the log.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut server = actix_web::rt::spawn(self.server);
        let result = tokio::select! {
            done = &mut server => done,
            () = shutdown => {
                tracing::info!("shutting down: closing WebSocket sessions");
                self.state.shutdown.drain();
                self.state.notifications.close_streams();
                handle.stop(true).await;
                server.await
            }
        };
        tracing::info!("HTTP server stopped; stopping background work");
        let late = self
            .state
            .shutdown
            .finish(self.state.config.shutdown_timeout)
            .await;
        if late.is_empty() {
            tracing::info!("background work finished; flushing chat writes and closing stores");
        } else {
            tracing::warn!(tasks = ?late, "background work still running after the grace period; closing stores anyway (claimed jobs lapse with their lease)");
        }
        self.state.hub.shutdown().await;
        self.state.engines.close().await;
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
