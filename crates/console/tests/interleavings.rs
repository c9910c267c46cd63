//! A push and a session open racing on one port, driven step by step: a wrapper around the
//! memory store stops an operation at the store call the test names, the test runs the other
//! operation to its end, then lets the first one finish. No timing is involved: every step
//! waits for an event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use console::leases::Slot;
use console::ops::{PushSerialKey, SessionDenied};
use console::service::RequestContext;
use console::*;
use tokio::sync::Notify;

const KEY: &str = include_str!("../../../testdata/keys/ed25519.pub");
const OTHER_KEY: &str = include_str!("../../../testdata/keys/rsa2048.pub");
const ACCT: &str = "111122223333";
const INSTANCE: &str = "i-0123456789abcdef0";

/// A stop in one store call: when armed, the next call announces it has arrived and waits
/// until the test opens the gate. `Notify` keeps a permit, so neither side can miss the other.
#[derive(Debug, Default)]
struct Gate {
    armed: AtomicBool,
    arrived: Notify,
    open: Notify,
}

impl Gate {
    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.arrived.notify_one();
            self.open.notified().await;
        }
    }

    async fn wait_arrival(&self) {
        self.arrived.notified().await;
    }

    fn release(&self) {
        self.open.notify_one();
    }
}

/// The memory store with a gate before `push_grant` and one before `open_with_grant`.
#[derive(Debug)]
struct Gated {
    inner: MemorySlotStore,
    push: Gate,
    open: Gate,
}

#[async_trait]
impl GrantStore for Gated {
    async fn find(&self, key: &GrantKey, now_ms: u64) -> Result<Option<Grant>, StoreError> {
        self.inner.find(key, now_ms).await
    }
    async fn take(&self, key: &GrantKey, request_id: &str) -> Result<bool, StoreError> {
        self.inner.take(key, request_id).await
    }
    async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        self.inner.purge_expired(now_ms).await
    }
}

