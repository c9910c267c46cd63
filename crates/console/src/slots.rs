//! The grant lifecycle as one store: a serial port's grant and its session slot change together.
//!
//! Two steps of the lifecycle read one of them and write the other, and each must be a single
//! atomic step of the store, or a race between nodes breaks a promise:
//! - a push stores its grant only while the port's slot is free (no key lands for a port that
//!   has a session or is tearing one down), and
//! - a session open spends exactly the grant it authenticated with: it takes the slot and marks
//!   that grant used only if the grant under the key still carries the same request id, so a
//!   newer push that landed after the authentication read is never overwritten.
//!
//! [`SlotStore`] is therefore one trait over [`GrantStore`] and [`SessionLeases`]: one
//! implementation holds both, the memory store under one mutex ([`crate::MemorySlotStore`]),
//! Redis in one Lua script over keys that share the instance's hash tag.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::grants::{Grant, GrantKey, GrantStore};
use crate::leases::{Lease, SessionLeases, Slot, SlotState};

/// What [`SlotStore::push_grant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The grant replaced whatever was under its key.
    Stored,
    /// A session holds the port; nothing was stored.
    SlotHeld { holder: String, expires_at_ms: u64 },
    /// A session on the port ended recently; nothing was stored.
    TearingDown { until_ms: u64 },
}

impl PushOutcome {
    /// The refusal for a slot in `state`, or `None` when the slot is free.
    pub fn refusal(state: SlotState) -> Option<Self> {
        match state {
            SlotState::Free => None,
            SlotState::Held {
                holder,
                expires_at_ms,
            } => Some(PushOutcome::SlotHeld {
                holder,
                expires_at_ms,
            }),
            SlotState::TearingDown { until_ms } => Some(PushOutcome::TearingDown { until_ms }),
        }
    }

    /// The slot's state as the push saw it (free when the grant was stored).
    pub fn slot_state(&self) -> SlotState {
        match self {
            PushOutcome::Stored => SlotState::Free,
            PushOutcome::SlotHeld {
                holder,
                expires_at_ms,
            } => SlotState::Held {
                holder: holder.clone(),
                expires_at_ms: *expires_at_ms,
            },
            PushOutcome::TearingDown { until_ms } => SlotState::TearingDown {
                until_ms: *until_ms,
            },
        }
    }
}

/// What [`SlotStore::open_with_grant`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenOutcome {
    /// The slot is held under this lease and the grant is marked used.
    Opened(Lease),
    /// Nothing changed.
    Denied(OpenDenied),
}

/// Why [`SlotStore::open_with_grant`] changed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenDenied {
    /// The live grant under the port's key is not the one pushed by the request id any more:
    /// it expired, was taken, or a newer push replaced it.
    GrantGone,
    /// The grant already opened its session; the slot's state says whether that session (or
    /// its teardown) is still going.
    GrantSpent(SlotState),
    /// The grant is unused but the slot is held or tearing down.
    SlotBusy(SlotState),
}

/// Grants and session slots in one store, so that the steps which change both are atomic.
/// Every method is atomic with respect to every other, those of the supertraits included.
#[async_trait]
pub trait SlotStore: GrantStore + SessionLeases {
    /// Stores `grant` under `key`, replacing any previous grant, if the slot the key opens is
    /// free at `now_ms`; in the same step. An OS-user key opens no slot: its grant always
    /// replaces the previous one. The grant expires at `grant.expires_at_ms`.
    async fn push_grant(
        &self,
        key: &GrantKey,
        grant: Grant,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError>;

    /// In one step: if the live grant for `slot`'s port was pushed by `request_id` and is
    /// unused, and the slot is free, takes the slot for `holder` for `ttl_ms` (a new fencing
    /// token, as [`SessionLeases::acquire`]) and marks that grant used. Otherwise changes
    /// nothing and says why, checking the grant first.
    async fn open_with_grant(
        &self,
        slot: &Slot,
        request_id: &str,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<OpenOutcome, StoreError>;
}
