//! Grants: a pushed key's permission to open one session, valid for `[keys] ttl_seconds`.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::{InstanceId, OsUser, SerialPort};
use crate::keys::SshPublicKey;
use crate::leases::Slot;

/// What a grant opens: a serial port (`SendSerialConsoleSSHPublicKey`), an OS user's SSH login
/// (`SendSSHPublicKey`), or a read-only view of a serial port (`SpectateSerialConsole`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GrantTarget {
    SerialPort(SerialPort),
    OsUser(OsUser),
    /// A spectator's grant, one per key (`fingerprint`, `SHA256:…`): spectators do not share
    /// the port's one slot, so several may hold grants at once, and a push replaces only the
    /// same key's.
    Spectator {
        port: SerialPort,
        fingerprint: String,
    },
}

/// The store key. A new push for the same key replaces the previous grant, as AWS keeps one key
/// per instance and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantKey {
    pub instance: InstanceId,
    pub target: GrantTarget,
}

impl GrantKey {
    pub fn serial(instance: InstanceId, port: SerialPort) -> Self {
        Self {
            instance,
            target: GrantTarget::SerialPort(port),
        }
    }

    /// The grant of a spectator with the key whose fingerprint (`SHA256:…`) is given.
    pub fn spectator(instance: InstanceId, port: SerialPort, fingerprint: &str) -> Self {
        Self {
            instance,
            target: GrantTarget::Spectator {
                port,
                fingerprint: fingerprint.to_owned(),
            },
        }
    }

    /// The session slot a grant under this key opens: its serial port's; none for an OS user.
    pub fn slot(&self) -> Option<Slot> {
        match &self.target {
            GrantTarget::SerialPort(port) => Some(Slot {
                instance: self.instance.clone(),
                port: *port,
            }),
            // Spectators do not take the slot.
            GrantTarget::OsUser(_) | GrantTarget::Spectator { .. } => None,
        }
    }
}

/// One pushed key. Records who pushed it and when it stops opening sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub key: SshPublicKey,
    pub principal_arn: String,
    pub request_id: String,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// Set once the grant has opened its session. A used grant opens nothing more, but it still
    /// identifies its key until expiry, so a second client with the same key is told the slot
    /// is busy instead of being refused like a stranger.
    pub used: bool,
}

impl Grant {
    pub fn is_live(&self, now_ms: u64) -> bool {
        now_ms < self.expires_at_ms
    }
}

/// Reading and retiring grants. Grants are written only through [`SlotStore`]
/// (`push_grant`, `open_with_grant`), which changes a serial grant together with its port's
/// session slot; there is no blind write. Implementations must honour expiry themselves: `find`
/// never returns an expired grant, whatever the state of background purging.
///
/// [`SlotStore`]: crate::slots::SlotStore
#[async_trait]
pub trait GrantStore: Send + Sync + std::fmt::Debug {
    /// The live grant under `key`, if any.
    async fn find(&self, key: &GrantKey, now_ms: u64) -> Result<Option<Grant>, StoreError>;

    /// Removes the grant under `key` if it is still the one pushed by `request_id` (a newer push
    /// is left alone). Returns whether something was removed.
    async fn take(&self, key: &GrantKey, request_id: &str) -> Result<bool, StoreError>;

    /// Drops expired grants; returns how many. Stores with native expiry may do nothing.
    async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError>;
}
