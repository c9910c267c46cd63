//! The owner's side: accepts relay connections, authenticates them, and lends its consoles
//! (ATTACH) and their history (HISTORY) through the [`ConsoleProvider`].
//!
//! Invariants: the provider is consulted only after the peer has proved it knows the secret;
//! the setup of every connection, authenticated or not, is bounded by the handshake deadline;
//! at most `max_connections` are held at once; shutdown stops accepting, tells every session
//! (CLOSE) and waits for them at most the handshake deadline; a frame that fails its
//! authentication check closes its connection with nothing said to the peer, and is logged at
//! warn at most once per [`crate::sampled::WARN_EVERY`] for the whole server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::frame::{FrameError, FrameReader, FrameWriter, Kind, MAX_PAYLOAD, chunks, clip};
use crate::handshake::{self, Refusal};
use crate::limits::RelayLimits;
use crate::provider::ConsoleProvider;
use crate::sampled::Sampled;
use crate::secret::ClusterSecret;
use crate::session::{self, End, Timing};
use backends::SpectateRequest;

type Reader = FrameReader<tokio::io::BufReader<OwnedReadHalf>>;
type Writer = FrameWriter<OwnedWriteHalf>;

/// Pause after a failed `accept` (out of file descriptors, say) so the loop does not spin.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// A relay listener's server. Built once per node; [`RelayServer::serve`] runs it.
pub struct RelayServer {
    shared: Arc<Shared>,
}

struct Shared {
    secret: ClusterSecret,
    provider: Arc<dyn ConsoleProvider>,
    limits: RelayLimits,
    forgeries: Sampled,
}

impl std::fmt::Debug for RelayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayServer")
            .field("limits", &self.shared.limits)
            .finish_non_exhaustive()
    }
}

/// What an authenticated connection asked for, once answered.
enum Served {
    /// ATTACH succeeded: the session to run.
    Attached {
        instance: String,
        console: backends::Console,
    },
    /// Answered in full (HISTORY, or ATTACH refused).
    Done,
}

impl RelayServer {
    pub fn new(
        secret: ClusterSecret,
        provider: Arc<dyn ConsoleProvider>,
        limits: RelayLimits,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                secret,
                provider,
                limits,
                forgeries: Sampled::default(),
            }),
        }
    }

    /// Accepts connections on `listener` until `shutdown` resolves, then closes every session
    /// (CLOSE to each peer) and returns once they have ended, or after the handshake deadline.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let limits = &self.shared.limits;
        let slots = Arc::new(Semaphore::new(limits.max_connections));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match Arc::clone(&slots).try_acquire_owned() {
                        Ok(permit) => {
                            let shared = Arc::clone(&self.shared);
                            tasks.spawn(connection(shared, stream, peer, stop_rx.clone(), permit));
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "relay: connection cap reached; closed");
                            drop(stream);
                        }
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "relay: accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(joined) = tasks.join_next(), if !tasks.is_empty() => log_join(joined),
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let drain = async {
            while let Some(joined) = tasks.join_next().await {
                log_join(joined);
            }
        };
        if timeout(limits.handshake_timeout, drain).await.is_err() {
            tracing::warn!(
                left = tasks.len(),
                "relay: sessions still open at the shutdown deadline; aborted"
            );
            tasks.shutdown().await;
        }
    }
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        tracing::error!(error = %e, "relay: connection task panicked");
    }
}

/// Resolves once the server is shutting down.
async fn stopping(mut stop: watch::Receiver<bool>) {
    // An error means the server is gone, which is a stop too.
    let _ = stop.wait_for(|stopping| *stopping).await;
}

async fn connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Keystrokes go out one by one; Nagle would hold them back behind unacknowledged output.
    let _ = stream.set_nodelay(true);
    let (read_half, write_half) = stream.into_split();
    let mut reader = FrameReader::new(tokio::io::BufReader::new(read_half));
    let mut writer = FrameWriter::new(write_half);
    let limits = &shared.limits;
    let setup = timeout(
        limits.handshake_timeout,
        setup(&shared, &mut reader, &mut writer, peer),
    );
    let served = tokio::select! {
        served = setup => served,
        () = stopping(stop.clone()) => return,
    };
    let (instance, console) = match served {
        Err(_) => {
            tracing::debug!(%peer, "relay: setup deadline passed; connection dropped");
            return;
        }
        Ok(None | Some(Served::Done)) => return,
        Ok(Some(Served::Attached { instance, console })) => (instance, console),
    };
    let timing = Timing {
        ping: limits.ping_interval(),
        idle: limits.idle_timeout(),
    };
    let backends::Console { output, input, .. } = console;
    let end = session::run(
        &mut reader,
        &mut writer,
        timing,
        output,
        input,
        std::future::pending(),
        stopping(stop),
    )
    .await;
    match end {
        End::Forged => forged(&shared, peer),
        End::Protocol(_) | End::Io(_) | End::PeerSilent => {
            tracing::info!(%peer, instance, reason = %end, "relay: session ended")
        }
        _ => tracing::debug!(%peer, instance, reason = %end, "relay: session ended"),
    }
}

