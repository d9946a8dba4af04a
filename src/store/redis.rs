//! Redis adapters of the distributed engine: sessions, rate limits and the
//! cache, under a key prefix from config. Redis holds only what can expire
//! or be rebuilt: losing it signs users out (a clear 401) and empties caches,
//! but loses no user data.
//!
//! Keys (`P` = prefix):
//! - `P s:<token hash>` = `user:created:last_seen:expires`, with a TTL at the expiry
//! - `P us:<user>` = set of the user's session hashes (for "revoke all")
//! - `P rl:<key>` = counter with the window as TTL
//! - `P c:<ns>:gen` = generation of a cache namespace; entries live at
//!   `P c:<ns>:<gen>:<key>` with their TTL, so clearing is one INCR
//! - `P on:<user>` = hash node -> expiry (epoch ms) of that node's claim
//!   that the user is connected; nodes refresh their claims every
//!   [`PRESENCE_REFRESH`], so a dead node's claims lapse after
//!   [`PRESENCE_TTL`]. The key itself expires when nobody refreshes it.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;
use redis::AsyncCommands as _;

use super::cache::Cache;
use super::{Presence, RateLimiter, SessionRecord, SessionStore, StoreError, Window};

#[derive(Clone)]
pub struct RedisStore {
    /// Reconnects by itself after Redis restarts or the link drops.
    conn: ConnectionManager,
    prefix: String,
}

fn err(e: redis::RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        StoreError::Unavailable(format!("redis: {e}"))
    } else {
        StoreError::Other(format!("redis: {e}"))
    }
}

impl RedisStore {
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let client = redis::Client::open(url).map_err(err)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_secs(2))
            .set_response_timeout(Duration::from_secs(2))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(err)?;
        Ok(RedisStore {
            conn,
            prefix: prefix.to_string(),
        })
    }

    fn key(&self, parts: &str) -> String {
        format!("{}{parts}", self.prefix)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut c).await.map_err(err)?;
        Ok(())
    }
}

fn ttl_ms(expires_at: i64, now: i64) -> u64 {
    u64::try_from(expires_at - now).unwrap_or(0).max(1)
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create_session(
        &self,
        token_hash: &str,
        user_id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let value = format!("{user_id}:{now}:{now}:{expires_at}");
        let ttl = ttl_ms(expires_at, now);
        let user_key = self.key(&format!("us:{user_id}"));
        redis::pipe()
            .cmd("SET")
            .arg(self.key(&format!("s:{token_hash}")))
            .arg(value)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .cmd("SADD")
            .arg(&user_key)
            .arg(token_hash)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&user_key)
            .arg(ttl)
            .arg("GT")
            .ignore()
            .query_async::<()>(&mut c)
            .await
            .map_err(err)?;
        // PEXPIRE GT does not set a TTL on a key without one (a new set).
        let _: () = redis::cmd("PEXPIRE")
            .arg(&user_key)
            .arg(ttl)
            .arg("NX")
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn find_session(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let key = self.key(&format!("s:{token_hash}"));
        let mut c = self.conn.clone();
        let value: Option<String> = match c.get(&key).await {
            Ok(v) => v,
            // After Redis restarted, the first command on the old
            // connection fails while the manager reconnects: try once more
            // so the caller gets the real answer (no session: 401).
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let mut c = self.conn.clone();
                c.get(&key).await.map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
        let Some(value) = value else { return Ok(None) };
        let parts: Vec<i64> = value.split(':').filter_map(|p| p.parse().ok()).collect();
        let [user_id, created_at, last_seen_at, expires_at] = parts[..] else {
            return Err(StoreError::Other(format!(
                "corrupt session record {value:?}"
            )));
        };
        Ok((expires_at > now).then_some(SessionRecord {
            user_id,
            created_at,
            last_seen_at,
            expires_at,
        }))
    }

    async fn touch_session(
        &self,
        token_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let Some(s) = self.find_session(token_hash, now).await? else {
            return Ok(());
        };
        let mut c = self.conn.clone();
        let value = format!("{}:{}:{now}:{expires_at}", s.user_id, s.created_at);
        // XX: never resurrect a session deleted meanwhile.
        let _: Option<String> = redis::cmd("SET")
            .arg(self.key(&format!("s:{token_hash}")))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms(expires_at, now))
            .arg("XX")
            .query_async(&mut c)
            .await
            .map_err(err)?;
        let _: () = redis::cmd("PEXPIRE")
            .arg(self.key(&format!("us:{}", s.user_id)))
            .arg(ttl_ms(expires_at, now))
            .arg("GT")
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let key = self.key(&format!("s:{token_hash}"));
        let value: Option<String> = c.get(&key).await.map_err(err)?;
        let _: () = c.del(&key).await.map_err(err)?;
        if let Some(user) = value.as_deref().and_then(|v| v.split(':').next()) {
            let _: () = c
                .srem(self.key(&format!("us:{user}")), token_hash)
                .await
                .map_err(err)?;
        }
        Ok(())
    }

    async fn delete_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut c = self.conn.clone();
        let user_key = self.key(&format!("us:{user_id}"));
        let hashes: Vec<String> = c.smembers(&user_key).await.map_err(err)?;
        let mut removed = 0;
        for h in hashes.iter().filter(|h| Some(h.as_str()) != keep) {
            let n: u64 = c.del(self.key(&format!("s:{h}"))).await.map_err(err)?;
            removed += n;
            let _: () = c.srem(&user_key, h).await.map_err(err)?;
        }
        Ok(removed)
    }
}

