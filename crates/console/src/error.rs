//! The domain's errors: one variant per way an operation can be refused.
//!
//! Adapters map these to their protocol (AWS JSON error codes, SSH messages). The `String`s carry
//! the specific reason that completes AWS's documented message; [`ConsoleError::Internal`] carries
//! a cause for the operator's log that must never be shown to the client.

/// A store (memory, Redis, SQLite) failed or timed out.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl StoreError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ConsoleError {
    /// The principal's policy does not allow this action (on this instance). An instance of
    /// another account is never this: it is [`ConsoleError::InstanceNotFound`], like an unknown id.
    #[error("not authorized: {0}")]
    Auth(String),
    #[error("serial console access is disabled for account {0}")]
    SerialConsoleAccessDisabled(String),
    #[error("invalid argument: {0}")]
    InvalidArgs(String),
    #[error("instance not found: {0}")]
    InstanceNotFound(String),
    #[error("instance type {0} is not supported")]
    InstanceTypeInvalid(String),
    #[error("instance is {0}")]
    InstanceStateInvalid(String),
    #[error("console unreachable: {0}")]
    InstanceUnavailable(String),
    #[error("firmware unsupported: {0}")]
    SessionUnsupported(String),
    #[error("session limit: {0}")]
    SessionLimitExceeded(String),
    #[error("session slot unavailable: {0}")]
    SessionUnavailable(String),
    #[error("throttled: {0}")]
    Throttling(String),
    /// Internal failure; the cause is for logs only.
    #[error("internal error: {0}")]
    Internal(String),
}
