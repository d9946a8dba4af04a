//! The outbox worker: runs the side effects that business transactions
//! scheduled (`store::sql::outbox`), at least once, on any node.
//!
//! Every node runs one worker. Each tick it claims the due jobs of the
//! kinds it works (a conditional update per job, so a job runs on one node
//! at a time), runs each handler, and marks the job done; a failure is
//! retried with exponential backoff per kind ([`RetryPolicy`]: by default
//! 1 s, 2 s, 4 s ... at most 5 min, 10 attempts; payment compensations 2,
//! 4, 8 ... min, at most an hour apart, 7 attempts) and then the job is
//! `dead`, visible to admins
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
    "payment_refund",
    "payment_reconcile",
    "email_send",
    "email_verify",
    "event_publish",
];

/// The outbox as administrators see it (`GET /api/admin/outbox`).
#[derive(Clone)]
pub struct Outbox {
    sql: Arc<SqlStore>,
}

impl Outbox {
    pub fn new(sql: Arc<SqlStore>) -> Outbox {
        Outbox { sql }
    }

    /// Jobs in one state (`pending`, `done`, `dead`), newest first.
    pub async fn jobs(
        &self,
        status: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JobRecord>, crate::error::Refusal> {
        Ok(self.sql.outbox().jobs(status, before, limit).await?)
    }
}

/// How a kind of job is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Pause after the first failure; it doubles after each further one.
    pub first: Duration,
    /// Longest pause between two attempts.
    pub cap: Duration,
    /// Attempts before the job is given up (`dead`).
    pub max_attempts: i64,
}

impl RetryPolicy {
    /// Local side effects (stock, listings): quick retries.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        first: Duration::from_secs(1),
        cap: Duration::from_secs(300),
        max_attempts: 10,
    };
    /// Calls to payment providers: 2, 4, 8 ... minutes, at most an hour
    /// apart, 7 attempts (a provider outage is given hours, not seconds).
    pub const PROVIDER: RetryPolicy = RetryPolicy {
        first: Duration::from_secs(120),
        cap: Duration::from_secs(3600),
        max_attempts: 7,
    };

    /// Pause before attempt `attempts + 1`.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        self.first
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap)
    }
}

/// Jobs claimed per tick.
const BATCH: i64 = 50;

/// Why a job (or the handling of a bus event) failed: any area's error, a
/// store error or a sentence. `?` converts them; the runner keeps the text
/// in the job's `last_error` (and the log), nothing above it flattens.
pub type JobError = Box<dyn std::error::Error + Send + Sync>;
pub type JobFuture = Pin<Box<dyn Future<Output = Result<(), JobError>>>>;
/// Runs one job from its payload.
pub type JobHandler = Arc<dyn Fn(serde_json::Value) -> JobFuture>;

/// A job handler that runs `run` with a clone of `service` (a cheap handle)
/// and the job's payload.
pub fn handler<S, F, Fut>(service: &S, run: F) -> JobHandler
where
    S: Clone + 'static,
    F: Fn(S, serde_json::Value) -> Fut + 'static,
    Fut: Future<Output = Result<(), JobError>> + 'static,
{
    let service = service.clone();
    Arc::new(move |payload| Box::pin(run(service.clone(), payload)))
}

