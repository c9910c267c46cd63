//! `serialgate serve`: wire the configuration into the API and the SSH gateway, run both until
//! a signal, then stop them in order (stop accepting, tell sessions, drain).

use std::sync::Arc;
use std::time::Duration;

use api::ApiState;
use console::ConsoleService;
use gateway::GatewayConfig;
use gateway::host_key::KeyFile;
use tokio::sync::watch;

use crate::cli::{ServeArgs, load_config};
use crate::config;
use crate::instances;
use crate::limits;
use crate::ready::NodeReadiness;
use crate::stores::Stores;
use api::ready::Readiness as _;

pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (mut cfg, origin) = load_config(args.config.as_ref())?;
    if let Some(a) = args.api_listen {
        cfg.api.listen = a;
    }
    if let Some(a) = args.ssh_listen {
        cfg.ssh.listen = a;
    }
    // A configuration that cannot serve stops the start before anything is written.
    config::build(&cfg, &origin)?;
    // The state directory first: a configured one this user cannot write falls back to the
    // per-user one, and everything below (VM sockets, state.db) must agree on it.
    let (state_dir, host_key) = host_key(&cfg)?;
    cfg.state_dir = Some(state_dir.clone());
    let signer = gateway::host_key::load_or_create_file(&state_dir, SIGNER_KEY)?;
    let mut built = config::build(&cfg, &origin)?;
    instances::announce_identity(&mut built.vms, &signer)?;
    for (policy, finding) in config::policies::lint(&built.policies) {
        tracing::warn!(
            policy = %policy.source,
            "{} (serialgate policy check lists them all)",
            crate::policy_cmd::statement_of(&finding)
        );
    }
    // Before any listener or console opens; the connection caps not configured derive from it.
    let derived = limits::Derived::from_open_files(limits::raise_open_file_limit());
    // Certificate problems stop the start before anything is running.
    let tls = match (&cfg.api.tls_cert_file, &cfg.api.tls_key_file) {
        (Some(cert), Some(key)) => Some(api::tls::server_config(cert, key)?),
        _ => None,
    };
    let state_db = instances::restore(&built.registry, &state_dir)
        .map_err(|e| format!("state database in {}: {e}", state_dir.display()))?;

    let mut gw_config = GatewayConfig::new(host_key);
    gw_config.escape = built.escape;
    gw_config.login_grace = Duration::from_secs(cfg.ssh.login_grace_seconds);
    gw_config.max_unauthenticated_per_ip = cfg.ssh.max_unauthenticated_per_ip;
    gw_config.max_connections = cfg
        .ssh
        .max_connections
        .unwrap_or(derived.ssh_max_connections);
    gw_config.max_connections_per_ip = cfg.ssh.max_connections_per_ip;
    gw_config.keepalive_interval = Duration::from_secs(cfg.ssh.keepalive_interval_seconds);
    gw_config.keepalive_max = cfg.ssh.keepalive_max;
    // A session that cannot renew its lease closes at least this long (but at most half the
    // lease time) before the lease would lapse; a lease release waits no longer.
    gw_config.store_timeout = Duration::from_millis(cfg.store.timeout_ms);
    if let Some(def) = &built.cluster {
        // Sessions and their audit records name the node by its cluster name, with the process
        // id: lease holders (`node:pid/connection`) stay unique across restarts of one node.
        gw_config.node_id = format!("{}:{}", def.node, std::process::id());
    }
    let stores = Stores::open(
        &cfg,
        &state_dir,
        &gw_config.node_id,
        &built.settings,
        built.throttle,
    )?;
    let console_options = backends::ConsoleOptions {
        // A session start waits for this: keep it short.
        connect_timeout: Duration::from_secs(2),
        ..gw_config.console.clone()
    };
    // One connection per console, kept open between sessions: it feeds GetConsoleOutput and
    // answers the push-time reachability check without connecting a second time. In a
    // cluster, only the console's owner keeps it; the other nodes reach it through the owner.
    let cluster_node = match (&built.cluster, stores.ownership()) {
        (Some(def), Some(ownership)) => Some(crate::cluster::Node {
            def: Arc::new(def.clone()),
            ownership,
            clock: Arc::new(console::SystemClock),
            lease: built.settings.lease_ttl,
            store_timeout: Duration::from_millis(cfg.store.timeout_ms),
        }),
        _ => None,
    };
    // Each hub keeps its console's log in state_dir (on the node that owns the console).
    let log = cfg.console_log.enabled.then(|| consoles::LogSettings {
        state_dir: state_dir.clone(),
        config: console_log::LogConfig {
            max_bytes: cfg.console_log.max_bytes,
            keep_files: cfg.console_log.keep_files,
        },
    });
    gw_config.replay_lines = cfg.sessions.replay_lines;
    // Each session this node accepts is recorded in state_dir/recordings.
    if cfg.recordings.enabled {
        let recordings = Arc::new(recordings::Recordings::new(
            recordings::dir_for(&state_dir),
            cfg.recordings.config(),
        ));
        recordings.spawn_sweeper();
        gw_config.recordings = Some(recordings);
    }
    gw_config.max_spectators = cfg.sessions.max_spectators;
    let consoles = Arc::new(match &cluster_node {
        Some(node) => consoles::Consoles::clustered(
            &built.registry,
            console_options,
            crate::cluster::relayed(node)? as Arc<dyn consoles::RemoteConsoles>,
            log,
        ),
        None => consoles::Consoles::with_hubs(&built.registry, console_options, log),
    });
    gw_config.consoles = Arc::clone(&consoles);
    // Alone, the node runs its VMs and keeps instance states itself. In a cluster the states
    // are shared through the store and a VM runs on the node that owns its console.
    let keys_sockets = instances::bind_keys_sockets(&built.vms)?;
    let vms = std::mem::take(&mut built.vms);
    let (control, supervisor, cluster): (Arc<dyn console::control::InstanceControl>, _, _) =
        match (&cluster_node, &built.cluster, stores.states()) {
            (Some(node), Some(def), Some(states)) => {
                let cluster_vms = Arc::new(crate::cluster::ClusterVms::new(
                    states,
                    built.registry.instances().cloned(),
                    vms,
                    Arc::clone(&consoles),
                    node.store_timeout,
                ));
                cluster_vms.load().await;
                let listener = crate::listen::bind(def.listen).map_err(|e| {
                    format!("cannot listen on {} ([cluster] listen): {e}", def.listen)
                })?;
                let running = crate::cluster::start(
                    node,
                    listener,
                    &built.registry,
                    &built.eligible,
                    &consoles,
                    &cluster_vms,
                )?;
                (cluster_vms, None, Some(running))
            }
            _ => {
                let supervisor = instances::start_vms(&built.registry, vms, &consoles).await?;
                (
                    Arc::clone(&supervisor) as Arc<dyn console::control::InstanceControl>,
                    Some(supervisor),
                    None,
                )
            }
        };
    let instance_ids: Vec<_> = built.registry.instances().map(|i| i.id.clone()).collect();
    let service = Arc::new(
        stores
            .install(ConsoleService::new(
                built.registry,
                built.settings,
                built.throttle,
            ))
            .with_probe(Arc::clone(&consoles) as Arc<dyn console::ConsoleProbe>)
            .with_history(Arc::clone(&consoles) as Arc<dyn console::control::ConsoleHistory>)
            .with_control(control)
            .with_persistence(Arc::new(state_db)),
    );
    let mut state = ApiState::new(Arc::clone(&service), built.credentials);
    let signer_fingerprint = gateway::host_key::fingerprint(&signer);
    let key_token_count = built.key_tokens.len();
    state.instance_keys = Some(api::InstanceKeys::new(
        signer,
        std::mem::take(&mut built.key_tokens),
        service.registry(),
    )?);
    state.body_limit = cfg.api.max_body_bytes;
    state.limits = cfg.api.limits(derived.api_max_connections);
    let (slots, audit_log) = stores.for_readiness();
    // Startup logs each dependency's state (the first report logs them all); the consoles get
    // their first connection attempt first, so a missing socket is reported now.
    consoles.first_attempts(Duration::from_secs(3)).await;
    let readiness = Arc::new(NodeReadiness::new(slots, audit_log, instance_ids, consoles));
    readiness.report().await;
    state.readiness = Some(readiness);
    log_connection_limits(&cfg, &derived, &state.limits, &gw_config);
    let host_key_fingerprint = gateway::host_key::fingerprint(&gw_config.host_key);
    // The session machinery, shared by the SSH listener and the browser console.
    let gateway = gateway::Gateway::new(Arc::clone(&service), gw_config);
    if cfg.browser.enabled {
        state.browser = Some(api::browser::BrowserConsole::new(
            gateway.browser_sessions(),
            &cfg.region,
            Duration::from_secs(cfg.browser.max_link_seconds),
        ));
        if !webconsole::BUNDLED {
            tracing::warn!(
                "this serialgate was built without npm, so the browser console's page has no \
                 terminal; install Node.js and npm and rebuild to enable it"
            );
        }
    }
    if tls.is_none() && !cfg.api.listen.ip().is_loopback() {
        tracing::warn!(
            "[api] listen {} is not a loopback address and TLS is off: requests, their \
             signatures and the keys they push cross the network in the clear; set [api] \
             tls_cert_file and tls_key_file",
            cfg.api.listen
        );
    }

    let api_listener = crate::listen::bind(cfg.api.listen)
        .map_err(|e| format!("cannot listen on {} ([api] listen): {e}", cfg.api.listen))?;
    let ssh_listener = crate::listen::bind(cfg.ssh.listen)
        .map_err(|e| format!("cannot listen on {} ([ssh] listen): {e}", cfg.ssh.listen))?;
    let api_addr = api_listener.local_addr()?;
    let ssh_addr = ssh_listener.local_addr()?;

    let purger = {
        let service = Arc::clone(&service);
        tokio::spawn(async move { service.run_purger(Duration::from_secs(10)).await })
    };
    tracing::info!(
        config = %origin,
        region = %cfg.region,
        state_dir = %state_dir.display(),
        stores = %stores.description,
        host_key = %host_key_fingerprint,
        instance_key_signer = %signer_fingerprint,
        instances_with_key_token = key_token_count,
        "serialgate {} ready: API {}://{api_addr}, SSH {ssh_addr}",
        env!("CARGO_PKG_VERSION"),
        if tls.is_some() { "https" } else { "http" }
    );

    // One signal stops both servers.
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let state = Arc::new(state);
    // Each managed VM's own door to its keys (see `api::serve_local`).
    for (id, listener) in keys_sockets {
        let stopped = stopped(stop_rx.clone());
        tokio::spawn(api::serve_local(listener, Arc::clone(&state), id, stopped));
    }
    let api_stopped = stopped(stop_rx.clone());
    let api = match tls {
        Some(tls) => tokio::spawn(api::serve_tls(api_listener, state, tls, api_stopped)),
        None => tokio::spawn(api::serve(api_listener, state, api_stopped)),
    };
    let ssh = tokio::spawn(gateway.run(ssh_listener, stopped(stop_rx)));
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    // The gateway returns only after every session has said goodbye, released its lease and
    // written its end record (or its drain deadline passed): nothing below may cut that short.
    let (api_result, ssh_result) = tokio::join!(api, ssh);
    purger.abort();
    // Sessions are gone: the consoles this node owns (and their VMs) go to the other nodes at
    // once.
    if let Some(cluster) = cluster {
        cluster.stop().await;
    }
    // A node alone stops its VMs (a clean quit, then kill).
    if let Some(supervisor) = supervisor {
        supervisor.shutdown().await;
    }
    tracing::info!("serialgate stopped");
    api_result
        .map_err(|e| format!("API server task failed: {e}"))?
        .map_err(|e| format!("API server failed: {e}"))?;
    ssh_result
        .map_err(|e| format!("SSH gateway task failed: {e}"))?
        .map_err(|e| format!("SSH gateway failed: {e}"))?;
    Ok(())
}