#[async_trait]
impl RateLimiter for RedisStore {
    /// INCR, the expiry of a new window and the remaining time in one
    /// script: concurrent hits from any node count exactly, and a counter
    /// can never be left without an expiry.
    async fn hit(&self, key: &str, window_secs: u64) -> Result<Window, StoreError> {
        const HIT: &str = "local c = redis.call('INCR', KEYS[1]) \
            if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
            return {c, redis.call('PTTL', KEYS[1])}";
        let mut c = self.conn.clone();
        let k = self.key(&format!("rl:{key}"));
        let window_ms = window_secs.saturating_mul(1000);
        let (count, ttl): (u32, i64) = redis::cmd("EVAL")
            .arg(HIT)
            .arg(1)
            .arg(&k)
            .arg(window_ms)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(Window {
            count,
            resets_in_secs: (u64::try_from(ttl).unwrap_or(0) / 1000).max(1),
        })
    }

    async fn peek(&self, key: &str) -> Result<Window, StoreError> {
        let mut c = self.conn.clone();
        let k = self.key(&format!("rl:{key}"));
        let count: Option<u32> = c.get(&k).await.map_err(err)?;
        let ttl: i64 = c.pttl(&k).await.map_err(err)?;
        Ok(match count {
            Some(count) if ttl > 0 => Window {
                count,
                resets_in_secs: (u64::try_from(ttl).unwrap_or(0) / 1000).max(1),
            },
            _ => Window {
                count: 0,
                resets_in_secs: 0,
            },
        })
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        const RELEASE: &str = "local c = tonumber(redis.call('GET', KEYS[1]) or '0') \
            if c > 0 then redis.call('DECR', KEYS[1]) end return 0";
        let mut c = self.conn.clone();
        let _: i64 = redis::cmd("EVAL")
            .arg(RELEASE)
            .arg(1)
            .arg(self.key(&format!("rl:{key}")))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        let mut c = self.conn.clone();
        let _: () = c.del(self.key(&format!("rl:{key}"))).await.map_err(err)?;
        Ok(())
    }
}

#[async_trait]
impl Cache for RedisStore {
    async fn get(&self, namespace: &str, key: &str) -> Option<String> {
        let mut c = self.conn.clone();
        let generation: Option<u64> = c.get(self.key(&format!("c:{namespace}:gen"))).await.ok()?;
        c.get(self.key(&format!("c:{namespace}:{}:{key}", generation.unwrap_or(0))))
            .await
            .ok()?
    }

