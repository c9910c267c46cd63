//! Properties of the steps that change a grant together with its port's session slot: a push
//! lands only on a free slot, and an open spends exactly the grant it authenticated with.
//!
//! The edges (1 ms before and at the end of a lease or a teardown) are checked through both
//! steps: the store decides in one place (a Redis script) and reports the slot's state through
//! another (`console::slot_state`), and the two must agree.

use std::sync::Arc;
use std::time::Duration;

use console::leases::Slot;
use console::{
    Grant, GrantKey, GrantTarget, Lease, OpenDenied, OpenOutcome, OsUser, PushOutcome, SlotState,
    SlotStore,
};

use crate::grants::{ED25519, RSA, TTL_MS, grant, push, serial};
use crate::{Backend, PORT, instance, now_ms};

const LEASE: u64 = 15_000;
const TEARDOWN: u64 = 30_000;

fn store(b: &impl Backend) -> Arc<dyn SlotStore> {
    b.slots(Duration::from_millis(TEARDOWN))
}

fn slot(n: u32) -> Slot {
    Slot {
        instance: instance(n),
        port: PORT,
    }
}

async fn open(
    s: &Arc<dyn SlotStore>,
    n: u32,
    request_id: &str,
    holder: &str,
    now: u64,
) -> OpenOutcome {
    s.open_with_grant(&slot(n), request_id, holder, LEASE, now)
        .await
        .unwrap()
}

fn opened(o: OpenOutcome) -> Lease {
    match o {
        OpenOutcome::Opened(lease) => lease,
        other => panic!("expected the session to open, got {other:?}"),
    }
}

fn denied(why: OpenDenied) -> OpenOutcome {
    OpenOutcome::Denied(why)
}

fn spent(g: &Grant) -> Grant {
    Grant {
        used: true,
        ..g.clone()
    }
}

/// A push stores only while the slot is free: a held or tearing-down slot refuses it (saying
/// which, to the millisecond) and keeps the previous grant.
pub async fn slots_a_push_lands_only_on_a_free_slot(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    let long = t + 10 * TTL_MS;
    let g1 = grant(ED25519, "req-1", long);
    push(&s, &serial(1), g1.clone(), t).await;

    let lease = s
        .acquire(&slot(1), "node-a/1", LEASE, t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.push_grant(&serial(1), grant(RSA, "req-2", long), t + 1)
            .await
            .unwrap(),
        PushOutcome::SlotHeld {
            holder: "node-a/1".to_owned(),
            expires_at_ms: t + LEASE
        }
    );
    assert_eq!(s.find(&serial(1), t + 1).await.unwrap(), Some(g1.clone()));

    s.release(&lease, t + 100).await.unwrap();
    let until_ms = t + 100 + TEARDOWN;
    assert_eq!(
        s.push_grant(&serial(1), grant(RSA, "req-2", long), until_ms - 1)
            .await
            .unwrap(),
        PushOutcome::TearingDown { until_ms }
    );
    assert_eq!(s.find(&serial(1), until_ms - 1).await.unwrap(), Some(g1));
    let g3 = grant(RSA, "req-3", long);
    push(&s, &serial(1), g3.clone(), until_ms).await;
    assert_eq!(s.find(&serial(1), until_ms).await.unwrap(), Some(g3));

    // A lease that lapsed (its node died) blocks until its expiry plus the teardown.
    let t2 = until_ms;
    s.acquire(&slot(1), "dead", LEASE, t2)
        .await
        .unwrap()
        .unwrap();
    let refused = |at: u64| {
        let s = Arc::clone(&s);
        async move {
            s.push_grant(&serial(1), grant(ED25519, "req-4", long), at)
                .await
                .unwrap()
        }
    };
    assert_eq!(
        refused(t2 + LEASE - 1).await,
        PushOutcome::SlotHeld {
            holder: "dead".to_owned(),
            expires_at_ms: t2 + LEASE
        }
    );
    let lapse_until = t2 + LEASE + TEARDOWN;
    assert_eq!(
        refused(t2 + LEASE).await,
        PushOutcome::TearingDown {
            until_ms: lapse_until
        }
    );
    assert_eq!(
        refused(lapse_until - 1).await,
        PushOutcome::TearingDown {
            until_ms: lapse_until
        }
    );
    assert_eq!(refused(lapse_until).await, PushOutcome::Stored);
}

