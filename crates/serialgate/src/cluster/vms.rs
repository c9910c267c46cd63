//! Instance states and managed VMs in a cluster.
//!
//! Every instance's EC2 state lives in the shared store ([`SharedStates`]), and every node
//! mirrors it into its registry, so `DescribeInstances` agrees whichever node answers. A VM
//! runs only on the node that owns its console: the keeper hands it over ([`ClusterVms::took`],
//! [`ClusterVms::let_go`]). The owner writes its VM's state to the store as it changes. A node
//! asked to start, stop or reboot a VM it does not run records the intent (`pending`,
//! `stopping`) with an order, which the owner carries out at its next look (every
//! [`SYNC_EVERY`]). A new owner starts the VM when the shared state says it should run: that
//! is how a VM survives the death of its node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use console::control::InstanceControl;
use console::{Instance, InstanceId, InstanceState, Order, SharedState, SharedStates};
use consoles::Consoles;
use tokio::sync::{Notify, watch};
use vm::Machine;

use crate::config::VmDef;

/// How often a node reads the shared states: the lag of `DescribeInstances` on the other nodes,
/// and of an order given through them.
pub const SYNC_EVERY: Duration = Duration::from_millis(500);

/// A VM this node runs, as the owner of its console.
#[derive(Debug)]
struct Run {
    machine: Machine,
    /// The sequence number of the last record this node has acted on; `None` until its first
    /// look after taking the console.
    applied: Option<u64>,
}

#[derive(Debug)]
pub struct ClusterVms {
    states: Arc<dyn SharedStates>,
    instances: HashMap<InstanceId, Arc<Instance>>,
    /// Every managed VM of the configuration, with the state it starts in when the store has
    /// none (the configured or remembered one).
    vms: HashMap<InstanceId, (VmDef, InstanceState)>,
    consoles: Arc<Consoles>,
    running: Mutex<HashMap<InstanceId, Run>>,
    /// Wakes the sync loop at once (a console was just taken).
    wake: Notify,
    store_timeout: Duration,
}

impl ClusterVms {
    pub fn new(
        states: Arc<dyn SharedStates>,
        instances: impl IntoIterator<Item = Arc<Instance>>,
        vms: Vec<VmDef>,
        consoles: Arc<Consoles>,
        store_timeout: Duration,
    ) -> Self {
        let instances: HashMap<_, _> = instances.into_iter().map(|i| (i.id.clone(), i)).collect();
        let vms = vms
            .into_iter()
            .filter_map(|def| {
                let initial = instances.get(&def.id)?.state();
                Some((def.id.clone(), (def, initial)))
            })
            .collect();
        Self {
            states,
            instances,
            vms,
            consoles,
            running: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            store_timeout,
        }
    }