/// One start-up line with the open-file limit and both connection caps, and a warning when
/// configured caps could run the process out of descriptors.
fn log_connection_limits(
    cfg: &config::Config,
    derived: &limits::Derived,
    api: &api::ApiLimits,
    ssh: &GatewayConfig,
) {
    let open_files = match derived.open_files {
        u64::MAX => "unlimited".to_owned(),
        n => n.to_string(),
    };
    tracing::info!(
        open_files = %open_files,
        api_max_connections = api.max_connections,
        api_max_connections_per_ip = api.max_connections_per_ip,
        ssh_max_connections = ssh.max_connections,
        ssh_max_connections_per_ip = ssh.max_connections_per_ip,
        "connection limits"
    );
    let configured = cfg.api.max_connections.is_some() || cfg.ssh.max_connections.is_some();
    if configured && derived.exceeded_by(api.max_connections, ssh.max_connections) {
        tracing::warn!(
            "[api] max_connections ({}) and [ssh] max_connections ({}) together may need more \
             file descriptors than the open-file limit ({open_files}) leaves for connections; \
             raise the limit or lower the caps",
            api.max_connections,
            ssh.max_connections
        );
    }
}

/// The key that signs the records instances fetch (`GET /instance-keys/v1/USER`). Every node
/// of a cluster needs the same file, as instances pin its public half.
pub const SIGNER_KEY: KeyFile = KeyFile {
    file_name: "instance_key_signer_ed25519",
    what: "instance key signer",
};

