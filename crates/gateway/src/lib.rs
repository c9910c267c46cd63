//! serialgate's SSH gateway: `ssh <instance-id>.port<N>@host` onto the instance's serial console.
//!
//! The gateway is a thin adapter over the domain ([`console::ConsoleService`]): usernames name a
//! slot, public-key authentication asks the domain for a live grant, and the domain's lease
//! decides who holds the slot. Invariants: every channel request gets an answer; nothing is
//! buffered without bound (one chunk in flight each way per session); connections are capped in
//! total and per address before they cost more than a socket (see [`limits`]); a session shows
//! no console byte before its start record is durable, and releases its lease and writes its end
//! record on every exit path (see [`session_record`]); a session stops before its lease can
//! lapse (see [`lease_keeper`]); [`run`] returns only after every session has ended; users see
//! short fixed texts, the log gets causes.

mod browser;
mod client;
pub mod config;

pub mod escape;
mod handler;
pub mod host_key;
mod lease_guard;
mod lease_keeper;
pub mod limits;
mod messages;
mod notices;
mod session;
mod session_end;
mod session_record;
mod spectate;
mod tape;
pub mod username;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use console::ConsoleService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;

pub use config::GatewayConfig;

use crate::handler::Connection;
use crate::limits::{Caps, Limiter, RefusalLog};

/// State shared by all connections.
pub(crate) struct Shared {
    pub service: Arc<ConsoleService>,
    pub config: GatewayConfig,
    /// Flips to `true` when the gateway shuts down; sessions say goodbye and close.
    pub shutdown: watch::Receiver<bool>,
    /// Every session task, and every lease release or end record left behind by one that
    /// ended abnormally: [`run`] waits for them before it returns.
    pub sessions: TaskTracker,
    /// Numbers connections (SSH) and browser sessions alike, for the log.
    pub next_id: AtomicU64,
}

/// The session machinery: what [`run`] serves SSH connections with, and what browser
/// sessions ([`Gateway::browser_sessions`]) run on, so both share one shutdown and one wait
/// for every session to end.
pub struct Gateway {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    pub fn new(service: Arc<ConsoleService>, config: GatewayConfig) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            service,
            config,
            shutdown: stop_rx,
            sessions: TaskTracker::new(),
            next_id: AtomicU64::new(1),
        });
        Self { shared, stop }
    }

    /// Opens browser sessions on this gateway, for the web listener.
    pub fn browser_sessions(&self) -> Arc<dyn console::browser::BrowserSessions> {
        Arc::new(browser::Browsers::new(Arc::clone(&self.shared)))
    }

    /// Runs the SSH listener; see [`run`].
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        serve(listener, self.shared, self.stop, shutdown).await
    }
}

/// Runs the SSH gateway on `listener` until `shutdown` resolves, then stops accepting, tells
/// every session, and waits up to `shutdown_grace` for the connections to close, and up to
/// `shutdown_grace + store_timeout` for every session to have said goodbye, released its lease
/// and written its end record.
pub async fn run(
    listener: TcpListener,
    service: Arc<ConsoleService>,
    config: GatewayConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    Gateway::new(service, config).run(listener, shutdown).await
}

async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop_tx: watch::Sender<bool>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let config = &shared.config;
    let russh_config = Arc::new(config.russh_config());
    let limiter = Limiter::new(Caps {
        total: config.max_connections,
        per_ip: config.max_connections_per_ip,
        unauth_per_ip: config.max_unauthenticated_per_ip,
    });
    let mut refusals = RefusalLog::default();
    let grace = config.shutdown_grace;
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // Reap finished connection tasks so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (conn, unauth) = match limiter.try_admit(peer.ip()) {
                    Ok(guards) => guards,
                    Err(cap) => {
                        // Refused fast: closed before the banner, costing nothing more. One
                        // attacker can cause many of these, so the warning is rate-limited.
                        drop(tcp);
                        tracing::debug!(peer = %peer, cap = cap.as_str(), "connection refused at a cap");
                        if let Some(n) = refusals.refused(tokio::time::Instant::now()) {
                            tracing::warn!(
                                refused = n,
                                latest_peer = %peer,
                                cap = cap.as_str(),
                                "SSH connections refused at a connection cap (one warning per {} s at most)",
                                RefusalLog::INTERVAL.as_secs()
                            );
                        }
                        continue;
                    }
                };
                let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::clone(&shared);
                let cfg = Arc::clone(&russh_config);
                connections.spawn(async move {
                    serve_connection(shared, cfg, tcp, peer, id, unauth).await;
                    // The connection's place is held until everything about it has ended.
                    drop(conn);
                });
            }
        }
    }

    drop(listener);
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + grace;
    // Connections first: a connection's handler may still hold a lease (authenticated, no
    // shell yet), released on a tracked task when the connection ends.
    let drained = tokio::time::timeout_at(deadline, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "connections still open after the shutdown grace; closing them"
        );
        connections.shutdown().await;
    }
    // Then the sessions: each ends with its goodbye (bounded by half the grace), its lease
    // release (bounded by the store timeout) and its end record; they get the grace plus that
    // one store call.
    shared.sessions.close();
    let deadline = deadline + shared.config.store_timeout;
    if tokio::time::timeout_at(deadline, shared.sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = shared.sessions.len(),
            "sessions still ending after the shutdown grace; their leases lapse by themselves"
        );
    }
    Ok(())
}

