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
use std::time::Instant;

use actix::Addr;
use tokio::sync::{mpsc, oneshot};

use super::room::{Committed, RoomActor};
use crate::metrics::Metrics;
use crate::store::{Appended, ChatWrite, MessageStore};

const MAX_BATCH: usize = 1024;

/// One append's outcome, under the room's token for it.
pub type Outcome = (u64, Result<Appended, String>);

pub struct Job {
    pub write: ChatWrite,
    /// Where to report an append's outcome, with the room's token for it.
    pub reply: Option<(Addr<RoomActor>, u64)>,
}

enum Item {
    Job(Job),
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
        self.tx.send(Item::Job(job)).is_ok()
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
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Job(j) => jobs.push(j),
                Item::Flush(f) => flushes.push(f),
            }
            if jobs.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        if !jobs.is_empty() {
            commit(&mut jobs, store.as_ref(), &metrics).await;
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
