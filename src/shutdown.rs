//! One signal that the application is stopping.
//!
//! Background work (the WAL checkpoint loop, the reservation sweep, the
//! cluster consumer, presence refreshes, the reservation timer actor) holds
//! a [`Shutdown`] and ends when it fires, the way mini-redis hands each
//! connection a shutdown listener. Without it, an application that stopped
//! serving HTTP would keep firing timers and consuming the bus in the
//! background: a second instance started on the same data (a restart test,
//! a rolling restart in one process) would then not be the only one doing
//! the work, and a test of the restore path could pass without it.

use tokio::sync::watch;

/// The sending side: fired once by [`crate::Application::run`] when it
/// stops. Dropping it fires it too.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A listener: cheap to clone, one per background task.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl ShutdownTrigger {
    pub fn new() -> ShutdownTrigger {
        ShutdownTrigger(watch::channel(false).0)
    }

    pub fn fire(&self) {
        self.0.send_replace(true);
    }

    pub fn listener(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Default for ShutdownTrigger {
    fn default() -> Self {
        ShutdownTrigger::new()
    }
}

impl Shutdown {
    /// Resolves once the application is stopping (at once if it already is,
    /// or if the trigger is gone).
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }

    pub fn is_stopping(&self) -> bool {
        *self.0.borrow()
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
}
