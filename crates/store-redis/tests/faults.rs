//! Redis going away: every call fails within the configured bound (never hangs), and the same
//! store works again once Redis is back, with no restart of the node.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use console::leases::Slot;
use console::{
    AccountId, ConsoleOwnership, GrantKey, GrantStore, InstanceId, SerialPort, SessionLeases,
    SlotState, Throttle,
};
use store_contract::{now_ms, redis_server};
use store_redis::{RedisConfig, RedisStore};

const BOUND: Duration = Duration::from_millis(300);
const LEASE: Duration = Duration::from_secs(15);

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

fn store(url: String) -> RedisStore {
    let mut config = RedisConfig::new(url);
    config.timeout = BOUND;
    RedisStore::connect(&config).unwrap()
}

fn slot() -> Slot {
    Slot {
        instance: InstanceId::parse("i-0fa0170000000001").unwrap(),
        port: SerialPort::ZERO,
    }
}

/// Asserts that `f` fails, and does so within the bound plus scheduling slack.
async fn fails_quickly<T: std::fmt::Debug>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, console::StoreError>>,
) {
    let started = Instant::now();
    let r = f.await;
    let took = started.elapsed();
    assert!(r.is_err(), "{what}: {r:?}");
    assert!(
        took < BOUND + Duration::from_millis(700),
        "{what} took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_fails_within_the_bound() {
    // A port nobody listens on: connection refused, then the next attempt, all bounded.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = store(format!("redis://127.0.0.1:{port}/0"));
    for _ in 0..3 {
        fails_quickly("ping", s.ping()).await;
        fails_quickly(
            "acquire",
            s.slots(Duration::from_secs(30), Duration::ZERO).acquire(
                &slot(),
                "n/1",
                15_000,
                now_ms(),
            ),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_redis_fails_fast_and_recovers_when_back() {
    let server = redis_server::start();
    let s = store(server.url());
    let slots = s.slots(Duration::from_secs(30), LEASE);
    let throttle = s.throttle(console::ThrottleConfig::default());
    let acct = AccountId::parse("111122223333").unwrap();
    // As a node that started one lease ago: the new Redis's epoch has opened.
    let started = now_ms() - ms(LEASE);
    assert!(
        slots
            .open_epochs(&[slot().instance], started)
            .await
            .unwrap()
            <= now_ms()
    );
    let lease = slots
        .acquire(&slot(), "n/1", 15_000, now_ms())
        .await
        .unwrap()
        .expect("free");

    server.kill();
    for _ in 0..3 {
        fails_quickly("renew", slots.renew(&lease, 15_000, now_ms())).await;
        fails_quickly(
            "find",
            slots.find(
                &GrantKey::serial(slot().instance, SerialPort::ZERO),
                now_ms(),
            ),
        )
        .await;
        fails_quickly("throttle", throttle.try_acquire(&acct, now_ms())).await;
    }

    // Back, empty (no persistence): the store reconnects by itself and the scripts reload.
    let back = redis_server::start_on(server.port).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match throttle.try_acquire(&acct, now_ms()).await {
            Ok(allowed) => {
                assert!(allowed);
                break;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery within 10 s: {e}"),
        }
    }
    // The lease died with Redis's memory: the old holder has lost it (no second session).
    assert_eq!(slots.renew(&lease, 15_000, now_ms()).await.unwrap(), None);
    // Another node must not open while the old holder may still write: the instance's slots
    // stay closed for one lease time after Redis is found empty, and read as tearing down.
    let found = now_ms();
    assert_eq!(
        slots.acquire(&slot(), "n/2", 15_000, found).await.unwrap(),
        None
    );
    match slots.state(&slot(), found).await.unwrap() {
        SlotState::TearingDown { until_ms } => {
            assert!(
                until_ms > found && until_ms <= found + ms(LEASE) + 1000,
                "{until_ms}"
            )
        }
        other => panic!("a slot in a new epoch reads {other:?}"),
    }
    let opens = slots.open_epochs(&[slot().instance], found).await.unwrap();
    assert!(opens > found, "the epoch did not start again: {opens}");
    let before = opens - 1;
    assert_eq!(
        slots.acquire(&slot(), "n/2", 15_000, before).await.unwrap(),
        None
    );
    let again = slots
        .acquire(&slot(), "n/2", 15_000, opens)
        .await
        .unwrap()
        .expect("free one lease time after the restart");
    assert!(again.token > lease.token, "fencing survives the restart");
    back.kill();
}

/// Waits until `store` answers again after a restart of its Redis.
async fn reconnected(store: &RedisStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.ping().await {
            Ok(()) => return,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery within 10 s: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_is_not_taken_for_a_lease_time_after_redis_lost_its_data() {
    let server = redis_server::start();
    let s = store(server.url());
    let ownership = s.ownership(LEASE);
    let instance = slot().instance;
    // The epoch is the instance's, shared with its slots: opened by a node that started a lease
    // time ago.
    let slots = s.slots(Duration::from_secs(30), LEASE);
    let started = now_ms() - ms(LEASE);
    assert!(
        slots
            .open_epochs(std::slice::from_ref(&instance), started)
            .await
            .unwrap()
            <= now_ms()
    );
    let taken = now_ms();
    let token = ownership
        .hold(&instance, "n1", None, 15_000, taken)
        .await
        .unwrap()
        .expect("free in an open epoch");

    server.kill();
    fails_quickly(
        "renew",
        ownership.hold(&instance, "n1", Some(token), 15_000, taken + 1),
    )
    .await;
    let back = redis_server::start_on(server.port).unwrap();
    reconnected(&s).await;

    // The lease died with Redis's memory: the holder's renewal says so, and is no take.
    let found = now_ms();
    assert_eq!(
        ownership
            .hold(&instance, "n1", Some(token), 15_000, found)
            .await
            .unwrap(),
        None
    );
    // Nobody takes the console while the old holder may still be using it.
    for (node, at) in [
        ("n2", found),
        ("n1", found + 1),
        ("n2", found + ms(LEASE) - 1),
    ] {
        assert_eq!(
            ownership
                .hold(&instance, node, None, 15_000, at)
                .await
                .unwrap(),
            None,
            "{node} at +{}",
            at - found
        );
    }
    assert_eq!(ownership.owner(&instance, found).await.unwrap(), None);
    let again = ownership
        .hold(&instance, "n2", None, 15_000, found + ms(LEASE))
        .await
        .unwrap()
        .expect("free one lease time after the loss was found");
    assert!(
        again > token,
        "fencing survives the restart: {token} then {again}"
    );
    back.kill();
}
