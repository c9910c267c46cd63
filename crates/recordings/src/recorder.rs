//! One session's recording: the [`Recorder`] the session task feeds, and the writer task that
//! turns what it queues into asciicast lines on disk.
//!
//! The session never waits for the disk. Each event is timed and queued without waiting; the
//! writer decodes, encodes and writes in batches on the blocking pool. When the queue is full
//! the disk is behind: the event is dropped and counted, and the recording gets a visible marker
//! saying how many bytes are missing there. A recording stops growing at its size limit, with a
//! marker saying so.

use std::fs::File;
use std::io::Write as _;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::cast::{EventKind, push_event};
use crate::library::OpenGuard;
use crate::utf8::Utf8Stream;

/// Events queued for the writer: a few MiB of console chunks at most.
const QUEUE_EVENTS: usize = 1024;
/// A batch smaller than this waits [`GATHER`] for more before it is written, so a console
/// printing a few bytes at a time costs one write per interval rather than one per chunk.
const SMALL_BATCH: usize = 64 * 1024;
const GATHER: Duration = Duration::from_millis(20);
/// How long [`Recorder::finish`] waits for the writer to write what is queued.
const FINISH_BOUND: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) enum Msg {
    Output(u64, Bytes),
    Input(u64, Bytes),
    Resize(u64, u32, u32),
    /// This many bytes were dropped here.
    Gap(u64, u64),
}

/// Feeds one session's events to its recording; never waits.
#[derive(Debug)]
pub struct Recorder {
    id: String,
    tx: mpsc::Sender<Msg>,
    started: Instant,
    input: bool,
    /// Bytes dropped since the last event that was queued: the marker still to be queued.
    pending_gap: u64,
    done: oneshot::Receiver<()>,
}

impl Recorder {
    /// The recording's id (`serialgate recordings play ID`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the console (or serialgate) showed the user.
    pub fn output(&mut self, bytes: &Bytes) {
        let at = self.micros();
        self.offer(Msg::Output(at, bytes.clone()), bytes.len());
    }

    /// What the user typed; recorded only when the recording keeps input.
    pub fn input(&mut self, bytes: &Bytes) {
        if self.input {
            let at = self.micros();
            self.offer(Msg::Input(at, bytes.clone()), bytes.len());
        }
    }

    /// The user's terminal changed size.
    pub fn resize(&mut self, cols: u32, rows: u32) {
        let at = self.micros();
        self.offer(Msg::Resize(at, cols, rows), 0);
    }

    /// Ends the recording and waits (briefly) until everything queued is on disk, so that a
    /// session's end record never names a recording still being written.
    pub async fn finish(self) {
        let Recorder { tx, done, .. } = self;
        drop(tx);
        let _ = tokio::time::timeout(FINISH_BOUND, done).await;
    }

