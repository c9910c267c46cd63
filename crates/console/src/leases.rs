//! Session slots: at most one SSH session per instance port, then a teardown block.
//!
//! A slot is held through a [`Lease`] with an expiry that the holding node renews; the lease's
//! fencing `token` increases on every acquisition, so a stale holder can never release or renew
//! a newer holder's lease. When a lease ends (released, or expired because its node died) the
//! slot stays blocked for the teardown time, as AWS blocks a new session for 30 s.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::{InstanceId, SerialPort};

/// The unit of exclusivity.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Slot {
    pub instance: InstanceId,
    pub port: SerialPort,
}

/// A held slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub slot: Slot,
    /// Fencing token: strictly increasing per store.
    pub token: u64,
    /// Who holds it (node and session id), for operators.
    pub holder: String,
    pub expires_at_ms: u64,
}

/// What a slot is doing right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    Free,
    Held {
        holder: String,
        expires_at_ms: u64,
    },
    /// A session ended; no new one until `until_ms`.
    TearingDown {
        until_ms: u64,
    },
}

impl SlotState {
    pub fn is_free(&self) -> bool {
        matches!(self, SlotState::Free)
    }
}

/// Storage for session slots. Every method is atomic with respect to the others.
#[async_trait]
pub trait SessionLeases: Send + Sync + std::fmt::Debug {
    async fn state(&self, slot: &Slot, now_ms: u64) -> Result<SlotState, StoreError>;

    /// Takes the slot if it is free. `None` when it is held or tearing down.
    async fn acquire(
        &self,
        slot: &Slot,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError>;

    /// Extends a lease. `None` when the lease was lost (expired and taken, or released).
    async fn renew(
        &self,
        lease: &Lease,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError>;

    /// Ends a lease and starts the teardown block. Releasing a lost lease does nothing.
    async fn release(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError>;
}

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
    slots: HashMap<Slot, Entry>,
    next_token: u64,
}

/// The embedded implementation.
#[derive(Debug)]
pub struct MemorySessionLeases {
    teardown_ms: u64,
    inner: Mutex<Inner>,
}

impl MemorySessionLeases {
    pub fn new(teardown_ms: u64) -> Self {
        Self {
            teardown_ms,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of an entry at `now`, treating an expired lease as ended at its expiry.
    fn state_of(&self, entry: Option<&Entry>, now_ms: u64) -> SlotState {
        match entry {
            None => SlotState::Free,
            Some(Entry::Held {
                holder,
                expires_at_ms,
                ..
            }) => {
                if now_ms < *expires_at_ms {
                    SlotState::Held {
                        holder: holder.clone(),
                        expires_at_ms: *expires_at_ms,
                    }
                } else {
                    let until_ms = expires_at_ms.saturating_add(self.teardown_ms);
                    if now_ms < until_ms {
                        SlotState::TearingDown { until_ms }
                    } else {
                        SlotState::Free
                    }
                }
            }
            Some(Entry::TearingDown { until_ms }) if now_ms < *until_ms => SlotState::TearingDown {
                until_ms: *until_ms,
            },
            Some(Entry::TearingDown { .. }) => SlotState::Free,
        }
    }
}

#[async_trait]
impl SessionLeases for MemorySessionLeases {
    async fn state(&self, slot: &Slot, now_ms: u64) -> Result<SlotState, StoreError> {
        let inner = self.lock();
        Ok(self.state_of(inner.slots.get(slot), now_ms))
    }

    async fn acquire(
        &self,
        slot: &Slot,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        let mut inner = self.lock();
        if !self.state_of(inner.slots.get(slot), now_ms).is_free() {
            return Ok(None);
        }
        inner.next_token += 1;
        let token = inner.next_token;
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        inner.slots.insert(
            slot.clone(),
            Entry::Held {
                token,
                holder: holder.to_owned(),
                expires_at_ms,
            },
        );
        Ok(Some(Lease {
            slot: slot.clone(),
            token,
            holder: holder.to_owned(),
            expires_at_ms,
        }))
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot() -> Slot {
        Slot {
            instance: InstanceId::parse("i-0123456789abcdef0").unwrap(),
            port: SerialPort::ZERO,
        }
    }

    #[tokio::test]
    async fn one_holder_then_teardown_then_free() {
        let l = MemorySessionLeases::new(30_000);
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
        let l = MemorySessionLeases::new(30_000);
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
