//! [`ConsoleOwnership`] on Redis: per instance an owner hash and its fencing counter, changed
//! only by the scripts in `scripts.rs`; per node an announcement hash, listed through a set of
//! names.

use std::time::Duration;

use async_trait::async_trait;
use console::{ConsoleOwnership, InstanceId, NodeInfo, Owner, StoreError, check_node_name};

use crate::leases::parse_token;
use crate::{RedisStore, millis};

/// Console ownership and the node registry in Redis, shared by every node.
#[derive(Debug, Clone)]
pub struct RedisOwnership {
    store: RedisStore,
    /// How long takes of an instance's console are refused after Redis is found to have lost
    /// its data: the longest lease any node hands out (see `scripts.rs`, `epoch_end`).
    epoch_wait_ms: u64,
}

impl RedisOwnership {
    pub(crate) fn new(store: RedisStore, lease_ttl: Duration) -> Self {
        Self {
            store,
            epoch_wait_ms: millis(lease_ttl),
        }
    }
}

/// A number a script returned (ms or token), or the error naming it.
fn parse_u64(what: &str, v: &str) -> Result<u64, StoreError> {
    v.parse()
        .map_err(|_| StoreError::new(format!("redis returned a bad {what} {v:?}")))
}

#[async_trait]
impl ConsoleOwnership for RedisOwnership {
    async fn hold(
        &self,
        instance: &InstanceId,
        node: &str,
        held: Option<u64>,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError> {
        check_node_name(node)?;
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let (owner, fence) = (keys.owner(instance), keys.owner_fence(instance));
        let epoch = keys.epoch(instance);
        let held = held.map(|t| t.to_string()).unwrap_or_default();
        // Redis drops the key `ttl_ms` after it runs the script, which is no earlier than the
        // lease's expiry on the caller's clock: the scripts, not Redis's clock, end the lease.
        let lifetime = ttl_ms.max(1);
        let script = &self.store.scripts.hold;
        let token: Option<String> = self
            .store
            .bounded("hold console", async move {
                script
                    .key(&owner)
                    .key(&fence)
                    .key(&epoch)
                    .arg(now_ms)
                    .arg(node)
                    .arg(&held)
                    .arg(now_ms.saturating_add(ttl_ms))
                    .arg(lifetime)
                    .arg(self.epoch_wait_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        token.as_deref().map(parse_token).transpose()
    }

    async fn release(
        &self,
        instance: &InstanceId,
        node: &str,
        token: u64,
    ) -> Result<(), StoreError> {
        check_node_name(node)?;
        let mut conn = self.store.conn.clone();
        let owner = self.store.keys.owner(instance);
        let script = &self.store.scripts.disown;
        let _released: i64 = self
            .store
            .bounded("release console", async move {
                script
                    .key(&owner)
                    .arg(node)
                    .arg(token)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn owner(&self, instance: &InstanceId, now_ms: u64) -> Result<Option<Owner>, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.owner(instance);
        let (node, token, exp): (Option<String>, Option<String>, Option<String>) = self
            .store
            .bounded("console owner", async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("node")
                    .arg("token")
                    .arg("exp")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let (Some(node), Some(token), Some(exp)) = (node, token, exp) else {
            return Ok(None);
        };
        let expires_ms = parse_u64("owner expiry", &exp)?;
        if now_ms >= expires_ms {
            return Ok(None);
        }
        Ok(Some(Owner {
            node,
            token: parse_token(&token)?,
            expires_ms,
        }))
    }

    async fn announce(&self, info: &NodeInfo, ttl_ms: u64, now_ms: u64) -> Result<(), StoreError> {
        check_node_name(&info.node)?;
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let (node, names) = (keys.node(&info.node), keys.node_names());
        let script = &self.store.scripts.announce;
        let _: i64 = self
            .store
            .bounded("announce node", async move {
                script
                    .key(&node)
                    .key(&names)
                    .arg(&info.node)
                    .arg(&info.address)
                    .arg(&info.version)
                    .arg(now_ms)
                    .arg(now_ms.saturating_add(ttl_ms))
                    .arg(ttl_ms.max(1))
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn nodes(&self, now_ms: u64) -> Result<Vec<NodeInfo>, StoreError> {
        let keys = &self.store.keys;
        let names_key = keys.node_names();
        let mut conn = self.store.conn.clone();
        let names: Vec<String> = self
            .store
            .bounded("list nodes", async move {
                redis::cmd("SMEMBERS")
                    .arg(&names_key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // A second step, so that the script names every key it touches (Redis Cluster's rule);
        // a node announced in between is simply listed next time.
        let mut invocation = self.store.scripts.nodes.key(keys.node_names());
        for name in &names {
            invocation.key(keys.node(name)).arg(name);
        }
        let mut conn = self.store.conn.clone();
        let fields: Vec<String> = self
            .store
            .bounded("read nodes", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        let mut nodes = Vec::with_capacity(names.len());
        for f in fields.chunks(5) {
            let [node, address, version, renewed, exp] = f else {
                return Err(StoreError::new("redis returned a short node record"));
            };
            if now_ms >= parse_u64("node expiry", exp)? {
                continue;
            }
            nodes.push(NodeInfo {
                node: node.clone(),
                address: address.clone(),
                version: version.clone(),
                renewed_ms: parse_u64("node renewal time", renewed)?,
            });
        }
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(nodes)
    }
}
