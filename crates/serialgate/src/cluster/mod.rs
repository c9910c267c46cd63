//! This node in a cluster: it owns some consoles (one owner per console, through a lease in the
//! shared store), lends them to the other nodes over the relay, and reaches the rest through
//! their owners.
//!
//! - `keeper.rs`: per console this node may own, takes the ownership lease when it is free,
//!   renews it, and lets the console go before the lease can pass to another node.
//! - `remote.rs`: the consoles this node does not own, through the relay to their owner; and
//!   the consoles it owns, lent to the relay server.
//! - `vms.rs`: instance states shared through the store, and the managed VMs, each run by the
//!   owner of its console.
//! - here: the node's announcement (its relay address and version) and the start and stop of
//!   it all.

mod keeper;
mod remote;
mod vms;

use std::sync::Arc;
use std::time::Duration;

use console::{Clock, ConsoleOwnership, InstanceId, NodeInfo, Registry};
use consoles::Consoles;
use relay::{ClusterSecret, RelayClient, RelayLimits, RelayServer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::cluster::ClusterDef;

pub use remote::RelayedConsoles;
pub use vms::ClusterVms;

/// How long a node's announcement lasts: a few renewals, so one slow store call does not drop
/// it from `serialgate cluster status`.
const ANNOUNCE_LEASES: u32 = 3;

/// What the cluster parts share.
#[derive(Debug, Clone)]
pub struct Node {
    pub def: Arc<ClusterDef>,
    pub ownership: Arc<dyn ConsoleOwnership>,
    pub clock: Arc<dyn Clock>,
    /// The ownership lease: as long as a session's.
    pub lease: Duration,
    /// Bound on each store call.
    pub store_timeout: Duration,
}

/// The client side of the relay, and the consoles reached through it: install with
/// [`Consoles::clustered`] before the node starts serving.
pub fn relayed(node: &Node) -> Result<Arc<RelayedConsoles>, String> {
    let secret = ClusterSecret::from_bytes(&node.def.secret).map_err(|e| e.to_string())?;
    let client = RelayClient::new(secret, node.def.node.clone(), RelayLimits::default());
    Ok(Arc::new(RelayedConsoles::new(node.clone(), client)))
}

/// The running cluster parts of this node.
#[derive(Debug)]
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

/// Starts the relay server on `listener`, the announcement, the instance states' sync, and a
/// keeper for each console this node may own (`eligible`: the consoles restricted to some
/// nodes; the others, any node).
pub fn start(
    node: &Node,
    listener: TcpListener,
    registry: &Registry,
    eligible: &std::collections::HashMap<InstanceId, Vec<String>>,
    consoles: &Arc<Consoles>,
    vms: &Arc<ClusterVms>,
) -> Result<Running, String> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let secret = ClusterSecret::from_bytes(&node.def.secret).map_err(|e| e.to_string())?;
    let provider = Arc::new(remote::Lender::new(registry, Arc::clone(consoles)));
    let server = RelayServer::new(secret, provider, RelayLimits::default());
    let mut relay_stop = stopped.clone();
    tasks.spawn(async move {
        server
            .serve(listener, async move {
                let _ = relay_stop.wait_for(|s| *s).await;
            })
            .await;
    });
    tasks.spawn(announce(node.clone(), stopped.clone()));
    tasks.spawn(Arc::clone(vms).run(stopped.clone()));
    let mut mine = 0;
    for instance in registry.instances() {
        let may = eligible
            .get(&instance.id)
            .is_none_or(|nodes| nodes.iter().any(|n| *n == node.def.node));
        if may {
            mine += 1;
            let keeper = keeper::Keeper::new(
                node.clone(),
                instance.id.clone(),
                Arc::clone(consoles),
                Arc::clone(vms),
            );
            tasks.spawn(keeper.run(stopped.clone()));
        }
    }
    tracing::info!(
        node = %node.def.node,
        relay = %node.def.advertise,
        "cluster: this node may own {mine} of {} consoles",
        registry.instances().count()
    );
    Ok(Running { stop, tasks })
}

impl Running {
    /// Lets every console go (each keeper kills its VM if it runs one, closes its connection,
    /// then releases its lease, so another node takes it at once) and stops the relay server.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Announces this node every third of a lease until stopped.
async fn announce(node: Node, mut stopped: watch::Receiver<bool>) {
    let every = node.lease / 3;
    let ttl_ms = millis(node.lease * ANNOUNCE_LEASES);
    let info = NodeInfo {
        node: node.def.node.clone(),
        address: node.def.advertise.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        renewed_ms: 0,
    };
    loop {
        let call = node.ownership.announce(&info, ttl_ms, node.clock.now_ms());
        match tokio::time::timeout(node.store_timeout, call).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cluster: announcing this node failed"),
            Err(_) => tracing::warn!("cluster: announcing this node timed out"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
