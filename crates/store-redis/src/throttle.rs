//! [`Throttle`] on Redis: one token bucket per account, updated by one script.

use async_trait::async_trait;
use console::{AccountId, StoreError, Throttle, ThrottleConfig};

use crate::RedisStore;

/// Per-account token buckets shared by every node: an account's budget is the same whichever
/// node its requests reach.
#[derive(Debug, Clone)]
pub struct RedisThrottle {
    store: RedisStore,
    config: ThrottleConfig,
    /// Refill per millisecond, as the script takes it.
    rate_per_ms: String,
    /// How long an untouched bucket is kept: the time it takes to refill completely, after
    /// which a fresh (full) bucket is the same thing.
    lifetime_ms: u64,
}

impl RedisThrottle {
    pub(crate) fn new(store: RedisStore, config: ThrottleConfig) -> Self {
        let refill_s = f64::from(config.burst) / config.rate_per_second.max(1e-9);
        // Whole milliseconds, at least a second, at most a week.
        let lifetime_ms = (refill_s * 1000.0).clamp(0.0, 604_800_000.0) as u64 + 1000;
        Self {
            store,
            config,
            rate_per_ms: format!("{}", config.rate_per_second / 1000.0),
            lifetime_ms,
        }
    }
}

#[async_trait]
impl Throttle for RedisThrottle {
    async fn try_acquire(&self, account: &AccountId, now_ms: u64) -> Result<bool, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.bucket(account);
        let script = &self.store.scripts.bucket;
        let ok: i64 = self
            .store
            .bounded("throttle", async move {
                script
                    .key(&key)
                    .arg(now_ms)
                    .arg(&self.rate_per_ms)
                    .arg(self.config.burst)
                    .arg(self.lifetime_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(ok == 1)
    }
}
