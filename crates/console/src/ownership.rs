//! Who owns an instance's console, and which nodes are up: the cluster's shared view.
//!
//! A console accepts one connection, so with many nodes at most one of them keeps it open (its
//! hub) at a time: the owner, holding a lease that it renews and that expires when it stops.
//! Every take of the lease hands out a larger fencing token than the one before, so whatever
//! acts on the owner's behalf can be told from a former owner's leftovers. Beside the leases,
//! each node announces itself (how the others reach it, its version) for a while; a node that
//! stops announcing drops out of the list.
//!
//! Time is the caller's: every expiry is `now_ms` plus a duration and is compared with the
//! `now_ms` of later calls, as in [`crate::SessionLeases`].

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::InstanceId;

/// A node as it announced itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's name, unique in the cluster (see [`check_node_name`]).
    pub node: String,
    /// Where the other nodes reach it (its relay listener, `host:port`).
    pub address: String,
    /// The version it runs.
    pub version: String,
    /// When it last announced itself: the `now_ms` of that [`ConsoleOwnership::announce`]. The
    /// store records that time, whatever value the announced `NodeInfo` carries here.
    pub renewed_ms: u64,
}

/// The live holder of an instance's console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub node: String,
    /// The fencing token of the holder's current lease.
    pub token: u64,
    /// The lease ends at this time unless renewed.
    pub expires_ms: u64,
}

/// Console ownership leases and the node registry. Every method is atomic with respect to the
/// others. A lease with `expires_ms <= now_ms` counts as gone for every method.
#[async_trait]
pub trait ConsoleOwnership: Send + Sync + std::fmt::Debug + 'static {
    /// Takes or renews the console of `instance` for `node`, until `now_ms + ttl_ms`.
    ///
    /// `held` is the fencing token the caller believes it holds, which says what it asks for:
    /// - `None`, a take: succeeds only when nobody holds the console at `now_ms` (the lease
    ///   ended, lapsed or was released), and returns a new token, larger than every token
    ///   handed out before for the instance. A live lease held by `node` itself refuses it too:
    ///   a node that lost track of its token (restarted, or a reply lost to a timeout) waits
    ///   for that lease to end like any other node, since the store cannot tell it from a
    ///   second process under the same name. A store that lost its data refuses takes for a
    ///   while after (the Redis epoch rule).
    /// - `Some(t)`, a renewal: succeeds only when `node` still holds the live lease with token
    ///   `t`, and returns `t`. A lease that ended, lapsed or went to a newer token is never
    ///   taken back silently: the caller gets `None`, stops using the console, and may then
    ///   take again with `None` (a new token).
    ///
    /// `Ok(None)` when `node` does not hold the console after the call. Fails for a node name
    /// that [`check_node_name`] refuses.
    async fn hold(
        &self,
        instance: &InstanceId,
        node: &str,
        held: Option<u64>,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<u64>, StoreError>;

    /// Gives the console up at once if `node` holds it with `token`; does nothing otherwise.
    async fn release(
        &self,
        instance: &InstanceId,
        node: &str,
        token: u64,
    ) -> Result<(), StoreError>;

    /// The live owner at `now_ms`, if any.
    async fn owner(&self, instance: &InstanceId, now_ms: u64) -> Result<Option<Owner>, StoreError>;

    /// Announces `info` (replacing the node's previous announcement) until `now_ms + ttl_ms`,
    /// with `renewed_ms` set to `now_ms`. Fails for a node name that [`check_node_name`]
    /// refuses.
    async fn announce(&self, info: &NodeInfo, ttl_ms: u64, now_ms: u64) -> Result<(), StoreError>;

    /// The nodes whose announcement is live at `now_ms`, sorted by name.
    async fn nodes(&self, now_ms: u64) -> Result<Vec<NodeInfo>, StoreError>;
}

/// The longest node name.
pub const NODE_NAME_MAX: usize = 64;

/// A node name is 1 to [`NODE_NAME_MAX`] characters of `A-Z a-z 0-9 . _ -`: it becomes part of
/// store keys, so it carries no separator, hash tag or space.
pub fn check_node_name(name: &str) -> Result<(), StoreError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if name.is_empty() || name.len() > NODE_NAME_MAX || !name.chars().all(allowed) {
        return Err(StoreError::new(format!(
            "node name {name:?} is not 1 to {NODE_NAME_MAX} characters of A-Z a-z 0-9 . _ -"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        for good in ["a", "node-1", "n1.example_2", &"x".repeat(NODE_NAME_MAX)] {
            assert!(check_node_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a b",
            "a:b",
            "{a}",
            "a/b",
            "é",
            &"x".repeat(NODE_NAME_MAX + 1),
        ] {
            assert!(check_node_name(bad).is_err(), "{bad:?}");
        }
    }
}
