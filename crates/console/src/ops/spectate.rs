//! `SpectateSerialConsole`: grant a key the right to watch a serial port, read-only, once.
//!
//! A spectator's grant is kept per key, beside the port's own grant, and takes no slot: it can
//! be pushed and used while a session holds the port. The rules are the serial push's except
//! the slot (busy or not, a port can be watched); the grant is spent by the one spectator
//! session it opens.

use ssh_key::HashAlg;
use ssh_key::public::KeyData;

use crate::error::ConsoleError;
use crate::grants::{Grant, GrantKey};
use crate::ids::{InstanceId, SerialPort};
use crate::leases::Slot;
use crate::ops::{PushReceipt, PushSerialKey, SessionDenied};
use crate::policy::Action;
use crate::registry::Instance;
use crate::service::{ConsoleService, RequestContext};
use std::sync::Arc;

/// An opened spectator session's claim: the grant it spent and its instance.
#[derive(Debug, Clone)]
pub struct Spectator {
    pub grant: Grant,
    pub instance: Arc<Instance>,
    pub port: SerialPort,
}

impl ConsoleService {
    /// Checks the rules, writes the audit record, then stores the spectator's grant.
    pub async fn push_spectator_key(
        &self,
        ctx: &RequestContext,
        req: PushSerialKey,
    ) -> Result<PushReceipt, ConsoleError> {
        let event = self.call_event(
            ctx,
            "SpectateSerialConsole",
            Some(req.instance_id.to_string()),
            Some(format!("port{}", req.port)),
            Some(req.key.fingerprint().to_owned()),
        );
        match self.check_spectator_push(ctx, req).await {
            Ok((key, grant)) => self.audited_push(event, key, grant).await,
            Err(e) => self.audited(event, Err(e)).await,
        }
    }

    async fn check_spectator_push(
        &self,
        ctx: &RequestContext,
        req: PushSerialKey,
    ) -> Result<(GrantKey, Grant), ConsoleError> {
        let instance = self
            .check_serial_rules(ctx, Action::SpectateSerialConsole, &req.instance_id)
            .await?;
        // No slot check: a held port can be watched.
        if let Err(reason) = self.probe.probe(&instance).await {
            return Err(ConsoleError::InstanceUnavailable(reason));
        }
        let key = GrantKey::spectator(req.instance_id, req.port, req.key.fingerprint());
        Ok((key, self.new_grant(ctx, req.key)))
    }

    /// Authenticates `key` as a spectator of `instance`/`port` and spends its grant: one push,
    /// one spectator session.
    pub async fn open_spectator(
        &self,
        instance: &InstanceId,
        port: SerialPort,
        key: &KeyData,
    ) -> Result<Spectator, SessionDenied> {
        let unavailable = |e: crate::error::StoreError| SessionDenied::Unavailable(e.to_string());
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        let gk = GrantKey::spectator(instance.clone(), port, &fingerprint);
        let grant = self
            .slots
            .find(&gk, self.now_ms())
            .await
            .map_err(unavailable)?
            .filter(|g| g.key.matches(key))
            .ok_or(SessionDenied::NoGrant)?;
        let inst = self
            .registry
            .instance(instance)
            .cloned()
            .ok_or(SessionDenied::NoGrant)?;
        // Taking it is the spending: a second client with the same grant finds none.
        if !self
            .slots
            .take(&gk, &grant.request_id)
            .await
            .map_err(unavailable)?
        {
            return Err(SessionDenied::NoGrant);
        }
        Ok(Spectator {
            grant: Grant {
                used: true,
                ..grant
            },
            instance: inst,
            port,
        })
    }

    /// Notes spectator `id` on `slot` in the session directory for one lease time; called
    /// again every third of it while the spectator watches. A directory that fails costs the
    /// spectator nothing: it only goes uncounted.
    pub async fn note_spectator(&self, slot: &Slot, id: &str) {
        let ttl = u64::try_from(self.settings.lease_ttl.as_millis()).unwrap_or(u64::MAX);
        let until = self.now_ms().saturating_add(ttl);
        if let Err(e) = self.directory.watch(slot, id, until).await {
            tracing::debug!(error = %e, instance = %slot.instance, "spectator not noted in the session directory");
        }
    }

    /// Removes spectator `id` from the directory; one left behind lapses.
    pub async fn forget_spectator(&self, slot: &Slot, id: &str) {
        if let Err(e) = self.directory.unwatch(slot, id).await {
            tracing::debug!(error = %e, instance = %slot.instance, "spectator not removed from the session directory; it lapses");
        }
    }
}