/// A frame from `peer` failed its authentication check (its connection is being dropped).
fn forged(shared: &Shared, peer: SocketAddr) {
    tracing::debug!(%peer, "relay: a frame failed its authentication check; connection closed");
    if let Some(unlogged) = shared.forgeries.due() {
        tracing::warn!(
            %peer,
            failed_since_last_report = unlogged,
            "relay: a frame failed its authentication check (altered, replayed or dropped on \
             the network?); connection closed"
        );
    }
}

/// Authenticates the peer, reads its request and answers it. `None` when the connection is to
/// be dropped (logged here).
async fn setup(
    shared: &Shared,
    reader: &mut Reader,
    writer: &mut Writer,
    peer: SocketAddr,
) -> Option<Served> {
    let node = match handshake::accept(reader, writer, &shared.secret).await {
        Ok(node) => node,
        Err(refusal @ (Refusal::WrongProof | Refusal::Version(_))) => {
            tracing::debug!(%peer, reason = %refusal, "relay: peer refused");
            return None;
        }
        Err(refusal) => {
            tracing::debug!(%peer, reason = %refusal, "relay: handshake failed");
            return None;
        }
    };
    let request = match reader.read().await {
        Ok(Some(frame)) => frame,
        Ok(None) => return None,
        Err(FrameError::BadTag) => {
            forged(shared, peer);
            return None;
        }
        Err(e) => {
            tracing::debug!(%peer, node, error = %e, "relay: bad request");
            return None;
        }
    };
    if request.kind == Kind::AttachSpectate {
        let Some((watch, instance)) = crate::spectate::decode(&request.payload) else {
            tracing::debug!(%peer, node, "relay: bad ATTACH_SPECTATE");
            return None;
        };
        return match spectate(shared, writer, &instance, watch).await {
            Ok(served) => Some(served),
            Err(e) => {
                tracing::debug!(%peer, node, instance, error = %e, "relay: reply failed");
                None
            }
        };
    }
    // ATTACH_REPLAY: the lines to replay (u32, big-endian), then the instance id.
    let (replay_lines, id) = match request.kind {
        Kind::AttachReplay => match request.payload.split_first_chunk::<4>() {
            Some((lines, id)) => (u32::from_be_bytes(*lines), id),
            None => {
                tracing::debug!(%peer, node, "relay: ATTACH_REPLAY too short");
                return None;
            }
        },
        _ => (0, &request.payload[..]),
    };
    let Ok(instance) = std::str::from_utf8(id) else {
        tracing::debug!(%peer, node, "relay: instance id is not UTF-8");
        return None;
    };
    let result = match request.kind {
        Kind::Attach | Kind::AttachReplay => attach(shared, writer, instance, replay_lines).await,
        Kind::History => history(shared, writer, instance).await,
        kind => {
            tracing::debug!(%peer, node, ?kind, "relay: unexpected request");
            return None;
        }
    };
    match result {
        Ok(served) => {
            tracing::debug!(%peer, node, instance, kind = ?request.kind, "relay: request served");
            Some(served)
        }
        Err(e) => {
            tracing::debug!(%peer, node, instance, error = %e, "relay: reply failed");
            None
        }
    }
}

async fn attach(
    shared: &Shared,
    writer: &mut Writer,
    instance: &str,
    replay_lines: u32,
) -> std::io::Result<Served> {
    let console = shared.provider.attach(instance, replay_lines).await;
    answer(writer, instance, console).await
}

async fn spectate(
    shared: &Shared,
    writer: &mut Writer,
    instance: &str,
    req: SpectateRequest,
) -> std::io::Result<Served> {
    let console = shared.provider.spectate(instance, req).await;
    answer(writer, instance, console).await
}

/// OK and the session, or ERROR with the reason.
async fn answer(
    writer: &mut Writer,
    instance: &str,
    console: Result<backends::Console, String>,
) -> std::io::Result<Served> {
    match console {
        Ok(console) => {
            let flags = u8::from(console.capabilities.can_break);
            writer.send(Kind::Ok, &[flags]).await?;
            Ok(Served::Attached {
                instance: instance.to_owned(),
                console,
            })
        }
        Err(reason) => {
            writer
                .send(Kind::Error, clip(&reason, MAX_PAYLOAD).as_bytes())
                .await?;
            Ok(Served::Done)
        }
    }
}

async fn history(shared: &Shared, writer: &mut Writer, instance: &str) -> std::io::Result<Served> {
    match shared.provider.history(instance) {
        None => writer.send(Kind::None, &[]).await?,
        Some((bytes, updated_ms)) => {
            for chunk in chunks(&bytes) {
                writer.send(Kind::HistoryData, chunk).await?;
            }
            writer
                .send(Kind::HistoryEnd, &updated_ms.to_be_bytes())
                .await?;
        }
    }
    Ok(Served::Done)
}
