//! The domain's errors: one variant per way an operation can be refused.
//!
//! Adapters map these to their protocol (AWS JSON error codes, SSH messages). The `String`s carry
//! the specific reason that completes AWS's documented message; [`ConsoleError::Internal`] carries
//! a cause for the operator's log that must never be shown to the client.

use crate::ids::{AvailabilityZone, InstanceId, SerialPort};
use crate::policy::Action;
use crate::registry::InstanceState;

/// A store (memory, Redis, SQLite) failed or timed out.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl StoreError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Why the caller's policies refused a request, in IAM's terms; adapters word it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The caller's ARN.
    pub principal_arn: String,
    pub action: Action,
    /// The instance ARN (in the caller's account), or `*` for an account-level action.
    pub resource: String,
    /// The `Deny` statement that refused (`policy "NAME" Statement[I] (Sid "S")`); `None` when
    /// no statement allowed the request (an implicit deny).
    pub denied_by: Option<String>,
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} may not {} on {}: ",
            self.principal_arn,
            self.action.iam_name(),
            self.resource
        )?;
        match &self.denied_by {
            Some(statement) => write!(f, "denied by {statement}"),
            None => f.write_str("no statement allows it"),
        }
    }
}

/// Instances the caller named that do not exist for it (unknown, or another account's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFound {
    pub ids: Vec<InstanceId>,
    /// The zone the caller looked in, when the instance exists but in another zone.
    pub availability_zone: Option<AvailabilityZone>,
}

impl NotFound {
    pub fn one(id: InstanceId) -> Self {
        Self {
            ids: vec![id],
            availability_zone: None,
        }
    }
}

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (n, id) in self.ids.iter().enumerate() {
            if n > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{id}")?;
        }
        if let Some(az) = &self.availability_zone {
            write!(f, " in {az}")?;
        }
        Ok(())
    }
}

/// An instance whose state does not allow what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateInvalid {
    pub instance: InstanceId,
    pub state: InstanceState,
    /// The state change asked for (`StartInstances`, `StopInstances`, `RebootInstances`);
    /// `None` for a key push, which needs a running instance.
    pub change: Option<Action>,
}

/// A serial port that cannot take a push: a session holds it, or the last one is tearing down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    pub instance: InstanceId,
    pub port: SerialPort,
    /// Seconds until the teardown ends (rounded up), when the port is tearing down.
    pub tearing_down_for_s: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsoleError {
    /// The principal's policies do not allow this action (on this instance). An instance of
    /// another account is never this: it is [`ConsoleError::InstanceNotFound`], like an unknown id.
    #[error("not authorized: {0}")]
    Auth(Box<Denial>),
    #[error("serial console access is disabled for account {0}")]
    SerialConsoleAccessDisabled(String),
    #[error("invalid argument: {0}")]
    InvalidArgs(String),
    #[error("instance not found: {0}")]
    InstanceNotFound(NotFound),
    #[error("instance type {0} is not supported")]
    InstanceTypeInvalid(String),
    #[error("instance {} is {}", .0.instance, .0.state)]
    InstanceStateInvalid(StateInvalid),
    #[error("console unreachable: {0}")]
    InstanceUnavailable(String),
    #[error("firmware unsupported: {0}")]
    SessionUnsupported(String),
    #[error("session limit: {0:?}")]
    SessionLimitExceeded(Busy),
    #[error("session slot unavailable: {0}")]
    SessionUnavailable(String),
    #[error("throttled: {0}")]
    Throttling(String),
    /// No live session on the serial port a request named (`EndSerialConsoleSession`).
    #[error("no session on {0}")]
    SessionNotFound(String),
    /// Internal failure; the cause is for logs only.
    #[error("internal error: {0}")]
    Internal(String),
}
