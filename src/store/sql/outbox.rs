//! The outbox table: jobs written in the same transaction as the business
//! change they follow, worked at least once by any node.
//!
//! A node claims a due job with a conditional update (`claimed_until` in
//! the past or unset), so two nodes never work the same job at once; a node
//! that dies mid-job loses its claim when the lease runs out and another
//! node takes the job over. Handlers are idempotent at their target, so a
//! job that ran but was not marked done (a crash in between) may run again
//! safely.

use super::is_unique_violation;
use crate::store::sql::OutboxSql;
use crate::store::StoreError;

/// Jobs a transaction derives from what only it knows (the id of a row it
/// inserted), written with its change.
pub type JobsFor<'a> = &'a (dyn Fn(i64) -> Vec<NewJob> + Send + Sync);

/// A job to write along with a business change.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: serde_json::Value,
    /// At most one job per key, ever (`kind:id` is the usual key).
    pub dedup_key: String,
    pub due_at: i64,
}

#[derive(Debug, Clone)]
pub struct JobRecord {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
    pub status: String,
    pub due_at: i64,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
}

type JobRow = (i64, String, String, String, i64, i64, Option<String>, i64);

fn job(r: JobRow) -> JobRecord {
    JobRecord {
        id: r.0,
        kind: r.1,
        payload: serde_json::from_str(&r.2).unwrap_or(serde_json::Value::Null),
        status: r.3,
        due_at: r.4,
        attempts: r.5,
        last_error: r.6,
        created_at: r.7,
    }
}

const JOB_COLUMNS: &str = "id, kind, payload, status, due_at, attempts, last_error, created_at";

