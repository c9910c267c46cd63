//! Read-only viewers of a hub's console: spectators.
//!
//! Every chunk the console prints is sent once into a broadcast ring (a `Bytes` clone, a
//! reference count), whatever the number of spectators; each spectator has a small task that
//! takes chunks off the ring and hands them to its [`Console`]'s output. The hub never waits on
//! a spectator: one that cannot keep up (its SSH client stopped reading) falls behind in the
//! ring, and when the ring has overwritten what it had not read, it skips ahead to the oldest
//! chunk still there and is told so in its own output. The writer and the other spectators see
//! nothing of it.
//!
//! A spectator's keystrokes are read and dropped here: they never reach the console.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use tokio::sync::{broadcast, mpsc};

use crate::console::{Capabilities, Console, ConsoleOptions, TaskEnds};

/// Chunks the ring keeps for the slowest spectator before it must skip (at most
/// `read_chunk` bytes each: 1 MiB with the default 4 KiB reads). A chunk is freed as soon as
/// every spectator has taken it.
const RING_CHUNKS: usize = 256;

/// The longest label (who is watching) a join may carry, bytes; longer ones are cut.
pub const MAX_SPECTATOR_LABEL: usize = 256;

/// Why a spectator could not join.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpectateError {
    /// As many spectators as allowed are watching already.
    #[error("spectator limit reached ({max} watching)")]
    Full { max: u32 },
    /// The console is not connected right now, or its hub stopped.
    #[error("console not connected")]
    NotConnected,
}

/// A request to watch.
#[derive(Debug, Clone)]
pub struct SpectateRequest {
    /// Lines of history sent first (at most [`crate::MAX_REPLAY_LINES`]).
    pub replay_lines: u32,
    /// Who is watching, for the writer's notice (a principal ARN, say).
    pub who: String,
    /// How many spectators may watch at once, this one included.
    pub max: u32,
}

/// A spectator came or went: what the writer is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    Joined { who: String, watching: u32 },
    Left { who: String, watching: u32 },
}

impl Change {
    /// The one-line notice for the writer.
    pub(crate) fn notice(&self) -> Bytes {
        let text = match self {
            Change::Joined { who, watching } => {
                format!(
                    "\r\n[serialgate] {who} is now watching this console, read-only ({watching} watching).\r\n"
                )
            }
            Change::Left { who, watching } => {
                format!("\r\n[serialgate] {who} stopped watching ({watching} watching).\r\n")
            }
        };
        Bytes::from(text)
    }
}

/// The spectators of one hub. Lives as long as the hub's task, across console reconnections:
/// a spectator watching a VM reboot keeps watching.
pub(crate) struct Spectators {
    ring: broadcast::Sender<Bytes>,
    watching: Arc<AtomicU32>,
    left_tx: mpsc::UnboundedSender<String>,
    /// Who left, in order (one message per departure; at most the number of joins).
    pub(crate) left: mpsc::UnboundedReceiver<String>,
}

impl Spectators {
    pub(crate) fn new() -> Self {
        let (left_tx, left) = mpsc::unbounded_channel();
        Self {
            ring: broadcast::channel(RING_CHUNKS).0,
            watching: Arc::new(AtomicU32::new(0)),
            left_tx,
            left,
        }
    }

    /// How many are watching now.
    pub(crate) fn count(&self) -> u32 {
        self.watching.load(Ordering::SeqCst)
    }

    /// A shared view of the count, for [`crate::Hub::spectators`].
    pub(crate) fn counter(&self) -> Arc<AtomicU32> {
        Arc::clone(&self.watching)
    }

    /// Hands a chunk to every spectator; never waits. Called on the hub's task, in the same
    /// sequence as the history, so a join cut between two chunks misses and repeats nothing.
    pub(crate) fn offer(&self, bytes: &Bytes) {
        if self.ring.receiver_count() > 0 {
            let _ = self.ring.send(bytes.clone());
        }
    }

    /// Lets a spectator in: `backlog` first (the replay), then every chunk offered from now on.
    /// Called on the hub's task, between two chunks.
    pub(crate) fn join(
        &self,
        req: &SpectateRequest,
        backlog: Bytes,
        capabilities: Capabilities,
        opts: &ConsoleOptions,
    ) -> Result<(Console, Change), SpectateError> {
        let watching = self.count();
        if watching >= req.max {
            return Err(SpectateError::Full { max: req.max });
        }
        let who = label(&req.who);
        let (console, ends) = Console::pair(
            Capabilities {
                can_break: false,
                ..capabilities
            },
            opts,
        );
        let seat = Seat {
            who: who.clone(),
            watching: Arc::clone(&self.watching),
            left: self.left_tx.clone(),
        };
        self.watching.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(forward(backlog, self.ring.subscribe(), ends, seat));
        Ok((
            console,
            Change::Joined {
                who,
                watching: watching + 1,
            },
        ))
    }

    /// The change a departure makes, for the writer's notice.
    pub(crate) fn departed(&self, who: String) -> Change {
        Change::Left {
            who,
            watching: self.count(),
        }
    }
}

/// The label as shown to the writer: printable, bounded.
fn label(who: &str) -> String {
    let shown: String = who
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SPECTATOR_LABEL)
        .collect();
    if shown.is_empty() {
        "a spectator".to_owned()
    } else {
        shown
    }
}

/// One spectator's place: counted while it lives, its departure announced when it is dropped.
struct Seat {
    who: String,
    watching: Arc<AtomicU32>,
    left: mpsc::UnboundedSender<String>,
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.watching.fetch_sub(1, Ordering::SeqCst);
        let _ = self.left.send(std::mem::take(&mut self.who));
    }
}

/// What a spectator that fell behind sees where output is missing.
pub(crate) fn skipped_notice(chunks: u64) -> Bytes {
    Bytes::from(format!(
        "\r\n[serialgate] This view fell behind; {chunks} pieces of output were skipped.\r\n"
    ))
}

/// Moves one spectator's output from the ring to its console until either side goes away.
async fn forward(
    backlog: Bytes,
    mut ring: broadcast::Receiver<Bytes>,
    mut ends: TaskEnds,
    _seat: Seat,
) {
    if !backlog.is_empty() && ends.output.send(backlog).await.is_err() {
        return;
    }
    loop {
        let chunk = tokio::select! {
            got = ring.recv() => match got {
                Ok(bytes) => bytes,
                Err(broadcast::error::RecvError::Lagged(n)) => skipped_notice(n),
                // The hub stopped: the spectator sees its output end.
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // Keystrokes are dropped; the end of input means the spectator went away.
            input = ends.input.recv() => match input {
                Some(_) => continue,
                None => return,
            },
            () = ends.output.closed() => return,
        };
        if ends.output.send(chunk).await.is_err() {
            return;
        }
    }
}