async fn serve_connection(
    shared: Arc<Shared>,
    russh_config: Arc<russh::server::Config>,
    tcp: TcpStream,
    peer: SocketAddr,
    conn_id: u64,
    unauth: limits::UnauthGuard,
) {
    let _ = tcp.set_nodelay(true);
    // russh runs the connection in a task of its own that only ends when the peer closes or
    // the socket fails. A second handle on the same socket lets the gateway end it regardless:
    // shutting it down makes russh's reads and writes fail.
    let (tcp, killer) = match split_killer(tcp) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(conn = conn_id, peer = %peer, error = %e, "cannot set up connection");
            return;
        }
    };
    let grace = shared.config.login_grace;
    let settled = Arc::new(AtomicBool::new(false));
    let handler = Connection::new(
        Arc::clone(&shared),
        conn_id,
        peer,
        unauth,
        Arc::clone(&settled),
    );
    // The version exchange happens inside run_stream: bound it by the login grace too, so a
    // client that never speaks cannot hold a connection.
    let running = match tokio::time::timeout(
        grace,
        russh::server::run_stream(russh_config, tcp, handler),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            tracing::debug!(conn = conn_id, peer = %peer, error = %e, "SSH handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(conn = conn_id, peer = %peer, "no SSH handshake within the login grace");
            return;
        }
    };
    let handle = running.handle();
    tokio::pin!(running);
    let mut shutdown = shared.shutdown.clone();
    let login_deadline = tokio::time::Instant::now() + grace;
    let mut login_checked = false;
    let mut shutting_down = false;
    // When set, the socket is shut down at this instant (after a polite disconnect).
    let mut kill_at: Option<tokio::time::Instant> = None;
    let result = loop {
        tokio::select! {
            r = &mut running => break r,
            () = tokio::time::sleep_until(login_deadline), if !login_checked => {
                login_checked = true;
                // Authenticated or not, a connection that has not opened its session by now is
                // closed: it must not hold a session slot (or an unauthenticated place) idle.
                if !settled.load(Ordering::SeqCst) {
                    tracing::info!(conn = conn_id, peer = %peer, "no session within the login grace; disconnecting");
                    let _ = handle
                        .disconnect(russh::Disconnect::ByApplication, "Login grace time exceeded".into(), String::new())
                        .await;
                    kill_at = Some(tokio::time::Instant::now() + DISCONNECT_LINGER);
                }
            }
            changed = shutdown.changed(), if !shutting_down => {
                let stop = changed.is_err() || *shutdown.borrow();
                if !stop {
                    continue;
                }
                shutting_down = true;
                // The session task says goodbye and closes its channel by itself; give it a
                // moment, then end the connection whatever the peer does.
                let linger = (shared.config.shutdown_grace / 2).min(DISCONNECT_LINGER);
                let h = handle.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(linger).await;
                    let _ = h
                        .disconnect(russh::Disconnect::ByApplication, "serialgate is shutting down".into(), String::new())
                        .await;
                });
                let at = tokio::time::Instant::now() + linger + DISCONNECT_LINGER.min(linger);
                kill_at = Some(kill_at.map_or(at, |k| k.min(at)));
            }
            () = sleep_until_opt(kill_at) => {
                tracing::debug!(conn = conn_id, peer = %peer, "closing the socket");
                let _ = killer.shutdown(std::net::Shutdown::Both);
                kill_at = None;
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(conn = conn_id, peer = %peer, error = %e, "connection ended with an error");
    }
}

/// How long a peer gets to close after being told to disconnect.
const DISCONNECT_LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// The stream for russh and a second handle on the same socket for shutting it down.
fn split_killer(tcp: TcpStream) -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let std = tcp.into_std()?;
    let killer = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, killer))
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
