//! One signal that the application is stopping, and the guards that let it
//! wait for its background work.
//!
//! The signal has two steps. **Draining** comes first: WebSocket sessions
//! and event streams close (clients reconnect and resume elsewhere) so that
//! the HTTP server can stop. **Stopping** comes once it has: background work
//! (the outbox worker, the WAL checkpoint loop, the sweeps, the cluster
//! consumer, presence refreshes, the reservation timer actor) ends.
//!
//! Every background task holds a [`Shutdown`] made by
//! [`ShutdownTrigger::task`], which carries a completion guard with the
//! task's name (mini-redis hands each connection a shutdown listener and a
//! sender whose drop says "done"; this is the same idea with names). The
//! task is finished when its last clone of that `Shutdown` is dropped.
//! [`ShutdownTrigger::finish`] fires the stop and waits until every task
//! has finished or a grace period has passed, and names those that had
//! not, so the stores close under nobody's feet.
//!
//! Without it, an application that stopped serving HTTP would keep firing
//! timers and consuming the bus in the background, or close its database
//! under a job half-way through.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Running,
    Draining,
    Stopping,
}

/// The sending side, owned by the application. Dropping it stops every
/// listener too.
#[derive(Debug)]
pub struct ShutdownTrigger {
    phase: watch::Sender<Phase>,
    tasks: Arc<Tasks>,
}

/// The tasks that hold a completion guard, by registration number.
#[derive(Debug, Default)]
struct Tasks {
    live: Mutex<BTreeMap<u64, &'static str>>,
    next: AtomicU64,
    changed: Notify,
}

impl Tasks {
    fn live(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, &'static str>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Marks one background task as running until it is dropped.
#[derive(Debug)]
struct Guard {
    id: u64,
    tasks: Arc<Tasks>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.tasks.live().remove(&self.id);
        self.tasks.changed.notify_waiters();
    }
}

/// A listener: cheap to clone. One made by [`ShutdownTrigger::task`] also
/// keeps its task counted as running until the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Shutdown {
    phase: watch::Receiver<Phase>,
    _guard: Option<Arc<Guard>>,
}

impl ShutdownTrigger {
    pub fn new() -> ShutdownTrigger {
        ShutdownTrigger {
            phase: watch::channel(Phase::Running).0,
            tasks: Arc::default(),
        }
    }

    /// A listener for work that needs no waiting for (a WebSocket session
    /// closes with its connection, which the HTTP server waits for).
    pub fn listener(&self) -> Shutdown {
        Shutdown {
            phase: self.phase.subscribe(),
            _guard: None,
        }
    }

    /// A listener for a background task called `name`: [`Self::finish`]
    /// waits until it (every clone of it) is dropped.
    pub fn task(&self, name: &'static str) -> Shutdown {
        let id = self.tasks.next.fetch_add(1, Ordering::Relaxed);
        self.tasks.live().insert(id, name);
        Shutdown {
            phase: self.phase.subscribe(),
            _guard: Some(Arc::new(Guard {
                id,
                tasks: self.tasks.clone(),
            })),
        }
    }

    /// First step: sessions and streams close.
    pub fn drain(&self) {
        self.raise(Phase::Draining);
    }

    /// Second step: background work stops (without waiting for it).
    pub fn fire(&self) {
        self.raise(Phase::Stopping);
    }

    fn raise(&self, to: Phase) {
        self.phase.send_if_modified(|phase| {
            let raised = *phase < to;
            if raised {
                *phase = to;
            }
            raised
        });
    }

    /// The names of the tasks still running.
    pub fn running(&self) -> Vec<&'static str> {
        self.tasks.live().values().copied().collect()
    }

    /// Fire the stop, then wait until every task has finished or `grace`
    /// has passed. Returns the names of the tasks that had not finished
    /// (empty when all did).
    pub async fn finish(&self, grace: Duration) -> Vec<&'static str> {
        self.fire();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let changed = self.tasks.changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before looking, so a task that ends in between
            // still wakes us.
            changed.as_mut().enable();
            let left = self.running();
            if left.is_empty() {
                return left;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.running();
            }
        }
    }
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        ShutdownTrigger::new()
    }
}

impl Shutdown {
    /// Resolves once background work should stop (at once if it already
    /// should, or if the trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.phase.wait_for(|p| *p >= Phase::Stopping).await;
    }

    /// Resolves once sessions and streams should close (the first step;
    /// at once if it has come, or if the trigger is gone).
    pub async fn draining(&mut self) {
        let _ = self.phase.wait_for(|p| *p >= Phase::Draining).await;
    }

    pub fn is_stopping(&self) -> bool {
        *self.phase.borrow() >= Phase::Stopping
    }

    /// Run `work` now and then every `period` until the stop signal, on the
    /// current (actix) runtime. A round that runs late is not made up
    /// (the next one waits a full period). The loop holds this listener: a
    /// task's guard (`ShutdownTrigger::task`) lets `run` wait for the round
    /// in flight.
    pub fn every<F, Fut>(mut self, period: Duration, mut work: F)
    where
        F: FnMut() -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        actix::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = self.wait() => break,
                    _ = tick.tick() => {}
                }
                work().await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn listeners_wake_when_fired_and_after_the_fact() {
        let trigger = ShutdownTrigger::new();
        let mut early = trigger.listener();
        assert!(!early.is_stopping());
        let waiter = tokio::spawn(async move { early.wait().await });
        trigger.fire();
        waiter.await.expect("woken");
        let mut late = trigger.listener();
        assert!(late.is_stopping());
        late.wait().await;
    }

    #[tokio::test]
    async fn a_dropped_trigger_stops_listeners() {
        let trigger = ShutdownTrigger::new();
        let mut l = trigger.listener();
        drop(trigger);
        l.wait().await;
    }

    #[tokio::test]
    async fn draining_comes_before_stopping() {
        let trigger = ShutdownTrigger::new();
        let mut session = trigger.listener();
        let stop = trigger.listener();
        trigger.drain();
        session.draining().await;
        assert!(!stop.is_stopping(), "draining is not stopping");
        trigger.fire();
        assert!(stop.is_stopping());
        // Raising never goes back.
        trigger.drain();
        assert!(stop.is_stopping());
        session.draining().await;
    }

    #[tokio::test]
    async fn finish_waits_for_tasks_and_names_the_late_ones() {
        let trigger = ShutdownTrigger::new();
        // A task that ends when told to, after a little cleanup.
        let mut quick = trigger.task("quick");
        let quick_done = tokio::spawn(async move {
            quick.wait().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(quick);
        });
        // A task whose clones all live in one place that ignores the stop.
        let stuck = trigger.task("stuck");
        let stuck_clone = stuck.clone();
        assert_eq!(trigger.running(), vec!["quick", "stuck"]);
        let late = trigger.finish(Duration::from_millis(300)).await;
        quick_done.await.expect("quick ended");
        assert_eq!(late, vec!["stuck"]);
        drop(stuck);
        assert_eq!(trigger.running(), vec!["stuck"], "a clone still runs");
        drop(stuck_clone);
        assert!(trigger.running().is_empty());
        assert!(trigger.finish(Duration::ZERO).await.is_empty());
    }
}
