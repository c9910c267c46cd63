//! The API listener: the accept loop with its connection caps, optional TLS, and the staged
//! shutdown (stop accepting → finish requests in progress → close what is left at a deadline →
//! write the last window of counted unauthenticated refusals).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use crate::connection::{Deadlines, serve_connection};
use crate::limits::{ApiLimits, ConnGuard, ConnLimiter, Refusal};
use crate::refusals::flush_every;
use crate::server::{ApiState, router};

/// How long requests in progress may take to finish once shutdown begins.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Pause after a failed accept (typically: out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Refusals at a cap and accept errors come in floods; each is logged at most this often, with
/// the number not logged since.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Serves plain HTTP until `shutdown` resolves, then lets requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<ApiState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run(listener, state, None, shutdown).await
}

/// Serves HTTPS only (see [`crate::tls::server_config`]) until `shutdown` resolves, then lets
/// requests in progress finish.
pub async fn serve_tls(
    listener: TcpListener,
    state: Arc<ApiState>,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run(listener, state, Some(TlsAcceptor::from(tls)), shutdown).await
}

async fn run(
    listener: TcpListener,
    state: Arc<ApiState>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits;
    let limiter = ConnLimiter::new(limits.max_connections, limits.max_connections_per_ip);
    let router = router(Arc::clone(&state));
    let (stop_tx, stop_rx) = watch::channel(false);
    let flusher = flush_every(
        Arc::clone(&state.refused),
        Arc::clone(&state.service),
        state.refusal_window,
        stop_rx.clone(),
    );
    let mut connections = JoinSet::new();
    let mut refusals = Sampled::default();
    let mut accept_errors = Sampled::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::warn!("an API connection task panicked: {e}");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match limiter.try_acquire(peer.ip()) {
                    Ok(guard) => {
                        connections.spawn(connection(
                            tcp,
                            peer,
                            guard,
                            tls.clone(),
                            router.clone(),
                            limits,
                            stop_rx.clone(),
                        ));
                    }
                    Err(why) => {
                        // Closed at once: a client at a cap gets no buffer, task or timer.
                        drop(tcp);
                        if let Some(unlogged) = refusals.log_now() {
                            let cap = match why {
                                Refusal::Global => "max_connections",
                                Refusal::PerIp => "max_connections_per_ip",
                            };
                            tracing::warn!(
                                %peer,
                                cap,
                                refused_since_last_report = unlogged,
                                "API connection refused: [api] {cap} reached"
                            );
                        }
                    }
                },
                Err(e) => {
                    if let Some(unlogged) = accept_errors.log_now() {
                        tracing::warn!(
                            error = %e,
                            failed_since_last_report = unlogged,
                            "API accept failed"
                        );
                    }
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }

    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "API connections still busy after the drain deadline; closing them"
        );
        connections.shutdown().await;
    }
    // Every request has been answered: the refusals counted since the last window's end are
    // written before the server returns.
    flusher.join().await;
    state.refused.flush(&state.service).await;
    Ok(())
}

/// One accepted connection, holding its place under the caps until it ends.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    _place: ConnGuard,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ApiLimits,
    mut stop: watch::Receiver<bool>,
) {
    // Small request/response pairs: Nagle would only add latency.
    let _ = tcp.set_nodelay(true);
    let deadlines = Arc::new(Deadlines::new(&limits));
    let Some(acceptor) = tls else {
        serve_connection(tcp, peer, false, false, router, &limits, deadlines, stop).await;
        return;
    };
    // The handshake is part of the first request head's time.
    let (deadline, _) = deadlines.deadline();
    let handshake = tokio::time::timeout_at(deadline, acceptor.accept(tcp));
    let stream = tokio::select! {
        result = handshake => result,
        _ = stop.changed() => return,
    };
    match stream {
        Ok(Ok(stream)) => {
            serve_connection(stream, peer, true, false, router, &limits, deadlines, stop).await;
        }
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "API TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "API TLS handshake not completed in time"),
    }
}

/// Decides when a frequent event is logged: the first time, then at most once per
/// [`LOG_INTERVAL`], counting the occurrences in between.
#[derive(Debug, Default)]
struct Sampled {
    last: Option<Instant>,
    unlogged: u64,
}

impl Sampled {
    /// `Some(occurrences not logged since the last report)` when this one should be logged.
    fn log_now(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < LOG_INTERVAL => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn floods_are_logged_once_per_interval_with_a_count() {
        let mut s = Sampled::default();
        assert_eq!(s.log_now(), Some(0));
        assert_eq!(s.log_now(), None);
        assert_eq!(s.log_now(), None);
        tokio::time::advance(LOG_INTERVAL).await;
        assert_eq!(s.log_now(), Some(2));
        assert_eq!(s.log_now(), None);
    }
}
