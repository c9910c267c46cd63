//! What the EC2 calls act on: starting, stopping and rebooting instances, their console
//! history, and where their state is remembered across restarts.
//!
//! Static instances (a console URI in the configuration) have only a recorded state, which the
//! EC2 calls change. Managed instances (a VM serialgate runs) get an implementation that also
//! drives the machine; see the `vm` crate.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::{AccountId, InstanceId};
use crate::registry::{Instance, InstanceState};

/// Drives instances. Methods return once the change is under way; the instance's state (in the
/// registry) tells how far it got.
#[async_trait]
pub trait InstanceControl: Send + Sync + std::fmt::Debug {
    async fn start(&self, instance: &Instance) -> Result<(), String>;
    async fn stop(&self, instance: &Instance, force: bool) -> Result<(), String>;
    async fn reboot(&self, instance: &Instance) -> Result<(), String>;
}

/// Static instances: the recorded state is all there is, so it changes at once.
#[derive(Debug, Default, Clone, Copy)]
pub struct RecordedStates;

#[async_trait]
impl InstanceControl for RecordedStates {
    async fn start(&self, instance: &Instance) -> Result<(), String> {
        instance.set_state(InstanceState::Running);
        Ok(())
    }

    async fn stop(&self, instance: &Instance, _force: bool) -> Result<(), String> {
        instance.set_state(InstanceState::Stopped);
        Ok(())
    }

    async fn reboot(&self, _instance: &Instance) -> Result<(), String> {
        Ok(())
    }
}

/// The latest console output of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSnapshot {
    /// At most the latest 64 KiB.
    pub bytes: Vec<u8>,
    /// When the last byte arrived, ms since the Unix epoch (0: never).
    pub updated_ms: u64,
}

/// Console output kept whether or not anyone is connected.
#[async_trait]
pub trait ConsoleHistory: Send + Sync + std::fmt::Debug {
    /// The instance's kept console output; it may live on another node.
    async fn snapshot(&self, instance: &InstanceId) -> Option<ConsoleSnapshot>;
}

/// No history at all (tests, or consoles nobody watches).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHistory;

#[async_trait]
impl ConsoleHistory for NoHistory {
    async fn snapshot(&self, _instance: &InstanceId) -> Option<ConsoleSnapshot> {
        None
    }
}

/// Where EC2-changed state is remembered across restarts.
#[async_trait]
pub trait StatePersistence: Send + Sync + std::fmt::Debug {
    async fn save_instance_state(
        &self,
        instance: &InstanceId,
        state: InstanceState,
    ) -> Result<(), StoreError>;
    async fn save_serial_console_access(
        &self,
        account: &AccountId,
        on: bool,
    ) -> Result<(), StoreError>;
}

/// Remembers nothing (the embedded default keeps state in memory only).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPersistence;

#[async_trait]
impl StatePersistence for NoPersistence {
    async fn save_instance_state(
        &self,
        _: &InstanceId,
        _: InstanceState,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    async fn save_serial_console_access(&self, _: &AccountId, _: bool) -> Result<(), StoreError> {
        Ok(())
    }
}
