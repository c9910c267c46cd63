//! What Redis itself collects, which the contract cannot see: the owner and node hashes expire
//! with their lease, the fencing counter never does, and a node whose hash Redis dropped leaves
//! the set of names at the next listing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use console::{ConsoleOwnership, InstanceId, NodeInfo};
use store_contract::{now_ms, redis_server};
use store_redis::{RedisConfig, RedisStore};

async fn connect(namespace: &str) -> (RedisStore, redis::aio::MultiplexedConnection) {
    let server = redis_server::shared();
    let mut config = RedisConfig::new(server.url());
    config.namespace = namespace.to_owned();
    let raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    (RedisStore::connect(&config).unwrap(), raw)
}

async fn pttl(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(raw).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_hash_expires_with_its_lease_and_the_fence_never() {
    let (store, mut raw) = connect("hk1").await;
    let o = store.ownership(Duration::ZERO);
    let i = InstanceId::parse("i-0fa0170000000002").unwrap();
    let token = o.hold(&i, "n1", None, 20_000, now_ms()).await.unwrap();
    assert!(token.is_some());
    let left = pttl(&mut raw, "hk1:{i-0fa0170000000002}:owner").await;
    assert!((19_000..=20_000).contains(&left), "owner PTTL {left}");
    // -1: the key exists and has no expiry.
    assert_eq!(
        pttl(&mut raw, "hk1:{i-0fa0170000000002}:owner_fence").await,
        -1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_hash_redis_dropped_leaves_the_names() {
    let (store, mut raw) = connect("hk2").await;
    let o = store.ownership(Duration::ZERO);
    let t = now_ms();
    for node in ["n1", "n2"] {
        let info = NodeInfo {
            node: node.to_owned(),
            address: "127.0.0.1:7000".to_owned(),
            version: "1".to_owned(),
            renewed_ms: 0,
        };
        o.announce(&info, 30_000, t).await.unwrap();
    }
    let left = pttl(&mut raw, "hk2:{nodes}:node:n1").await;
    assert!((29_000..=30_000).contains(&left), "node PTTL {left}");
    // As Redis does when the key's time is up.
    let _: i64 = redis::cmd("DEL")
        .arg("hk2:{nodes}:node:n1")
        .query_async(&mut raw)
        .await
        .unwrap();
    let listed: Vec<String> = o
        .nodes(t)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node)
        .collect();
    assert_eq!(listed, ["n2"]);
    let names: Vec<String> = redis::cmd("SMEMBERS")
        .arg("hk2:{nodes}:names")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(names, ["n2"]);
}
