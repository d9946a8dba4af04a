//! Group commit for chat writes.
//!
//! One loop owns the write side of the message store. It takes the first
//! queued write, then everything else already queued (up to `MAX_BATCH`),
//! and commits them as one transaction. On the embedded engine the loop
//! is a thread of its own that commits synchronously through the store's
//! chat writer (`MessageStore::blocking_writer`); on the network stores it
//! is a task that awaits the database. While that commit waits for the
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
use crate::store::{Appended, BlockingWriter, ChatWrite, MessageStore, StoreError};

const MAX_BATCH: usize = 1024;

/// Under sustained load, how long a commit waits for company. A commit
/// costs about the same CPU whether it stores one write or fifty (the
/// wake-ups, the transaction's fixed statements and the fsync), so when
/// writes come one at a time, back to back, each paying a commit of its
/// own costs the most CPU per message (docs/BENCHMARKS.md, "Commit
/// delay"). When the next write arrives within [`SUSTAINED`] of the last
/// commit's end, the committer task waits this long (the timer's 1 ms
/// resolution makes it up to 1.5 ms) and takes what came meanwhile too. A
/// write after a quiet spell commits at once. The idea is PostgreSQL's
/// `commit_delay`.
const COMMIT_DELAY: Duration = Duration::from_micros(500);
/// The same for the committer thread, whose sleep is exact. 0.5 ms made
/// commits smaller than the task's (1.4 writes against 1.9 at 50,000
/// deliveries/s), and each commit's WAL write and fsync cost system time;
/// 1 ms gave the batching back (-12% CPU per delivery, "third stop" in
/// docs/BENCHMARKS.md). 2 ms: another -8% (about 1 µs per delivery at
/// 50,000/s, 2.7 writes per commit against 1.6) for +0.3 to +0.9 ms on the
/// durable median ("fourth stop"). `chat_commit_delay_us` overrides both.
const THREAD_COMMIT_DELAY: Duration = Duration::from_millis(2);
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
    /// Start the committer: on a thread of its own when the store commits
    /// synchronously (the embedded engine), else as a task on the current
    /// arbiter (network stores: the commit awaits the database).
    /// `delay`: see `chat_commit_delay_us` (`None`: [`THREAD_COMMIT_DELAY`]
    /// on the thread, [`COMMIT_DELAY`] on the task).
    pub fn start(
        store: Arc<dyn MessageStore>,
        metrics: Arc<Metrics>,
        delay: Option<Duration>,
    ) -> Committer {
        if let Some(commit) = store.blocking_writer() {
            let (tx, rx) = mpsc::unbounded_channel();
            let on_thread = metrics.clone();
            let delay = delay.unwrap_or(THREAD_COMMIT_DELAY);
            match std::thread::Builder::new()
                .name("chat-committer".into())
                .spawn(move || run_blocking(rx, &commit, &on_thread, delay))
            {
                Ok(_) => return Committer { tx },
                // (The store's async path commits the same way.)
                Err(e) => {
                    tracing::error!(error = %e, "no thread for the chat committer; committing from a task")
                }
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        actix::spawn(run(rx, store, metrics, delay.unwrap_or(COMMIT_DELAY)));
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

/// What one turn of the loop took from the queue.
struct Batch {
    /// The jobs' writes, in order, handed to the store as they are (no
    /// copy per message), and where each reports.
    writes: Vec<ChatWrite>,
    replies: Vec<Option<(Addr<RoomActor>, u64)>>,
    submitted: Vec<Instant>,
    flushes: Vec<oneshot::Sender<()>>,
    /// When the last commit ended (for the commit delay).
    last_done: Option<Instant>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            writes: Vec::with_capacity(MAX_BATCH),
            replies: Vec::with_capacity(MAX_BATCH),
            submitted: Vec::with_capacity(MAX_BATCH),
            flushes: Vec::new(),
            last_done: None,
        }
    }

    /// Whether a write that arrives now should wait [`COMMIT_DELAY`] for
    /// company.
    fn sustained(&self, first: &Item) -> bool {
        matches!(first, Item::Job(..)) && self.last_done.is_some_and(|at| at.elapsed() < SUSTAINED)
    }

    /// Take `first` and everything queued behind it (up to [`MAX_BATCH`]).
    fn take(&mut self, first: Item, rx: &mut mpsc::UnboundedReceiver<Item>) {
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Item::Job(j, at) => {
                    self.writes.push(j.write);
                    self.replies.push(j.reply);
                    self.submitted.push(at);
                }
                Item::Flush(f) => self.flushes.push(f),
            }
            if self.writes.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
    }

    /// Send each room its outcomes, in order, in one message per room
    /// (the batch's writes and replies are emptied).
    fn report(
        &mut self,
        outcome: Result<Vec<Option<Appended>>, StoreError>,
        started: Instant,
        metrics: &Metrics,
    ) {
        let size = self.writes.len();
        metrics.chat_batch_size.observe(size as f64);
        metrics
            .chat_commit_seconds
            .observe(started.elapsed().as_secs_f64());
        let mut per_room: HashMap<i64, (Addr<RoomActor>, Vec<Outcome>)> = HashMap::new();
        let mut add = |write: &ChatWrite, reply, result| {
            if let (Some((addr, token)), ChatWrite::Append(m)) = (reply, write) {
                per_room
                    .entry(m.room_id)
                    .or_insert_with(|| (addr, Vec::new()))
                    .1
                    .push((token, result));
            }
        };
        let jobs = self.writes.drain(..).zip(self.replies.drain(..));
        match outcome {
            Ok(results) => {
                for ((write, reply), result) in jobs.zip(results) {
                    if let Some(appended) = result {
                        add(&write, reply, Ok(appended));
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, batch = size, "chat commit failed; nothing in the batch was stored");
                metrics.chat_commit_failures.inc();
                for (write, reply) in jobs {
                    add(
                        &write,
                        reply,
                        Err("message could not be stored".to_string()),
                    );
                }
            }
        }
        for (_, (addr, results)) in per_room {
            addr.do_send(Committed { results });
        }
    }

    /// After the commit: durable times, and the flushes waiting on it.
    fn done(&mut self, metrics: &Metrics) {
        if !self.submitted.is_empty() {
            let done = Instant::now();
            self.last_done = Some(done);
            for at in self.submitted.drain(..) {
                metrics
                    .chat_durable_seconds
                    .observe(done.duration_since(at).as_secs_f64());
            }
        }
        for f in self.flushes.drain(..) {
            let _ = f.send(());
        }
    }
}

async fn run(
    mut rx: mpsc::UnboundedReceiver<Item>,
    store: Arc<dyn MessageStore>,
    metrics: Arc<Metrics>,
    delay: Duration,
) {
    let mut batch = Batch::new();
    while let Some(first) = rx.recv().await {
        if !delay.is_zero() && batch.sustained(&first) {
            tokio::time::sleep(delay).await;
        }
        batch.take(first, &mut rx);
        if !batch.writes.is_empty() {
            let started = Instant::now();
            let outcome = store.write_batch(&batch.writes).await;
            batch.report(outcome, started, &metrics);
        }
        batch.done(&metrics);
    }
}

/// The committer on its own thread, committing through the store's
/// synchronous writer: a batch costs one wake-up of this thread and one
/// message per room back, and the commit delay is an exact sleep
/// ([`THREAD_COMMIT_DELAY`]).
fn run_blocking(
    mut rx: mpsc::UnboundedReceiver<Item>,
    commit: &BlockingWriter,
    metrics: &Metrics,
    delay: Duration,
) {
    let mut batch = Batch::new();
    while let Some(first) = rx.blocking_recv() {
        if !delay.is_zero() && batch.sustained(&first) {
            std::thread::sleep(delay);
        }
        batch.take(first, &mut rx);
        if !batch.writes.is_empty() {
            let started = Instant::now();
            let outcome = commit(&batch.writes);
            batch.report(outcome, started, metrics);
        }
        batch.done(metrics);
    }
}
