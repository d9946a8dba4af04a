//! The outbox worker: runs the side effects that business transactions
//! scheduled (`store::sql::outbox`), at least once, on any node.
//!
//! Every node runs one worker. Each tick it claims the due jobs of the
//! kinds it works (a conditional update per job, so a job runs on one node
//! at a time), runs each handler, and marks the job done; a failure is
//! retried with exponential backoff (1 s, 2 s, 4 s ... at most 5 min) and
//! after `MAX_ATTEMPTS` the job is `dead`, visible to admins
//! (`GET /api/admin/outbox`). A node that dies holding a claim loses it
//! when the lease runs out. Handlers must be idempotent at their target:
//! a job that ran but was not marked done runs again.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::domain::now_ms;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::sql::{JobRecord, SqlStore};

/// Every job kind, for `outbox_kinds`.
pub const ALL_KINDS: &[&str] = &[
    "order_expire",
    "stock_restore",
    "listing_release",
    "payment_cancel",
];

/// Attempts before a job is given up (`dead`).
pub const MAX_ATTEMPTS: i64 = 10;
/// Longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Jobs claimed per tick.
const BATCH: i64 = 50;

pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), String>>>>;
/// Runs one job from its payload.
pub type JobHandler = Arc<dyn Fn(serde_json::Value) -> JobFuture>;

/// `config.outbox`.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    /// How often an idle worker looks for due jobs.
    pub poll: Duration,
    /// How long a claim lasts; a job still running then may be taken over.
    pub lease: Duration,
    /// Only these kinds on this node (`None`: every kind).
    pub kinds: Option<Vec<String>>,
}

pub struct OutboxWorker {
    sql: Arc<SqlStore>,
    node: String,
    settings: OutboxSettings,
    handlers: HashMap<&'static str, JobHandler>,
    metrics: Arc<Metrics>,
}

/// Pause before attempt `attempts + 1`.
pub fn backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

impl OutboxWorker {
    pub fn new(
        sql: Arc<SqlStore>,
        node: String,
        settings: OutboxSettings,
        metrics: Arc<Metrics>,
    ) -> OutboxWorker {
        OutboxWorker {
            sql,
            node,
            settings,
            handlers: HashMap::new(),
            metrics,
        }
    }

    pub fn handle(mut self, kind: &'static str, handler: JobHandler) -> OutboxWorker {
        self.handlers.insert(kind, handler);
        self
    }

    fn kinds(&self) -> Vec<&'static str> {
        self.handlers
            .keys()
            .copied()
            .filter(|k| {
                self.settings
                    .kinds
                    .as_ref()
                    .is_none_or(|only| only.iter().any(|o| o == k))
            })
            .collect()
    }

    /// Run until `stop` fires.
    pub fn start(self, mut stop: Shutdown) {
        actix::spawn(async move {
            let mut every = tokio::time::interval(self.settings.poll);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.wait() => break,
                    _ = every.tick() => {}
                }
                // A full batch means more may be due: go again at once.
                while self.tick().await >= BATCH as usize {
                    if stop.is_stopping() {
                        break;
                    }
                }
            }
        });
    }

    /// Claim and run the due jobs once; how many were claimed.
    pub async fn tick(&self) -> usize {
        let kinds = self.kinds();
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(60_000);
        let jobs = match self
            .sql
            .claim_jobs(&self.node, &kinds, now_ms(), lease, BATCH)
            .await
        {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::warn!(error = %e, "outbox: claiming jobs failed");
                return 0;
            }
        };
        let n = jobs.len();
        for job in jobs {
            self.run(job).await;
        }
        n
    }

    async fn run(&self, job: JobRecord) {
        let Some(handler) = self.handlers.get(job.kind.as_str()) else {
            return;
        };
        let outcome = handler(job.payload.clone()).await;
        let now = now_ms();
        let (label, result) = match outcome {
            Ok(()) => ("done", self.sql.finish_job(job.id, &self.node, now).await),
            Err(why) if job.attempts >= MAX_ATTEMPTS => {
                tracing::error!(job = job.id, kind = %job.kind, error = %why, "outbox job dead");
                (
                    "dead",
                    self.sql.fail_job(job.id, &self.node, &why, None).await,
                )
            }
            Err(why) => {
                let retry = now + i64::try_from(backoff(job.attempts).as_millis()).unwrap_or(0);
                tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %why, "outbox job failed; retrying");
                (
                    "retry",
                    self.sql
                        .fail_job(job.id, &self.node, &why, Some(retry))
                        .await,
                )
            }
        };
        self.metrics
            .outbox_jobs
            .with_label_values(&[job.kind.as_str(), label])
            .inc();
        if let Err(e) = result {
            // The claim lapses and the job runs again (handlers are
            // idempotent).
            tracing::warn!(job = job.id, error = %e, "outbox: recording the outcome failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(9), Duration::from_secs(256));
        assert_eq!(backoff(10), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
        assert_eq!(backoff(0), Duration::from_secs(1));
    }
}
