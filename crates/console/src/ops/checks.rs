//! Steps shared by the push operations: throttle, authorize, look up, audit.

use std::sync::Arc;

use crate::audit::{AuditEvent, AuditOutcome};
use crate::error::ConsoleError;
use crate::grants::GrantKey;
use crate::ids::InstanceId;
use crate::ops::PushReceipt;
use crate::policy::{Action, instance_arn};
use crate::registry::Instance;
use crate::service::{ConsoleService, RequestContext};

impl ConsoleService {
    /// The audit record of an API call by `ctx`, before its outcome is known.
    pub(crate) fn call_event(
        &self,
        ctx: &RequestContext,
        operation: &'static str,
        instance_id: Option<String>,
        target: Option<String>,
        key_fingerprint: Option<String>,
    ) -> AuditEvent {
        AuditEvent {
            time_ms: self.now_ms(),
            request_id: ctx.request_id.clone(),
            operation,
            principal_arn: Some(ctx.principal.arn.clone()),
            source_ip: ctx.source_ip,
            instance_id,
            target,
            key_fingerprint,
            outcome: AuditOutcome::Success,
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

    /// IAM check on the instance ARN, then existence. As in AWS, the policy is checked first,
    /// on the ARN the caller asked for (always in the caller's own account); then an instance
    /// of another account is answered exactly like an id that does not exist, so a caller can
    /// learn neither that it exists nor who owns it.
    pub(crate) fn authorize(
        &self,
        ctx: &RequestContext,
        action: Action,
        id: &InstanceId,
    ) -> Result<Arc<Instance>, ConsoleError> {
        let requested_arn = instance_arn(&self.settings.region, &ctx.principal.account, id);
        if !ctx.principal.allows(action, id, &requested_arn) {
            return Err(ConsoleError::Auth(format!(
                "{} is not authorized to perform {} on resource {requested_arn}.",
                ctx.principal.arn,
                action.iam_name()
            )));
        }
        self.registry
            .instance(id)
            .filter(|i| i.account == ctx.principal.account)
            .map(Arc::clone)
            .ok_or_else(|| ConsoleError::InstanceNotFound(format!("Instance {id} does not exist.")))
    }

    /// Audits the outcome of an operation and passes it through; a successful operation whose
    /// audit record cannot be written becomes an internal error (no grant without a record).
    pub(crate) async fn audited<T>(
        &self,
        mut event: AuditEvent,
        result: Result<T, ConsoleError>,
    ) -> Result<T, ConsoleError> {
        event.outcome = match &result {
            Ok(_) => AuditOutcome::Success,
            Err(e) => AuditOutcome::Error(e.code().to_owned()),
        };
        match self.audit.record(&event).await {
            Ok(()) => result,
            Err(audit_err) => {
                tracing::error!(error = %audit_err, request_id = %event.request_id, "audit record failed");
                match result {
                    Ok(_) => Err(ConsoleError::Internal(format!("audit sink: {audit_err}"))),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// [`audited`](Self::audited) for a push. A grant that was stored but whose record could
    /// not be written is taken back: the caller sees an error, so the key must not open a
    /// session either (no access without a record).
    pub(crate) async fn audited_push(
        &self,
        event: AuditEvent,
        key: GrantKey,
        result: Result<PushReceipt, ConsoleError>,
    ) -> Result<PushReceipt, ConsoleError> {
        let stored = result.is_ok();
        let request_id = event.request_id.clone();
        let out = self.audited(event, result).await;
        if stored
            && out.is_err()
            && let Err(e) = self.grants.take(&key, &request_id).await
        {
            tracing::error!(error = %e, request_id = %request_id, "could not take back an unaudited grant; it expires with the key TTL");
        }
        out
    }
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
            ConsoleError::Internal(_) => "ServiceException",
        }
    }
}
