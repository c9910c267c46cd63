//! Why a console could not be opened or probed.

use std::io;
use std::time::Duration;

use crate::uri::ConsoleUri;

/// A console could not be opened or probed. The message names the console URI and the cause, so
/// it can go to the operator's log as it is (it is not meant for the SSH user).
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Connecting (or the whole probe) took longer than `connect_timeout`.
    #[error("{uri}: no connection within {} ms", .after.as_millis())]
    Timeout { uri: String, after: Duration },
    /// The operating system refused: no such socket, connection refused, permission denied, ...
    #[error("{uri}: {cause}")]
    Io { uri: String, cause: io::Error },
    /// The address exists but cannot be a console (not a character device, not executable, ...).
    #[error("{uri}: {reason}")]
    Unusable { uri: String, reason: String },
}

impl OpenError {
    pub(crate) fn io(uri: &ConsoleUri, cause: io::Error) -> Self {
        Self::Io {
            uri: uri.to_string(),
            cause,
        }
    }

    pub(crate) fn timeout(uri: &ConsoleUri, after: Duration) -> Self {
        Self::Timeout {
            uri: uri.to_string(),
            after,
        }
    }

    pub(crate) fn unusable(uri: &ConsoleUri, reason: impl Into<String>) -> Self {
        Self::Unusable {
            uri: uri.to_string(),
            reason: reason.into(),
        }
    }
}