    fn running(&self) -> MutexGuard<'_, HashMap<InstanceId, Run>> {
        // Critical sections are map operations only.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn machine(&self, id: &InstanceId) -> Option<Machine> {
        self.running().get(id).map(|r| r.machine.clone())
    }

    async fn read(&self) -> Option<HashMap<InstanceId, SharedState>> {
        match tokio::time::timeout(self.store_timeout, self.states.states()).await {
            Ok(Ok(states)) => Some(states),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cluster: reading instance states failed");
                None
            }
            Err(_) => {
                tracing::debug!("cluster: reading instance states timed out");
                None
            }
        }
    }

    /// Mirrors the shared states into the registry before the node serves, so that its first
    /// answers agree with the other nodes'.
    pub async fn load(&self) {
        if let Some(states) = self.read().await {
            self.mirror(&states);
        }
    }

    /// This node now owns `id`'s console (its hub is up): if `id` is a VM, it runs here from
    /// now on; its first look at the shared state starts it if it should run.
    pub fn took(&self, id: &InstanceId) {
        let (Some((def, _)), Some(instance)) = (self.vms.get(id), self.instances.get(id)) else {
            return;
        };
        instance.set_state(InstanceState::Stopped);
        let machine = Machine::spawn(
            Arc::clone(instance),
            def.spec.clone(),
            def.paths.clone(),
            self.consoles.hub(id),
        );
        self.running().insert(
            id.clone(),
            Run {
                machine,
                applied: None,
            },
        );
        self.wake.notify_one();
    }

    /// This node lets `id`'s console go: its VM, if it runs here, is killed, and this returns
    /// once the process is gone (before the console, and so before another node may start
    /// it). A kill rather than QMP `quit`: `quit` gives the guest no shutdown either, and a
    /// kill cannot outlast the lease.
    pub async fn let_go(&self, id: &InstanceId) {
        let run = self.running().remove(id);
        if let Some(run) = run {
            if let Err(e) = run.machine.kill().await {
                tracing::warn!(instance = %id, error = %e, "cluster: killing the VM failed");
            }
            tracing::info!(instance = %id, "cluster: the VM no longer runs on this node");
        }
    }

    /// Reads the shared states every [`SYNC_EVERY`] until `stopped`: carries out the orders
    /// for the VMs this node runs, writes their states, and mirrors every other state.
    pub async fn run(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        loop {
            if let Some(states) = self.read().await {
                self.step(&states).await;
            }
            tokio::select! {
                () = tokio::time::sleep(SYNC_EVERY) => {}
                () = self.wake.notified() => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }

    async fn step(&self, states: &HashMap<InstanceId, SharedState>) {
        self.mirror(states);
        let mine: Vec<(InstanceId, Machine, Option<u64>)> = self
            .running()
            .iter()
            .map(|(id, r)| (id.clone(), r.machine.clone(), r.applied))
            .collect();
        for (id, machine, applied) in mine {
            let Some(instance) = self.instances.get(&id) else {
                continue;
            };
            let record = states.get(&id);
            let seq = record.map_or(0, |r| r.seq);
            let act = match applied {
                // Just taken: run the VM if the instance should run.
                None => {
                    let wanted = record.map_or_else(|| self.initial(&id), |r| r.state);
                    let start = should_run(wanted);
                    if start {
                        tracing::info!(instance = %id, state = wanted.as_str(), "cluster: starting the VM here, as this node now owns its console");
                    }
                    start.then_some(Order::Start)
                }
                Some(done) if seq > done => {
                    let order = record.and_then(|r| r.order);
                    if let Some(o) = order {
                        tracing::info!(instance = %id, order = o.as_str(), seq, "cluster: carrying out an order given through another node");
                    }
                    order
                }
                Some(_) => None,
            };
            if let Some(order) = act
                && let Err(e) = carry_out(&machine, order).await
            {
                tracing::warn!(instance = %id, order = order.as_str(), error = %e, "cluster: the order failed");
            }
            if let Some(r) = self.running().get_mut(&id) {
                r.applied = Some(seq);
            }
            let now = instance.state();
            if record.is_none_or(|r| r.state != now) {
                self.publish(&id, now, seq).await;
            }
        }
    }

    fn initial(&self, id: &InstanceId) -> InstanceState {
        self.vms.get(id).map_or(InstanceState::Stopped, |(_, s)| *s)
    }

    /// Every recorded state into the registry, except those of the VMs this node runs (their
    /// machine is the truth).
    fn mirror(&self, states: &HashMap<InstanceId, SharedState>) {
        let running = self.running();
        for (id, record) in states {
            if running.contains_key(id) {
                continue;
            }
            if let Some(i) = self.instances.get(id)
                && i.state() != record.state
            {
                i.set_state(record.state);
            }
        }
    }

    async fn publish(&self, id: &InstanceId, state: InstanceState, seen: u64) {
        let call = self.states.publish(id, state, seen);
        match tokio::time::timeout(self.store_timeout, call).await {
            Ok(Ok(_written)) => {}
            Ok(Err(e)) => {
                tracing::warn!(instance = %id, error = %e, "cluster: writing the VM's state failed")
            }
            Err(_) => tracing::warn!(instance = %id, "cluster: writing the VM's state timed out"),
        }
    }

    /// Records `state` and `order` in the store, for every node to see.
    async fn record(
        &self,
        instance: &Instance,
        state: InstanceState,
        order: Option<Order>,
    ) -> Result<u64, String> {
        let call = self.states.record(&instance.id, state, order);
        match tokio::time::timeout(self.store_timeout, call).await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(e)) => Err(format!("state store: {e}")),
            Err(_) => Err("state store: no answer in time".to_owned()),
        }
    }

    /// A VM this node runs acts at once and writes its state; a VM run elsewhere (or by no
    /// node yet) gets the order through the store; an instance without a VM just changes state.
    async fn act(&self, instance: &Instance, order: Order) -> Result<(), String> {
        let id = &instance.id;
        if !self.vms.contains_key(id) {
            let state = match order {
                Order::Start => InstanceState::Running,
                Order::Stop | Order::ForceStop => InstanceState::Stopped,
                Order::Reboot => return Ok(()),
            };
            self.record(instance, state, None).await?;
            instance.set_state(state);
            return Ok(());
        }
        if let Some(machine) = self.machine(id) {
            carry_out(&machine, order).await?;
            let seen = self.running().get(id).and_then(|r| r.applied).unwrap_or(0);
            self.publish(id, instance.state(), seen).await;
            return Ok(());
        }
        let intent = match order {
            Order::Start => InstanceState::Pending,
            Order::Stop | Order::ForceStop => InstanceState::Stopping,
            Order::Reboot => instance.state(),
        };
        self.record(instance, intent, Some(order)).await?;
        instance.set_state(intent);
        Ok(())
    }
}

