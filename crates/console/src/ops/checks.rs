//! Steps shared by the push operations: throttle, authorize, look up, audit.

use std::borrow::Cow;
use std::sync::Arc;

use crate::audit::{AuditEvent, AuditOutcome};
use crate::error::{Busy, ConsoleError, NotFound};
use crate::grants::{Grant, GrantKey};
use crate::ids::InstanceId;
use crate::keys::SshPublicKey;
use crate::leases::{Slot, SlotState};
use crate::ops::PushReceipt;
use crate::ops::authorize::Target;
use crate::policy::Action;
use crate::registry::Instance;
use crate::service::{ConsoleService, RequestContext};
use crate::slots::PushOutcome;

impl ConsoleService {
    /// The audit record of an API call by `ctx`, before its outcome is known.
    pub(crate) fn call_event(
        &self,
        ctx: &RequestContext,
        operation: impl Into<Cow<'static, str>>,
        instance_id: Option<String>,
        target: Option<String>,
        key_fingerprint: Option<String>,
    ) -> AuditEvent {
        AuditEvent {
            time_ms: self.now_ms(),
            request_id: ctx.request_id.clone(),
            operation: operation.into(),
            principal_arn: Some(ctx.principal.arn.clone()),
            source_ip: ctx.source_ip,
            instance_id,
            target,
            key_fingerprint,
            outcome: AuditOutcome::Success,
            denial: None,
        }
    }

    /// Spends one token of the caller's account budget.
    pub(crate) async fn throttle(&self, ctx: &RequestContext) -> Result<(), ConsoleError> {
        match self
            .throttle
            .try_acquire(&ctx.principal.account, self.now_ms())
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(ConsoleError::Throttling(format!(
                "account {} exceeded its request rate",
                ctx.principal.account
            ))),
            // Fail closed but retryable: the throttle store is the session store's sibling.
            Err(e) => Err(ConsoleError::Internal(format!("throttle store: {e}"))),
        }
    }

    /// IAM decision on the instance ARN, then existence. As in AWS, the policy is checked
    /// first, on the ARN the caller asked for (always in the caller's own account); then an
    /// instance of another account is answered exactly like an id that does not exist, so a
    /// caller can learn neither that it exists nor who owns it.
    pub(crate) fn authorize(
        &self,
        ctx: &RequestContext,
        action: Action,
        id: &InstanceId,
        os_user: Option<&str>,
    ) -> Result<Arc<Instance>, ConsoleError> {
        self.decide(
            ctx,
            action,
            Target {
                instance: Some(id),
                os_user,
            },
        )?;
        self.registry
            .instance(id)
            .filter(|i| i.account == ctx.principal.account)
            .map(Arc::clone)
            .ok_or_else(|| ConsoleError::InstanceNotFound(NotFound::one(id.clone())))
    }

    /// Audits the outcome of an operation and passes it through; a successful operation whose
    /// audit record cannot be written becomes an internal error (no grant without a record),
    /// while a refusal stays the refusal the caller gets.
    pub(crate) async fn audited<T>(
        &self,
        mut event: AuditEvent,
        result: Result<T, ConsoleError>,
    ) -> Result<T, ConsoleError> {
        event.outcome = match &result {
            Ok(_) => AuditOutcome::Success,
            Err(e) => AuditOutcome::Error(e.code().to_owned()),
        };
        if let Err(ConsoleError::Auth(denial)) = &result {
            event.denial = Some((**denial).clone());
        }
        match self.audit.record(&event).await {
            Ok(()) => result,
            Err(audit_err) => match result {
                Ok(_) => {
                    tracing::error!(error = %audit_err, request_id = %event.request_id, "audit record failed");
                    Err(ConsoleError::Internal(format!("audit sink: {audit_err}")))
                }
                Err(e) => {
                    self.refusal_record_failed(&event.request_id, &audit_err.to_string());
                    Err(e)
                }
            },
        }
    }

    /// A fresh grant of `key` to the caller, living `[keys] ttl_seconds` from now.
    pub(crate) fn new_grant(&self, ctx: &RequestContext, key: SshPublicKey) -> Grant {
        let ttl_ms = u64::try_from(self.settings.key_ttl.as_millis()).unwrap_or(u64::MAX);
        Grant {
            key,
            principal_arn: ctx.principal.arn.clone(),
            request_id: ctx.request_id.clone(),
            expires_at_ms: self.now_ms().saturating_add(ttl_ms),
            used: false,
        }
    }

    /// Stores a push whose checks passed, audit first: the record (outcome success) is durable
    /// before the grant is stored, so no key opens a session without its record, and a push
    /// whose record cannot be written fails without touching the previous grant. If the store
    /// then refuses (a session took the port after the checks) or fails, a second record for
    /// the same request id says so: the trail shows the refusal the caller received. (A store
    /// that failed, a timeout say, may still have stored the grant; its record is there.)
    pub(crate) async fn audited_push(
        &self,
        mut event: AuditEvent,
        key: GrantKey,
        grant: Grant,
    ) -> Result<PushReceipt, ConsoleError> {
        event.outcome = AuditOutcome::Success;
        if let Err(e) = self.audit.record(&event).await {
            tracing::error!(error = %e, request_id = %event.request_id, "audit record failed; push refused");
            return Err(ConsoleError::Internal(format!("audit sink: {e}")));
        }
        let receipt = PushReceipt {
            request_id: grant.request_id.clone(),
            expires_at_ms: grant.expires_at_ms,
        };
        let now_ms = self.now_ms();
        let refused = match self.slots.push_grant(&key, grant, now_ms).await {
            Ok(PushOutcome::Stored) => return Ok(receipt),
            Ok(refusal) => match key.slot() {
                Some(slot) => slot_busy(&slot, &refusal.slot_state(), now_ms),
                None => ConsoleError::Internal("the store refused an OS-user grant".to_owned()),
            },
            Err(e) => ConsoleError::Internal(format!("grant store: {e}")),
        };
        event.time_ms = now_ms;
        event.outcome = AuditOutcome::Error(refused.code().to_owned());
        if let Err(e) = self.audit.record(&event).await {
            // The caller is refused either way; the success record stands alone in the trail
            // and no grant was stored for it.
            self.refusal_record_failed(&event.request_id, &e.to_string());
        }
        Err(refused)
    }
}

