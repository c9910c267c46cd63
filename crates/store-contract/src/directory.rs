//! Session directory properties: an entry lives as long as its lease, only its lease's token
//! moves or removes it, and an end request reaches the holder, on another node too, both as a
//! notice and at the next refresh.

use std::sync::Arc;
use std::time::Duration;

use console::leases::Slot;
use console::{EndRequest, SessionDirectory, SessionEntry};

use crate::{Backend, PORT, instance, now_ms};

const TTL: u64 = 15_000;

fn slot(n: u32) -> Slot {
    Slot {
        instance: instance(n),
        port: PORT,
    }
}

fn entry(n: u32, token: u64, now: u64) -> SessionEntry {
    SessionEntry {
        slot: slot(n),
        token,
        principal_arn: "arn:aws:iam::111122223333:user/alice".to_owned(),
        source_address: Some("192.0.2.7:50022".to_owned()),
        started_ms: now,
        node: format!("node-{n}"),
        spectators: 0,
        expires_at_ms: now + TTL,
    }
}

async fn listed(d: &Arc<dyn SessionDirectory>, now: u64) -> Vec<SessionEntry> {
    let mut all = d.list(now).await.unwrap();
    all.sort_by(|a, b| a.slot.instance.cmp(&b.slot.instance));
    all
}

/// Published entries are listed whole until their expiry, and a refresh moves the expiry.
pub async fn directory_entries_live_as_long_as_their_lease(b: &impl Backend) {
    let d = b.directory();
    let t = now_ms();
    assert!(listed(&d, t).await.is_empty());
    d.publish(&entry(1, 7, t)).await.unwrap();
    d.publish(&entry(2, 8, t)).await.unwrap();
    assert_eq!(
        listed(&d, t + 1).await,
        vec![entry(1, 7, t), entry(2, 8, t)]
    );
    // The first is renewed, the second's holder stopped: it lapses at its lease's expiry.
    assert_eq!(d.refresh(&slot(1), 7, t + 2 * TTL).await.unwrap(), None);
    let at_expiry = listed(&d, t + TTL).await;
    assert_eq!(at_expiry.len(), 1);
    assert_eq!(at_expiry[0].slot, slot(1));
    assert_eq!(at_expiry[0].expires_at_ms, t + 2 * TTL);
    assert!(listed(&d, t + 2 * TTL).await.is_empty());
}

/// Only the entry's own lease token refreshes or removes it: a stale holder cannot touch a
/// newer session's entry.
pub async fn directory_refresh_and_remove_need_the_token(b: &impl Backend) {
    let d = b.directory();
    let t = now_ms();
    d.publish(&entry(3, 20, t)).await.unwrap();
    assert_eq!(d.refresh(&slot(3), 19, t + 5 * TTL).await.unwrap(), None);
    d.remove(&slot(3), 19).await.unwrap();
    let kept = listed(&d, t + 1).await;
    assert_eq!(kept, vec![entry(3, 20, t)]);
    d.remove(&slot(3), 20).await.unwrap();
    assert!(listed(&d, t + 1).await.is_empty());
    // Refreshing a removed entry does not bring it back.
    assert_eq!(d.refresh(&slot(3), 20, t + 5 * TTL).await.unwrap(), None);
    assert!(listed(&d, t + 2).await.is_empty());
}

/// An end request names the live session's token, reaches a holder on another node as a
/// notice, and waits in the entry for the holder's next refresh. A port without a live
/// session (never opened, or lapsed) has nothing to end.
pub async fn directory_end_requests_reach_the_holder(b: &impl Backend) {
    let holder_node = b.directory();
    let api_node = b.directory();
    let mut notices = holder_node.end_requests();
    let t = now_ms();
    holder_node.publish(&entry(4, 31, t)).await.unwrap();
    assert_eq!(
        api_node
            .request_end(&slot(5), "arn:x", "r", t)
            .await
            .unwrap(),
        None
    );
    let expected = EndRequest {
        slot: slot(4),
        token: 31,
        by: "arn:aws:iam::111122223333:user/ops".to_owned(),
        reason: "kernel update — back at 10:00".to_owned(),
    };
    // A shared store's notices travel by subscription, which a new node sets up in the
    // background; a request made before it is in place is only found at the next refresh.
    // So the request is repeated until the notice arrives (requests are idempotent).
    let noticed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let made = api_node
                .request_end(&slot(4), &expected.by, &expected.reason, t + 1)
                .await
                .unwrap();
            assert_eq!(made.as_ref(), Some(&expected));
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), notices.recv()).await
            {
                return n;
            }
        }
    })
    .await
    .expect("the end request reaches the holder's node");
    assert_eq!(noticed, expected);
    assert_eq!(
        holder_node
            .refresh(&slot(4), 31, t + TTL + 1)
            .await
            .unwrap(),
        Some(expected)
    );
    // Past its expiry, the entry is no session to end.
    assert_eq!(
        api_node
            .request_end(&slot(4), "arn:x", "r", t + TTL + 1)
            .await
            .unwrap(),
        None
    );
}

/// Spectators are counted into their slot's entry while their presence lasts: a refresh moves
/// it, leaving or lapsing removes it, and other slots are not affected.
pub async fn directory_counts_spectators_while_present(b: &impl Backend) {
    let d = b.directory();
    let t = now_ms();
    d.publish(&entry(1, 7, t)).await.unwrap();
    d.publish(&entry(2, 8, t)).await.unwrap();
    let counts = |all: Vec<SessionEntry>| all.iter().map(|e| e.spectators).collect::<Vec<_>>();
    d.watch(&slot(1), "node-a/1", t + 1_000).await.unwrap();
    d.watch(&slot(1), "node-b/9", t + 5_000).await.unwrap();
    // Watching a port nobody holds is noted, and listed with no entry.
    d.watch(&slot(3), "node-a/2", t + 5_000).await.unwrap();
    assert_eq!(counts(listed(&d, t).await), vec![2, 0]);
    // The first lapses unless refreshed; the second leaves.
    d.watch(&slot(1), "node-b/9", t + 9_000).await.unwrap();
    assert_eq!(counts(listed(&d, t + 1_000).await), vec![1, 0]);
    d.unwatch(&slot(1), "node-b/9").await.unwrap();
    assert_eq!(counts(listed(&d, t + 1_000).await), vec![0, 0]);
    d.unwatch(&slot(1), "nobody").await.unwrap();
}
