//! Test doubles behind the service: a clock that follows tokio's, a session store that fails on
//! demand, and an audit sink the test reads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use console::leases::Slot;
use console::{
    AuditEvent, AuditSink, Clock, EndRequest, Grant, GrantKey, GrantStore, Lease, MemoryDirectory,
    MemorySlotStore, OpenOutcome, PushOutcome, SessionDirectory, SessionEntry, SessionEvent,
    SessionLeases, SessionPhase, SlotState, SlotStore, StoreError,
};
use tokio::sync::broadcast;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------------
// Time that follows tokio's clock

/// A wall clock that moves with tokio's: on paused time, the expiries the service computes
/// (leases) and the gateway's timers advance together, so a test can compare them.
#[derive(Debug)]
pub struct TokioClock {
    base: SystemTime,
    start: Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self {
            base: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            start: Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        self.base + self.start.elapsed()
    }
}

// ---------------------------------------------------------------------------------------------
// A session store that fails on demand

/// What the store does with lease renewals (and, for an outage, releases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseFault {
    /// Everything works.
    None,
    /// Renewals and releases fail at once, like a store that refuses connections.
    Fail,
    /// Renewals and releases never answer, like a store that stopped (SIGSTOP).
    Stall,
    /// Renewals answer that the lease is gone (taken by a newer holder, or a store restarted
    /// empty).
    Lost,
    /// Renewals panic (a bug in the session task's path).
    Panic,
    /// Renewals work but take this long (on tokio's clock).
    Slow(Duration),
}

/// The embedded store behind a switch that makes renewals fail, stall, answer "lost" or panic,
/// and that remembers the latest expiry it gave any lease.
#[derive(Debug)]
pub struct FaultyStore {
    inner: MemorySlotStore,
    fault: Mutex<LeaseFault>,
    granted_until_ms: AtomicU64,
    /// Renewals asked for, renewals answered, and when the last one was answered (service
    /// clock).
    renewals: AtomicU64,
    answered: AtomicU64,
    last_answer_ms: AtomicU64,
}

impl FaultyStore {
    pub fn new(teardown: Duration) -> Self {
        Self {
            inner: MemorySlotStore::new(u64::try_from(teardown.as_millis()).unwrap()),
            fault: Mutex::new(LeaseFault::None),
            granted_until_ms: AtomicU64::new(0),
            renewals: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            last_answer_ms: AtomicU64::new(0),
        }
    }

    pub fn set_fault(&self, fault: LeaseFault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn fault(&self) -> LeaseFault {
        *self.fault.lock().unwrap()
    }

    /// The latest expiry any lease was given: no session may write after it.
    pub fn granted_until_ms(&self) -> u64 {
        self.granted_until_ms.load(Ordering::SeqCst)
    }

    pub fn renewals(&self) -> u64 {
        self.renewals.load(Ordering::SeqCst)
    }

    /// Renewals the store answered (those still in flight, or abandoned, are not counted).
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }

    /// When the last renewal was answered (by the time passed to the store).
    pub fn last_answer_ms(&self) -> u64 {
        self.last_answer_ms.load(Ordering::SeqCst)
    }

    fn granted(&self, lease: &Lease) {
        self.granted_until_ms
            .fetch_max(lease.expires_at_ms, Ordering::SeqCst);
    }

