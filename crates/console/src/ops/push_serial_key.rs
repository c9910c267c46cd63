//! `SendSerialConsoleSSHPublicKey`: grant a key the right to open one serial session.

use crate::error::ConsoleError;
use crate::grants::{Grant, GrantKey};
use crate::ids::{InstanceId, SerialPort};
use crate::instance_type::supports_serial_console;
use crate::keys::SshPublicKey;
use crate::leases::{Slot, SlotState};
use crate::ops::PushReceipt;
use crate::policy::Action;
use crate::registry::InstanceState;
use crate::service::{ConsoleService, RequestContext};

/// A validated request.
#[derive(Debug, Clone)]
pub struct PushSerialKey {
    pub instance_id: InstanceId,
    pub port: SerialPort,
    pub key: SshPublicKey,
}

impl ConsoleService {
    /// Checks every rule in order and stores the grant. The order follows what a caller can
    /// fix first: budget, permission, existence, account switch, instance type, firmware,
    /// state, session slot, console reachability.
    pub async fn push_serial_key(
        &self,
        ctx: &RequestContext,
        req: PushSerialKey,
    ) -> Result<PushReceipt, ConsoleError> {
        let event = self.call_event(
            ctx,
            "SendSerialConsoleSSHPublicKey",
            Some(req.instance_id.to_string()),
            Some(format!("port{}", req.port)),
            Some(req.key.fingerprint().to_owned()),
        );
        let key = GrantKey::serial(req.instance_id.clone(), req.port);
        let result = self.push_serial_key_unaudited(ctx, req).await;
        self.audited_push(event, key, result).await
    }

    async fn push_serial_key_unaudited(
        &self,
        ctx: &RequestContext,
        req: PushSerialKey,
    ) -> Result<PushReceipt, ConsoleError> {
        self.throttle(ctx).await?;
        let instance =
            self.authorize(ctx, Action::SendSerialConsoleSSHPublicKey, &req.instance_id)?;
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
            return Err(ConsoleError::InstanceStateInvalid(state.to_string()));
        }

        let slot = Slot {
            instance: req.instance_id.clone(),
            port: req.port,
        };
        let now_ms = self.now_ms();
        match self.leases.state(&slot, now_ms).await {
            Ok(SlotState::Free) => {}
            Ok(SlotState::Held { .. }) => {
                return Err(ConsoleError::SessionLimitExceeded(format!(
                    "A session is connected to {}.port{}.",
                    slot.instance, slot.port
                )));
            }
            Ok(SlotState::TearingDown { until_ms }) => {
                let secs = until_ms.saturating_sub(now_ms).div_ceil(1000);
                return Err(ConsoleError::SessionLimitExceeded(format!(
                    "The previous session on {}.port{} is being torn down; try again in {secs} s.",
                    slot.instance, slot.port
                )));
            }
            Err(e) => return Err(ConsoleError::SessionUnavailable(e.to_string())),
        }

        if let Err(reason) = self.probe.probe(&instance).await {
            return Err(ConsoleError::InstanceUnavailable(reason));
        }

        let ttl_ms = u64::try_from(self.settings.key_ttl.as_millis()).unwrap_or(u64::MAX);
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let grant = Grant {
            key: req.key,
            principal_arn: ctx.principal.arn.clone(),
            request_id: ctx.request_id.clone(),
            expires_at_ms,
            used: false,
        };
        self.grants
            .put(&GrantKey::serial(req.instance_id, req.port), grant)
            .await
            .map_err(|e| ConsoleError::Internal(format!("grant store: {e}")))?;
        Ok(PushReceipt {
            request_id: ctx.request_id.clone(),
            expires_at_ms,
        })
    }
}
