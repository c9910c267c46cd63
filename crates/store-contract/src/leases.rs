//! Session lease properties: exclusivity, fencing, teardown, lapse, renewal.

use std::sync::Arc;
use std::time::Duration;

use console::leases::Slot;
use console::{Lease, SessionLeases, SlotState};

use crate::{Backend, PORT, instance, now_ms};

const TTL: u64 = 15_000;
const TEARDOWN: u64 = 30_000;

fn slot(n: u32) -> Slot {
    Slot {
        instance: instance(n),
        port: PORT,
    }
}

fn leases(b: &impl Backend) -> Arc<dyn SessionLeases> {
    b.slots(Duration::from_millis(TEARDOWN))
}

async fn acquire(l: &Arc<dyn SessionLeases>, n: u32, holder: &str, now: u64) -> Option<Lease> {
    l.acquire(&slot(n), holder, TTL, now).await.unwrap()
}

async fn state(l: &Arc<dyn SessionLeases>, n: u32, now: u64) -> SlotState {
    l.state(&slot(n), now).await.unwrap()
}

/// A free slot goes to the first acquirer; everyone else is refused while it is held.
pub async fn leases_one_holder_at_a_time(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    assert_eq!(state(&l, 1, t).await, SlotState::Free);
    let a = acquire(&l, 1, "node-a/1", t).await.expect("free slot");
    assert_eq!(a.holder, "node-a/1");
    assert_eq!(a.expires_at_ms, t + TTL);
    assert!(acquire(&l, 1, "node-b/1", t + 1).await.is_none());
    assert_eq!(
        state(&l, 1, t + 2).await,
        SlotState::Held {
            holder: "node-a/1".to_owned(),
            expires_at_ms: t + TTL
        }
    );
}

