//! Console ownership properties: one owner, fencing, renewal, expiry at the edge, release; and
//! the node registry.

use std::sync::Arc;

use console::{ConsoleOwnership, NodeInfo, Owner};

use crate::{Backend, instance, now_ms};

const TTL: u64 = 15_000;

async fn take(o: &Arc<dyn ConsoleOwnership>, n: u32, node: &str, now: u64) -> Option<u64> {
    o.hold(&instance(n), node, None, TTL, now).await.unwrap()
}

async fn renew(
    o: &Arc<dyn ConsoleOwnership>,
    n: u32,
    node: &str,
    token: u64,
    now: u64,
) -> Option<u64> {
    o.hold(&instance(n), node, Some(token), TTL, now)
        .await
        .unwrap()
}

async fn owner(o: &Arc<dyn ConsoleOwnership>, n: u32, now: u64) -> Option<Owner> {
    o.owner(&instance(n), now).await.unwrap()
}

/// A free console goes to the first taker; nobody else takes it while it is held, the holder
/// itself included (a take is not a renewal), and another instance is unaffected.
pub async fn ownership_one_owner_at_a_time(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    assert_eq!(owner(&o, 1, t).await, None);
    let a = take(&o, 1, "node-a", t).await.expect("free console");
    assert_eq!(take(&o, 1, "node-b", t + 1).await, None);
    assert_eq!(take(&o, 1, "node-a", t + 2).await, None);
    // Another node cannot renew with the holder's token.
    assert_eq!(renew(&o, 1, "node-b", a, t + 3).await, None);
    assert_eq!(
        owner(&o, 1, t + 4).await,
        Some(Owner {
            node: "node-a".to_owned(),
            token: a,
            expires_ms: t + TTL
        })
    );
    assert!(take(&o, 2, "node-b", t + 5).await.is_some());
}

