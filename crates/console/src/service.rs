//! [`ConsoleService`]: the domain's entry point, holding the registry, the stores and the clock.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::accounts::AccountSettings;
use crate::audit::{AuditSink, RefusalEvent, SessionEvent, TracingAudit};
use crate::clock::{Clock, SystemClock};
use crate::control::{
    ConsoleHistory, InstanceControl, NoHistory, NoPersistence, RecordedStates, StatePersistence,
};
use crate::directory::{MemoryDirectory, SessionDirectory};
use crate::error::{ConsoleError, StoreError};
use crate::grants::GrantStore;
use crate::ids::AccountId;
use crate::leases::SessionLeases;
use crate::memory::MemorySlotStore;
use crate::ops::SampledWarning;
use crate::policy::Principal;
use crate::probe::{AlwaysReachable, ConsoleProbe};
use crate::registry::Registry;
use crate::slots::SlotStore;
use crate::throttle::{MemoryThrottle, Throttle, ThrottleConfig};

/// Tunables from `[keys]`, `[sessions]` and the top-level `region`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The region this service answers for; part of instance ARNs.
    pub region: String,
    /// How long a pushed key can open a session (`[keys] ttl_seconds`, AWS: 60 s).
    pub key_ttl: Duration,
    /// After a session ends, the slot stays blocked this long (`[sessions] teardown_seconds`).
    pub teardown: Duration,
    /// A connected session is closed after this (`[sessions] max_duration_seconds`).
    pub max_session: Duration,
    /// Session lease time; the holder renews well before it runs out.
    pub lease_ttl: Duration,
    /// A session with no input and no output for this long is ended (`[sessions]
    /// idle_timeout_seconds`); `None`, the default, never ends a quiet session.
    pub idle_timeout: Option<Duration>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            region: "us-east-1".to_owned(),
            key_ttl: Duration::from_secs(60),
            teardown: Duration::from_secs(30),
            max_session: Duration::from_secs(3600),
            lease_ttl: Duration::from_secs(15),
            idle_timeout: None,
        }
    }
}

/// Who made a request and how to refer to it.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: String,
    pub principal: Principal,
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
}

/// The domain service. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct ConsoleService {
    pub(crate) registry: Arc<Registry>,
    /// Grants and session slots: one store, so a push and a session open are atomic steps.
    pub(crate) slots: Arc<dyn SlotStore>,
    /// Every node's live sessions and the requests to end them.
    pub(crate) directory: Arc<dyn SessionDirectory>,
    pub(crate) throttle: Arc<dyn Throttle>,
    pub(crate) accounts: Arc<dyn AccountSettings>,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) probe: Arc<dyn ConsoleProbe>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) control: Arc<dyn InstanceControl>,
    pub(crate) history: Arc<dyn ConsoleHistory>,
    pub(crate) persistence: Arc<dyn StatePersistence>,
    pub(crate) settings: Settings,
    /// The condition keys every request has alike (`aws:RequestedRegion`, `ec2:Region`),
    /// converted once.
    pub(crate) iam_context: Arc<iam::Context>,
    /// Paces the warnings about refused calls whose record could not be written.
    pub(crate) refusal_warnings: SampledWarning,
}

impl ConsoleService {
    /// A service with the embedded (in-memory) stores, the system clock, a console probe that
    /// always succeeds and the log as audit sink. Replace parts with the `with_*` methods.
    pub fn new(registry: Registry, settings: Settings, throttle: ThrottleConfig) -> Self {
        let teardown_ms = u64::try_from(settings.teardown.as_millis()).unwrap_or(u64::MAX);
        let registry = Arc::new(registry);
        // Requests signed for another Region are refused before they get here.
        let mut iam_context = iam::Context::new();
        iam_context
            .insert("aws:RequestedRegion", settings.region.clone())
            .insert("ec2:Region", settings.region.clone());
        Self {
            iam_context: Arc::new(iam_context),
            // The embedded account switch is the registry's own.
            accounts: Arc::clone(&registry) as Arc<dyn AccountSettings>,
            registry,
            slots: Arc::new(MemorySlotStore::new(teardown_ms)),
            directory: Arc::new(MemoryDirectory::new()),
            throttle: Arc::new(MemoryThrottle::new(throttle)),
            audit: Arc::new(TracingAudit),
            probe: Arc::new(AlwaysReachable),
            clock: Arc::new(SystemClock),
            control: Arc::new(RecordedStates),
            history: Arc::new(NoHistory),
            persistence: Arc::new(NoPersistence),
            settings,
            refusal_warnings: SampledWarning::default(),
        }
    }

