//! The embedded store: grants and session slots of one node, under one mutex.
//!
//! One lock for both is what makes [`SlotStore::push_grant`] and
//! [`SlotStore::open_with_grant`] atomic: each reads one map and writes the other inside a
//! single critical section. Critical sections are hash lookups, never I/O or `.await`.
//! [`MemoryOwnership`] keeps console ownership and the node registry the same way, under a
//! mutex of its own (no step reads or writes both it and the slots).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::StoreError;
use crate::grants::{Grant, GrantKey, GrantStore};
use crate::ids::InstanceId;
use crate::leases::{Lease, SessionLeases, Slot, SlotState, slot_state};
use crate::ownership::{ConsoleOwnership, NodeInfo, Owner, check_node_name};
use crate::slots::{OpenDenied, OpenOutcome, PushOutcome, SlotStore};

/// What the store keeps for a slot that is not free.
#[derive(Debug)]
enum Entry {
    Held {
        token: u64,
        holder: String,
        expires_at_ms: u64,
    },
    TearingDown {
        until_ms: u64,
    },
}

#[derive(Debug, Default)]
struct Inner {
    grants: HashMap<GrantKey, Grant>,
    slots: HashMap<Slot, Entry>,
    /// Last fencing token handed out, for every slot.
    last_token: u64,
}

impl Inner {
    fn state(&self, slot: &Slot, teardown_ms: u64, now_ms: u64) -> SlotState {
        match self.slots.get(slot) {
            None => SlotState::Free,
            Some(Entry::Held {
                holder,
                expires_at_ms,
                ..
            }) => slot_state(
                Some((holder.as_str(), *expires_at_ms)),
                None,
                teardown_ms,
                now_ms,
            ),
            Some(Entry::TearingDown { until_ms }) => {
                slot_state(None, Some(*until_ms), teardown_ms, now_ms)
            }
        }
    }

    /// Gives the slot to `holder` with a new token. The caller has checked that it is free.
    fn take_slot(&mut self, slot: &Slot, holder: &str, ttl_ms: u64, now_ms: u64) -> Lease {
        self.last_token += 1;
        let token = self.last_token;
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        self.slots.insert(
            slot.clone(),
            Entry::Held {
                token,
                holder: holder.to_owned(),
                expires_at_ms,
            },
        );
        Lease {
            slot: slot.clone(),
            token,
            holder: holder.to_owned(),
            expires_at_ms,
        }
    }
}

/// Grants and session slots in memory, for a node that runs alone.
#[derive(Debug)]
pub struct MemorySlotStore {
    teardown_ms: u64,
    inner: Mutex<Inner>,
}

impl MemorySlotStore {
    /// A store whose released or lapsed leases block their slot for `teardown_ms`.
    pub fn new(teardown_ms: u64) -> Self {
        Self {
            teardown_ms,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked between two statements of a
        // critical section, none of which leaves the maps inconsistent; they stay usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl GrantStore for MemorySlotStore {
    async fn find(&self, key: &GrantKey, now_ms: u64) -> Result<Option<Grant>, StoreError> {
        Ok(self
            .lock()
            .grants
            .get(key)
            .filter(|g| g.is_live(now_ms))
            .cloned())
    }

    async fn take(&self, key: &GrantKey, request_id: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if inner
            .grants
            .get(key)
            .is_some_and(|g| g.request_id == request_id)
        {
            inner.grants.remove(key);
            return Ok(true);
        }
        Ok(false)
    }

    async fn purge_expired(&self, now_ms: u64) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.grants.len();
        inner.grants.retain(|_, g| g.is_live(now_ms));
        Ok(before - inner.grants.len())
    }
}

#[async_trait]
impl SessionLeases for MemorySlotStore {
    async fn state(&self, slot: &Slot, now_ms: u64) -> Result<SlotState, StoreError> {
        Ok(self.lock().state(slot, self.teardown_ms, now_ms))
    }

    async fn acquire(
        &self,
        slot: &Slot,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        let mut inner = self.lock();
        if !inner.state(slot, self.teardown_ms, now_ms).is_free() {
            return Ok(None);
        }
        Ok(Some(inner.take_slot(slot, holder, ttl_ms, now_ms)))
    }

