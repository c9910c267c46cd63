//! Throttle properties: burst, refill, one bucket per account.

use console::{AccountId, ThrottleConfig};

use crate::{Backend, now_ms};

fn account(n: u32) -> AccountId {
    AccountId::parse(&format!("{:012}", 900_000_000_000u64 + u64::from(n))).unwrap()
}

const CONFIG: ThrottleConfig = ThrottleConfig {
    rate_per_second: 2.0,
    burst: 3,
};

/// A full bucket allows `burst` requests at once, then refuses.
pub async fn throttle_burst_then_refuse(b: &impl Backend) {
    let t = b.throttle(CONFIG);
    let now = now_ms();
    for i in 0..3 {
        assert!(
            t.try_acquire(&account(1), now).await.unwrap(),
            "request {i}"
        );
    }
    assert!(!t.try_acquire(&account(1), now).await.unwrap());
    assert!(!t.try_acquire(&account(1), now).await.unwrap());
}

/// Tokens come back at `rate_per_second`, up to the burst.
pub async fn throttle_refills_at_the_rate(b: &impl Backend) {
    let t = b.throttle(CONFIG);
    let now = now_ms();
    for _ in 0..3 {
        assert!(t.try_acquire(&account(1), now).await.unwrap());
    }
    // 2 tokens per second: one after 500 ms, not before.
    assert!(!t.try_acquire(&account(1), now + 499).await.unwrap());
    assert!(t.try_acquire(&account(1), now + 500).await.unwrap());
    assert!(!t.try_acquire(&account(1), now + 500).await.unwrap());
    // A long pause refills no more than the burst.
    let later = now + 60_000;
    for _ in 0..3 {
        assert!(t.try_acquire(&account(1), later).await.unwrap());
    }
    assert!(!t.try_acquire(&account(1), later).await.unwrap());
}

/// Each account has its own bucket.
pub async fn throttle_buckets_are_per_account(b: &impl Backend) {
    let t = b.throttle(CONFIG);
    let now = now_ms();
    for _ in 0..3 {
        assert!(t.try_acquire(&account(1), now).await.unwrap());
    }
    assert!(!t.try_acquire(&account(1), now).await.unwrap());
    assert!(t.try_acquire(&account(2), now).await.unwrap());
}