    /// Applies an outage fault to a call; `Ok(())` lets it through.
    async fn outage(&self, what: &str) -> Result<(), StoreError> {
        match self.fault() {
            LeaseFault::Fail => Err(StoreError::new(format!("{what}: injected failure"))),
            LeaseFault::Stall => std::future::pending().await,
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl GrantStore for FaultyStore {
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
impl SessionLeases for FaultyStore {
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
        let lease = self.inner.acquire(slot, holder, ttl_ms, now_ms).await?;
        if let Some(l) = &lease {
            self.granted(l);
        }
        Ok(lease)
    }

    async fn renew(
        &self,
        lease: &Lease,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        let answer = match self.fault() {
            LeaseFault::Lost => Ok(None),
            LeaseFault::Panic => panic!("injected panic in a lease renewal"),
            LeaseFault::Slow(by) => {
                tokio::time::sleep(by).await;
                self.inner.renew(lease, ttl_ms, now_ms).await
            }
            _ => match self.outage("renew").await {
                Ok(()) => self.inner.renew(lease, ttl_ms, now_ms).await,
                Err(e) => Err(e),
            },
        };
        if let Ok(Some(l)) = &answer {
            self.granted(l);
        }
        self.answered.fetch_add(1, Ordering::SeqCst);
        self.last_answer_ms.store(now_ms, Ordering::SeqCst);
        answer
    }

    async fn release(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError> {
        self.outage("release").await?;
        self.inner.release(lease, now_ms).await
    }

    async fn release_now(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError> {
        self.outage("release").await?;
        self.inner.release_now(lease, now_ms).await
    }
}

#[async_trait]
impl SlotStore for FaultyStore {
    async fn push_grant(
        &self,
        key: &GrantKey,
        grant: Grant,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError> {
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
        let outcome = self
            .inner
            .open_with_grant(slot, request_id, holder, ttl_ms, now_ms)
            .await?;
        if let OpenOutcome::Opened(l) = &outcome {
            self.granted(l);
        }
        Ok(outcome)
    }
}

// ---------------------------------------------------------------------------------------------
// An audit sink the test reads

/// Keeps every session record; can refuse start records or hold records back (on tokio's
/// clock) to widen a race a test wants to see.
#[derive(Debug, Default)]
pub struct RecordingAudit {
    sessions: Mutex<Vec<SessionEvent>>,
    fail_starts: AtomicBool,
    start_delay: Mutex<Duration>,
    end_delay: Mutex<Duration>,
}

impl RecordingAudit {
    /// Start records fail from now on.
    pub fn fail_starts(&self) {
        self.fail_starts.store(true, Ordering::SeqCst);
    }

    /// Start records take this long to be stored.
    pub fn delay_starts(&self, by: Duration) {
        *self.start_delay.lock().unwrap() = by;
    }

    /// End records take this long to be stored.
    pub fn delay_ends(&self, by: Duration) {
        *self.end_delay.lock().unwrap() = by;
    }

    /// Every stored session record, in order.
    pub fn sessions(&self) -> Vec<SessionEvent> {
        self.sessions.lock().unwrap().clone()
    }

    /// The stored start records' session ids.
    pub fn started(&self) -> Vec<String> {
        self.sessions()
            .into_iter()
            .filter(|e| e.phase == SessionPhase::Started)
            .map(|e| e.session_id)
            .collect()
    }

    /// The stored end records: session id and reason.
    pub fn ended(&self) -> Vec<(String, &'static str)> {
        self.sessions()
            .into_iter()
            .filter_map(|e| match e.phase {
                SessionPhase::Ended { reason, .. } => Some((e.session_id, reason)),
                SessionPhase::Started => None,
            })
            .collect()
    }
}

#[async_trait]
impl AuditSink for RecordingAudit {
    async fn record(&self, _event: &AuditEvent) -> Result<(), StoreError> {
        Ok(())
    }

    async fn record_session(&self, event: &SessionEvent) -> Result<(), StoreError> {
        let delay = if event.phase == SessionPhase::Started {
            if self.fail_starts.load(Ordering::SeqCst) {
                return Err(StoreError::new("injected audit failure"));
            }
            *self.start_delay.lock().unwrap()
        } else {
            *self.end_delay.lock().unwrap()
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        self.sessions.lock().unwrap().push(event.clone());
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// A session directory that panics on demand

/// The in-memory session directory, with a switch that makes a spectator's presence note panic
/// (a bug in the spectator task's path).
#[derive(Debug, Default)]
pub struct PanickyDirectory {
    inner: MemoryDirectory,
    panic_on_watch: AtomicBool,
}

impl PanickyDirectory {
    pub fn panic_on_watch(&self, on: bool) {
        self.panic_on_watch.store(on, Ordering::SeqCst);
    }
}

#[async_trait]
impl SessionDirectory for PanickyDirectory {
    async fn publish(&self, entry: &SessionEntry) -> Result<(), StoreError> {
        self.inner.publish(entry).await
    }

    async fn refresh(
        &self,
        slot: &Slot,
        token: u64,
        expires_at_ms: u64,
    ) -> Result<Option<EndRequest>, StoreError> {
        self.inner.refresh(slot, token, expires_at_ms).await
    }

    async fn remove(&self, slot: &Slot, token: u64) -> Result<(), StoreError> {
        self.inner.remove(slot, token).await
    }

    async fn list(&self, now_ms: u64) -> Result<Vec<SessionEntry>, StoreError> {
        self.inner.list(now_ms).await
    }

    async fn request_end(
        &self,
        slot: &Slot,
        by: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<EndRequest>, StoreError> {
        self.inner.request_end(slot, by, reason, now_ms).await
    }

    fn end_requests(&self) -> broadcast::Receiver<EndRequest> {
        self.inner.end_requests()
    }

    async fn watch(&self, slot: &Slot, id: &str, expires_at_ms: u64) -> Result<(), StoreError> {
        if self.panic_on_watch.load(Ordering::SeqCst) {
            panic!("injected panic in a spectator's presence note");
        }
        self.inner.watch(slot, id, expires_at_ms).await
    }

    async fn unwatch(&self, slot: &Slot, id: &str) -> Result<(), StoreError> {
        self.inner.unwatch(slot, id).await
    }
}