    async fn renew(
        &self,
        lease: &Lease,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        let mut inner = self.lock();
        match inner.slots.get_mut(&lease.slot) {
            // A lease past its expiry but not yet taken by anyone is still ours: a slow renewal
            // must not cost a live session its slot.
            Some(Entry::Held {
                token,
                expires_at_ms,
                ..
            }) if *token == lease.token => {
                *expires_at_ms = now_ms.saturating_add(ttl_ms);
                Ok(Some(Lease {
                    expires_at_ms: *expires_at_ms,
                    ..lease.clone()
                }))
            }
            _ => Ok(None),
        }
    }

    async fn release(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(Entry::Held { token, .. }) = inner.slots.get(&lease.slot)
            && *token == lease.token
        {
            let until_ms = now_ms.saturating_add(self.teardown_ms);
            inner
                .slots
                .insert(lease.slot.clone(), Entry::TearingDown { until_ms });
        }
        Ok(())
    }

    async fn release_now(&self, lease: &Lease, _now_ms: u64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(Entry::Held { token, .. }) = inner.slots.get(&lease.slot)
            && *token == lease.token
        {
            inner.slots.remove(&lease.slot);
        }
        Ok(())
    }
}

#[async_trait]
impl SlotStore for MemorySlotStore {
    async fn push_grant(
        &self,
        key: &GrantKey,
        grant: Grant,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError> {
        let mut inner = self.lock();
        if let Some(slot) = key.slot()
            && let Some(refused) =
                PushOutcome::refusal(inner.state(&slot, self.teardown_ms, now_ms))
        {
            return Ok(refused);
        }
        inner.grants.insert(key.clone(), grant);
        Ok(PushOutcome::Stored)
    }

    async fn open_with_grant(
        &self,
        slot: &Slot,
        request_id: &str,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<OpenOutcome, StoreError> {
        let mut inner = self.lock();
        let key = GrantKey::serial(slot.instance.clone(), slot.port);
        let state = inner.state(slot, self.teardown_ms, now_ms);
        let used = match inner.grants.get(&key) {
            Some(g) if g.request_id == request_id && g.is_live(now_ms) => g.used,
            _ => return Ok(OpenOutcome::Denied(OpenDenied::GrantGone)),
        };
        if used {
            return Ok(OpenOutcome::Denied(OpenDenied::GrantSpent(state)));
        }
        if !state.is_free() {
            return Ok(OpenOutcome::Denied(OpenDenied::SlotBusy(state)));
        }
        let lease = inner.take_slot(slot, holder, ttl_ms, now_ms);
        if let Some(g) = inner.grants.get_mut(&key) {
            g.used = true;
        }
        Ok(OpenOutcome::Opened(lease))
    }
}

/// An instance's ownership lease, as [`MemoryOwnership`] keeps it.
#[derive(Debug)]
struct OwnerEntry {
    node: String,
    token: u64,
    expires_ms: u64,
}

#[derive(Debug, Default)]
struct OwnershipInner {
    owners: HashMap<InstanceId, OwnerEntry>,
    /// Last fencing token handed out, for every instance.
    last_token: u64,
    /// Announcements by node name (sorted, as `nodes` lists them), with their expiry.
    nodes: BTreeMap<String, (NodeInfo, u64)>,
}

impl OwnershipInner {
    /// The instance's lease if it is live at `now_ms`.
    fn live(&self, instance: &InstanceId, now_ms: u64) -> Option<&OwnerEntry> {
        self.owners.get(instance).filter(|o| now_ms < o.expires_ms)
    }
}

/// Console ownership and the node registry in memory, for a node that runs alone, under one
/// mutex (critical sections are map operations, never I/O or `.await`).
#[derive(Debug, Default)]
pub struct MemoryOwnership {
    inner: Mutex<OwnershipInner>,
}

impl MemoryOwnership {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, OwnershipInner> {
        // As for `MemorySlotStore`: no critical section leaves the maps inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl ConsoleOwnership for MemoryOwnership {
    async fn hold(
        &self,
        instance: &InstanceId,
        node: &str,
        held: Option<u64>,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        check_node_name(node)?;
        let mut inner = self.lock();
        let expires_ms = now_ms.saturating_add(ttl_ms);
        let live = inner.live(instance, now_ms);
        let Some(token) = held else {
            if live.is_some() {
                return Ok(None);
            }
            inner.last_token += 1;
            let token = inner.last_token;
            inner.owners.insert(
                instance.clone(),
                OwnerEntry {
                    node: node.to_owned(),
                    token,
                    expires_ms,
                },
            );
            return Ok(Some(token));
        };
        if !live.is_some_and(|o| o.node == node && o.token == token) {
            return Ok(None);
        }
        if let Some(o) = inner.owners.get_mut(instance) {
            o.expires_ms = expires_ms;
        }
        Ok(Some(token))
    }

    async fn release(
        &self,
        instance: &InstanceId,
        node: &str,
        token: u64,
    ) -> Result<(), StoreError> {
        check_node_name(node)?;
        let mut inner = self.lock();
        if inner
            .owners
            .get(instance)
            .is_some_and(|o| o.node == node && o.token == token)
        {
            inner.owners.remove(instance);
        }
        Ok(())
    }

    async fn owner(&self, instance: &InstanceId, now_ms: u64) -> Result<Option<Owner>, StoreError> {
        Ok(self.lock().live(instance, now_ms).map(|o| Owner {
            node: o.node.clone(),
            token: o.token,
            expires_ms: o.expires_ms,
        }))
    }

    async fn announce(&self, info: &NodeInfo, ttl_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        check_node_name(&info.node)?;
        let info = NodeInfo {
            renewed_ms: now_ms,
            ..info.clone()
        };
        let expires_ms = now_ms.saturating_add(ttl_ms);
        self.lock()
            .nodes
            .insert(info.node.clone(), (info, expires_ms));
        Ok(())
    }

    async fn nodes(&self, now_ms: u64) -> Result<Vec<NodeInfo>, StoreError> {
        let mut inner = self.lock();
        inner
            .nodes
            .retain(|_, (_, expires_ms)| now_ms < *expires_ms);
        Ok(inner.nodes.values().map(|(info, _)| info.clone()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{InstanceId, SerialPort};

    fn slot() -> Slot {
        Slot {
            instance: InstanceId::parse("i-0123456789abcdef0").unwrap(),
            port: SerialPort::ZERO,
        }
    }

    #[tokio::test]
    async fn one_holder_then_teardown_then_free() {
        let l = MemorySlotStore::new(30_000);
        let a = l
            .acquire(&slot(), "a", 15_000, 1_000)
            .await
            .unwrap()
            .unwrap();
        assert!(
            l.acquire(&slot(), "b", 15_000, 1_001)
                .await
                .unwrap()
                .is_none()
        );
        l.release(&a, 5_000).await.unwrap();
        assert_eq!(
            l.state(&slot(), 5_001).await.unwrap(),
            SlotState::TearingDown { until_ms: 35_000 }
        );
        assert!(
            l.acquire(&slot(), "b", 15_000, 34_999)
                .await
                .unwrap()
                .is_none()
        );
        let b = l
            .acquire(&slot(), "b", 15_000, 35_000)
            .await
            .unwrap()
            .unwrap();
        assert!(b.token > a.token);
        // The old holder cannot release the new lease.
        l.release(&a, 36_000).await.unwrap();
        assert!(matches!(
            l.state(&slot(), 36_000).await.unwrap(),
            SlotState::Held { .. }
        ));
    }

    #[tokio::test]
    async fn expired_lease_blocks_for_teardown_then_frees() {
        let l = MemorySlotStore::new(30_000);
        let a = l.acquire(&slot(), "a", 15_000, 0).await.unwrap().unwrap();
        assert_eq!(
            l.state(&slot(), 15_000).await.unwrap(),
            SlotState::TearingDown { until_ms: 45_000 }
        );
        assert!(l.state(&slot(), 45_000).await.unwrap().is_free());
        // Late renewal while nobody took the slot keeps it.
        let renewed = l.renew(&a, 15_000, 20_000).await.unwrap().unwrap();
        assert_eq!(renewed.expires_at_ms, 35_000);
        // Once another holder takes it, the old lease is lost.
        let _b = l
            .acquire(&slot(), "b", 15_000, 80_000)
            .await
            .unwrap()
            .unwrap();
        assert!(l.renew(&a, 15_000, 80_001).await.unwrap().is_none());
    }
}
