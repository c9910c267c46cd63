//! The two sides of the relay as this node uses them: consoles owned elsewhere, reached
//! through their owner ([`RelayedConsoles`]), and the consoles this node owns, lent to the
//! others ([`Lender`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use backends::{Console, SpectateRequest};
use console::control::ConsoleSnapshot;
use console::{Instance, InstanceId, Registry};
use consoles::{Consoles, RemoteConsoles};
use relay::{ConsoleProvider, RelayClient};

use super::Node;

/// Consoles owned by other nodes, reached through the relay.
#[derive(Debug)]
pub struct RelayedConsoles {
    node: Node,
    client: RelayClient,
}

impl RelayedConsoles {
    pub(super) fn new(node: Node, client: RelayClient) -> Self {
        Self { node, client }
    }

    /// The relay address of the node that owns `id`'s console now. The error is for the log.
    async fn owner_address(&self, id: &InstanceId) -> Result<String, String> {
        let bounded =
            |what: &'static str| move |e: tokio::time::error::Elapsed| format!("{what}: {e}");
        let now = self.node.clock.now_ms();
        let owner =
            tokio::time::timeout(self.node.store_timeout, self.node.ownership.owner(id, now))
                .await
                .map_err(bounded("looking up the console's owner"))?
                .map_err(|e| format!("looking up the console's owner: {e}"))?
                .ok_or_else(|| format!("no node owns the console of {id} now"))?;
        if owner.node == self.node.def.node {
            // Taken (or given up) a moment ago: the caller tries again shortly.
            return Err(format!("the console of {id} is changing hands"));
        }
        let nodes = tokio::time::timeout(self.node.store_timeout, self.node.ownership.nodes(now))
            .await
            .map_err(bounded("listing the nodes"))?
            .map_err(|e| format!("listing the nodes: {e}"))?;
        nodes
            .into_iter()
            .find(|n| n.node == owner.node)
            .map(|n| n.address)
            .ok_or_else(|| {
                format!(
                    "node {} owns the console of {id} but has not announced itself",
                    owner.node
                )
            })
    }
}

#[async_trait]
impl RemoteConsoles for RelayedConsoles {
    async fn open(&self, id: &InstanceId, replay_lines: u32) -> Result<Console, String> {
        let address = self.owner_address(id).await?;
        self.client
            .attach_replaying(&address, id.as_str(), replay_lines)
            .await
            .map_err(|e| format!("relay to {address}: {e}"))
    }

    async fn spectate(&self, id: &InstanceId, req: SpectateRequest) -> Result<Console, String> {
        let address = self.owner_address(id).await?;
        self.client
            .spectate(&address, id.as_str(), &req)
            .await
            .map_err(|e| match e {
                // The owner's own words (the limit, say), for the spectator to be told.
                relay::RelayError::Refused(reason) => reason,
                e => format!("relay to {address}: {e}"),
            })
    }

    async fn history(&self, id: &InstanceId) -> Option<ConsoleSnapshot> {
        let address = match self.owner_address(id).await {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(instance = %id, error = %e, "console history: no owner to ask");
                return None;
            }
        };
        match self.client.history(&address, id.as_str()).await {
            Ok(h) => h.map(|(bytes, updated_ms)| ConsoleSnapshot { bytes, updated_ms }),
            Err(e) => {
                tracing::warn!(instance = %id, %address, error = %e, "console history: relay failed");
                None
            }
        }
    }

    async fn owner(&self, id: &InstanceId) -> Option<String> {
        let now = self.node.clock.now_ms();
        let owner =
            tokio::time::timeout(self.node.store_timeout, self.node.ownership.owner(id, now));
        match owner.await {
            Ok(Ok(owner)) => owner.map(|o| o.node),
            _ => None,
        }
    }

    async fn probe(&self, id: &InstanceId) -> Result<(), String> {
        // An owner exists and has announced itself; whether its console answers is its hub's
        // business (a session through it reconnects like any other).
        self.owner_address(id).await.map(|_| ())
    }
}

/// The consoles this node owns, lent to relayed sessions.
#[derive(Debug)]
pub(super) struct Lender {
    instances: HashMap<String, Arc<Instance>>,
    consoles: Arc<Consoles>,
}

impl Lender {
    pub(super) fn new(registry: &Registry, consoles: Arc<Consoles>) -> Self {
        let instances = registry
            .instances()
            .map(|i| (i.id.to_string(), Arc::clone(i)))
            .collect();
        Self {
            instances,
            consoles,
        }
    }
}

#[async_trait]
impl ConsoleProvider for Lender {
    async fn attach(&self, instance: &str, replay_lines: u32) -> Result<Console, String> {
        let i = self
            .instances
            .get(instance)
            .ok_or_else(|| format!("no instance {instance} here"))?;
        self.consoles.open_held(i, replay_lines).await
    }

    async fn spectate(&self, instance: &str, req: SpectateRequest) -> Result<Console, String> {
        let i = self
            .instances
            .get(instance)
            .ok_or_else(|| format!("no instance {instance} here"))?;
        self.consoles
            .spectate_held(i, req)
            .await
            .map_err(|e| e.to_string())
    }

    fn history(&self, instance: &str) -> Option<(Vec<u8>, u64)> {
        let i = self.instances.get(instance)?;
        self.consoles
            .held_history(&i.id)
            .map(|s| (s.bytes, s.updated_ms))
    }
}
