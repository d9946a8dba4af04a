//! Bounded admission for expensive CPU and memory work (Argon2 hashing,
//! image decoding).
//!
//! Each such job runs on the blocking pool, which has hundreds of threads:
//! unbounded, 64 concurrent sign-ups meant 64 Argon2 instances of 19 MiB
//! each at once, and the allocator kept the memory afterwards. A gate lets
//! `workers` jobs run at a time (sized to the machine's cores), lets up to
//! `queue` more wait their turn, and refuses the rest at once with 503
//! `busy` and a Retry-After, so memory stays at `workers` x one job's
//! footprint whatever the load, and a flood costs the attacker, not us.

use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::error::{Code, Refusal, Refuse};

#[derive(Clone)]
pub struct Gate {
    name: &'static str,
    /// Jobs admitted (running or waiting): `workers + queue` permits.
    admitted: Arc<Semaphore>,
    /// Jobs running: `workers` permits.
    running: Arc<Semaphore>,
}

impl Gate {
    pub fn new(name: &'static str, workers: usize, queue: usize) -> Gate {
        let workers = workers.max(1);
        Gate {
            name,
            admitted: Arc::new(Semaphore::new(workers.saturating_add(queue))),
            running: Arc::new(Semaphore::new(workers)),
        }
    }

    /// Workers for CPU-bound jobs on this machine: one per core.
    pub fn cores() -> usize {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    }

    /// Run `job` on the blocking pool once a worker is free, or refuse
    /// with `busy` if the queue is full.
    pub async fn run<T, F>(&self, job: F) -> Result<T, Refusal>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Ok(_admitted) = self.admitted.try_acquire() else {
            tracing::warn!(gate = self.name, "work queue full: refusing");
            return Err(Refusal::busy(self.name));
        };
        let _running = self
            .running
            .acquire()
            .await
            .map_err(|_| Refusal::new(Code::Unavailable, "shutting down"))?;
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| Refusal::internal(format!("{} job failed: {e}", self.name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_workers_at_once_and_refuses_beyond_the_queue() {
        let gate = Gate::new("test", 2, 3);
        let now = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..12 {
            let (gate, now, peak) = (gate.clone(), now.clone(), peak.clone());
            jobs.push(tokio::spawn(async move {
                gate.run(move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    now.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let mut ok = 0;
        let mut busy = 0;
        for j in jobs {
            match j.await.expect("task") {
                Ok(()) => ok += 1,
                Err(e) => {
                    assert_eq!(e.code, Code::Busy);
                    busy += 1;
                }
            }
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2, "never more than 2 at once");
        assert_eq!(ok, 5, "2 running + 3 queued");
        assert_eq!(busy, 7);
        // Capacity comes back.
        assert!(gate.run(|| ()).await.is_ok());
    }
}
