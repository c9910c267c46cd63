//! Opening and closing serial sessions: what the SSH gateway asks of the domain.
//!
//! A session opens when a live, unused grant for the instance port carries exactly the offered
//! key and the slot can be taken. Taking the slot spends the grant: one push, one session.

use std::sync::Arc;

use ssh_key::public::KeyData;

use crate::error::StoreError;
use crate::grants::{Grant, GrantKey};
use crate::ids::{InstanceId, SerialPort};
use crate::leases::{Lease, Slot, SlotState};
use crate::registry::Instance;
use crate::service::ConsoleService;

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
        let grant = self.grants.find(&gk, self.now_ms()).await?;
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
        let slot = Slot {
            instance: instance.clone(),
            port,
        };
        let now = self.now_ms();
        let busy = |state: Result<SlotState, StoreError>| match state {
            Ok(SlotState::TearingDown { until_ms }) => SessionDenied::LimitExceeded(format!(
                "the previous session is being torn down for {} more seconds",
                until_ms.saturating_sub(now).div_ceil(1000)
            )),
            Ok(SlotState::Held { .. }) => {
                SessionDenied::LimitExceeded("another session is connected".to_owned())
            }
            // A spent grant on a free slot opens nothing: one push, one session.
            Ok(SlotState::Free) => SessionDenied::NoGrant,
            Err(e) => unavailable(e),
        };
        if grant.used {
            return Err(busy(self.leases.state(&slot, now).await));
        }
        let ttl = u64::try_from(self.settings.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        let lease = match self.leases.acquire(&slot, holder, ttl, now).await {
            Ok(Some(lease)) => lease,
            Ok(None) => return Err(busy(self.leases.state(&slot, now).await)),
            Err(e) => return Err(unavailable(e)),
        };
        // The slot is ours, so no new push can land for it now; marking the grant used cannot
        // overwrite a newer one. Failing to mark it is logged: the held slot still keeps a
        // second session out, and the grant expires within the key TTL.
        let spent = Grant {
            used: true,
            ..grant.clone()
        };
        if let Err(e) = self
            .grants
            .put(&GrantKey::serial(instance.clone(), port), spent)
            .await
        {
            tracing::warn!(error = %e, "could not mark the grant used after opening a session");
        }
        Ok(OpenedSession {
            lease,
            grant,
            instance: inst,
        })
    }

    /// Extends a session's lease; `Ok(None)` when the lease was lost.
    pub async fn renew_session(&self, lease: &Lease) -> Result<Option<Lease>, StoreError> {
        let ttl = u64::try_from(self.settings.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        self.leases.renew(lease, ttl, self.now_ms()).await
    }

    /// Ends a session; the slot then tears down for the configured time.
    pub async fn end_session(&self, lease: &Lease) -> Result<(), StoreError> {
        self.leases.release(lease, self.now_ms()).await
    }
}
