//! Counting attempts (logins, passcodes, password confirmations) so that a
//! limit holds under concurrency.
//!
//! Checking a counter and counting a failure afterwards lets every request
//! that arrives before the first failure is counted through: forty
//! concurrent guesses were all checked against a limit of five. Here an
//! attempt is counted first, with one atomic increment per key, and only
//! then compared with the limit; an attempt that succeeds gives its counts
//! back ([`release`]), so legitimate use does not fill the window.

use std::sync::Arc;

use crate::error::{Refusal, Refuse};
use crate::store::RateLimiter;

/// One counter an attempt is charged to.
#[derive(Debug, Clone)]
pub struct Limit {
    pub key: String,
    pub max: u32,
}

impl Limit {
    pub fn new(key: String, max: u32) -> Limit {
        Limit { key, max }
    }
}

/// Charge one attempt to every limit; refuse (429 with the longest wait)
/// if any is now over its maximum.
pub async fn claim(
    limiter: &Arc<dyn RateLimiter>,
    limits: &[Limit],
    window_secs: u64,
) -> Result<(), Refusal> {
    let mut wait = None;
    for l in limits {
        let w = limiter.hit(&l.key, window_secs).await?;
        if w.count > l.max {
            wait = Some(wait.unwrap_or(0).max(w.resets_in_secs.max(1)));
        }
    }
    match wait {
        Some(secs) => Err(Refusal::rate_limited(secs)),
        None => Ok(()),
    }
}

/// The attempt succeeded: give back its counts.
pub async fn release(limiter: &Arc<dyn RateLimiter>, limits: &[Limit]) -> Result<(), Refusal> {
    for l in limits {
        limiter.release(&l.key).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryRateLimiter;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_attempts_cannot_pass_the_limit() {
        let limiter: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::new());
        let limits = vec![Limit::new("k".into(), 5)];
        let tries = (0..40).map(|_| {
            let (limiter, limits) = (limiter.clone(), limits.clone());
            tokio::spawn(async move { claim(&limiter, &limits, 60).await.is_ok() })
        });
        let mut passed = 0;
        for t in tries {
            if t.await.expect("task") {
                passed += 1;
            }
        }
        assert_eq!(passed, 5);
    }

    #[tokio::test]
    async fn successes_give_their_count_back() {
        let limiter: Arc<dyn RateLimiter> = Arc::new(MemoryRateLimiter::new());
        let limits = vec![Limit::new("k".into(), 2)];
        for _ in 0..10 {
            claim(&limiter, &limits, 60).await.expect("under the limit");
            release(&limiter, &limits).await.expect("release");
        }
        assert_eq!(limiter.peek("k").await.expect("peek").count, 0);
    }
}