/// The text `key` of a job's payload (empty when missing).
pub fn payload_text(payload: &serde_json::Value, key: &str) -> String {
    payload
        .get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The integer `key` of a job's payload, or an error that names it.
pub fn payload_id(payload: &serde_json::Value, key: &str) -> Result<i64, JobError> {
    payload
        .get(key)
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| format!("payload without `{key}`: {payload}").into())
}

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
    handlers: HashMap<&'static str, (JobHandler, RetryPolicy)>,
    /// Run once when a job of the kind is given up (tell admins, mark it).
    on_dead: HashMap<&'static str, JobHandler>,
    metrics: Arc<Metrics>,
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
            on_dead: HashMap::new(),
            metrics,
        }
    }

    /// Work `kind` with `handler`, retried by `policy`.
    pub fn handle(
        mut self,
        kind: &'static str,
        handler: JobHandler,
        policy: RetryPolicy,
    ) -> OutboxWorker {
        self.handlers.insert(kind, (handler, policy));
        self
    }

    /// When a job of `kind` is given up, run `handler` with its payload.
    pub fn on_dead(mut self, kind: &'static str, handler: JobHandler) -> OutboxWorker {
        self.on_dead.insert(kind, handler);
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

    /// Run until `stop` fires. A job already running then finishes (the
    /// application waits for this task, see [`crate::shutdown`]); jobs
    /// claimed but not started are given back at once, claimable by any
    /// node, rather than held until their lease runs out.
    pub fn start(self, mut stop: Shutdown) {
        actix::spawn(async move {
            let mut every = tokio::time::interval(self.settings.poll);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.wait() => break,
                    _ = every.tick() => {}
                    // A job written here just committed: run it now, not
                    // at the next poll (which still finds other nodes'
                    // jobs and ones that came due).
                    () = self.sql.outbox().outbox_written() => {}
                }
                // A full batch means more may be due: go again at once.
                while self.tick(&stop).await >= BATCH as usize {
                    if stop.is_stopping() {
                        break;
                    }
                }
            }
            // Nothing runs here any more: a claim this node still holds is
            // a leftover (its answer lost with a dying connection) and goes
            // back now rather than when its lease lapses.
            match self.sql.outbox().release_claims(&self.node).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(jobs = n, "outbox: claims given back at shutdown"),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox: giving back claims at shutdown failed; they lapse with their lease")
                }
            }
            drop(stop);
        });
    }

    /// Claim and run the due jobs once; how many were claimed. Once `stop`
    /// fires, the rest of the batch is released unstarted.
    async fn tick(&self, stop: &Shutdown) -> usize {
        let kinds = self.kinds();
        let lease = i64::try_from(self.settings.lease.as_millis()).unwrap_or(60_000);
        let jobs = match self
            .sql
            .outbox()
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
            if stop.is_stopping() {
                if let Err(e) = self.sql.outbox().release_job(job.id, &self.node).await {
                    tracing::warn!(job = job.id, error = %e, "outbox: releasing a claim at shutdown failed; it lapses with its lease");
                }
                continue;
            }
            self.run(job).await;
        }
        n
    }

    async fn run(&self, job: JobRecord) {
        // The map's own key is the metric label below: a bounded set of
        // kinds known at build time, whatever a stored row says.
        let Some((&kind, (handler, policy))) = self.handlers.get_key_value(job.kind.as_str())
        else {
            return;
        };
        let outcome = handler(job.payload.clone()).await;
        let now = now_ms();
        let (label, result) = match outcome {
            Ok(()) => (
                "done",
                self.sql.outbox().finish_job(job.id, &self.node, now).await,
            ),
            Err(why) if job.attempts >= policy.max_attempts => {
                tracing::error!(job = job.id, kind = %job.kind, error = %why, "outbox job dead");
                if let Some(dead) = self.on_dead.get(job.kind.as_str()) {
                    if let Err(e) = dead(job.payload.clone()).await {
                        tracing::error!(job = job.id, error = %e, "outbox: the give-up handler failed");
                    }
                }
                (
                    "dead",
                    self.sql
                        .outbox()
                        .fail_job(job.id, &self.node, &why.to_string(), None)
                        .await,
                )
            }
            Err(why) => {
                let pause = policy.backoff(job.attempts);
                let retry = now + i64::try_from(pause.as_millis()).unwrap_or(0);
                tracing::warn!(job = job.id, kind = %job.kind, attempt = job.attempts, error = %why, "outbox job failed; retrying");
                (
                    "retry",
                    self.sql
                        .outbox()
                        .fail_job(job.id, &self.node, &why.to_string(), Some(retry))
                        .await,
                )
            }
        };
        self.metrics
            .outbox_jobs
            .with_label_values(&[kind, label])
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
    fn backoff_doubles_up_to_its_cap() {
        let d = RetryPolicy::DEFAULT;
        assert_eq!(d.backoff(1), Duration::from_secs(1));
        assert_eq!(d.backoff(2), Duration::from_secs(2));
        assert_eq!(d.backoff(4), Duration::from_secs(8));
        assert_eq!(d.backoff(9), Duration::from_secs(256));
        assert_eq!(d.backoff(10), Duration::from_secs(300));
        assert_eq!(d.backoff(1000), Duration::from_secs(300));
        assert_eq!(d.backoff(0), Duration::from_secs(1));
        let p = RetryPolicy::PROVIDER;
        let minutes: Vec<u64> = (1..=p.max_attempts)
            .map(|a| p.backoff(a).as_secs() / 60)
            .collect();
        assert_eq!(minutes, vec![2, 4, 8, 16, 32, 60, 60]);
    }
}
