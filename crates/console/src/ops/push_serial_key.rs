//! `SendSerialConsoleSSHPublicKey`: grant a key the right to open one serial session.

use crate::error::{ConsoleError, StateInvalid};
use crate::grants::{Grant, GrantKey};
use crate::ids::{InstanceId, SerialPort};
use crate::instance_type::supports_serial_console;
use crate::keys::SshPublicKey;
use crate::leases::{Slot, SlotState};
use crate::ops::PushReceipt;
use crate::ops::checks::slot_busy;
use crate::policy::Action;
use crate::registry::{Instance, InstanceState};
use crate::service::{ConsoleService, RequestContext};
use std::sync::Arc;

/// A validated request.
#[derive(Debug, Clone)]
pub struct PushSerialKey {
    pub instance_id: InstanceId,
    pub port: SerialPort,
    pub key: SshPublicKey,
}

impl ConsoleService {
    /// Checks every rule in order, writes the audit record, then stores the grant if the slot
    /// is still free. The order follows what a caller can fix first: budget, permission,
    /// existence, account switch, instance type, firmware, state, session slot, console
    /// reachability.
    pub async fn push_serial_key(
        &self,
        ctx: &RequestContext,
        req: PushSerialKey,
    ) -> Result<PushReceipt, ConsoleError> {
        self.push_port_key(ctx, req, Action::SendSerialConsoleSSHPublicKey)
            .await
    }

    /// `OpenSerialConsole`: a browser console link being spent. The browser gets a key the
    /// server made for it, pushed under the serial push's rules with this action's permission,
    /// so the session it opens is a serial session like any other.
    pub async fn push_browser_key(
        &self,
        ctx: &RequestContext,
        req: PushSerialKey,
    ) -> Result<PushReceipt, ConsoleError> {
        self.push_port_key(ctx, req, Action::OpenSerialConsole)
            .await
    }

    async fn push_port_key(
        &self,
        ctx: &RequestContext,
        req: PushSerialKey,
        action: Action,
    ) -> Result<PushReceipt, ConsoleError> {
        let event = self.call_event(
            ctx,
            action.short_name(),
            Some(req.instance_id.to_string()),
            Some(format!("port{}", req.port)),
            Some(req.key.fingerprint().to_owned()),
        );
        match self.check_serial_push(ctx, req, action).await {
            Ok((key, grant)) => self.audited_push(event, key, grant).await,
            Err(e) => self.audited(event, Err(e)).await,
        }
    }

    /// Every rule a serial push must pass; the grant to store when it does. The slot check
    /// here answers the common refusal early and spares the console probe; the store checks
    /// the slot again when it stores the grant, as a session may open meanwhile.
    async fn check_serial_push(
        &self,
        ctx: &RequestContext,
        req: PushSerialKey,
        action: Action,
    ) -> Result<(GrantKey, Grant), ConsoleError> {
        let instance = self
            .check_serial_rules(ctx, action, &req.instance_id)
            .await?;
        let slot = Slot {
            instance: req.instance_id.clone(),
            port: req.port,
        };
        let now_ms = self.now_ms();
        match self.slots.state(&slot, now_ms).await {
            Ok(SlotState::Free) => {}
            Ok(busy) => return Err(slot_busy(&slot, &busy, now_ms)),
            Err(e) => return Err(ConsoleError::SessionUnavailable(e.to_string())),
        }

        if let Err(reason) = self.probe.probe(&instance).await {
            return Err(ConsoleError::InstanceUnavailable(reason));
        }

        let key = GrantKey::serial(req.instance_id, req.port);
        Ok((key, self.new_grant(ctx, req.key)))
    }
}

impl ConsoleService {
    /// The rules every push for a serial port passes, in the order a caller can fix them:
    /// budget, permission for `action`, existence, account switch, instance type, firmware,
    /// state. The instance when they pass.
    pub(crate) async fn check_serial_rules(
        &self,
        ctx: &RequestContext,
        action: Action,
        instance_id: &InstanceId,
    ) -> Result<Arc<Instance>, ConsoleError> {
        self.throttle(ctx).await?;
        let instance = self.authorize(ctx, action, instance_id, None)?;
        if !self.serial_console_access(&instance.account).await? {
            return Err(ConsoleError::SerialConsoleAccessDisabled(
                instance.account.to_string(),
            ));
        }
        if !supports_serial_console(&instance.instance_type) {
            return Err(ConsoleError::InstanceTypeInvalid(
                instance.instance_type.clone(),
            ));
        }
        if instance.unsupported_bios {
            return Err(ConsoleError::SessionUnsupported(format!(
                "instance {} is flagged unsupported_bios",
                instance.id
            )));
        }
        let state = instance.state();
        if state != InstanceState::Running {
            return Err(ConsoleError::InstanceStateInvalid(StateInvalid {
                instance: instance.id.clone(),
                state,
                change: None,
            }));
        }
        Ok(instance)
    }
}
