//! Grants: a pushed key's permission to open one session, valid for `[keys] ttl_seconds`.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::{InstanceId, OsUser, SerialPort};
use crate::keys::SshPublicKey;

/// What a grant opens: a serial port (`SendSerialConsoleSSHPublicKey`) or an OS user's SSH login
/// (`SendSSHPublicKey`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GrantTarget {
    SerialPort(SerialPort),
    OsUser(OsUser),
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

/// Storage for grants. Implementations must honour expiry themselves: `find` never returns an
/// expired grant, whatever the state of background purging.
#[async_trait]
pub trait GrantStore: Send + Sync + std::fmt::Debug {
    /// Stores `grant` under `key`, replacing any previous one; it expires at `grant.expires_at_ms`.
    async fn put(&self, key: &GrantKey, grant: Grant) -> Result<(), StoreError>;

    /// The live grant under `key`, if any.
    async fn find(&self, key: &GrantKey, now_ms: u64) -> Result<Option<Grant>, StoreError>;

    /// Removes the grant under `key` if it is still the one pushed by `request_id` (a newer push
    /// is left alone). Returns whether something was removed.
    async fn take(&self, key: &GrantKey, request_id: &str) -> Result<bool, StoreError>;

    /// Drops expired grants; returns how many. Stores with native expiry may do nothing.
    async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError>;
}

/// The embedded store: a map behind a mutex. Critical sections are a hash lookup, never I/O.
#[derive(Debug, Default)]
pub struct MemoryGrantStore {
    grants: Mutex<HashMap<GrantKey, Grant>>,
}

impl MemoryGrantStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GrantKey, Grant>> {
        // A poisoned lock only means another thread panicked mid-insert; the map is still usable.
        self.grants.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of grants held, live or not (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl GrantStore for MemoryGrantStore {
    async fn put(&self, key: &GrantKey, grant: Grant) -> Result<(), StoreError> {
        self.lock().insert(key.clone(), grant);
        Ok(())
    }

    async fn find(&self, key: &GrantKey, now_ms: u64) -> Result<Option<Grant>, StoreError> {
        Ok(self.lock().get(key).filter(|g| g.is_live(now_ms)).cloned())
    }

    async fn take(&self, key: &GrantKey, request_id: &str) -> Result<bool, StoreError> {
        let mut map = self.lock();
        if map.get(key).is_some_and(|g| g.request_id == request_id) {
            map.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, g| g.is_live(now_ms));
        Ok(before - map.len())
    }
}
