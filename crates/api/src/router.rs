//! Maps `X-Amz-Target` to an operation; nothing else.

use axum::http::HeaderMap;

use crate::error::{ApiError, ErrorCode};

const TARGET_PREFIX: &str = "AWSEC2InstanceConnectService.";

/// The operations this service implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    SendSerialConsoleSSHPublicKey,
    SendSSHPublicKey,
    /// serialgate's session control (no AWS counterpart).
    ListSerialConsoleSessions,
    EndSerialConsoleSession,
    /// serialgate's spectators: a key that may watch a port, read-only.
    SpectateSerialConsole,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::SendSerialConsoleSSHPublicKey => "SendSerialConsoleSSHPublicKey",
            Operation::SendSSHPublicKey => "SendSSHPublicKey",
            Operation::ListSerialConsoleSessions => "ListSerialConsoleSessions",
            Operation::EndSerialConsoleSession => "EndSerialConsoleSession",
            Operation::SpectateSerialConsole => "SpectateSerialConsole",
        }
    }
}

/// The operation a request asked for, as the audit trail names it: the target without the
/// service's prefix, or the whole target of another service. `None` when there is none.
pub fn requested_target(headers: &HeaderMap) -> Option<&str> {
    let target = headers.get("x-amz-target")?.to_str().ok()?;
    Some(target.strip_prefix(TARGET_PREFIX).unwrap_or(target))
}

/// Reads the target header. Missing, foreign or unknown targets are `UnknownOperationException`.
pub fn route(headers: &HeaderMap) -> Result<Operation, ApiError> {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match target.strip_prefix(TARGET_PREFIX) {
        Some("SendSerialConsoleSSHPublicKey") => Ok(Operation::SendSerialConsoleSSHPublicKey),
        Some("SendSSHPublicKey") => Ok(Operation::SendSSHPublicKey),
        Some("ListSerialConsoleSessions") => Ok(Operation::ListSerialConsoleSessions),
        Some("EndSerialConsoleSession") => Ok(Operation::EndSerialConsoleSession),
        Some("SpectateSerialConsole") => Ok(Operation::SpectateSerialConsole),
        _ => Err(ApiError::verbatim(
            ErrorCode::UnknownOperationException,
            if target.is_empty() {
                "Missing X-Amz-Target header.".to_owned()
            } else {
                format!("Operation {target} is not supported by this service.")
            },
        )),
    }
}
