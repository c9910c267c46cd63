//! The session directory: who holds which serial port right now, on every node, and the
//! requests to end those sessions.
//!
//! An entry exists for each held slot and lives exactly as long as its lease: the holder writes
//! it when the session opens ([`SessionDirectory::publish`]), moves its expiry with every lease
//! renewal ([`SessionDirectory::refresh`]) and removes it when it releases the slot. A node that
//! dies stops refreshing, so its entries lapse with its leases; readers ignore lapsed entries.
//!
//! Ending a session is a request, not an act: [`SessionDirectory::request_end`] marks the entry
//! and tells the holders ([`SessionDirectory::end_requests`]: a broadcast in memory, pub/sub on
//! Redis). Only the holder closes the session and frees its slot, once it has stopped writing to
//! the console, so a slot is never free while its holder may still write. A holder that missed
//! the notice finds the mark at its next renewal.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::error::StoreError;
use crate::leases::Slot;

/// The longest `Reason` an end request may carry, in characters.
pub const MAX_END_REASON_CHARS: usize = 256;

/// How many end requests a node's sessions can fall behind before they miss one (and find it at
/// their next lease renewal instead).
pub const END_REQUEST_BACKLOG: usize = 256;

/// One live session, as every node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    pub slot: Slot,
    /// The fencing token of the lease the session holds.
    pub token: u64,
    /// Who pushed the key that opened the session.
    pub principal_arn: String,
    /// The SSH client's address (`IP:PORT`), when known.
    pub source_address: Option<String>,
    /// When the session opened, ms since the Unix epoch.
    pub started_ms: u64,
    /// The node that holds the session.
    pub node: String,
    /// Read-only viewers of the port now (spectators), counted when the entry is listed.
    pub spectators: u32,
    /// When the entry lapses unless refreshed: its lease's expiry.
    pub expires_at_ms: u64,
}

/// A request to end one session, for its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRequest {
    pub slot: Slot,
    /// The lease token of the session asked to end: a later session on the slot is not it.
    pub token: u64,
    /// Who asked (an ARN, or `serialgate` for the idle timeout).
    pub by: String,
    pub reason: String,
}

/// Storage for the directory. Every method is atomic with respect to the others.
#[async_trait]
pub trait SessionDirectory: Send + Sync + std::fmt::Debug {
    /// Writes the entry of a session that just took its slot.
    async fn publish(&self, entry: &SessionEntry) -> Result<(), StoreError>;

    /// Moves the entry's expiry after its lease's renewal and returns the end request waiting
    /// for it, if any. Changes nothing when the entry is gone or belongs to another lease.
    async fn refresh(
        &self,
        slot: &Slot,
        token: u64,
        expires_at_ms: u64,
    ) -> Result<Option<EndRequest>, StoreError>;

    /// Removes the entry of a session whose slot was released (only that lease's entry).
    async fn remove(&self, slot: &Slot, token: u64) -> Result<(), StoreError>;

    /// Every live entry at `now_ms`, in no particular order.
    async fn list(&self, now_ms: u64) -> Result<Vec<SessionEntry>, StoreError>;

    /// Marks the live session on `slot` as asked to end and notifies its holder. `None` when
    /// no session is live on the slot.
    async fn request_end(
        &self,
        slot: &Slot,
        by: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<EndRequest>, StoreError>;

    /// End requests as they are made, from any node. A receiver that falls more than
    /// [`END_REQUEST_BACKLOG`] behind loses the oldest; the renewal check still finds them.
    fn end_requests(&self) -> broadcast::Receiver<EndRequest>;

    /// Notes (or refreshes) that spectator `id` watches `slot` until `expires_at_ms`: a
    /// spectator refreshes its presence as a session renews its lease, so a dead node's
    /// spectators lapse. [`list`](Self::list) counts the live ones into each entry.
    async fn watch(&self, slot: &Slot, id: &str, expires_at_ms: u64) -> Result<(), StoreError>;

    /// Removes spectator `id` from `slot`.
    async fn unwatch(&self, slot: &Slot, id: &str) -> Result<(), StoreError>;
}

/// Spectators present per slot: id → expiry (ms since the Unix epoch).
type Watchers = HashMap<Slot, HashMap<String, u64>>;

/// The directory in memory, for a node that runs alone.
#[derive(Debug)]
pub struct MemoryDirectory {
    entries: Mutex<HashMap<Slot, (SessionEntry, Option<EndRequest>)>>,
    watchers: Mutex<Watchers>,
    notify: broadcast::Sender<EndRequest>,
}

impl Default for MemoryDirectory {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            watchers: Mutex::new(HashMap::new()),
            notify: broadcast::channel(END_REQUEST_BACKLOG).0,
        }
    }
}