    fn micros(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn offer(&mut self, msg: Msg, len: usize) {
        if self.pending_gap > 0 {
            match self.tx.try_send(Msg::Gap(self.micros(), self.pending_gap)) {
                Ok(()) => self.pending_gap = 0,
                Err(mpsc::error::TrySendError::Full(_)) => return self.dropped(len),
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(msg) {
            self.dropped(len);
        }
    }

    fn dropped(&mut self, len: usize) {
        if self.pending_gap == 0 {
            tracing::warn!(recording = %self.id, "recording: the disk is behind; dropping events from the recording (the session is not slowed)");
        }
        // A dropped resize still leaves a marker.
        self.pending_gap += (len as u64).max(1);
    }
}

/// What the writer knows about the file it writes.
pub(crate) struct Writer {
    pub file: File,
    /// Bytes in the file so far (the header included).
    pub size: u64,
    pub max_bytes: u64,
    pub id: String,
    /// Keeps the recording out of retention's reach until the writer is done.
    pub _open: OpenGuard,
}

/// Starts the writer task for `writer` and returns the recorder feeding it. Must be called
/// within a tokio runtime.
pub(crate) fn start(writer: Writer, input: bool, started: Instant) -> Recorder {
    let (tx, rx) = mpsc::channel(QUEUE_EVENTS);
    let (done_tx, done) = oneshot::channel();
    let id = writer.id.clone();
    tokio::spawn(async move {
        run(rx, writer).await;
        let _ = done_tx.send(());
    });
    Recorder {
        id,
        tx,
        started,
        input,
        pending_gap: 0,
        done,
    }
}

/// Text decoders for each direction, and whether the size limit was reached.
#[derive(Default)]
pub(crate) struct Encoder {
    output: Utf8Stream,
    input: Utf8Stream,
    text: String,
}

impl Encoder {
    /// Appends the asciicast line(s) for `msg` to `out`.
    pub(crate) fn encode(&mut self, msg: Msg, out: &mut Vec<u8>) {
        self.text.clear();
        match msg {
            Msg::Output(at, bytes) => {
                self.output.decode(&bytes, &mut self.text);
                if !self.text.is_empty() {
                    push_event(out, at, &EventKind::Output, &self.text);
                }
            }
            Msg::Input(at, bytes) => {
                self.input.decode(&bytes, &mut self.text);
                if !self.text.is_empty() {
                    push_event(out, at, &EventKind::Input, &self.text);
                }
            }
            Msg::Resize(at, cols, rows) => {
                push_event(out, at, &EventKind::Resize, &format!("{cols}x{rows}"));
            }
            Msg::Gap(at, bytes) => {
                let marker = format!("\r\n[serialgate: {bytes} bytes not recorded here]\r\n");
                push_event(out, at, &EventKind::Output, &marker);
            }
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Msg>, mut writer: Writer) {
    let mut encoder = Encoder::default();
    let mut full = false;
    let mut last_micros = 0;
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        last_micros = last_micros.max(gather(&mut rx, &mut encoder, &mut batch, first));
        if batch.len() < SMALL_BATCH {
            tokio::time::sleep(GATHER).await;
            while batch.len() < SMALL_BATCH
                && let Ok(more) = rx.try_recv()
            {
                last_micros = last_micros.max(gather(&mut rx, &mut encoder, &mut batch, more));
            }
        }
        if full {
            // Past the size limit: drain, write nothing.
            continue;
        }
        if writer.size + batch.len() as u64 > writer.max_bytes {
            full = true;
            let keep = cut_at_line(&batch, writer.max_bytes.saturating_sub(writer.size));
            batch.truncate(keep);
            let marker = format!(
                "\r\n[serialgate: the recording stops here: it reached its limit of {} bytes ([recordings] max_recording_bytes)]\r\n",
                writer.max_bytes
            );
            push_event(&mut batch, last_micros, &EventKind::Output, &marker);
            tracing::warn!(recording = %writer.id, limit = writer.max_bytes, "recording reached its size limit; the rest of the session is not recorded");
        }
        let written = tokio::task::spawn_blocking(move || {
            let result = writer.file.write_all(&batch);
            writer.size += batch.len() as u64;
            (writer, result)
        })
        .await;
        let result;
        (writer, result) = match written {
            Ok(done) => done,
            // The blocking pool is shutting down with the runtime.
            Err(_) => return,
        };
        if let Err(e) = result {
            tracing::warn!(recording = %writer.id, error = %e, "recording: cannot write; the rest of the session is not recorded");
            full = true;
        }
    }
    let mut tail = String::new();
    encoder.output.finish(&mut tail);
    if !full && !tail.is_empty() {
        let mut line = Vec::new();
        push_event(&mut line, last_micros, &EventKind::Output, &tail);
        let _ = tokio::task::spawn_blocking(move || writer.file.write_all(&line)).await;
    }
}

/// Encodes `first` and whatever else is queued now into `batch`, up to [`SMALL_BATCH`]-ish;
/// returns the latest event time seen.
fn gather(
    rx: &mut mpsc::Receiver<Msg>,
    encoder: &mut Encoder,
    batch: &mut Vec<u8>,
    first: Msg,
) -> u64 {
    let mut latest = 0;
    let mut next = Some(first);
    while let Some(msg) = next.take() {
        latest = latest.max(match &msg {
            Msg::Output(t, _) | Msg::Input(t, _) | Msg::Resize(t, _, _) | Msg::Gap(t, _) => *t,
        });
        encoder.encode(msg, batch);
        if batch.len() < 1 << 20 {
            next = rx.try_recv().ok();
        }
    }
    latest
}

/// The length of the longest prefix of `batch` that ends a line and fits in `room` bytes.
fn cut_at_line(batch: &[u8], room: u64) -> usize {
    let room = usize::try_from(room).unwrap_or(usize::MAX).min(batch.len());
    batch
        .get(..room)
        .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
        .map_or(0, |nl| nl + 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_keeps_whole_lines_only() {
        assert_eq!(cut_at_line(b"ab\ncd\nef", 100), 6);
        assert_eq!(cut_at_line(b"ab\ncd\nef", 5), 3);
        assert_eq!(cut_at_line(b"ab\ncd\nef", 2), 0);
    }

    #[test]
    fn a_split_character_is_one_output_event() {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        let euro = "€".as_bytes();
        enc.encode(Msg::Output(1, Bytes::copy_from_slice(&euro[..2])), &mut out);
        assert!(out.is_empty(), "half a character makes no event");
        enc.encode(Msg::Output(2, Bytes::copy_from_slice(&euro[2..])), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[0.000002, \"o\", \"€\"]\n"
        );
    }
}