    async fn generation(&self, namespace: &str) -> u64 {
        let mut c = self.conn.clone();
        c.get::<_, Option<u64>>(self.key(&format!("c:{namespace}:gen")))
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    async fn set(&self, namespace: &str, generation: u64, key: &str, value: String, ttl: Duration) {
        // Under the generation read before computing: if a clear came in
        // between, this lands in a dead generation and is never read.
        let mut c = self.conn.clone();
        let k = self.key(&format!("c:{namespace}:{generation}:{key}"));
        let _: Result<(), _> = c.pset_ex(k, value, ttl.as_millis() as u64).await;
    }

    async fn get_value(&self, namespace: &str, key: &str) -> Option<String> {
        let mut c = self.conn.clone();
        c.get(self.key(&format!("c:{namespace}:v:{key}")))
            .await
            .ok()?
    }

    async fn put_value(&self, namespace: &str, key: &str, value: String, ttl: Duration) {
        let mut c = self.conn.clone();
        let k = self.key(&format!("c:{namespace}:v:{key}"));
        let _: Result<(), _> = c.pset_ex(k, value, ttl.as_millis() as u64).await;
    }

    async fn put_value_if_absent(&self, namespace: &str, key: &str, value: String, ttl: Duration) {
        let mut c = self.conn.clone();
        let k = self.key(&format!("c:{namespace}:v:{key}"));
        let _: Result<Option<String>, _> = redis::cmd("SET")
            .arg(k)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async(&mut c)
            .await;
    }

    async fn clear(&self, namespace: &str) {
        let mut c = self.conn.clone();
        let _: Result<u64, _> = c.incr(self.key(&format!("c:{namespace}:gen")), 1).await;
    }
}

/// How long a node's "user is connected here" claim lasts unrefreshed.
pub const PRESENCE_TTL: Duration = Duration::from_secs(60);
/// How often nodes refresh their claims.
pub const PRESENCE_REFRESH: Duration = Duration::from_secs(20);

#[async_trait]
impl Presence for RedisStore {
    async fn set_online(&self, node: &str, users: &[i64]) -> Result<(), StoreError> {
        if users.is_empty() {
            return Ok(());
        }
        let until = crate::domain::now_ms() + PRESENCE_TTL.as_millis() as i64;
        let mut pipe = redis::pipe();
        for u in users {
            let key = self.key(&format!("on:{u}"));
            pipe.hset(&key, node, until)
                .ignore()
                .expire(&key, 2 * PRESENCE_TTL.as_secs() as i64)
                .ignore();
        }
        let mut c = self.conn.clone();
        pipe.query_async::<()>(&mut c).await.map_err(err)
    }

    async fn set_offline(&self, node: &str, user: i64) -> Result<bool, StoreError> {
        let key = self.key(&format!("on:{user}"));
        let mut c = self.conn.clone();
        let (_, claims): (i64, Vec<(String, i64)>) = redis::pipe()
            .hdel(&key, node)
            .hgetall(&key)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        let now = crate::domain::now_ms();
        Ok(claims.iter().any(|(_, until)| *until > now))
    }

    async fn online(&self, users: &[i64]) -> Result<std::collections::HashSet<i64>, StoreError> {
        if users.is_empty() {
            return Ok(Default::default());
        }
        let mut pipe = redis::pipe();
        for u in users {
            pipe.hgetall(self.key(&format!("on:{u}")));
        }
        let mut c = self.conn.clone();
        let claims: Vec<Vec<(String, i64)>> = pipe.query_async(&mut c).await.map_err(err)?;
        let now = crate::domain::now_ms();
        Ok(users
            .iter()
            .zip(claims)
            .filter(|(_, c)| c.iter().any(|(_, until)| *until > now))
            .map(|(u, _)| *u)
            .collect())
    }
}