/// An OS user's key opens no serial slot: its push replaces the previous one whatever the
/// instance's sessions.
pub async fn slots_os_user_pushes_have_no_slot(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    s.acquire(&slot(1), "node-a/1", LEASE, t)
        .await
        .unwrap()
        .unwrap();
    let user = GrantKey {
        instance: instance(1),
        target: GrantTarget::OsUser(OsUser::parse("ec2-user").unwrap()),
    };
    push(&s, &user, grant(ED25519, "req-1", t + TTL_MS), t).await;
    let newer = grant(RSA, "req-2", t + TTL_MS);
    push(&s, &user, newer.clone(), t + 1).await;
    assert_eq!(s.find(&user, t + 1).await.unwrap(), Some(newer));
}

/// An open takes the slot and marks its grant used, in one step; the spent grant opens nothing
/// more, whatever the slot does afterwards, and says what the slot is doing.
pub async fn slots_an_open_spends_exactly_its_grant(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    let g1 = grant(ED25519, "req-1", t + TTL_MS);
    push(&s, &serial(1), g1.clone(), t).await;
    let lease = opened(open(&s, 1, "req-1", "node-a/1", t + 1).await);
    assert_eq!(lease.slot, slot(1));
    assert_eq!(lease.holder, "node-a/1");
    assert_eq!(lease.expires_at_ms, t + 1 + LEASE);
    assert_eq!(s.find(&serial(1), t + 1).await.unwrap(), Some(spent(&g1)));
    let held = SlotState::Held {
        holder: "node-a/1".to_owned(),
        expires_at_ms: t + 1 + LEASE,
    };
    assert_eq!(s.state(&slot(1), t + 2).await.unwrap(), held);
    assert_eq!(
        open(&s, 1, "req-1", "node-b/1", t + 2).await,
        denied(OpenDenied::GrantSpent(held))
    );
    s.release(&lease, t + 3).await.unwrap();
    let until_ms = t + 3 + TEARDOWN;
    assert_eq!(
        open(&s, 1, "req-1", "node-b/1", t + 4).await,
        denied(OpenDenied::GrantSpent(SlotState::TearingDown { until_ms }))
    );
    assert_eq!(
        open(&s, 1, "req-1", "node-b/1", until_ms).await,
        denied(OpenDenied::GrantSpent(SlotState::Free))
    );
    assert_eq!(s.state(&slot(1), until_ms).await.unwrap(), SlotState::Free);
}

/// The lost push: an open that authenticated with a grant which a newer push has replaced
/// changes nothing; the newer grant stays unused and opens its own session.
pub async fn slots_an_open_after_a_newer_push_changes_nothing(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    push(&s, &serial(1), grant(ED25519, "req-1", t + TTL_MS), t).await;
    let g2 = grant(RSA, "req-2", t + 1 + TTL_MS);
    push(&s, &serial(1), g2.clone(), t + 1).await;
    assert_eq!(
        open(&s, 1, "req-1", "node-a/1", t + 2).await,
        denied(OpenDenied::GrantGone)
    );
    assert_eq!(s.find(&serial(1), t + 2).await.unwrap(), Some(g2.clone()));
    assert_eq!(s.state(&slot(1), t + 2).await.unwrap(), SlotState::Free);
    opened(open(&s, 1, "req-2", "node-b/1", t + 3).await);
    assert_eq!(s.find(&serial(1), t + 3).await.unwrap(), Some(spent(&g2)));
}

/// No grant, an expired one or a taken one: nothing opens and the slot stays free. The grant's
/// last millisecond still opens.
pub async fn slots_an_open_needs_a_live_grant(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    assert_eq!(
        open(&s, 1, "req-1", "n/1", t).await,
        denied(OpenDenied::GrantGone)
    );
    push(&s, &serial(1), grant(ED25519, "req-1", t + TTL_MS), t).await;
    assert_eq!(
        open(&s, 1, "req-1", "n/1", t + TTL_MS).await,
        denied(OpenDenied::GrantGone)
    );
    assert_eq!(
        s.state(&slot(1), t + TTL_MS).await.unwrap(),
        SlotState::Free
    );
    opened(open(&s, 1, "req-1", "n/1", t + TTL_MS - 1).await);

    push(&s, &serial(2), grant(ED25519, "req-2", t + TTL_MS), t).await;
    assert!(s.take(&serial(2), "req-2").await.unwrap());
    assert_eq!(
        open(&s, 2, "req-2", "n/2", t + 1).await,
        denied(OpenDenied::GrantGone)
    );
    assert_eq!(s.state(&slot(2), t + 1).await.unwrap(), SlotState::Free);
}