/// Twenty nodes take at once, one wins.
pub async fn ownership_one_winner_among_concurrent_takes(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let o = Arc::clone(&o);
            tokio::spawn(async move {
                o.hold(&instance(1), &format!("node-{i}"), None, TTL, t)
                    .await
            })
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

/// Every take gets a larger token than the one before: after a release, after a lapse, and by
/// the same node again.
pub async fn ownership_fencing_tokens_increase(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    let a = take(&o, 1, "node-a", t).await.unwrap();
    o.release(&instance(1), "node-a", a).await.unwrap();
    let b2 = take(&o, 1, "node-b", t + 1).await.unwrap();
    assert!(b2 > a, "{a} then {b2}");
    let c = take(&o, 1, "node-c", t + 1 + TTL).await.unwrap();
    assert!(c > b2, "{b2} then {c}");
    let c2 = take(&o, 1, "node-c", t + 1 + 2 * TTL).await.unwrap();
    assert!(c2 > c, "{c} then {c2}");
}

/// A renewal keeps the token and moves the expiry.
pub async fn ownership_renewal_keeps_the_token(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    let a = take(&o, 1, "node-a", t).await.unwrap();
    assert_eq!(renew(&o, 1, "node-a", a, t + 5_000).await, Some(a));
    assert_eq!(renew(&o, 1, "node-a", a, t + 10_000).await, Some(a));
    let expires_ms = t + 10_000 + TTL;
    assert_eq!(
        owner(&o, 1, t + TTL).await,
        Some(Owner {
            node: "node-a".to_owned(),
            token: a,
            expires_ms
        })
    );
    assert_eq!(take(&o, 1, "node-b", expires_ms - 1).await, None);
    assert!(take(&o, 1, "node-b", expires_ms).await.is_some());
}

/// A renewal with a token the store no longer holds fails and changes nothing: a wrong token
/// beside a live lease, the token of a lease that lapsed (even untaken: no silent re-take), and
/// a token superseded by another node's take.
pub async fn ownership_a_stale_token_cannot_renew(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    let a = take(&o, 1, "node-a", t).await.unwrap();
    assert_eq!(renew(&o, 1, "node-a", a + 1, t + 1).await, None);
    assert_eq!(
        owner(&o, 1, t + 2).await.map(|w| w.expires_ms),
        Some(t + TTL)
    );
    // Lapsed, nobody took it: the renewal still fails, and a take is a new token.
    assert_eq!(renew(&o, 1, "node-a", a, t + TTL).await, None);
    assert_eq!(owner(&o, 1, t + TTL).await, None);
    let a2 = take(&o, 1, "node-a", t + TTL + 1).await.unwrap();
    assert!(a2 > a, "{a} then {a2}");
    // Taken by another node after a lapse: the old token is dead for good.
    let later = t + 3 * TTL;
    let b2 = take(&o, 1, "node-b", later).await.unwrap();
    assert_eq!(renew(&o, 1, "node-a", a2, later + 1).await, None);
    assert_eq!(
        owner(&o, 1, later + 2).await.map(|w| (w.node, w.token)),
        Some(("node-b".to_owned(), b2))
    );
}

/// A lease holds until the millisecond before its expiry and is gone at its expiry.
pub async fn ownership_expires_at_the_edge(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    let a = take(&o, 1, "node-a", t).await.unwrap();
    let exp = t + TTL;
    assert_eq!(owner(&o, 1, exp - 1).await.map(|w| w.token), Some(a));
    assert_eq!(take(&o, 1, "node-b", exp - 1).await, None);
    assert_eq!(owner(&o, 1, exp).await, None);
    let b2 = take(&o, 1, "node-b", exp)
        .await
        .expect("free at the expiry");
    assert_eq!(
        owner(&o, 1, exp).await.map(|w| (w.node, w.token)),
        Some(("node-b".to_owned(), b2))
    );
}

/// Only the holder with its token releases, and then the console is free at once.
pub async fn ownership_release_by_the_holder_only(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    let a = take(&o, 1, "node-a", t).await.unwrap();
    o.release(&instance(1), "node-b", a).await.unwrap();
    o.release(&instance(1), "node-a", a + 1).await.unwrap();
    assert_eq!(owner(&o, 1, t + 1).await.map(|w| w.token), Some(a));
    assert_eq!(take(&o, 1, "node-b", t + 1).await, None);
    o.release(&instance(1), "node-a", a).await.unwrap();
    assert_eq!(owner(&o, 1, t + 1).await, None);
    assert_eq!(renew(&o, 1, "node-a", a, t + 1).await, None);
    assert!(take(&o, 1, "node-b", t + 1).await.is_some());
}

fn info(node: &str, address: &str) -> NodeInfo {
    NodeInfo {
        node: node.to_owned(),
        address: address.to_owned(),
        version: "1.2.3".to_owned(),
        // The store records the announcement's time instead.
        renewed_ms: 0,
    }
}

/// `nodes` lists the live announcements by name, with their latest fields and time, and
/// drops a node at the expiry of its last announcement.
pub async fn nodes_lists_the_announced_and_drops_the_expired(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    assert_eq!(o.nodes(t).await.unwrap(), []);
    o.announce(&info("node-b", "10.0.0.2:7000"), TTL, t)
        .await
        .unwrap();
    o.announce(&info("node-a", "10.0.0.1:7000"), TTL, t + 1)
        .await
        .unwrap();
    o.announce(&info("node-b", "10.0.0.9:7000"), TTL, t + 2)
        .await
        .unwrap();
    let listed = |a: &str, b: Option<&str>| {
        let mut v = vec![NodeInfo {
            renewed_ms: t + 1,
            ..info("node-a", a)
        }];
        if let Some(b) = b {
            v.push(NodeInfo {
                renewed_ms: t + 2,
                ..info("node-b", b)
            });
        }
        v
    };
    let both = listed("10.0.0.1:7000", Some("10.0.0.9:7000"));
    assert_eq!(o.nodes(t + 3).await.unwrap(), both);
    assert_eq!(o.nodes(t + 1 + TTL - 1).await.unwrap(), both);
    // node-a's announcement ends first; node-b's a millisecond later.
    assert_eq!(
        o.nodes(t + 1 + TTL).await.unwrap(),
        vec![NodeInfo {
            renewed_ms: t + 2,
            ..info("node-b", "10.0.0.9:7000")
        }]
    );
    assert_eq!(o.nodes(t + 2 + TTL).await.unwrap(), []);
    // Announcing again brings a node back.
    o.announce(&info("node-a", "10.0.0.1:7000"), TTL, t + 3 * TTL)
        .await
        .unwrap();
    assert_eq!(names(o.nodes(t + 3 * TTL).await.unwrap()), ["node-a"]);
}

/// A node name that cannot be a key part is refused, wherever it is given.
pub async fn ownership_node_names_are_checked(b: &impl Backend) {
    let o = b.ownership();
    let t = now_ms();
    for bad in ["", "a b", "a:b", "{x}", &"n".repeat(65)] {
        assert!(
            o.announce(&info(bad, "h:1"), TTL, t).await.is_err(),
            "{bad:?}"
        );
        assert!(
            o.hold(&instance(1), bad, None, TTL, t).await.is_err(),
            "{bad:?}"
        );
        assert!(o.release(&instance(1), bad, 1).await.is_err(), "{bad:?}");
    }
    assert_eq!(o.nodes(t).await.unwrap(), []);
    assert_eq!(owner(&o, 1, t).await, None);
    let longest = "n".repeat(64);
    o.announce(&info(&longest, "h:1"), TTL, t).await.unwrap();
    assert_eq!(names(o.nodes(t).await.unwrap()), [longest]);
}

fn names(nodes: Vec<NodeInfo>) -> Vec<String> {
    nodes.into_iter().map(|n| n.node).collect()
}
