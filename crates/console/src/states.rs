//! Instance states shared by the nodes of a cluster, and the orders that move a VM.
//!
//! On a node alone, an instance's EC2 state lives in its [`crate::Registry`] and the node acts
//! on its VMs itself. In a cluster every node answers `DescribeInstances` and takes
//! `StartInstances`, `StopInstances` and `RebootInstances`, but a VM runs on one node only, the
//! owner of its console. So the state is kept in the shared store: every node mirrors it, the
//! owner writes what its VM does, and a node asked to act on a VM it does not run records the
//! intent (`pending`, `stopping`) with an [`Order`] that the owner carries out.
//!
//! Each record carries a sequence number, raised by every [`SharedStates::record`]. The owner
//! remembers the last one it carried out and writes its VM's state only while no newer order
//! waits ([`SharedStates::publish`]), so an order is never overwritten before it is seen.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::InstanceId;
use crate::registry::InstanceState;

/// What the node running a VM is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    Start,
    Stop,
    /// A stop without a clean shutdown (`StopInstances --force`).
    ForceStop,
    Reboot,
}

impl Order {
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Start => "start",
            Order::Stop => "stop",
            Order::ForceStop => "force-stop",
            Order::Reboot => "reboot",
        }
    }

    pub fn parse(s: &str) -> Option<Order> {
        Some(match s {
            "start" => Order::Start,
            "stop" => Order::Stop,
            "force-stop" => Order::ForceStop,
            "reboot" => Order::Reboot,
            _ => return None,
        })
    }
}

/// An instance's shared record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedState {
    pub state: InstanceState,
    /// Raised by every [`SharedStates::record`]; 0 before the first.
    pub seq: u64,
    /// The order given with the latest record, if any.
    pub order: Option<Order>,
}

/// The shared records. Every method is atomic with respect to the others.
#[async_trait]
pub trait SharedStates: Send + Sync + std::fmt::Debug + 'static {
    /// Records `state`, with `order` for the node running the instance; returns the record's
    /// sequence number, larger than every one before for the instance.
    async fn record(
        &self,
        instance: &InstanceId,
        state: InstanceState,
        order: Option<Order>,
    ) -> Result<u64, StoreError>;

    /// Writes `state` keeping the sequence number and order, only if the sequence number is
    /// still `seen` (no record came since the writer last looked; 0 for an instance never
    /// recorded). Whether it wrote.
    async fn publish(
        &self,
        instance: &InstanceId,
        state: InstanceState,
        seen: u64,
    ) -> Result<bool, StoreError>;

    /// Every record; instances never recorded are absent.
    async fn states(&self) -> Result<HashMap<InstanceId, SharedState>, StoreError>;
}

/// The records in memory (tests, and the contract's reference).
#[derive(Debug, Default)]
pub struct MemoryStates {
    inner: Mutex<HashMap<InstanceId, SharedState>>,
}

impl MemoryStates {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceId, SharedState>> {
        // Every critical section is one map operation: a poisoned lock holds consistent data.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl SharedStates for MemoryStates {
    async fn record(
        &self,
        instance: &InstanceId,
        state: InstanceState,
        order: Option<Order>,
    ) -> Result<u64, StoreError> {
        let mut map = self.lock();
        let seq = map.get(instance).map_or(0, |r| r.seq) + 1;
        map.insert(instance.clone(), SharedState { state, seq, order });
        Ok(seq)
    }

    async fn publish(
        &self,
        instance: &InstanceId,
        state: InstanceState,
        seen: u64,
    ) -> Result<bool, StoreError> {
        let mut map = self.lock();
        match map.get_mut(instance) {
            Some(r) if r.seq == seen => {
                r.state = state;
                Ok(true)
            }
            Some(_) => Ok(false),
            None if seen == 0 => {
                map.insert(
                    instance.clone(),
                    SharedState {
                        state,
                        seq: 0,
                        order: None,
                    },
                );
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn states(&self) -> Result<HashMap<InstanceId, SharedState>, StoreError> {
        Ok(self.lock().clone())
    }
}
