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
    /// Single values kept current by their writers, beside the generation
    /// scheme: a writer `put`s the new value right after its change
    /// commits; a reader that missed fills in with `put_if_absent`, so a
    /// value it read before a change can never overwrite the writer's.
    async fn get_value(&self, namespace: &str, key: &str) -> Option<String>;
    async fn put_value(&self, namespace: &str, key: &str, value: String, ttl: Duration);
    async fn put_value_if_absent(&self, namespace: &str, key: &str, value: String, ttl: Duration);
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
    /// `put_value` entries, by `namespace\0key`.
    values: Mutex<HashMap<String, (String, Instant)>>,
}

/// How many single values the in-process cache holds before it drops the
/// expired ones (and, if still full, all: they are recomputed on a miss).
const MAX_VALUES: usize = 100_000;

impl MemoryCache {
    pub fn new() -> MemoryCache {
        MemoryCache::default()
    }

    fn put(&self, namespace: &str, key: &str, value: String, ttl: Duration, replace: bool) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if values.len() >= MAX_VALUES {
            values.retain(|_, (_, expires)| *expires > now);
            if values.len() >= MAX_VALUES {
                values.clear();
            }
        }
        let k = format!("{namespace}\0{key}");
        let live = values.get(&k).is_some_and(|(_, expires)| *expires > now);
        if replace || !live {
            values.insert(k, (value, now + ttl));
        }
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

    async fn get_value(&self, namespace: &str, key: &str) -> Option<String> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let (value, expires) = values.get(&format!("{namespace}\0{key}"))?;
        (*expires > Instant::now()).then(|| value.clone())
    }

    async fn put_value(&self, namespace: &str, key: &str, value: String, ttl: Duration) {
        self.put(namespace, key, value, ttl, true);
    }

    async fn put_value_if_absent(&self, namespace: &str, key: &str, value: String, ttl: Duration) {
        self.put(namespace, key, value, ttl, false);
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
        // Single values: a reader's fill never replaces a writer's value.
        c.put_value("order", "A", "paid".into(), Duration::from_secs(60))
            .await;
        c.put_value_if_absent("order", "A", "pending".into(), Duration::from_secs(60))
            .await;
        assert_eq!(c.get_value("order", "A").await.as_deref(), Some("paid"));
        c.put_value_if_absent("order", "B", "pending".into(), Duration::from_secs(60))
            .await;
        c.put_value("order", "B", "expired".into(), Duration::from_secs(60))
            .await;
        assert_eq!(c.get_value("order", "B").await.as_deref(), Some("expired"));
        let g = c.generation("feed").await;
        c.set("feed", g, "b", "3".into(), Duration::from_millis(1))
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(c.get("feed", "b").await, None);
    }
}
