//! Group commit for chat writes.
//!
//! One task owns the write side of the message store. It takes the first
//! queued write, then everything else already queued (up to `MAX_BATCH`),
//! and commits them as one transaction. While that commit waits for the
//! disk, new writes queue up and form the next batch; so at low load a
//! write commits alone and at once, at high load one fsync covers hundreds.
//! Results go back to each room actor in one message per room per batch,
//! in order, so a room sees its seqs in increasing order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::Addr;
use tokio::sync::{mpsc, oneshot};

use super::room::{Committed, RoomActor};
use crate::metrics::Metrics;
use crate::store::{Appended, ChatWrite, MessageStore};

const MAX_BATCH: usize = 1024;

/// Under sustained load, how long a commit waits for company. A commit
/// costs about the same CPU whether it stores one write or fifty (the
/// statements' round trips to SQLite's thread and the fsync), so when
/// writes come one at a time, back to back, each paying a commit of its
/// own costs the most CPU per message (docs/BENCHMARKS.md, "Commit
/// delay"). When the next write arrives within [`SUSTAINED`] of the last
/// commit's end, the committer waits this long (the timer's resolution is
/// 1 ms, so up to 1.5 ms) and takes what came meanwhile too. A write after
/// a quiet spell commits at once. The idea is PostgreSQL's `commit_delay`.
const COMMIT_DELAY: Duration = Duration::from_micros(500);
/// See [`COMMIT_DELAY`].
const SUSTAINED: Duration = Duration::from_millis(2);

/// One append's outcome, under the room's token for it.
pub type Outcome = (u64, Result<Appended, String>);

pub struct Job {
    pub write: ChatWrite,
    /// Where to report an append's outcome, with the room's token for it.
    pub reply: Option<(Addr<RoomActor>, u64)>,
}

enum Item {
    /// With the time it was submitted.
    Job(Job, Instant),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct Committer {
    tx: mpsc::UnboundedSender<Item>,
}

impl Committer {
    pub fn start(store: Arc<dyn MessageStore>, metrics: Arc<Metrics>) -> Committer {
        let (tx, rx) = mpsc::unbounded_channel();
        actix::spawn(run(rx, store, metrics));
        Committer { tx }
    }

    pub fn submit(&self, job: Job) -> bool {
        self.tx.send(Item::Job(job, Instant::now())).is_ok()
    }

    /// Wait until everything submitted before this call is committed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Item::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Item>,
    store: Arc<dyn MessageStore>,
    metrics: Arc<Metrics>,
) {
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut submitted: Vec<Instant> = Vec::with_capacity(MAX_BATCH);
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    let mut last_done: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        if matches!(first, Item::Job(..)) && last_done.is_some_and(|at| at.elapsed() < SUSTAINED) {
            tokio::time::sleep(COMMIT_DELAY).await;
        }
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Job(j, at) => {
                    jobs.push(j);
                    submitted.push(at);
                }
                Item::Flush(f) => flushes.push(f),
            }
            if jobs.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !jobs.is_empty() {
            commit(&mut jobs, store.as_ref(), &metrics).await;
            let done = Instant::now();
            last_done = Some(done);
            for at in submitted.drain(..) {
                metrics
                    .chat_durable_seconds
                    .observe(done.duration_since(at).as_secs_f64());
            }
        }
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
    }
}

async fn commit(jobs: &mut Vec<Job>, store: &dyn MessageStore, metrics: &Metrics) {
    let writes: Vec<ChatWrite> = jobs.iter().map(|j| j.write.clone()).collect();
    let started = Instant::now();
    let outcome = store.write_batch(&writes).await;
    metrics.chat_batch_size.observe(writes.len() as f64);
    metrics
        .chat_commit_seconds
        .observe(started.elapsed().as_secs_f64());
    let mut per_room: HashMap<i64, (Addr<RoomActor>, Vec<Outcome>)> = HashMap::new();
    match outcome {
        Ok(results) => {
            for (job, result) in jobs.drain(..).zip(results) {
                if let (Some((addr, token)), Some(appended), ChatWrite::Append(m)) =
                    (job.reply, result, &job.write)
                {
                    per_room
                        .entry(m.room_id)
                        .or_insert_with(|| (addr, Vec::new()))
                        .1
                        .push((token, Ok(appended)));
                }
            }
        }
        Err(e) => {
            tracing::error!(error = %e, batch = writes.len(), "chat commit failed; nothing in the batch was stored");
            metrics.chat_commit_failures.inc();
            for job in jobs.drain(..) {
                if let (Some((addr, token)), ChatWrite::Append(m)) = (job.reply, &job.write) {
                    per_room
                        .entry(m.room_id)
                        .or_insert_with(|| (addr, Vec::new()))
                        .1
                        .push((token, Err("message could not be stored".to_string())));
                }
            }
        }
    }
    for (_, (addr, results)) in per_room {
        addr.do_send(Committed { results });
    }
}