/// Loads or creates the SSH host key, and says which state directory holds it.
pub fn host_key(
    cfg: &config::Config,
) -> Result<(std::path::PathBuf, gateway::host_key::PrivateKey), Box<dyn std::error::Error>> {
    state_key(cfg, gateway::host_key::HOST_KEY)
}

/// Loads or creates a key kept in `state_dir`. A configured `state_dir` this user cannot create
/// (e.g. `/var/lib/serialgate` when not root) falls back to the per-user directory with a
/// warning, so a configuration written for a system service still runs for a developer.
pub fn state_key(
    cfg: &config::Config,
    file: KeyFile,
) -> Result<(std::path::PathBuf, gateway::host_key::PrivateKey), Box<dyn std::error::Error>> {
    use gateway::host_key::{KeyFileError, load_or_create_file};
    let dir = cfg.state_dir();
    match load_or_create_file(&dir, file) {
        Ok(key) => Ok((dir, key)),
        Err(KeyFileError::StateDir { source, .. } | KeyFileError::Write { source, .. })
            if cfg.state_dir.is_some() && source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            let fallback = config::user_state_dir();
            tracing::warn!(
                "state_dir {} is not writable ({source}); using {} instead",
                dir.display(),
                fallback.display()
            );
            let key = load_or_create_file(&fallback, file)?;
            Ok((fallback, key))
        }
        Err(e) => Err(e.into()),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