/// The refusal of a push for a port whose slot is in `state`.
pub(crate) fn slot_busy(slot: &Slot, state: &SlotState, now_ms: u64) -> ConsoleError {
    let tearing_down_for_s = match state {
        SlotState::TearingDown { until_ms } => Some(until_ms.saturating_sub(now_ms).div_ceil(1000)),
        SlotState::Held { .. } | SlotState::Free => None,
    };
    ConsoleError::SessionLimitExceeded(Busy {
        instance: slot.instance.clone(),
        port: slot.port,
        tearing_down_for_s,
    })
}

impl ConsoleError {
    /// The AWS exception name for this error; also the audit vocabulary.
    pub fn code(&self) -> &'static str {
        match self {
            ConsoleError::Auth(_) => "AuthException",
            ConsoleError::SerialConsoleAccessDisabled(_) => "SerialConsoleAccessDisabledException",
            ConsoleError::InvalidArgs(_) => "InvalidArgsException",
            ConsoleError::InstanceNotFound(_) => "EC2InstanceNotFoundException",
            ConsoleError::InstanceTypeInvalid(_) => "EC2InstanceTypeInvalidException",
            ConsoleError::InstanceStateInvalid(_) => "EC2InstanceStateInvalidException",
            ConsoleError::InstanceUnavailable(_) => "EC2InstanceUnavailableException",
            ConsoleError::SessionUnsupported(_) => "SerialConsoleSessionUnsupportedException",
            ConsoleError::SessionLimitExceeded(_) => "SerialConsoleSessionLimitExceededException",
            ConsoleError::SessionUnavailable(_) => "SerialConsoleSessionUnavailableException",
            ConsoleError::Throttling(_) => "ThrottlingException",
            ConsoleError::SessionNotFound(_) => "ResourceNotFoundException",
            ConsoleError::Internal(_) => "ServiceException",
        }
    }
}