    pub fn with_control(mut self, control: Arc<dyn InstanceControl>) -> Self {
        self.control = control;
        self
    }

    pub fn with_history(mut self, history: Arc<dyn ConsoleHistory>) -> Self {
        self.history = history;
        self
    }

    pub fn with_persistence(mut self, persistence: Arc<dyn StatePersistence>) -> Self {
        self.persistence = persistence;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_probe(mut self, probe: Arc<dyn ConsoleProbe>) -> Self {
        self.probe = probe;
        self
    }

    pub fn with_audit(mut self, audit: Arc<dyn AuditSink>) -> Self {
        self.audit = audit;
        self
    }

    /// Replaces the grant and session slot store (both at once: they are one store).
    pub fn with_slots(mut self, slots: Arc<dyn SlotStore>) -> Self {
        self.slots = slots;
        self
    }

    /// Replaces the session directory (a cluster shares one, beside its slots).
    pub fn with_directory(mut self, directory: Arc<dyn SessionDirectory>) -> Self {
        self.directory = directory;
        self
    }

    pub fn with_throttle(mut self, throttle: Arc<dyn Throttle>) -> Self {
        self.throttle = throttle;
        self
    }

    pub fn with_accounts(mut self, accounts: Arc<dyn AccountSettings>) -> Self {
        self.accounts = accounts;
        self
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn slots(&self) -> &Arc<dyn SlotStore> {
        &self.slots
    }

    pub fn directory(&self) -> &Arc<dyn SessionDirectory> {
        &self.directory
    }

    /// The grant side of [`slots`](Self::slots).
    pub fn grants(&self) -> &dyn GrantStore {
        self.slots.as_ref()
    }

    /// The session slot side of [`slots`](Self::slots).
    pub fn leases(&self) -> &dyn SessionLeases {
        self.slots.as_ref()
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Records a session's start or end and says whether the sink stored it. The gateway shows
    /// the console only after the start record is stored, so every session that reached a user
    /// is in the audit trail.
    pub async fn record_session(&self, event: &SessionEvent) -> Result<(), ConsoleError> {
        self.audit
            .record_session(event)
            .await
            .map_err(|e| ConsoleError::Internal(format!("audit sink: {e}")))
    }

    /// Records refusals of requests whose signature did not verify, counted by the front door.
    pub async fn record_refusals(&self, events: &[RefusalEvent]) -> Result<(), StoreError> {
        self.audit.record_refusals(events).await
    }

    /// The account's serial console switch: the shared store's value, else the configured one.
    pub async fn serial_console_access(&self, account: &AccountId) -> Result<bool, ConsoleError> {
        match self.accounts.serial_console_access(account).await {
            Ok(Some(on)) => Ok(on),
            Ok(None) => Ok(self
                .registry
                .account(account)
                .is_some_and(|a| a.serial_console_access())),
            Err(e) => Err(ConsoleError::Internal(format!(
                "account settings store: {e}"
            ))),
        }
    }

    /// Turns the account's serial console switch on or off for every node.
    pub async fn set_serial_console_access(
        &self,
        account: &AccountId,
        on: bool,
    ) -> Result<(), ConsoleError> {
        self.accounts
            .set_serial_console_access(account, on)
            .await
            .map_err(|e| ConsoleError::Internal(format!("account settings store: {e}")))
    }

    /// Drops expired grants every `every` until the future is dropped.
    pub async fn run_purger(&self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.slots.purge_expired(self.now_ms()).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(purged = n, "expired grants purged"),
                Err(e) => tracing::warn!(error = %e, "grant purge failed"),
            }
        }
    }
}
