//! The domain operations, one file each.

mod authorize;
pub use authorize::Verdict;
mod calls;
mod checks;
pub mod ec2;
pub mod instance_keys;
pub mod open_session;
pub mod push_os_user_key;
pub mod push_serial_key;
pub mod sessions;
pub mod spectate;

pub use calls::CallSubject;
pub use calls::SampledWarning;
pub use instance_keys::InstanceKeysRequest;
pub use open_session::{OpenedSession, Renewal, SessionDenied};
pub use push_os_user_key::PushOsUserKey;
pub use push_serial_key::PushSerialKey;
pub use sessions::EndSessionRequest;
pub use spectate::Spectator;

/// What a successful push returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReceipt {
    pub request_id: String,
    /// When the key stops opening sessions, ms since the Unix epoch.
    pub expires_at_ms: u64,
}