/// Fifty acquirers at once, one winner.
pub async fn leases_one_winner_among_concurrent_acquirers(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let l = Arc::clone(&l);
            tokio::spawn(async move { l.acquire(&slot(1), &format!("n/{i}"), TTL, t).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap().is_some() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

/// Every acquisition of a slot gets a larger token than the one before.
pub async fn leases_fencing_tokens_increase(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let a = acquire(&l, 1, "a", t).await.unwrap();
    l.release(&a, t + 1).await.unwrap();
    let b2 = acquire(&l, 1, "b", t + 1 + TEARDOWN).await.unwrap();
    assert!(b2.token > a.token, "{} then {}", a.token, b2.token);
    // A lapse (no release) hands out a larger token too.
    let c = acquire(&l, 1, "c", b2.expires_at_ms + TEARDOWN)
        .await
        .unwrap();
    assert!(c.token > b2.token, "{} then {}", b2.token, c.token);
}

/// Once another holder has the slot, the old lease can neither renew nor release it.
pub async fn leases_a_stale_holder_cannot_renew_or_release(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let a = acquire(&l, 1, "node-a/1", t).await.unwrap();
    let later = t + TTL + TEARDOWN;
    let b2 = acquire(&l, 1, "node-b/1", later)
        .await
        .expect("lapsed slot");
    assert_eq!(l.renew(&a, TTL, later + 1).await.unwrap(), None);
    l.release(&a, later + 2).await.unwrap();
    assert_eq!(
        state(&l, 1, later + 3).await,
        SlotState::Held {
            holder: "node-b/1".to_owned(),
            expires_at_ms: later + TTL
        }
    );
    assert!(l.renew(&b2, TTL, later + 5).await.unwrap().is_some());
}

/// A release blocks the slot for exactly the teardown time.
pub async fn leases_release_starts_the_teardown(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let a = acquire(&l, 1, "a", t).await.unwrap();
    l.release(&a, t + 5_000).await.unwrap();
    let until_ms = t + 5_000 + TEARDOWN;
    assert_eq!(
        state(&l, 1, t + 5_001).await,
        SlotState::TearingDown { until_ms }
    );
    assert!(acquire(&l, 1, "b", until_ms - 1).await.is_none());
    assert_eq!(state(&l, 1, until_ms).await, SlotState::Free);
    assert!(acquire(&l, 1, "b", until_ms).await.is_some());
}

/// A lease ended on request frees its slot at once, without a teardown block; a stale holder's
/// immediate release changes nothing.
pub async fn leases_release_now_frees_at_once(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let a = acquire(&l, 1, "a", t).await.unwrap();
    l.release_now(&a, t + 5).await.unwrap();
    assert_eq!(state(&l, 1, t + 6).await, SlotState::Free);
    assert_eq!(l.renew(&a, TTL, t + 7).await.unwrap(), None);
    let b2 = acquire(&l, 1, "b", t + 8).await.expect("freed at once");
    assert!(b2.token > a.token);
    // The first holder's lease is over: its release cannot free the new holder's slot.
    l.release_now(&a, t + 9).await.unwrap();
    assert!(matches!(state(&l, 1, t + 10).await, SlotState::Held { .. }));
}

/// A released lease is over: renewing it fails, also after the teardown.
pub async fn leases_a_released_lease_cannot_be_renewed(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let a = acquire(&l, 1, "a", t).await.unwrap();
    l.release(&a, t + 1).await.unwrap();
    assert_eq!(l.renew(&a, TTL, t + 2).await.unwrap(), None);
    assert_eq!(l.renew(&a, TTL, t + 2 + TEARDOWN).await.unwrap(), None);
    // Releasing twice changes nothing.
    l.release(&a, t + 3).await.unwrap();
    assert_eq!(
        state(&l, 1, t + 4).await,
        SlotState::TearingDown {
            until_ms: t + 1 + TEARDOWN
        }
    );
}

/// A holder that dies (no renewal, no release): the slot is held until the lease runs out,
/// then tears down, then is free.
pub async fn leases_an_unrenewed_lease_tears_down_then_frees(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    acquire(&l, 1, "dead", t).await.unwrap();
    assert!(matches!(
        state(&l, 1, t + TTL - 1).await,
        SlotState::Held { .. }
    ));
    assert_eq!(
        state(&l, 1, t + TTL).await,
        SlotState::TearingDown {
            until_ms: t + TTL + TEARDOWN
        }
    );
    assert!(acquire(&l, 1, "b", t + TTL + TEARDOWN - 1).await.is_none());
    assert_eq!(state(&l, 1, t + TTL + TEARDOWN).await, SlotState::Free);
    assert!(acquire(&l, 1, "b", t + TTL + TEARDOWN).await.is_some());
}

/// A renewal that arrives after the lease ran out, while nobody has taken the slot, keeps it:
/// a slow store round trip must not cost a live session its console.
pub async fn leases_a_slow_renewal_keeps_an_untaken_lease(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let a = acquire(&l, 1, "a", t).await.unwrap();
    let late = t + TTL + 5_000;
    let renewed = l
        .renew(&a, TTL, late)
        .await
        .unwrap()
        .expect("untaken lease");
    assert_eq!(renewed.token, a.token);
    assert_eq!(renewed.expires_at_ms, late + TTL);
    assert!(matches!(
        state(&l, 1, late + 1).await,
        SlotState::Held { .. }
    ));
    assert!(acquire(&l, 1, "b", late + 1).await.is_none());
}

/// Renewing moves the expiry to now + ttl, again and again.
pub async fn leases_renewal_extends_the_lease(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let mut lease = acquire(&l, 1, "a", t).await.unwrap();
    for i in 1..=6 {
        let now = t + i * TTL / 3;
        lease = l.renew(&lease, TTL, now).await.unwrap().expect("held");
        assert_eq!(lease.expires_at_ms, now + TTL);
    }
    let end = t + 6 * TTL / 3;
    assert!(matches!(
        state(&l, 1, end + TTL - 1).await,
        SlotState::Held { .. }
    ));
    l.release(&lease, end + 1).await.unwrap();
    assert!(matches!(
        state(&l, 1, end + 2).await,
        SlotState::TearingDown { .. }
    ));
}

/// Slots of different instances do not affect each other.
pub async fn leases_slots_are_independent(b: &impl Backend) {
    let l = leases(b);
    let t = now_ms();
    let a = acquire(&l, 1, "a", t).await.unwrap();
    assert!(acquire(&l, 2, "b", t).await.is_some());
    l.release(&a, t + 1).await.unwrap();
    assert!(matches!(state(&l, 2, t + 2).await, SlotState::Held { .. }));
    assert!(matches!(
        state(&l, 1, t + 2).await,
        SlotState::TearingDown { .. }
    ));
}
