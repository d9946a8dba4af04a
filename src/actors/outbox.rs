//! A connection's outbound queue: what actors queue for one WebSocket.
//!
//! Replaces a bounded `tokio::sync::mpsc` channel, which allocates its
//! first block of 32 slots (about 1.5 KiB here) plus its shared state when
//! the connection opens, idle or not; the heap profile of 3,000 idle
//! connections in docs/BENCHMARKS.md counted three such channels per
//! connection. This queue is one small shared struct; its buffer exists
//! only while frames wait and is given back when the queue runs dry. It
//! also holds the connection's two signals (overflowed, login ended) as
//! flags behind the same wake-up: the session waits on one `Notify`, not
//! three, which keeps each pass of its loop cheap (registering and dropping
//! a waiter on every pass was ~2.4% of a fan-out profile). Producers never
//! wait: a full queue sets `overflowed` and drops the frame (the client
//! resumes).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
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

pub(crate) struct Shared {
    queue: Mutex<Queue>,
    capacity: usize,
    /// Wakes the receiver (one permit is stored if it is not waiting), for
    /// a queued item and for a raised signal alike.
    wake: Notify,
    /// Raised signals ([`OVERFLOWED`], [`ENDED`]); they stay up.
    signals: AtomicU8,
}

const OVERFLOWED: u8 = 1;
const ENDED: u8 = 2;

/// A raised signal: either ends the connection.
pub enum Signal {
    /// The queue overflowed: the client cannot keep up.
    Overflowed,
    /// The connection's login ended.
    Ended,
}

/// What the receiver is told next.
pub enum Next {
    Out(Outbound),
    Signal(Signal),
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
            signals: AtomicU8::new(0),
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
                self.raise(OVERFLOWED);
                return false;
            }
            q.items.push_back(out);
        }
        self.wake.notify_one();
        true
    }

    fn raise(&self, signal: u8) {
        if self.signals.fetch_or(signal, Ordering::AcqRel) & signal == 0 {
            self.wake.notify_one();
        }
    }

    fn raised(&self) -> u8 {
        self.signals.load(Ordering::Acquire)
    }

    pub(crate) fn end(&self) {
        self.raise(ENDED);
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

    /// A raised signal, if any: the login's end first, then an overflow.
    pub fn signal(&self) -> Option<Signal> {
        let raised = self.shared.raised();
        if raised & ENDED != 0 {
            Some(Signal::Ended)
        } else if raised & OVERFLOWED != 0 {
            Some(Signal::Overflowed)
        } else {
            None
        }
    }

    /// A raised signal, else the next queued item, waiting for either if
    /// needed (cancel-safe: an item is only taken when this returns).
    pub async fn next(&mut self) -> Next {
        loop {
            if let Some(signal) = self.signal() {
                return Next::Signal(signal);
            }
            if let Some(out) = self.try_recv() {
                return Next::Out(out);
            }
            self.shared.wake.notified().await;
        }
    }

    /// Resolves once the queue overflowed. Takes wake-ups meant for
    /// [`Receiver::next`], which is harmless: it looks at the queue before
    /// it waits.
    pub async fn overflowed(&self) {
        while self.shared.raised() & OVERFLOWED == 0 {
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

    fn seq(next: &Next) -> i64 {
        match next {
            Next::Out(Outbound::Message { seq, .. }) => *seq,
            Next::Out(Outbound::Frame(_)) => -1,
            Next::Signal(Signal::Overflowed) => -2,
            Next::Signal(Signal::Ended) => -3,
        }
    }

    #[tokio::test]
    async fn frames_come_out_in_order_and_a_full_queue_overflows() {
        let shared = Shared::new(3);
        let mut rx = Receiver::new(shared.clone());
        for n in 1..=3 {
            assert!(shared.push(frame(n)));
        }
        assert!(rx.signal().is_none());
        assert!(!shared.push(frame(4)), "the fourth does not fit");
        // The overflow signal is up (and stays up), ahead of what is queued.
        tokio::time::timeout(std::time::Duration::from_secs(1), rx.overflowed())
            .await
            .expect("overflowed");
        assert_eq!(seq(&rx.next().await), -2);
        assert_eq!(seq(&rx.next().await), -2);
        assert_eq!(seq(&Next::Out(rx.try_recv().expect("first"))), 1);
        assert_eq!(seq(&Next::Out(rx.try_recv().expect("second"))), 2);
        assert_eq!(seq(&Next::Out(rx.try_recv().expect("third"))), 3);
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
            assert_eq!(seq(&rx.next().await), n);
        }
        producer.await.expect("producer");
        assert!(shared.lock().items.capacity() <= KEEP, "memory given back");
        drop(rx);
        assert!(!shared.push(frame(501)), "nobody receives any more");
    }

    #[tokio::test]
    async fn ending_the_login_wakes_the_connection() {
        let shared = Shared::new(4);
        let mut rx = Receiver::new(shared.clone());
        assert!(shared.push(frame(1)));
        let waiter = tokio::spawn(async move {
            // The queued frame first, then the wait ends with the signal.
            let first = seq(&rx.next().await);
            (first, seq(&rx.next().await))
        });
        tokio::task::yield_now().await;
        shared.end();
        shared.end();
        let got = tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("woken")
            .expect("task");
        assert!(got == (1, -3) || got == (-3, -3), "{got:?}");
    }
}