impl MemoryDirectory {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Slot, (SessionEntry, Option<EndRequest>)>> {
        // Every critical section is one map operation: a poisoned lock holds consistent data.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SessionDirectory for MemoryDirectory {
    async fn publish(&self, entry: &SessionEntry) -> Result<(), StoreError> {
        self.lock()
            .insert(entry.slot.clone(), (entry.clone(), None));
        Ok(())
    }

    async fn refresh(
        &self,
        slot: &Slot,
        token: u64,
        expires_at_ms: u64,
    ) -> Result<Option<EndRequest>, StoreError> {
        match self.lock().get_mut(slot) {
            Some((entry, end)) if entry.token == token => {
                entry.expires_at_ms = expires_at_ms;
                Ok(end.clone())
            }
            _ => Ok(None),
        }
    }

    async fn remove(&self, slot: &Slot, token: u64) -> Result<(), StoreError> {
        let mut map = self.lock();
        if map.get(slot).is_some_and(|(e, _)| e.token == token) {
            map.remove(slot);
        }
        Ok(())
    }

    async fn list(&self, now_ms: u64) -> Result<Vec<SessionEntry>, StoreError> {
        let mut entries: Vec<SessionEntry> = {
            let mut map = self.lock();
            // Lapsed entries belong to sessions that can no longer be holding their slot.
            map.retain(|_, (e, _)| now_ms < e.expires_at_ms);
            map.values().map(|(e, _)| e.clone()).collect()
        };
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        for ids in watchers.values_mut() {
            ids.retain(|_, expires| now_ms < *expires);
        }
        watchers.retain(|_, ids| !ids.is_empty());
        for entry in &mut entries {
            entry.spectators = watchers
                .get(&entry.slot)
                .map_or(0, |ids| u32::try_from(ids.len()).unwrap_or(u32::MAX));
        }
        Ok(entries)
    }

    async fn watch(&self, slot: &Slot, id: &str, expires_at_ms: u64) -> Result<(), StoreError> {
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(slot.clone())
            .or_default()
            .insert(id.to_owned(), expires_at_ms);
        Ok(())
    }

    async fn unwatch(&self, slot: &Slot, id: &str) -> Result<(), StoreError> {
        let mut watchers = self.watchers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(ids) = watchers.get_mut(slot) {
            ids.remove(id);
            if ids.is_empty() {
                watchers.remove(slot);
            }
        }
        Ok(())
    }

    async fn request_end(
        &self,
        slot: &Slot,
        by: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<EndRequest>, StoreError> {
        let request = {
            let mut map = self.lock();
            let Some((entry, end)) = map.get_mut(slot).filter(|(e, _)| now_ms < e.expires_at_ms)
            else {
                return Ok(None);
            };
            let request = EndRequest {
                slot: slot.clone(),
                token: entry.token,
                by: by.to_owned(),
                reason: reason.to_owned(),
            };
            *end = Some(request.clone());
            request
        };
        // No receiver (no session on this node is watching) is not an error: the mark stays.
        let _ = self.notify.send(request.clone());
        Ok(Some(request))
    }

    fn end_requests(&self) -> broadcast::Receiver<EndRequest> {
        self.notify.subscribe()
    }
}
