//! Instance state at startup: what `state.db` remembers (account switches, states set by EC2
//! calls) over what the configuration says, and the VMs serialgate runs.

use std::path::Path;
use std::sync::Arc;

use console::{InstanceId, InstanceState, Registry};
use consoles::Consoles;
use statedb::StateDb;
use vm::{Machine, Supervisor};

use crate::config::VmDef;

/// Opens `state_dir/state.db` and applies what it remembers to `registry`.
pub fn restore(registry: &Registry, state_dir: &Path) -> Result<StateDb, console::StoreError> {
    let db = StateDb::open(state_dir)?;
    let saved = db.load()?;
    for account in registry.accounts() {
        if let Some(on) = saved.accounts.get(account.id.as_str()) {
            account.set_serial_console_access(*on);
        }
    }
    for instance in registry.instances() {
        if let Some(state) = saved.instances.get(instance.id.as_str()) {
            instance.set_state(*state);
        }
    }
    Ok(db)
}

/// One supervised VM per managed instance. VMs whose (remembered or configured) state is
/// running or pending are started; the others are marked stopped until `StartInstances`.
pub async fn start_vms(
    registry: &Registry,
    vms: Vec<VmDef>,
    consoles: &Consoles,
) -> Result<Arc<Supervisor>, String> {
    let mut supervisor = Supervisor::new();
    let mut to_start = Vec::new();
    for def in vms {
        let Some(instance) = registry.instance(&def.id).cloned() else {
            continue;
        };
        let hub = consoles.hub(&def.id);
        let wanted = instance.state();
        instance.set_state(InstanceState::Stopped);
        let machine = Machine::spawn(Arc::clone(&instance), def.spec, def.paths, hub);
        if matches!(wanted, InstanceState::Running | InstanceState::Pending) {
            to_start.push((def.id.clone(), machine.clone()));
        }
        supervisor.add(def.id, machine);
    }
    for (id, machine) in to_start {
        machine
            .start()
            .await
            .map_err(|e| format!("instance {id}: {e}"))?;
    }
    Ok(Arc::new(supervisor))
}

/// Tells each managed VM with a network, on its kernel command line, which instance it is and
/// which signer its instance keys carry (see `vm::spec::guest_identity`), so that a guest image
/// needs no per-instance configuration to run `serialgate authorized-keys`.
pub fn announce_identity(
    vms: &mut [VmDef],
    signer: &gateway::host_key::PrivateKey,
) -> Result<(), String> {
    let line = signer
        .public_key()
        .to_openssh()
        .map_err(|e| format!("instance key signer: {e}"))?;
    // "ssh-ed25519 BASE64": the guest needs the base64 part (a command line word has no space).
    let base64 = line.split_whitespace().nth(1).unwrap_or_default();
    for def in vms.iter_mut().filter(|d| d.spec.keys_relay.is_some()) {
        let words = vm::spec::guest_identity(def.id.as_str(), base64);
        def.spec.append = format!("{} {words}", def.spec.append.trim_end());
    }
    Ok(())
}

/// A listener on each managed VM's keys socket (`state_dir/vm/ID/keys.sock`), bound before any
/// VM starts so that a guest's first request finds it. A socket left by an earlier run is
/// replaced.
pub fn bind_keys_sockets(
    vms: &[VmDef],
) -> Result<Vec<(InstanceId, tokio::net::UnixListener)>, String> {
    let mut listeners = Vec::new();
    for def in vms.iter().filter(|d| d.spec.keys_relay.is_some()) {
        let path = &def.paths.keys;
        std::fs::create_dir_all(&def.paths.dir)
            .map_err(|e| format!("{}: {e}", def.paths.dir.display()))?;
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        listeners.push((def.id.clone(), listener));
    }
    Ok(listeners)
}
