//! In-process adapters of the embedded engine.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{RateLimiter, StoreError, Window};

/// Prune expired counters once the map grows past this many keys.
const PRUNE_AT: usize = 10_000;

/// key -> (count, end of the window).
type Counters = HashMap<String, (u32, Instant)>;

/// Fixed-window rate limiter held in memory (one process only).
#[derive(Default)]
pub struct MemoryRateLimiter {
    counters: Mutex<Counters>,
}

impl MemoryRateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Counters>, StoreError> {
        self.counters
            .lock()
            .map_err(|_| StoreError::Other("rate limiter lock poisoned".into()))
    }
}

fn window_of(entry: Option<&(u32, Instant)>, now: Instant) -> Window {
    match entry {
        Some((count, ends)) if *ends > now => Window {
            count: *count,
            resets_in_secs: (*ends - now).as_secs().max(1),
        },
        _ => Window {
            count: 0,
            resets_in_secs: 0,
        },
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, window_secs: u64) -> Result<Window, StoreError> {
        let now = Instant::now();
        let mut map = self.lock()?;
        if map.len() >= PRUNE_AT {
            map.retain(|_, (_, ends)| *ends > now);
        }
        let entry = map
            .entry(key.to_string())
            .or_insert((0, now + Duration::from_secs(window_secs)));
        if entry.1 <= now {
            *entry = (0, now + Duration::from_secs(window_secs));
        }
        entry.0 = entry.0.saturating_add(1);
        Ok(window_of(Some(entry), now))
    }

    async fn peek(&self, key: &str) -> Result<Window, StoreError> {
        let map = self.lock()?;
        Ok(window_of(map.get(key), Instant::now()))
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        if let Some(entry) = self.lock()?.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.lock()?.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_and_resets() {
        let l = MemoryRateLimiter::new();
        assert_eq!(l.peek("k").await.expect("peek").count, 0);
        for i in 1..=3 {
            assert_eq!(l.hit("k", 60).await.expect("hit").count, i);
        }
        let w = l.peek("k").await.expect("peek");
        assert_eq!(w.count, 3);
        assert!(w.resets_in_secs >= 1 && w.resets_in_secs <= 60);
        l.release("k").await.expect("release");
        assert_eq!(l.peek("k").await.expect("peek").count, 2);
        l.reset("k").await.expect("reset");
        assert_eq!(l.peek("k").await.expect("peek").count, 0);
    }
}
