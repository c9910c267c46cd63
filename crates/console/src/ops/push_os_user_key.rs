//! `SendSSHPublicKey`: grant a key for an OS user's SSH login on an instance.

use crate::error::ConsoleError;
use crate::grants::{Grant, GrantKey, GrantTarget};
use crate::ids::{AvailabilityZone, InstanceId, OsUser};
use crate::keys::SshPublicKey;
use crate::ops::PushReceipt;
use crate::policy::Action;
use crate::registry::InstanceState;
use crate::service::{ConsoleService, RequestContext};

/// A validated request.
#[derive(Debug, Clone)]
pub struct PushOsUserKey {
    pub instance_id: InstanceId,
    pub os_user: OsUser,
    pub key: SshPublicKey,
    pub availability_zone: Option<AvailabilityZone>,
}

impl ConsoleService {
    pub async fn push_os_user_key(
        &self,
        ctx: &RequestContext,
        req: PushOsUserKey,
    ) -> Result<PushReceipt, ConsoleError> {
        let event = self.call_event(
            ctx,
            "SendSSHPublicKey",
            Some(req.instance_id.to_string()),
            Some(format!("user:{}", req.os_user)),
            Some(req.key.fingerprint().to_owned()),
        );
        let key = GrantKey {
            instance: req.instance_id.clone(),
            target: GrantTarget::OsUser(req.os_user.clone()),
        };
        let result = self.push_os_user_key_unaudited(ctx, req).await;
        self.audited_push(event, key, result).await
    }

    async fn push_os_user_key_unaudited(
        &self,
        ctx: &RequestContext,
        req: PushOsUserKey,
    ) -> Result<PushReceipt, ConsoleError> {
        self.throttle(ctx).await?;
        let instance = self.authorize(ctx, Action::SendSSHPublicKey, &req.instance_id)?;
        if let Some(az) = &req.availability_zone
            && *az != instance.availability_zone
        {
            // The instance is looked up in the zone the caller names, so it is not found there.
            return Err(ConsoleError::InstanceNotFound(format!(
                "Instance {} is not in availability zone {az}.",
                instance.id
            )));
        }
        let state = instance.state();
        if state != InstanceState::Running {
            return Err(ConsoleError::InstanceStateInvalid(state.to_string()));
        }
        let now_ms = self.now_ms();
        let ttl_ms = u64::try_from(self.settings.key_ttl.as_millis()).unwrap_or(u64::MAX);
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let key = GrantKey {
            instance: req.instance_id,
            target: GrantTarget::OsUser(req.os_user),
        };
        let grant = Grant {
            key: req.key,
            principal_arn: ctx.principal.arn.clone(),
            request_id: ctx.request_id.clone(),
            expires_at_ms,
            used: false,
        };
        self.grants
            .put(&key, grant)
            .await
            .map_err(|e| ConsoleError::Internal(format!("grant store: {e}")))?;
        Ok(PushReceipt {
            request_id: ctx.request_id.clone(),
            expires_at_ms,
        })
    }
}
