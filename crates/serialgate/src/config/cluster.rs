//! `[cluster]` and `[[instances]] nodes`, checked: a node name, a relay address other nodes
//! can reach, a shared secret long enough to authenticate the relay.

use std::net::SocketAddr;

use super::secrets::resolve;
use super::{ClusterSection, Config, ConfigError};

/// The shortest cluster secret accepted, bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// This node's place in a cluster, as `serve` needs it.
#[derive(Clone)]
pub struct ClusterDef {
    pub node: String,
    pub listen: SocketAddr,
    /// `HOST:PORT` other nodes reach `listen` at.
    pub advertise: String,
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for ClusterDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterDef")
            .field("node", &self.node)
            .field("listen", &self.listen)
            .field("advertise", &self.advertise)
            .field("secret", &"***")
            .finish()
    }
}

/// Whether `name` can name a node: 1 to 64 of `A-Z a-z 0-9 . _ -` (the store's rule).
pub fn valid_node_name(name: &str) -> bool {
    console::check_node_name(name).is_ok()
}

/// The host name, as a node name: the default for `[cluster] node`.
fn host_node_name() -> Option<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let host = host.trim();
    valid_node_name(host).then(|| host.to_owned())
}

/// Checks `[cluster]` against `[store]`: many nodes (Redis) need it, one node has no use for
/// it. `None` for a node on its own.
pub(super) fn build(cfg: &Config, origin: &str) -> Result<Option<ClusterDef>, ConfigError> {
    let err = |key: &str, problem: String| ConfigError(format!("{origin}: {key}: {problem}"));
    let c: &ClusterSection = match (&cfg.cluster, &cfg.store.redis) {
        (None, None) => return Ok(None),
        (None, Some(_)) => {
            return Err(err(
                "cluster",
                "missing: with [store] redis, nodes share the consoles, and each needs \
                 [cluster] listen and secret (see README \"Many nodes\")"
                    .into(),
            ));
        }
        (Some(_), None) => {
            return Err(err(
                "cluster",
                "needs [store] redis: the nodes of a cluster share it".into(),
            ));
        }
        (Some(c), Some(_)) => c,
    };
    let node = match &c.node {
        Some(n) if valid_node_name(n) => n.clone(),
        Some(n) => {
            return Err(err(
                "cluster.node",
                format!("{n:?} is not 1 to 64 of A-Z a-z 0-9 . _ -"),
            ));
        }
        None => host_node_name().ok_or_else(|| {
            err(
                "cluster.node",
                "missing, and the host name cannot serve: give one".into(),
            )
        })?,
    };
    let advertise = match &c.advertise {
        Some(a) => {
            if a.rsplit_once(':')
                .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
            {
                return Err(err("cluster.advertise", format!("{a:?} is not HOST:PORT")));
            }
            a.clone()
        }
        None if c.listen.ip().is_unspecified() => {
            return Err(err(
                "cluster.advertise",
                format!(
                    "missing: listen {} is every address, so say which one other nodes use",
                    c.listen
                ),
            ));
        }
        None => c.listen.to_string(),
    };
    let secret = resolve(
        origin,
        "cluster.secret",
        c.secret.as_deref(),
        c.secret_file.as_deref(),
        c.secret_env.as_deref(),
        true,
    )?
    .unwrap_or_default();
    if secret.len() < MIN_SECRET_BYTES {
        return Err(err(
            "cluster.secret",
            format!("must be at least {MIN_SECRET_BYTES} bytes (e.g. openssl rand -hex 32)"),
        ));
    }
    Ok(Some(ClusterDef {
        node,
        listen: c.listen,
        advertise,
        secret: secret.into_bytes(),
    }))
}
