//! `GetInstanceKeys`: an instance fetches the key pushed for one of its OS users with
//! `SendSSHPublicKey`, for sshd's `AuthorizedKeysCommand`.
//!
//! The instance has proved who it is before this runs (the front door checks its proof); the
//! domain finds the live grant and records the answer. Only answers that serve a key are
//! recorded: a refusal has no proven caller, and recording each would let anyone fill the
//! audit trail.

use std::net::IpAddr;

use crate::audit::{AuditEvent, AuditOutcome};
use crate::error::ConsoleError;
use crate::grants::{Grant, GrantKey, GrantTarget};
use crate::ids::{InstanceId, OsUser};
use crate::service::ConsoleService;

/// The operation's name in the audit trail.
pub const OPERATION: &str = "GetInstanceKeys";

/// An instance's request for its user's keys, after its proof was checked.
#[derive(Debug, Clone)]
pub struct InstanceKeysRequest {
    /// This request's id (not the push's).
    pub request_id: String,
    pub source_ip: Option<IpAddr>,
    pub instance_id: InstanceId,
    pub os_user: OsUser,
}

impl ConsoleService {
    /// The live grants for the request's instance and OS user (today at most one: a push
    /// replaces the previous one), each with its caller, request id and expiry. A non-empty
    /// answer is recorded first; if its record cannot be written, nothing is served (no key
    /// reaches an instance without its record).
    pub async fn instance_keys(
        &self,
        req: &InstanceKeysRequest,
    ) -> Result<Vec<Grant>, ConsoleError> {
        let key = GrantKey {
            instance: req.instance_id.clone(),
            target: GrantTarget::OsUser(req.os_user.clone()),
        };
        let now_ms = self.now_ms();
        let grants: Vec<Grant> = self
            .slots
            .find(&key, now_ms)
            .await
            .map_err(|e| ConsoleError::Internal(format!("grant store: {e}")))?
            .into_iter()
            .collect();
        for grant in &grants {
            let event = AuditEvent {
                time_ms: now_ms,
                request_id: req.request_id.clone(),
                operation: OPERATION.into(),
                principal_arn: self.instance_arn(&req.instance_id),
                source_ip: req.source_ip,
                instance_id: Some(req.instance_id.to_string()),
                target: Some(format!("user:{}", req.os_user)),
                key_fingerprint: Some(grant.key.fingerprint().to_owned()),
                outcome: AuditOutcome::Success,
                denial: None,
            };
            self.audit.record(&event).await.map_err(|e| {
                tracing::error!(error = %e, request_id = %req.request_id, "audit record failed; no key served");
                ConsoleError::Internal(format!("audit sink: {e}"))
            })?;
        }
        Ok(grants)
    }

    /// The caller of an instance's request: the instance itself, by its ARN.
    fn instance_arn(&self, id: &InstanceId) -> Option<String> {
        let instance = self.registry.instance(id)?;
        Some(format!(
            "arn:aws:ec2:{}:{}:instance/{id}",
            self.settings.region, instance.account
        ))
    }
}
