//! serialgate-managed QEMU virtual machines.
//!
//! An instance with `[instances.qemu]` is a VM serialgate runs itself: [`Supervisor`] starts,
//! stops and reboots it for the EC2 calls (through [`console::control::InstanceControl`]) and
//! derives its EC2 state from reality; its first serial port is a telnet-mode unix socket that
//! the gateway's console hub keeps connected. Instances without a VM keep only their recorded
//! state. Invariants: QEMU is started without a shell and never outlives serialgate
//! (`setpriv --pdeathsig KILL`, `kill_on_drop`, a clean `quit` on shutdown).

#[cfg(test)]
mod fake;
mod machine;
pub mod qmp;
pub mod spec;

use std::collections::HashMap;

use async_trait::async_trait;
use console::control::{InstanceControl, RecordedStates};
use console::{Instance, InstanceId};

pub use machine::Machine;
pub use spec::{Accel, QemuSpec, VmPaths};

/// Drives every instance: VMs through their [`Machine`], the rest by recorded state.
#[derive(Debug, Default)]
pub struct Supervisor {
    machines: HashMap<InstanceId, Machine>,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, id: InstanceId, machine: Machine) {
        self.machines.insert(id, machine);
    }

    pub fn machine(&self, id: &InstanceId) -> Option<&Machine> {
        self.machines.get(id)
    }

    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    /// Stops every VM (clean `quit`, then kill); returns when all are gone.
    pub async fn shutdown(&self) {
        for (id, m) in &self.machines {
            if let Err(e) = m.shutdown().await {
                tracing::warn!(instance = %id, error = %e, "VM shutdown failed");
            }
        }
    }
}

#[async_trait]
impl InstanceControl for Supervisor {
    async fn start(&self, instance: &Instance) -> Result<(), String> {
        match self.machines.get(&instance.id) {
            Some(m) => m.start().await,
            None => RecordedStates.start(instance).await,
        }
    }

    async fn stop(&self, instance: &Instance, force: bool) -> Result<(), String> {
        match self.machines.get(&instance.id) {
            Some(m) => m.stop(force).await,
            None => RecordedStates.stop(instance, force).await,
        }
    }

    async fn reboot(&self, instance: &Instance) -> Result<(), String> {
        match self.machines.get(&instance.id) {
            Some(m) => m.reboot().await,
            None => RecordedStates.reboot(instance).await,
        }
    }
}
