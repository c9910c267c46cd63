//! The handle a caller holds for an open console, and the bounded channels joining it to the
//! connection task that owns the I/O.
//!
//! Invariant: both channels are bounded by [`ConsoleOptions::output_buffer`], so a slow reader
//! or writer on either side exerts backpressure instead of growing memory.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Tuning for one console connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleOptions {
    /// Capacity, in chunks, of the output channel (and of the input channel). Default 8; 0 is
    /// treated as 1.
    pub output_buffer: usize,
    /// Size, in bytes, of the one read buffer per connection, and so the largest output chunk.
    /// Default 4096; clamped to 1..=1 MiB.
    pub read_chunk: usize,
    /// Upper bound for connecting (`open`) and for a whole `probe`. Default 5 s.
    pub connect_timeout: Duration,
    /// After two reads in a row that did not fill the buffer, how long the console is left to
    /// accumulate output before it is read again. Default 2 ms; zero reads as soon as bytes
    /// arrive.
    ///
    /// An emulated UART delivers a guest's output a few bytes at a time, tens of thousands of
    /// times a second; read one by one, each costs every consumer downstream (hub, log,
    /// session, SSH packet) a wake-up. The first read after a quiet spell is never delayed, so
    /// a keystroke's echo goes out at once; only a read that follows another within this
    /// window waits, and it then takes everything that arrived meanwhile in one chunk. A read
    /// that fills the buffer, and the short one that drains the line after it, never wait: a
    /// flood would otherwise be capped at one socket buffer per window.
    pub coalesce: Duration,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        Self {
            output_buffer: 8,
            read_chunk: 4096,
            connect_timeout: Duration::from_secs(5),
            coalesce: Duration::from_millis(2),
        }
    }
}

impl ConsoleOptions {
    /// The channel capacity actually used (tokio panics on a zero-capacity channel).
    pub(crate) fn channel_capacity(&self) -> usize {
        self.output_buffer.max(1)
    }

    /// The read size actually used (a zero-length read would look like end of file).
    pub(crate) fn chunk(&self) -> usize {
        self.read_chunk.clamp(1, 1 << 20)
    }
}

/// What a backend can do, so the caller can tell the user instead of pretending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Whether [`ConsoleInput::send_break`] can reach the console.
    pub can_break: bool,
    /// The backend, for logs: `"unix"`, `"tcp"`, `"telnet"`, `"unix+telnet"`, `"tty"`, `"exec"`,
    /// `"sim"` or `"stream"`.
    pub kind: &'static str,
}

/// An open console. Dropping it (output receiver and every [`ConsoleInput`] clone) ends the
/// connection task promptly and releases the connection, device or child process.
#[derive(Debug)]
pub struct Console {
    /// Bytes from the console to the user. `None` means the console closed or was lost; every
    /// byte the console sent before that has been delivered first.
    pub output: mpsc::Receiver<Bytes>,
    /// Bytes and BREAKs from the user to the console.
    pub input: ConsoleInput,
    /// What this backend can do.
    pub capabilities: Capabilities,
}

/// One message from the user side to whoever serves the console (a connection task here, or
/// an in-process provider made with [`Console::pair`]).
#[derive(Debug)]
pub enum Input {
    Data(Bytes),
    Break,
}

/// The console went away (or its task ended); nothing more can be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("console connection closed")]
pub struct Closed;

/// Why a BREAK was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BreakError {
    /// This backend has no way to carry a BREAK (a raw socket, an exec'd command).
    #[error("this console cannot carry a BREAK")]
    Unsupported,
    /// The console connection is closed.
    #[error("console connection closed")]
    Closed,
}

/// The sending half of a console; cheap to clone.
#[derive(Debug, Clone)]
pub struct ConsoleInput {
    tx: mpsc::Sender<Input>,
    can_break: bool,
}

impl ConsoleInput {
    /// Queues bytes for the console, waiting while the queue is full (backpressure). Returns once
    /// queued, not once written.
    pub async fn write(&self, data: Bytes) -> Result<(), Closed> {
        if data.is_empty() {
            return if self.tx.is_closed() {
                Err(Closed)
            } else {
                Ok(())
            };
        }
        self.tx.send(Input::Data(data)).await.map_err(|_| Closed)
    }

    /// Queues a BREAK behind the bytes already written. Returns once queued.
    pub async fn send_break(&self) -> Result<(), BreakError> {
        if !self.can_break {
            return Err(BreakError::Unsupported);
        }
        self.tx
            .send(Input::Break)
            .await
            .map_err(|_| BreakError::Closed)
    }

    /// Whether the connection task has ended.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// The connection task's ends of the two channels.
#[derive(Debug)]
pub struct TaskEnds {
    /// Bytes and BREAKs from the user.
    pub input: mpsc::Receiver<Input>,
    /// Bytes to the user; dropping it tells the user the console is gone.
    pub output: mpsc::Sender<Bytes>,
}

impl Console {
    /// A console served in-process: the caller gets the [`Console`] to hand out and the ends to
    /// serve it with. Both channels are bounded by `opts.output_buffer`.
    pub fn pair(capabilities: Capabilities, opts: &ConsoleOptions) -> (Console, TaskEnds) {
        channels(capabilities, opts)
    }
}

/// Creates the channels for one connection: the caller's [`Console`] and the task's ends.
pub(crate) fn channels(capabilities: Capabilities, opts: &ConsoleOptions) -> (Console, TaskEnds) {
    let capacity = opts.channel_capacity();
    let (in_tx, in_rx) = mpsc::channel(capacity);
    let (out_tx, out_rx) = mpsc::channel(capacity);
    let console = Console {
        output: out_rx,
        input: ConsoleInput {
            tx: in_tx,
            can_break: capabilities.can_break,
        },
        capabilities,
    };
    let ends = TaskEnds {
        input: in_rx,
        output: out_tx,
    };
    (console, ends)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn degenerate_options_are_clamped() {
        let opts = ConsoleOptions {
            output_buffer: 0,
            read_chunk: 0,
            connect_timeout: Duration::ZERO,
            coalesce: Duration::ZERO,
        };
        assert_eq!(opts.channel_capacity(), 1);
        assert_eq!(opts.chunk(), 1);
        let huge = ConsoleOptions {
            read_chunk: usize::MAX,
            ..ConsoleOptions::default()
        };
        assert_eq!(huge.chunk(), 1 << 20);
    }

    #[tokio::test]
    async fn break_is_refused_locally_when_unsupported() {
        let caps = Capabilities {
            can_break: false,
            kind: "test",
        };
        let (console, mut ends) = channels(caps, &ConsoleOptions::default());
        assert_eq!(
            console.input.send_break().await,
            Err(BreakError::Unsupported)
        );
        // Nothing reached the task.
        assert!(ends.input.try_recv().is_err());
        drop(ends);
        assert_eq!(
            console.input.write(Bytes::from_static(b"x")).await,
            Err(Closed)
        );
    }
}
