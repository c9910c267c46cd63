//! Opening and closing serial sessions: what the SSH gateway asks of the domain.
//!
//! A session opens when a live, unused grant for the instance port carries exactly the offered
//! key and the slot can be taken. Taking the slot spends the grant, in the same atomic step of
//! the store and only if the grant is still the one that authenticated the key: one push, one
//! session, and a newer push is never overwritten.

use std::sync::Arc;

use ssh_key::public::KeyData;

use crate::directory::{EndRequest, SessionEntry};
use crate::error::StoreError;
use crate::grants::{Grant, GrantKey};
use crate::ids::{InstanceId, SerialPort};
use crate::leases::{Lease, Slot, SlotState};
use crate::registry::Instance;
use crate::service::ConsoleService;
use crate::slots::{OpenDenied, OpenOutcome};

/// How many times [`ConsoleService::open_session`] reads the grant again after a push replaced
/// the one it read.
const OPEN_ATTEMPTS: usize = 3;

/// Why a session could not open. The gateway shows [`SessionDenied::NoGrant`] as a plain
/// authentication failure (no enumeration) and the others as a short message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionDenied {
    #[error("no live grant for this key")]
    NoGrant,
    #[error("session limit: {0}")]
    LimitExceeded(String),
    #[error("session store unavailable: {0}")]
    Unavailable(String),
}

/// An open session's claim on its slot.
#[derive(Debug, Clone)]
pub struct OpenedSession {
    pub lease: Lease,
    pub grant: Grant,
    pub instance: Arc<Instance>,
}

impl ConsoleService {
    /// The live grant for `instance`/`port` if it carries `key`. Used to answer key offers and
    /// to authenticate; it changes nothing.
    pub async fn grant_for_key(
        &self,
        instance: &InstanceId,
        port: SerialPort,
        key: &KeyData,
    ) -> Result<Option<Grant>, StoreError> {
        let gk = GrantKey::serial(instance.clone(), port);
        let grant = self.slots.find(&gk, self.now_ms()).await?;
        Ok(grant.filter(|g| g.key.matches(key)))
    }

    /// Authenticates `key` for `instance`/`port` and takes the session slot for `holder`.
    pub async fn open_session(
        &self,
        instance: &InstanceId,
        port: SerialPort,
        key: &KeyData,
        holder: &str,
    ) -> Result<OpenedSession, SessionDenied> {
        let unavailable = |e: StoreError| SessionDenied::Unavailable(e.to_string());
        let slot = Slot {
            instance: instance.clone(),
            port,
        };
        let ttl = u64::try_from(self.settings.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        // A push can replace the grant between the read that authenticates the key and the
        // open; the open then changes nothing (`GrantGone`) and the new grant is read again,
        // which opens the session if it carries the same key. Bounded, so a flood of pushes
        // cannot keep a connection looping.
        for _ in 0..OPEN_ATTEMPTS {
            let grant = self
                .grant_for_key(instance, port, key)
                .await
                .map_err(unavailable)?
                .ok_or(SessionDenied::NoGrant)?;
            let inst = self
                .registry
                .instance(instance)
                .cloned()
                .ok_or(SessionDenied::NoGrant)?;
            let now = self.now_ms();
            let outcome = self
                .slots
                .open_with_grant(&slot, &grant.request_id, holder, ttl, now)
                .await
                .map_err(unavailable)?;
            let denied = match outcome {
                OpenOutcome::Opened(lease) => {
                    return Ok(OpenedSession {
                        lease,
                        grant: Grant {
                            used: true,
                            ..grant
                        },
                        instance: inst,
                    });
                }
                OpenOutcome::Denied(OpenDenied::GrantGone) => continue,
                OpenOutcome::Denied(OpenDenied::GrantSpent(state)) => state,
                OpenOutcome::Denied(OpenDenied::SlotBusy(state)) => state,
            };
            return Err(match denied {
                SlotState::TearingDown { until_ms } => SessionDenied::LimitExceeded(format!(
                    "the previous session is being torn down for {} more seconds",
                    until_ms.saturating_sub(now).div_ceil(1000)
                )),
                SlotState::Held { .. } => {
                    SessionDenied::LimitExceeded("another session is connected".to_owned())
                }
                // A spent grant on a free slot opens nothing: one push, one session.
                SlotState::Free => SessionDenied::NoGrant,
            });
        }
        Err(SessionDenied::NoGrant)
    }

    /// Extends a session's lease; `Ok(None)` when the lease was lost.
    pub async fn renew_session(&self, lease: &Lease) -> Result<Option<Lease>, StoreError> {
        let ttl = u64::try_from(self.settings.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        self.slots.renew(lease, ttl, self.now_ms()).await
    }

    /// Extends a session's lease and, with it, its directory entry; `Ok(None)` when the lease
    /// was lost. The renewal also says whether someone asked for the session to end (the
    /// backstop for a notice the holder missed). A directory that fails costs the session
    /// nothing: its entry lapses, the lease is what holds the slot.
    pub async fn renew_listed_session(&self, lease: &Lease) -> Result<Option<Renewal>, StoreError> {
        let Some(lease) = self.renew_session(lease).await? else {
            return Ok(None);
        };
        let end = match self
            .directory
            .refresh(&lease.slot, lease.token, lease.expires_at_ms)
            .await
        {
            Ok(end) => end,
            Err(e) => {
                tracing::warn!(error = %e, instance = %lease.slot.instance, "session directory refresh failed");
                None
            }
        };
        Ok(Some(Renewal { lease, end }))
    }

    /// Lists a session that just opened in the directory, for every node to see.
    pub async fn list_session(&self, entry: &SessionEntry) -> Result<(), StoreError> {
        self.directory.publish(entry).await
    }

    /// Ends a session; the slot then tears down for the configured time.
    pub async fn end_session(&self, lease: &Lease) -> Result<(), StoreError> {
        self.slots.release(lease, self.now_ms()).await?;
        self.unlist(lease).await;
        Ok(())
    }

    /// Ends a session that was asked to end, freeing its slot at once (no teardown block).
    /// Called only once the session stopped writing to its console.
    pub async fn end_session_now(&self, lease: &Lease) -> Result<(), StoreError> {
        self.slots.release_now(lease, self.now_ms()).await?;
        self.unlist(lease).await;
        Ok(())
    }

    /// Removes a released session's directory entry; one left behind lapses with its lease.
    async fn unlist(&self, lease: &Lease) {
        if let Err(e) = self.directory.remove(&lease.slot, lease.token).await {
            tracing::warn!(error = %e, instance = %lease.slot.instance, "session directory entry not removed; it lapses with its lease");
        }
    }
}

/// A renewed lease, and the request to end its session if one is waiting.
#[derive(Debug, Clone)]
pub struct Renewal {
    pub lease: Lease,
    pub end: Option<EndRequest>,
}
