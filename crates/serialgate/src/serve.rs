//! `serialgate serve`: wire the configuration into the servers and run until a signal.

use std::sync::Arc;
use std::time::Duration;

use api::ApiState;
use console::ConsoleService;
use tokio::net::TcpListener;

use crate::cli::{ServeArgs, load_config};
use crate::config;

pub async fn run(args: ServeArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (mut cfg, origin) = load_config(args.config.as_ref())?;
    if let Some(a) = args.api_listen {
        cfg.api.listen = a;
    }
    if let Some(a) = args.ssh_listen {
        cfg.ssh.listen = a;
    }
    let built = config::build(&cfg, &origin)?;
    let service = Arc::new(ConsoleService::new(
        built.registry,
        built.settings,
        built.throttle,
    ));
    let mut state = ApiState::new(Arc::clone(&service), built.credentials);
    state.body_limit = cfg.api.max_body_bytes;

    let api_listener = TcpListener::bind(cfg.api.listen)
        .await
        .map_err(|e| format!("cannot listen on {} ([api] listen): {e}", cfg.api.listen))?;
    let api_addr = api_listener.local_addr()?;

    let purger = {
        let service = Arc::clone(&service);
        tokio::spawn(async move { service.run_purger(Duration::from_secs(10)).await })
    };
    tracing::info!(config = %origin, region = %cfg.region, "serialgate {} API listening on http://{api_addr}", env!("CARGO_PKG_VERSION"));

    let result = api::serve(api_listener, Arc::new(state), shutdown_signal()).await;
    purger.abort();
    tracing::info!("serialgate stopped");
    result.map_err(|e| format!("API server failed: {e}").into())
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
