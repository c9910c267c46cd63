//! `serialgate cluster status`: the nodes of a cluster and which one owns each console, as
//! the shared store has them.

use std::path::PathBuf;
use std::time::Duration;

use console::{Clock, SystemClock};

use crate::cli::load_config;
use crate::config;

#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// List the nodes (relay address, version, last announcement) and the owner of each
    /// console of the configuration, from `[store] redis`.
    Status {
        /// A node's configuration (any node's: they share the store). Default: the embedded
        /// default, which has no cluster.
        #[arg(long, short = 'c', value_name = "FILE", env = "SERIALGATE_CONFIG")]
        config: Option<PathBuf>,
        /// One JSON object per line: {"node": …} for nodes, {"instance": …} for consoles.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(args: ClusterArgs) -> Result<(), Box<dyn std::error::Error>> {
    let ClusterCommand::Status { config, json } = args.command;
    let (cfg, origin) = load_config(config.as_ref())?;
    let built = config::build(&cfg, &origin)?;
    let url = cfg.store.redis.as_ref().ok_or_else(|| {
        format!("{origin}: no [store] redis: a node on its own owns every console")
    })?;
    let mut rc = store_redis::RedisConfig::new(url.clone());
    rc.timeout = Duration::from_millis(cfg.store.timeout_ms);
    let store = store_redis::RedisStore::connect(&rc).map_err(|e| format!("[store] redis: {e}"))?;
    let ownership = store.ownership(built.settings.lease_ttl);
    use console::ConsoleOwnership;
    let now = SystemClock.now_ms();
    let nodes = ownership.nodes(now).await?;
    let mut owners = Vec::new();
    for instance in built.registry.instances() {
        owners.push((
            instance.id.clone(),
            ownership.owner(&instance.id, now).await?,
        ));
    }
    owners.sort_by(|a, b| a.0.cmp(&b.0));
    let ago = |ms: u64| format!("{:.1} s", now.saturating_sub(ms) as f64 / 1000.0);
    if json {
        for n in &nodes {
            let line = serde_json::json!({
                "node": n.node, "address": n.address, "version": n.version,
                "renewed_ms": n.renewed_ms,
            });
            println!("{line}");
        }
        for (id, owner) in &owners {
            let line = serde_json::json!({
                "instance": id.as_str(),
                "owner": owner.as_ref().map(|o| o.node.clone()),
                "token": owner.as_ref().map(|o| o.token),
                "expires_ms": owner.as_ref().map(|o| o.expires_ms),
            });
            println!("{line}");
        }
        return Ok(());
    }
    println!(
        "{:<24} {:<28} {:<10} LAST ANNOUNCED",
        "NODE", "RELAY", "VERSION"
    );
    for n in &nodes {
        println!(
            "{:<24} {:<28} {:<10} {} ago",
            n.node,
            n.address,
            n.version,
            ago(n.renewed_ms)
        );
    }
    if nodes.is_empty() {
        println!("(no node has announced itself)");
    }
    println!();
    println!("{:<24} {:<24} LEASE LEFT", "CONSOLE", "OWNER");
    for (id, owner) in &owners {
        match owner {
            Some(o) => println!(
                "{:<24} {:<24} {:.1} s",
                id.as_str(),
                o.node,
                o.expires_ms.saturating_sub(now) as f64 / 1000.0
            ),
            None => println!("{:<24} {:<24} -", id.as_str(), "(none)"),
        }
    }
    Ok(())
}
