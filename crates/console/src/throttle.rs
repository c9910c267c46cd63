//! Per-account request budget: a token bucket, as AWS throttles API callers.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::AccountId;

/// `[throttle]` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleConfig {
    /// Tokens added per second.
    pub rate_per_second: f64,
    /// Bucket size: requests allowed in a burst.
    pub burst: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            rate_per_second: 20.0,
            burst: 40,
        }
    }
}

/// Takes one token from an account's bucket.
#[async_trait]
pub trait Throttle: Send + Sync + std::fmt::Debug {
    /// True when the request may proceed.
    async fn try_acquire(&self, account: &AccountId, now_ms: u64) -> Result<bool, StoreError>;
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated_ms: u64,
}

/// The embedded implementation.
#[derive(Debug)]
pub struct MemoryThrottle {
    config: ThrottleConfig,
    buckets: Mutex<HashMap<AccountId, Bucket>>,
}

impl MemoryThrottle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl Throttle for MemoryThrottle {
    async fn try_acquire(&self, account: &AccountId, now_ms: u64) -> Result<bool, StoreError> {
        let burst = f64::from(self.config.burst);
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = buckets.entry(account.clone()).or_insert(Bucket {
            tokens: burst,
            updated_ms: now_ms,
        });
        let elapsed_s = now_ms.saturating_sub(bucket.updated_ms) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed_s * self.config.rate_per_second).min(burst);
        bucket.updated_ms = bucket.updated_ms.max(now_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(true)
        } else {
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn burst_then_refill() {
        let t = MemoryThrottle::new(ThrottleConfig {
            rate_per_second: 2.0,
            burst: 3,
        });
        let a = AccountId::parse("000000000000").unwrap();
        let b = AccountId::parse("111122223333").unwrap();
        for _ in 0..3 {
            assert!(t.try_acquire(&a, 0).await.unwrap());
        }
        assert!(!t.try_acquire(&a, 0).await.unwrap());
        // Other accounts have their own bucket.
        assert!(t.try_acquire(&b, 0).await.unwrap());
        // 2 tokens per second: one token after 500 ms.
        assert!(!t.try_acquire(&a, 499).await.unwrap());
        assert!(t.try_acquire(&a, 999).await.unwrap());
        assert!(!t.try_acquire(&a, 999).await.unwrap());
    }
}