/// An unused grant on a held or tearing-down slot opens nothing and stays unused; it opens once
/// the teardown is over, to the millisecond.
pub async fn slots_an_open_on_a_busy_slot_spends_nothing(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    let g1 = grant(ED25519, "req-1", t + 10 * TTL_MS);
    push(&s, &serial(1), g1.clone(), t).await;
    let other = s
        .acquire(&slot(1), "other", LEASE, t + 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        open(&s, 1, "req-1", "n/1", t + 2).await,
        denied(OpenDenied::SlotBusy(SlotState::Held {
            holder: "other".to_owned(),
            expires_at_ms: t + 1 + LEASE
        }))
    );
    assert_eq!(s.find(&serial(1), t + 2).await.unwrap(), Some(g1.clone()));
    s.release(&other, t + 3).await.unwrap();
    let until_ms = t + 3 + TEARDOWN;
    assert_eq!(
        open(&s, 1, "req-1", "n/1", until_ms - 1).await,
        denied(OpenDenied::SlotBusy(SlotState::TearingDown { until_ms }))
    );
    assert_eq!(s.find(&serial(1), until_ms - 1).await.unwrap(), Some(g1));
    let lease = opened(open(&s, 1, "req-1", "n/1", until_ms).await);
    assert!(
        lease.token > other.token,
        "{} then {}",
        other.token,
        lease.token
    );
}

/// The lease an open takes is an ordinary lease: it fences out acquirers, renews, and its
/// release starts the teardown; its token is larger than any before on the port.
pub async fn slots_an_opened_lease_is_a_lease(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    let first = s.acquire(&slot(1), "a", LEASE, t).await.unwrap().unwrap();
    s.release(&first, t + 1).await.unwrap();
    let t2 = t + 1 + TEARDOWN;
    push(&s, &serial(1), grant(ED25519, "req-1", t2 + TTL_MS), t2).await;
    let lease = opened(open(&s, 1, "req-1", "b", t2).await);
    assert!(
        lease.token > first.token,
        "{} then {}",
        first.token,
        lease.token
    );
    assert!(
        s.acquire(&slot(1), "c", LEASE, t2 + 1)
            .await
            .unwrap()
            .is_none()
    );
    let renewed = s
        .renew(&lease, LEASE, t2 + 5_000)
        .await
        .unwrap()
        .expect("held");
    assert_eq!(renewed.expires_at_ms, t2 + 5_000 + LEASE);
    s.release(&renewed, t2 + 6_000).await.unwrap();
    assert_eq!(
        s.state(&slot(1), t2 + 6_001).await.unwrap(),
        SlotState::TearingDown {
            until_ms: t2 + 6_000 + TEARDOWN
        }
    );
    assert_eq!(s.renew(&lease, LEASE, t2 + 6_002).await.unwrap(), None);
}

/// Fifty connections authenticated with the same grant at once: one session.
pub async fn slots_one_winner_among_concurrent_opens(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    push(&s, &serial(1), grant(ED25519, "req-1", t + TTL_MS), t).await;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.open_with_grant(&slot(1), "req-1", &format!("n/{i}"), LEASE, t + 1)
                    .await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if matches!(task.await.unwrap().unwrap(), OpenOutcome::Opened(_)) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

/// A push and an open of the previous grant, at once, on many ports: on each, exactly one of
/// them wins, and the store is in the state the winner left: either the open's session holds
/// the port with its grant spent (the push refused), or the new grant is there unused on a free
/// slot (the open changed nothing).
pub async fn slots_a_push_racing_an_open_one_wins(b: &impl Backend) {
    let s = store(b);
    let t = now_ms();
    let ports = 1..=40u32;
    for n in ports.clone() {
        push(&s, &serial(n), grant(ED25519, "req-old", t + TTL_MS), t).await;
    }
    let tasks: Vec<_> = ports
        .clone()
        .map(|n| {
            let (sp, so) = (Arc::clone(&s), Arc::clone(&s));
            let push = tokio::spawn(async move {
                sp.push_grant(&serial(n), grant(RSA, "req-new", t + 1 + TTL_MS), t + 1)
                    .await
            });
            let open = tokio::spawn(async move {
                so.open_with_grant(&slot(n), "req-old", "n/1", LEASE, t + 1)
                    .await
            });
            (n, push, open)
        })
        .collect();
    for (n, push, open) in tasks {
        let pushed = push.await.unwrap().unwrap();
        let open = open.await.unwrap().unwrap();
        let found = s.find(&serial(n), t + 2).await.unwrap().unwrap();
        match (&pushed, &open) {
            (PushOutcome::SlotHeld { .. }, OpenOutcome::Opened(_)) => {
                assert_eq!((found.request_id.as_str(), found.used), ("req-old", true));
            }
            (PushOutcome::Stored, OpenOutcome::Denied(OpenDenied::GrantGone)) => {
                assert_eq!((found.request_id.as_str(), found.used), ("req-new", false));
                assert_eq!(s.state(&slot(n), t + 2).await.unwrap(), SlotState::Free);
            }
            other => panic!("port {n}: not exactly one winner: {other:?}"),
        }
    }
}
