//! `SendSSHPublicKey`: grant a key for an OS user's SSH login on an instance.

use crate::error::{ConsoleError, NotFound, StateInvalid};
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
    /// Checks the rules, writes the audit record, then stores the grant (an OS user's grant
    /// has no session slot: it replaces the previous one).
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
        match self.check_os_user_push(ctx, req).await {
            Ok((key, grant)) => self.audited_push(event, key, grant).await,
            Err(e) => self.audited(event, Err(e)).await,
        }
    }

    /// Every rule an OS-user push must pass; the grant to store when it does.
    async fn check_os_user_push(
        &self,
        ctx: &RequestContext,
        req: PushOsUserKey,
    ) -> Result<(GrantKey, Grant), ConsoleError> {
        self.throttle(ctx).await?;
        let instance = self.authorize(
            ctx,
            Action::SendSSHPublicKey,
            &req.instance_id,
            Some(req.os_user.as_str()),
        )?;
        if let Some(az) = &req.availability_zone
            && *az != instance.availability_zone
        {
            // The instance is looked up in the zone the caller names, so it is not found there.
            return Err(ConsoleError::InstanceNotFound(NotFound {
                ids: vec![instance.id.clone()],
                availability_zone: Some(az.clone()),
            }));
        }
        let state = instance.state();
        if state != InstanceState::Running {
            return Err(ConsoleError::InstanceStateInvalid(StateInvalid {
                instance: instance.id.clone(),
                state,
                change: None,
            }));
        }
        let key = GrantKey {
            instance: req.instance_id,
            target: GrantTarget::OsUser(req.os_user),
        };
        Ok((key, self.new_grant(ctx, req.key)))
    }
}