#[async_trait]
impl SessionLeases for Gated {
    async fn state(&self, slot: &Slot, now_ms: u64) -> Result<SlotState, StoreError> {
        self.inner.state(slot, now_ms).await
    }
    async fn acquire(
        &self,
        slot: &Slot,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        self.inner.acquire(slot, holder, ttl_ms, now_ms).await
    }
    async fn renew(
        &self,
        lease: &Lease,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        self.inner.renew(lease, ttl_ms, now_ms).await
    }
    async fn release(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError> {
        self.inner.release(lease, now_ms).await
    }
    async fn release_now(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError> {
        self.inner.release_now(lease, now_ms).await
    }
}

#[async_trait]
impl SlotStore for Gated {
    async fn push_grant(
        &self,
        key: &GrantKey,
        grant: Grant,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError> {
        self.push.pass().await;
        self.inner.push_grant(key, grant, now_ms).await
    }
    async fn open_with_grant(
        &self,
        slot: &Slot,
        request_id: &str,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<OpenOutcome, StoreError> {
        self.open.pass().await;
        self.inner
            .open_with_grant(slot, request_id, holder, ttl_ms, now_ms)
            .await
    }
}

/// Keeps every record, with a gate before each write: a record is durable once `record`
/// returns.
#[derive(Debug, Default)]
struct Recorded {
    records: Mutex<Vec<AuditEvent>>,
    gate: Gate,
}

#[async_trait]
impl AuditSink for Recorded {
    async fn record(&self, e: &AuditEvent) -> Result<(), StoreError> {
        self.gate.pass().await;
        self.records.lock().unwrap().push(e.clone());
        Ok(())
    }
}

struct Fixture {
    service: Arc<ConsoleService>,
    store: Arc<Gated>,
    audit: Arc<Recorded>,
}

fn fixture() -> Fixture {
    let mut registry = Registry::new();
    registry.add_account(Account::new(AccountId::parse(ACCT).unwrap(), true));
    registry.add_instance(Instance::new(
        InstanceId::parse(INSTANCE).unwrap(),
        AccountId::parse(ACCT).unwrap(),
        "t3.micro".into(),
        AvailabilityZone::parse("us-east-1a").unwrap(),
        BTreeMap::new(),
        false,
        "sim:".into(),
        InstanceState::Running,
    ));
    let settings = Settings::default();
    let teardown_ms = u64::try_from(settings.teardown.as_millis()).unwrap();
    let store = Arc::new(Gated {
        inner: MemorySlotStore::new(teardown_ms),
        push: Gate::default(),
        open: Gate::default(),
    });
    let audit = Arc::new(Recorded::default());
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let service = ConsoleService::new(registry, settings, ThrottleConfig::default())
        .with_clock(Arc::new(clock))
        .with_audit(audit.clone())
        .with_slots(store.clone());
    Fixture {
        service: Arc::new(service),
        store,
        audit,
    }
}

fn id() -> InstanceId {
    InstanceId::parse(INSTANCE).unwrap()
}

fn key(k: &str) -> SshPublicKey {
    SshPublicKey::parse(k).unwrap()
}

async fn push(service: &ConsoleService, request_id: &str, k: &str) -> Result<(), ConsoleError> {
    let ctx = RequestContext {
        request_id: request_id.into(),
        principal: Principal::account_root(AccountId::parse(ACCT).unwrap()),
        source_ip: None,
        secure_transport: false,
    };
    let req = PushSerialKey {
        instance_id: id(),
        port: SerialPort::ZERO,
        key: key(k),
    };
    service.push_serial_key(&ctx, req).await.map(|_| ())
}

fn spawn_open(
    service: &Arc<ConsoleService>,
    k: &'static str,
    holder: &'static str,
) -> tokio::task::JoinHandle<Result<console::ops::OpenedSession, SessionDenied>> {
    let service = Arc::clone(service);
    tokio::spawn(async move {
        service
            .open_session(&id(), SerialPort::ZERO, key(k).key_data(), holder)
            .await
    })
}

async fn current_grant(f: &Fixture) -> Grant {
    let gk = GrantKey::serial(id(), SerialPort::ZERO);
    let now = f.service.clock().now_ms();
    f.store.find(&gk, now).await.unwrap().expect("a live grant")
}

/// The lost push: a connection authenticates with G1, a push of another key (G2) is
/// acknowledged, then the connection's open completes. The open must not spend (or overwrite)
/// G2: it fails, and G2 then opens its own session.
#[tokio::test]
async fn an_open_racing_a_newer_push_leaves_the_new_grant_usable() {
    let f = fixture();
    push(&f.service, "req-1", KEY).await.unwrap();

    f.store.open.arm();
    let opening = spawn_open(&f.service, KEY, "conn-1");
    // The open has read G1, matched the key and is about to take the slot.
    f.store.open.wait_arrival().await;
    push(&f.service, "req-2", OTHER_KEY).await.unwrap();
    f.store.open.release();
    assert_eq!(opening.await.unwrap().err(), Some(SessionDenied::NoGrant));

    let g2 = current_grant(&f).await;
    assert_eq!((g2.request_id.as_str(), g2.used), ("req-2", false));
    let opened = spawn_open(&f.service, OTHER_KEY, "conn-2")
        .await
        .unwrap()
        .expect("the acknowledged push opens its session");
    assert_eq!(opened.grant.request_id, "req-2");
    assert_eq!(opened.lease.holder, "conn-2");
}

/// The same interleaving with the same key pushed again (a client retrying its push): the open
/// reads the grant again and spends the newer one; still one session.
#[tokio::test]
async fn an_open_racing_a_repeated_push_of_its_key_spends_the_newer_grant() {
    let f = fixture();
    push(&f.service, "req-1", KEY).await.unwrap();

    f.store.open.arm();
    let opening = spawn_open(&f.service, KEY, "conn-1");
    f.store.open.wait_arrival().await;
    push(&f.service, "req-2", KEY).await.unwrap();
    f.store.open.release();
    let opened = opening.await.unwrap().expect("the key is still granted");
    assert_eq!(opened.grant.request_id, "req-2");

    let g2 = current_grant(&f).await;
    assert_eq!((g2.request_id.as_str(), g2.used), ("req-2", true));
    assert!(matches!(
        spawn_open(&f.service, KEY, "conn-2").await.unwrap().err(),
        Some(SessionDenied::LimitExceeded(_))
    ));
}

/// A push passes its checks (the slot is free), its success record is written, and before it
/// stores the grant a session opens on the previous grant. The grant must not land on the held
/// port: the push is refused, and a second record says so.
#[tokio::test]
async fn a_push_racing_an_open_does_not_land_on_the_held_port() {
    let f = fixture();
    push(&f.service, "req-1", KEY).await.unwrap();

    f.store.push.arm();
    let pushing = {
        let service = Arc::clone(&f.service);
        tokio::spawn(async move { push(&service, "req-2", OTHER_KEY).await })
    };
    // The push's checks passed and its record is written; it is about to store the grant.
    f.store.push.wait_arrival().await;
    let opened = spawn_open(&f.service, KEY, "conn-1")
        .await
        .unwrap()
        .expect("G1 opens its session");
    f.store.push.release();
    let err = pushing.await.unwrap().unwrap_err();
    assert_eq!(err.code(), "SerialConsoleSessionLimitExceededException");

    let g1 = current_grant(&f).await;
    assert_eq!((g1.request_id.as_str(), g1.used), ("req-1", true));
    assert_eq!(opened.grant.request_id, "req-1");
    let trail: Vec<_> = f
        .audit
        .records
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.request_id == "req-2")
        .map(|r| r.outcome.clone())
        .collect();
    assert_eq!(
        trail,
        [
            AuditOutcome::Success,
            AuditOutcome::Error("SerialConsoleSessionLimitExceededException".into())
        ]
    );
}

/// Audit first: while a push's record is being written, its key opens nothing; once the
/// record is written and the push acknowledged, it does.
#[tokio::test]
async fn a_grant_opens_nothing_before_its_audit_record_is_written() {
    let f = fixture();
    f.audit.gate.arm();
    let pushing = {
        let service = Arc::clone(&f.service);
        tokio::spawn(async move { push(&service, "req-1", KEY).await })
    };
    // The push's checks passed; its record is on its way to the sink.
    f.audit.gate.wait_arrival().await;
    assert_eq!(
        spawn_open(&f.service, KEY, "conn-1").await.unwrap().err(),
        Some(SessionDenied::NoGrant)
    );
    f.audit.gate.release();
    pushing.await.unwrap().unwrap();
    let opened = spawn_open(&f.service, KEY, "conn-2")
        .await
        .unwrap()
        .expect("the acknowledged push opens its session");
    assert_eq!(opened.grant.request_id, "req-1");
}