fn should_run(state: InstanceState) -> bool {
    matches!(state, InstanceState::Running | InstanceState::Pending)
}

async fn carry_out(machine: &Machine, order: Order) -> Result<(), String> {
    match order {
        Order::Start => machine.start().await,
        Order::Stop => machine.stop(false).await,
        Order::ForceStop => machine.stop(true).await,
        Order::Reboot => machine.reboot().await,
    }
}

#[async_trait]
impl InstanceControl for ClusterVms {
    async fn start(&self, instance: &Instance) -> Result<(), String> {
        self.act(instance, Order::Start).await
    }

    async fn stop(&self, instance: &Instance, force: bool) -> Result<(), String> {
        let order = if force { Order::ForceStop } else { Order::Stop };
        self.act(instance, order).await
    }

    async fn reboot(&self, instance: &Instance) -> Result<(), String> {
        self.act(instance, Order::Reboot).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use console::{AccountId, AvailabilityZone, MemoryStates};

    use super::*;

    const STATIC: &str = "i-0000000000000000a";
    const VM: &str = "i-0000000000000000b";

    fn id(s: &str) -> InstanceId {
        InstanceId::parse(s).unwrap()
    }

    /// One node's view: its own registry entries, the shared store, the VM configured but
    /// never taken (no node owns its console here).
    fn node(states: &Arc<MemoryStates>) -> ClusterVms {
        let instance = |i: &str, state| {
            Arc::new(Instance::new(
                id(i),
                AccountId::parse("111122223333").unwrap(),
                "t3.micro".into(),
                AvailabilityZone::parse("us-east-1a").unwrap(),
                BTreeMap::new(),
                false,
                "sim:".into(),
                state,
            ))
        };
        let dir = std::env::temp_dir();
        let def = VmDef {
            id: id(VM),
            spec: vm::QemuSpec {
                kernel: "/nonexistent".into(),
                initrd: None,
                disk: None,
                memory_mib: 64,
                cpus: 1,
                append: String::new(),
                accel: vm::Accel::Tcg,
                stop_timeout_secs: 1,
                binary: "/nonexistent".into(),
                keys_relay: None,
                ssh_forward: None,
            },
            paths: vm::VmPaths::new(&dir, VM),
        };
        ClusterVms::new(
            Arc::clone(states) as Arc<dyn SharedStates>,
            [
                instance(STATIC, InstanceState::Stopped),
                instance(VM, InstanceState::Running),
            ],
            vec![def],
            Arc::new(Consoles::direct(backends::ConsoleOptions::default())),
            Duration::from_secs(1),
        )
    }

    async fn look(n: &ClusterVms) {
        let states = n.states.states().await.unwrap();
        n.step(&states).await;
    }

    fn state(n: &ClusterVms, i: &str) -> InstanceState {
        n.instances[&id(i)].state()
    }

    #[tokio::test]
    async fn a_change_through_one_node_shows_on_the_other() {
        let shared = Arc::new(MemoryStates::new());
        let (a, b) = (node(&shared), node(&shared));
        let instance = Arc::clone(&a.instances[&id(STATIC)]);
        a.start(&instance).await.unwrap();
        assert_eq!(state(&a, STATIC), InstanceState::Running);
        assert_eq!(state(&b, STATIC), InstanceState::Stopped);
        look(&b).await;
        assert_eq!(state(&b, STATIC), InstanceState::Running);
        // And a node that starts later reads it before it serves.
        let c = node(&shared);
        c.load().await;
        assert_eq!(state(&c, STATIC), InstanceState::Running);
    }

    #[tokio::test]
    async fn an_order_for_a_vm_run_elsewhere_is_recorded_with_its_intent() {
        let shared = Arc::new(MemoryStates::new());
        let (a, b) = (node(&shared), node(&shared));
        let vm = Arc::clone(&a.instances[&id(VM)]);
        a.stop(&vm, true).await.unwrap();
        assert_eq!(state(&a, VM), InstanceState::Stopping);
        let record = shared.states().await.unwrap()[&id(VM)];
        assert_eq!(
            (record.state, record.order),
            (InstanceState::Stopping, Some(Order::ForceStop))
        );
        look(&b).await;
        assert_eq!(state(&b, VM), InstanceState::Stopping);
        // No VM changes anything on a reboot of an instance without one.
        let plain = Arc::clone(&a.instances[&id(STATIC)]);
        let before = shared.states().await.unwrap().len();
        a.reboot(&plain).await.unwrap();
        assert_eq!(shared.states().await.unwrap().len(), before);
    }
}
