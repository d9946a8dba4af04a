//! The cache port: namespaced string values with a TTL. In-process for the
//! embedded engine, Redis for the distributed one. A cache holds only what
//! can be recomputed; losing it loses nothing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// Each namespace has a generation that `clear` advances. A caller reads
/// the generation *before* computing a value and passes it to `set`: a value
/// computed before a `clear` is then never stored after it (it lands in a
/// dead generation), so a cleared cache cannot be refilled with stale data.
#[async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, namespace: &str, key: &str) -> Option<String>;
    async fn generation(&self, namespace: &str) -> u64;
    async fn set(&self, namespace: &str, generation: u64, key: &str, value: String, ttl: Duration);
    /// Drop every entry of a namespace (e.g. all cached feed pages).
    async fn clear(&self, namespace: &str);
}

/// Entries per namespace before the oldest are evicted.
const MAX_ENTRIES: usize = 1024;

#[derive(Default)]
struct Namespace {
    generation: u64,
    entries: HashMap<String, (String, Instant)>,
}

#[derive(Default)]
pub struct MemoryCache {
    spaces: Mutex<HashMap<String, Namespace>>,
}

impl MemoryCache {
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, namespace: &str, key: &str) -> Option<String> {
        let spaces = self.spaces.lock().unwrap_or_else(|p| p.into_inner());
        let (value, expires) = spaces.get(namespace)?.entries.get(key)?;
        (*expires > Instant::now()).then(|| value.clone())
    }

    async fn generation(&self, namespace: &str) -> u64 {
        let spaces = self.spaces.lock().unwrap_or_else(|p| p.into_inner());
        spaces.get(namespace).map_or(0, |s| s.generation)
    }

    async fn set(&self, namespace: &str, generation: u64, key: &str, value: String, ttl: Duration) {
        let mut spaces = self.spaces.lock().unwrap_or_else(|p| p.into_inner());
        let space = spaces.entry(namespace.to_string()).or_default();
        if space.generation != generation {
            return; // computed before a clear: stale
        }
        if space.entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            space.entries.retain(|_, (_, expires)| *expires > now);
            if space.entries.len() >= MAX_ENTRIES {
                space.entries.clear();
            }
        }
        space
            .entries
            .insert(key.to_string(), (value, Instant::now() + ttl));
    }

    async fn clear(&self, namespace: &str) {
        let mut spaces = self.spaces.lock().unwrap_or_else(|p| p.into_inner());
        let space = spaces.entry(namespace.to_string()).or_default();
        space.generation += 1;
        space.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_get_expire_clear() {
        let c = MemoryCache::new();
        let g = c.generation("feed").await;
        c.set("feed", g, "a", "1".into(), Duration::from_secs(60))
            .await;
        c.set("other", 0, "a", "2".into(), Duration::from_secs(60))
            .await;
        assert_eq!(c.get("feed", "a").await.as_deref(), Some("1"));
        c.clear("feed").await;
        assert_eq!(c.get("feed", "a").await, None);
        assert_eq!(c.get("other", "a").await.as_deref(), Some("2"));
        // A value computed before the clear is not stored after it.
        c.set("feed", g, "late", "stale".into(), Duration::from_secs(60))
            .await;
        assert_eq!(c.get("feed", "late").await, None);
        let g = c.generation("feed").await;
        c.set("feed", g, "b", "3".into(), Duration::from_millis(1))
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(c.get("feed", "b").await, None);
    }
}
