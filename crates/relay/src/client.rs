//! The side of a node that does not own a console: reaches it through the owner's relay
//! listener.
//!
//! Invariants: every request is bounded by the handshake deadline until the owner has answered;
//! nothing is sent about the request (not even the instance id) before the owner has proved it
//! knows the secret; a relayed console's task ends when the user drops the console, the owner's
//! console ends, the peer goes silent, or a frame fails its authentication check (logged at
//! warn at most once per [`crate::sampled::WARN_EVERY`] for the whole client).

use std::sync::Arc;

use backends::{Capabilities, Console, SpectateRequest, TaskEnds};
use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::timeout;

use crate::error::RelayError;
use crate::frame::{FrameReader, FrameWriter, Kind, clip};
use crate::handshake::{self, text};
use crate::limits::RelayLimits;
use crate::sampled::Sampled;
use crate::secret::ClusterSecret;
use crate::session::{self, End, Timing};

type Reader = FrameReader<BufReader<OwnedReadHalf>>;
type Writer = FrameWriter<OwnedWriteHalf>;

/// The longest node name sent, in bytes.
const MAX_NODE_NAME: usize = 1024;

/// What a relayed console calls itself in [`Capabilities::kind`].
const KIND: &str = "relay";

/// Reaches consoles owned by other nodes. Cheap to share; holds no connection between calls.
pub struct RelayClient {
    secret: ClusterSecret,
    node: String,
    limits: RelayLimits,
    forgeries: Arc<Sampled>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayClient")
            .field("node", &self.node)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl RelayClient {
    /// `node` is this node's name, which the owner logs (and which the handshake authenticates).
    pub fn new(secret: ClusterSecret, node: impl Into<String>, limits: RelayLimits) -> Self {
        let mut node = node.into();
        // The name shares HELLO with the version and the nonce; any real name is far shorter.
        node.truncate(clip(&node, MAX_NODE_NAME).len());
        Self {
            secret,
            node,
            limits,
            forgeries: Arc::default(),
        }
    }

    /// A console served by the node at `address`: its output is the owner's console output, its
    /// input (data and BREAK) goes to the owner's console. The output ends (`None`) when the
    /// owner's console ends or the relay connection is lost; dropping the console ends the
    /// owner's side.
    pub async fn attach(&self, address: &str, instance: &str) -> Result<Console, RelayError> {
        self.attach_replaying(address, instance, 0).await
    }

    /// As [`attach`](Self::attach), the output starting with the last `replay_lines` lines of
    /// the owner's console history. 0 sends ATTACH as before; more sends ATTACH_REPLAY, which
    /// an owner from before it existed refuses (it closes the connection).
    pub async fn attach_replaying(
        &self,
        address: &str,
        instance: &str,
        replay_lines: u32,
    ) -> Result<Console, RelayError> {
        if replay_lines == 0 {
            self.request(address, instance, Kind::Attach, instance.as_bytes())
                .await
        } else {
            let mut payload = replay_lines.to_be_bytes().to_vec();
            payload.extend_from_slice(instance.as_bytes());
            self.request(address, instance, Kind::AttachReplay, &payload)
                .await
        }
    }

    /// A read-only view of the console owned by the node at `address` (its hub's
    /// `spectate()`): output only, anything written to it is dropped by the owner. Refused with
    /// [`RelayError::Refused`] and the owner's reason (`spectator limit reached (N watching)`
    /// when full). Sends ATTACH_SPECTATE, which an owner from before it refuses.
    pub async fn spectate(
        &self,
        address: &str,
        instance: &str,
        req: &SpectateRequest,
    ) -> Result<Console, RelayError> {
        let payload = crate::spectate::encode(req, instance);
        self.request(address, instance, Kind::AttachSpectate, &payload)
            .await
    }

    /// Sends one attach request; on OK, the relayed console.
    async fn request(
        &self,
        address: &str,
        instance: &str,
        kind: Kind,
        payload: &[u8],
    ) -> Result<Console, RelayError> {
        let setup = async {
            let (mut reader, mut writer) = self.open(address).await?;
            writer.send(kind, payload).await?;
            match reader.read().await? {
                Some(f) if f.kind == Kind::Ok && f.payload.len() == 1 => {
                    let can_break = f.payload.first().is_some_and(|flags| flags & 1 == 1);
                    Ok((reader, writer, can_break))
                }
                Some(f) if f.kind == Kind::Error => Err(RelayError::Refused(text(&f.payload))),
                Some(f) => Err(unexpected(f.kind)),
                None => Err(RelayError::Closed),
            }
        };
        let (reader, writer, can_break) = timeout(self.limits.handshake_timeout, setup)
            .await
            .map_err(|_| RelayError::Timeout)?
            .inspect_err(|e| self.note(e, address))?;
        let capabilities = Capabilities {
            can_break,
            kind: KIND,
        };
        let (console, ends) = Console::pair(capabilities, &self.limits.console_options());
        let timing = Timing {
            ping: self.limits.ping_interval(),
            idle: self.limits.idle_timeout(),
        };
        // The task lives as long as the console: it ends when the user drops it.
        tokio::spawn(relay_session(
            reader,
            writer,
            timing,
            ends,
            Arc::clone(&self.forgeries),
            address.to_owned(),
            instance.to_owned(),
        ));
        Ok(console)
    }

    /// The console history of `instance` kept by the node at `address`: the bytes and the time
    /// of the last one (ms since the Unix epoch); `None` when that node keeps none.
    pub async fn history(
        &self,
        address: &str,
        instance: &str,
    ) -> Result<Option<(Vec<u8>, u64)>, RelayError> {
        let request = async {
            let (mut reader, mut writer) = self.open(address).await?;
            writer.send(Kind::History, instance.as_bytes()).await?;
            let mut bytes = Vec::new();
            loop {
                let frame = reader.read().await?.ok_or(RelayError::Closed)?;
                match frame.kind {
                    Kind::None if bytes.is_empty() => return Ok(None),
                    Kind::HistoryData => {
                        if bytes.len() + frame.payload.len() > self.limits.max_history_bytes {
                            return Err(RelayError::Protocol(format!(
                                "history larger than {} bytes",
                                self.limits.max_history_bytes
                            )));
                        }
                        bytes.extend_from_slice(&frame.payload);
                    }
                    Kind::HistoryEnd => {
                        let ms = <[u8; 8]>::try_from(&frame.payload[..])
                            .map_err(|_| unexpected(frame.kind))?;
                        return Ok(Some((bytes, u64::from_be_bytes(ms))));
                    }
                    Kind::Error if bytes.is_empty() => {
                        return Err(RelayError::Refused(text(&frame.payload)));
                    }
                    kind => return Err(unexpected(kind)),
                }
            }
        };
        timeout(self.limits.handshake_timeout, request)
            .await
            .map_err(|_| RelayError::Timeout)?
            .inspect_err(|e| self.note(e, address))
    }

    /// Counts a failed authentication check towards the sampled warning; the caller gets the
    /// error to log as it sees fit.
    fn note(&self, error: &RelayError, address: &str) {
        if matches!(error, RelayError::Tampered) {
            forged(&self.forgeries, address);
        }
    }

    /// Connects and authenticates both ways.
    async fn open(&self, address: &str) -> Result<(Reader, Writer), RelayError> {
        let stream = TcpStream::connect(address)
            .await
            .map_err(RelayError::Connect)?;
        // Keystrokes go out one by one; Nagle would hold them back behind unacknowledged input.
        stream.set_nodelay(true).map_err(RelayError::Connect)?;
        let (read_half, write_half) = stream.into_split();
        let mut reader = FrameReader::new(BufReader::new(read_half));
        let mut writer = FrameWriter::new(write_half);
        handshake::connect(&mut reader, &mut writer, &self.secret, &self.node).await?;
        Ok((reader, writer))
    }
}

/// A frame from the owner at `address` failed its authentication check.
fn forged(forgeries: &Sampled, address: &str) {
    tracing::debug!(
        address,
        "relay: a frame failed its authentication check; connection closed"
    );
    if let Some(unlogged) = forgeries.due() {
        tracing::warn!(
            address,
            failed_since_last_report = unlogged,
            "relay: a frame failed its authentication check (altered, replayed or dropped on \
             the network?); connection closed"
        );
    }
}

fn unexpected(kind: Kind) -> RelayError {
    RelayError::Protocol(format!("unexpected {kind:?} frame"))
}

async fn relay_session(
    mut reader: Reader,
    mut writer: Writer,
    timing: Timing,
    ends: TaskEnds,
    forgeries: Arc<Sampled>,
    address: String,
    instance: String,
) {
    let TaskEnds { input, output } = ends;
    let watch = output.clone();
    let end = session::run(
        &mut reader,
        &mut writer,
        timing,
        input,
        output,
        async move { watch.closed().await },
        std::future::pending(),
    )
    .await;
    match end {
        End::Forged => forged(&forgeries, &address),
        End::Protocol(_) | End::Io(_) | End::PeerSilent | End::PeerGone => {
            tracing::info!(address, instance, reason = %end, "relay: session lost")
        }
        _ => tracing::debug!(address, instance, reason = %end, "relay: session ended"),
    }
}
