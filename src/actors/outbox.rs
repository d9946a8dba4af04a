//! A connection's outbound queue: what actors queue for one WebSocket.
//!
//! Replaces a bounded `tokio::sync::mpsc` channel, which allocates its
//! first block of 32 slots (about 1.5 KiB here) plus its shared state when
//! the connection opens, idle or not; the heap profile of 3,000 idle
//! connections in docs/BENCHMARKS.md counted three such channels per
//! connection. This queue is one small shared struct; its buffer exists
//! only while frames wait and is given back when the queue runs dry. It
//! also holds the connection's two signals (overflowed, login ended), which
//! were two more shared allocations. Producers never wait: a full queue
//! sets `overflowed` and drops the frame (the client resumes).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::Outbound;

/// Buffer capacity kept after the queue empties; more is given back.
const KEEP: usize = 8;

struct Queue {
    items: VecDeque<Outbound>,
    /// The receiving connection is gone: drop what comes.
    closed: bool,
}

/// A signal raised once and then up for good.
#[derive(Default)]
struct Latch {
    up: AtomicBool,
    notify: Notify,
}

impl Latch {
    fn raise(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    async fn wait(&self) {
        if self.up.load(Ordering::Acquire) {
            return;
        }
        self.notify.notified().await;
    }
}

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    /// Wakes the receiver (one permit is stored if it is not waiting).
    wake: Notify,
    overflow: Latch,
    ended: Latch,
}

impl Shared {
    pub(crate) fn new(capacity: usize) -> Arc<Shared> {
        Arc::new(Shared {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                closed: false,
            }),
            capacity: capacity.max(1),
            wake: Notify::new(),
            overflow: Latch::default(),
            ended: Latch::default(),
        })
    }

    // A push or pop cannot leave the queue half-changed, so a poisoned
    // lock is used as is.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue without waiting; `false` if the queue was full (the overflow
    /// signal is raised then) or the receiver is gone.
    pub(crate) fn push(&self, out: Outbound) -> bool {
        {
            let mut q = self.lock();
            if q.closed {
                return false;
            }
            if q.items.len() >= self.capacity {
                drop(q);
                self.overflow.raise();
                return false;
            }
            q.items.push_back(out);
        }
        self.wake.notify_one();
        true
    }

    pub(crate) fn end(&self) {
        self.ended.raise();
    }

    pub(crate) async fn ended(&self) {
        self.ended.wait().await;
    }

    pub(crate) async fn overflowed(&self) {
        self.overflow.wait().await;
    }
}

/// The connection's end of the queue.
pub struct Receiver {
    shared: Arc<Shared>,
}

impl Receiver {
    pub(crate) fn new(shared: Arc<Shared>) -> Receiver {
        Receiver { shared }
    }

    /// The next queued item, waiting for one if needed (cancel-safe: an
    /// item is only taken when this returns).
    pub async fn recv(&mut self) -> Outbound {
        loop {
            if let Some(out) = self.try_recv() {
                return out;
            }
            self.shared.wake.notified().await;
        }
    }

    /// The next queued item if there is one.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let mut q = self.shared.lock();
        let out = q.items.pop_front();
        if q.items.is_empty() && q.items.capacity() > KEEP {
            q.items = VecDeque::new();
        }
        out
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.closed = true;
        q.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::frames::Frame;

    fn frame(n: i64) -> Outbound {
        Outbound::Message {
            room: 1,
            seq: n,
            frame: Frame::from(format!("{{\"seq\":{n}}}")),
        }
    }

    fn seq(out: &Outbound) -> i64 {
        match out {
            Outbound::Message { seq, .. } => *seq,
            Outbound::Frame(_) => -1,
        }
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_a_full_queue_overflows() {
        let shared = Shared::new(3);
        let mut rx = Receiver::new(shared.clone());
        for n in 1..=3 {
            assert!(shared.push(frame(n)));
        }
        assert!(!shared.overflow.up.load(Ordering::Acquire));
        assert!(!shared.push(frame(4)), "the fourth does not fit");
        // The overflow signal is up (and stays up).
        tokio::time::timeout(std::time::Duration::from_secs(1), shared.overflowed())
            .await
            .expect("overflowed");
        assert_eq!(seq(&rx.recv().await), 1);
        assert_eq!(seq(&rx.recv().await), 2);
        assert_eq!(seq(&rx.try_recv().expect("third")), 3);
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_and_the_buffer_is_given_back() {
        let shared = Shared::new(1000);
        let mut rx = Receiver::new(shared.clone());
        let producer = {
            let shared = shared.clone();
            tokio::spawn(async move {
                for n in 1..=500 {
                    assert!(shared.push(frame(n)));
                    if n % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        for n in 1..=500 {
            assert_eq!(seq(&rx.recv().await), n);
        }
        producer.await.expect("producer");
        assert!(shared.lock().items.capacity() <= KEEP, "memory given back");
        drop(rx);
        assert!(!shared.push(frame(501)), "nobody receives any more");
    }

    #[tokio::test]
    async fn ending_the_login_wakes_the_connection() {
        let shared = Shared::new(4);
        let waiter = {
            let shared = shared.clone();
            tokio::spawn(async move { shared.ended().await })
        };
        shared.end();
        shared.end();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("task");
    }
}
