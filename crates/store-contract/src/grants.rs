//! Grant store properties: push/find, expiry at the window edge, replacement, take.

use std::sync::Arc;
use std::time::Duration;

use console::{Grant, GrantKey, GrantTarget, OsUser, PushOutcome, SlotStore, SshPublicKey};

use crate::{Backend, PORT, instance, now_ms};

pub(crate) const ED25519: &str = include_str!("../../../testdata/keys/ed25519.pub");
pub(crate) const RSA: &str = include_str!("../../../testdata/keys/rsa2048.pub");
pub(crate) const TTL_MS: u64 = 60_000;

pub(crate) fn grant(key: &str, request_id: &str, expires_at_ms: u64) -> Grant {
    Grant {
        key: SshPublicKey::parse(key).unwrap(),
        principal_arn: "arn:aws:iam::111122223333:user/alice".to_owned(),
        request_id: request_id.to_owned(),
        expires_at_ms,
        used: false,
    }
}

pub(crate) fn serial(n: u32) -> GrantKey {
    GrantKey::serial(instance(n), PORT)
}

fn store(b: &impl Backend) -> Arc<dyn SlotStore> {
    b.slots(Duration::from_secs(30))
}

/// Pushes on a free slot, which must store.
pub(crate) async fn push(s: &Arc<dyn SlotStore>, key: &GrantKey, g: Grant, now: u64) {
    assert_eq!(
        s.push_grant(key, g, now).await.unwrap(),
        PushOutcome::Stored
    );
}

/// A stored grant is found whole (key, principal, request id, expiry, unused).
pub async fn grants_push_then_find(b: &impl Backend) {
    let s = store(b);
    let now = now_ms();
    let g = grant(ED25519, "req-1", now + TTL_MS);
    push(&s, &serial(1), g.clone(), now).await;
    assert_eq!(s.find(&serial(1), now).await.unwrap(), Some(g.clone()));
    assert_eq!(s.find(&serial(1), now + 1).await.unwrap(), Some(g));
    assert_eq!(s.find(&serial(2), now).await.unwrap(), None);
}

/// A grant opens nothing from its expiry on: live 1 ms before, gone at the instant.
pub async fn grants_expire_at_the_window_edge(b: &impl Backend) {
    let s = store(b);
    let now = now_ms();
    let g = grant(ED25519, "req-1", now + TTL_MS);
    push(&s, &serial(1), g.clone(), now).await;
    assert_eq!(s.find(&serial(1), now + TTL_MS - 1).await.unwrap(), Some(g));
    assert_eq!(s.find(&serial(1), now + TTL_MS).await.unwrap(), None);
    assert_eq!(s.find(&serial(1), now + TTL_MS + 1).await.unwrap(), None);
    // Purging is allowed to do nothing (native expiry) but never removes a live grant.
    let live = grant(RSA, "req-2", now + 2 * TTL_MS);
    push(&s, &serial(2), live.clone(), now).await;
    s.purge_expired(now + TTL_MS).await.unwrap();
    assert_eq!(s.find(&serial(2), now + TTL_MS).await.unwrap(), Some(live));
}

/// A new push for the same instance port replaces the previous key (AWS keeps one).
pub async fn grants_a_new_push_replaces_the_old(b: &impl Backend) {
    let s = store(b);
    let now = now_ms();
    push(&s, &serial(1), grant(ED25519, "req-1", now + TTL_MS), now).await;
    let newer = grant(RSA, "req-2", now + 1000 + TTL_MS);
    push(&s, &serial(1), newer.clone(), now + 1000).await;
    assert_eq!(s.find(&serial(1), now + 1000).await.unwrap(), Some(newer));
}

/// `take` removes a grant only for the request that pushed it: a newer push is left alone.
pub async fn grants_take_needs_the_request_id(b: &impl Backend) {
    let s = store(b);
    let now = now_ms();
    let g = grant(ED25519, "req-1", now + TTL_MS);
    push(&s, &serial(1), g.clone(), now).await;
    assert!(!s.take(&serial(1), "req-0").await.unwrap());
    assert_eq!(s.find(&serial(1), now).await.unwrap(), Some(g));
    assert!(s.take(&serial(1), "req-1").await.unwrap());
    assert_eq!(s.find(&serial(1), now).await.unwrap(), None);
    assert!(!s.take(&serial(1), "req-1").await.unwrap());
    assert!(!s.take(&serial(9), "req-1").await.unwrap());
}

/// Grants for other instances and for OS users live beside each other.
pub async fn grants_are_per_instance_and_target(b: &impl Backend) {
    let s = store(b);
    let now = now_ms();
    let user = GrantKey {
        instance: instance(1),
        target: GrantTarget::OsUser(OsUser::parse("ec2-user").unwrap()),
    };
    let a = grant(ED25519, "req-a", now + TTL_MS);
    let u = grant(RSA, "req-u", now + TTL_MS);
    let other = grant(RSA, "req-o", now + TTL_MS);
    push(&s, &serial(1), a.clone(), now).await;
    push(&s, &user, u.clone(), now).await;
    push(&s, &serial(2), other.clone(), now).await;
    assert_eq!(s.find(&serial(1), now).await.unwrap(), Some(a));
    assert_eq!(s.find(&user, now).await.unwrap(), Some(u));
    assert_eq!(s.find(&serial(2), now).await.unwrap(), Some(other));
}

/// A spectator's grant is per key, beside the port's own grant, and is stored while a session
/// holds the port (spectators take no slot); taking it spends only that key's.
pub async fn spectator_grants_are_per_key_and_ignore_the_slot(b: &impl Backend) {
    let s = store(b);
    let now = now_ms();
    let slot = serial(1).slot().unwrap();
    s.acquire(&slot, "node-a/1", 15_000, now)
        .await
        .unwrap()
        .unwrap();
    let ed = SshPublicKey::parse(ED25519).unwrap();
    let rsa = SshPublicKey::parse(RSA).unwrap();
    let watch_ed = GrantKey::spectator(instance(1), PORT, ed.fingerprint());
    let watch_rsa = GrantKey::spectator(instance(1), PORT, rsa.fingerprint());
    let a = grant(ED25519, "req-a", now + TTL_MS);
    let b2 = grant(RSA, "req-b", now + TTL_MS);
    push(&s, &watch_ed, a.clone(), now).await;
    push(&s, &watch_rsa, b2.clone(), now).await;
    assert_eq!(s.find(&watch_ed, now).await.unwrap(), Some(a));
    assert_eq!(s.find(&watch_rsa, now).await.unwrap(), Some(b2.clone()));
    assert_eq!(s.find(&serial(1), now).await.unwrap(), None);
    assert!(s.take(&watch_ed, "req-a").await.unwrap());
    assert_eq!(s.find(&watch_ed, now).await.unwrap(), None);
    assert_eq!(s.find(&watch_rsa, now).await.unwrap(), Some(b2));
    assert_eq!(s.find(&watch_rsa, now + TTL_MS).await.unwrap(), None);
}