/// Write a job inside the caller's transaction. A job with the same key
/// already there is not an error: the side effect is already scheduled.
pub(crate) async fn enqueue(
    conn: &mut sqlx::AnyConnection,
    job: &NewJob,
    now: i64,
) -> Result<(), StoreError> {
    // A savepoint-free way to tolerate the duplicate on both dialects:
    // look first (the unique key still arbitrates a race).
    let exists: Option<(i64,)> = sqlx::query_as("SELECT id FROM outbox WHERE dedup_key = ?")
        .bind(&job.dedup_key)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_some() {
        return Ok(());
    }
    let r = sqlx::query(
        "INSERT INTO outbox (kind, payload, dedup_key, status, due_at, attempts, created_at) \
         VALUES (?, ?, ?, 'pending', ?, 0, ?)",
    )
    .bind(job.kind)
    .bind(job.payload.to_string())
    .bind(&job.dedup_key)
    .bind(job.due_at)
    .bind(now)
    .execute(&mut *conn)
    .await;
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Write every job of `jobs` inside the caller's transaction.
pub(crate) async fn enqueue_all(
    conn: &mut sqlx::AnyConnection,
    jobs: &[NewJob],
    now: i64,
) -> Result<(), StoreError> {
    for job in jobs {
        enqueue(conn, job, now).await?;
    }
    Ok(())
}

impl OutboxSql<'_> {
    /// Commit a transaction that wrote outbox jobs and wake this node's
    /// worker for them.
    pub(crate) async fn commit_with_jobs(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Any>,
    ) -> Result<(), StoreError> {
        tx.commit().await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Resolves when a transaction of this store wrote jobs (or at once if
    /// one did since the last call).
    pub async fn outbox_written(self) {
        self.outbox_wake.notified().await;
    }

    /// Write a job on its own (a side effect that follows no business
    /// change of ours, e.g. a compensating refund).
    pub async fn enqueue_job(&self, job: &NewJob, now: i64) -> Result<(), StoreError> {
        let mut conn = self.writer().acquire().await?;
        enqueue(&mut conn, job, now).await?;
        self.outbox_wake.notify_one();
        Ok(())
    }

    /// Claim up to `limit` due jobs of the given kinds for `node` until
    /// `now + lease_ms`. Returns the jobs this node now holds.
    pub async fn claim_jobs(
        &self,
        node: &str,
        kinds: &[&str],
        now: i64,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<JobRecord>, StoreError> {
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM outbox WHERE status = 'pending' AND due_at <= ? \
             AND (claimed_until IS NULL OR claimed_until < ?) AND kind IN ({}) \
             ORDER BY due_at, id LIMIT ?",
            super::placeholders(kinds.len())
        );
        let mut q = sqlx::query_as::<_, JobRow>(&sql).bind(now).bind(now);
        for k in kinds {
            q = q.bind(*k);
        }
        let candidates = q.bind(limit).fetch_all(self.reader()).await?;
        let mut claimed = Vec::new();
        for row in candidates {
            // The conditional update is the claim: of several nodes that
            // saw the job, exactly one changes the row.
            let r = sqlx::query(
                "UPDATE outbox SET claimed_by = ?, claimed_until = ?, attempts = attempts + 1 \
                 WHERE id = ? AND status = 'pending' AND (claimed_until IS NULL OR claimed_until < ?)",
            )
            .bind(node)
            .bind(now + lease_ms)
            .bind(row.0)
            .bind(now)
            .execute(self.writer())
            .await;
            let r = match r {
                Ok(r) => r,
                // The jobs claimed so far are this node's now: hand them
                // back to the worker (to run, or to give back when it is
                // stopping) instead of leaving them held until the lease
                // runs out. (Seen at shutdown on MySQL: a pooled connection
                // opened on an HTTP worker's runtime dies with it.)
                Err(e) if !claimed.is_empty() => {
                    tracing::warn!(error = %e, claimed = claimed.len(), "outbox: claiming stopped part way");
                    break;
                }
                Err(e) => return Err(e.into()),
            };
            if r.rows_affected() == 1 {
                let mut j = job(row);
                j.attempts += 1;
                claimed.push(j);
            }
        }
        Ok(claimed)
    }

    /// The job ran: done (only if this node still holds it).
    pub async fn finish_job(&self, id: i64, node: &str, now: i64) -> Result<(), StoreError> {
        once_more(|| {
            sqlx::query(
                "UPDATE outbox SET status = 'done', done_at = ?, claimed_until = NULL \
                 WHERE id = ? AND claimed_by = ? AND status = 'pending'",
            )
            .bind(now)
            .bind(id)
            .bind(node)
            .execute(self.writer())
        })
        .await?;
        Ok(())
    }

    /// Give back every claim `node` still holds: its worker has stopped
    /// and runs nothing, so such a claim can only be a leftover (a claim
    /// whose answer was lost with its connection). Returns how many.
    pub async fn release_claims(&self, node: &str) -> Result<u64, StoreError> {
        let r = once_more(|| {
            sqlx::query(
                "UPDATE outbox SET claimed_until = NULL \
                 WHERE claimed_by = ? AND status = 'pending' AND claimed_until IS NOT NULL",
            )
            .bind(node)
            .execute(self.writer())
        })
        .await?;
        Ok(r.rows_affected())
    }

    /// Give back a claimed job that was not started (the node is stopping):
    /// claimable again at once, its attempt not counted. One attempt: a
    /// claim this fails to give back goes back with the rest through
    /// [`SqlStore::release_claims`] when the worker stops.
    pub async fn release_job(&self, id: i64, node: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET claimed_until = NULL, attempts = attempts - 1 \
             WHERE id = ? AND claimed_by = ? AND status = 'pending'",
        )
        .bind(id)
        .bind(node)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// The job failed: try again at `retry_at`, or give up (`dead`).
    pub async fn fail_job(
        &self,
        id: i64,
        node: &str,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        let error: String = error.chars().take(900).collect();
        let r = match retry_at {
            Some(at) => {
                sqlx::query(
                    "UPDATE outbox SET due_at = ?, claimed_until = NULL, last_error = ? \
                     WHERE id = ? AND claimed_by = ? AND status = 'pending'",
                )
                .bind(at)
                .bind(error)
                .bind(id)
                .bind(node)
                .execute(self.writer())
                .await
            }
            None => {
                sqlx::query(
                    "UPDATE outbox SET status = 'dead', claimed_until = NULL, last_error = ? \
                     WHERE id = ? AND claimed_by = ? AND status = 'pending'",
                )
                .bind(error)
                .bind(id)
                .bind(node)
                .execute(self.writer())
                .await
            }
        };
        r?;
        Ok(())
    }

    /// Reconcile jobs waiting to run: (all of them, those whose dedup key
    /// starts with `prefix`). Jobs a worker holds already do not count: a
    /// webhook arriving while one runs may bring news it has not seen.
    pub async fn waiting_jobs(
        &self,
        kind: &str,
        prefix: &str,
        now: i64,
    ) -> Result<(i64, i64), StoreError> {
        let waiting = "FROM outbox WHERE kind = ? AND status = 'pending' \
                       AND (claimed_until IS NULL OR claimed_until < ?)";
        let (all,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) {waiting}"))
            .bind(kind)
            .bind(now)
            .fetch_one(self.writer())
            .await?;
        let (mine,): (i64,) =
            sqlx::query_as(&format!("SELECT COUNT(*) {waiting} AND dedup_key LIKE ?"))
                .bind(kind)
                .bind(now)
                .bind(format!("{prefix}%"))
                .fetch_one(self.writer())
                .await?;
        Ok((all, mine))
    }

    /// Jobs in one state (`pending`, `done`, `dead`), newest first.
    pub async fn jobs(
        &self,
        status: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let rows: Vec<JobRow> = sqlx::query_as(&format!(
            "SELECT {JOB_COLUMNS} FROM outbox WHERE status = ? AND id < ? ORDER BY id DESC LIMIT ?"
        ))
        .bind(status)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(job).collect())
    }
}

/// Run a conditional update, and once more (on another pooled connection)
/// if it failed: a stopping node's pool may hold connections opened on an
/// HTTP worker's runtime that is gone. The updates given here match nothing
/// the second time if the first did commit.
async fn once_more<F, Fut, T>(update: F) -> Result<T, sqlx::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    match update().await {
        Ok(r) => Ok(r),
        Err(_) => update().await,
    }
}
