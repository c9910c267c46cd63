//! Session slots: at most one SSH session per instance port, then a teardown block.
//!
//! A slot is held through a [`Lease`] with an expiry that the holding node renews; the lease's
//! fencing `token` increases on every acquisition, so a stale holder can never release or renew
//! a newer holder's lease. When a lease ends (released, or expired because its node died) the
//! slot stays blocked for the teardown time, as AWS blocks a new session for 30 s.

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

    /// Ends a lease and frees the slot at once, without the teardown block: for a session ended
    /// on request, whose holder has already stopped writing to the console. Releasing a lost
    /// lease does nothing.
    async fn release_now(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError>;
}

/// The one rule for what a slot is doing at `now_ms`, from what a store keeps for it: the
/// current lease as `(holder, expiry)`, if any, and the end of the teardown block a release
/// started, if any. Every store implementation decides through this function (the Redis scripts
/// return these raw fields), so they cannot disagree on an edge.
///
/// A lease past its expiry was never released (its node stopped renewing): it blocks the slot
/// for the teardown time from its expiry, as a release at that moment would have.
pub fn slot_state(
    lease: Option<(&str, u64)>,
    teardown_until_ms: Option<u64>,
    teardown_ms: u64,
    now_ms: u64,
) -> SlotState {
    if let Some((holder, expires_at_ms)) = lease {
        if now_ms < expires_at_ms {
            return SlotState::Held {
                holder: holder.to_owned(),
                expires_at_ms,
            };
        }
        let until_ms = expires_at_ms.saturating_add(teardown_ms);
        if now_ms < until_ms {
            return SlotState::TearingDown { until_ms };
        }
    }
    match teardown_until_ms {
        Some(until_ms) if now_ms < until_ms => SlotState::TearingDown { until_ms },
        _ => SlotState::Free,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lease_then_its_lapse_then_free() {
        let held = Some(("n/1", 100));
        assert_eq!(
            slot_state(held, None, 30, 99),
            SlotState::Held {
                holder: "n/1".to_owned(),
                expires_at_ms: 100
            }
        );
        assert_eq!(
            slot_state(held, None, 30, 100),
            SlotState::TearingDown { until_ms: 130 }
        );
        assert_eq!(
            slot_state(held, None, 30, 129),
            SlotState::TearingDown { until_ms: 130 }
        );
        assert_eq!(slot_state(held, None, 30, 130), SlotState::Free);
    }

    #[test]
    fn a_release_blocks_until_its_teardown_ends() {
        assert_eq!(
            slot_state(None, Some(50), 30, 49),
            SlotState::TearingDown { until_ms: 50 }
        );
        assert_eq!(slot_state(None, Some(50), 30, 50), SlotState::Free);
        assert_eq!(slot_state(None, None, 30, 0), SlotState::Free);
        // A lapsed lease beside a later teardown block: the later block still counts.
        assert_eq!(
            slot_state(Some(("n/1", 10)), Some(80), 30, 60),
            SlotState::TearingDown { until_ms: 80 }
        );
    }

    #[test]
    fn expiries_near_the_end_of_time_saturate() {
        assert_eq!(
            slot_state(Some(("n/1", u64::MAX - 1)), None, 30, u64::MAX - 1),
            SlotState::TearingDown { until_ms: u64::MAX }
        );
    }
}
