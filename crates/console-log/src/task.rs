//! The writer task and the tap that feeds it: the hub offers every chunk to the [`LogTap`],
//! which queues it without waiting; the task writes what is queued in batches on the blocking
//! pool. A full queue means the disk is behind: the chunk is dropped and counted, and the log
//! gets a marker saying how many bytes are missing there.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use backends::OutputTap;
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{LogConfig, LogFiles};

/// Chunks queued for the writer. A console chunk is at most a read buffer (4 KiB by default),
/// so this holds a few MiB at most, and several seconds of a fast console.
const QUEUE_CHUNKS: usize = 1024;
/// The most bytes one batch writes before the next is gathered.
const BATCH_BYTES: usize = 1 << 20;
/// A batch smaller than [`SMALL_BATCH`] waits this long for more before it is written: a
/// console printing a few bytes at a time then costs one write per interval, not one per chunk.
/// The log lags the console by at most this much.
const GATHER: Duration = Duration::from_millis(10);
const SMALL_BATCH: usize = 64 * 1024;
/// A failing disk is reported at most this often.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);

enum Msg {
    Data(Bytes),
    /// This many bytes were dropped here.
    Gap(u64),
}

/// Feeds a console's output to its log writer; never waits (see [`OutputTap`]).
#[derive(Debug)]
pub struct LogTap {
    tx: mpsc::Sender<Msg>,
    /// Bytes dropped since the last chunk that was queued: the marker still to be queued.
    pending_gap: u64,
    /// Bytes dropped since the start, for whoever watches this tap.
    dropped: Arc<AtomicU64>,
    instance: String,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Data(b) => write!(f, "Data({} bytes)", b.len()),
            Msg::Gap(n) => write!(f, "Gap({n})"),
        }
    }
}

impl LogTap {
    /// Bytes of output dropped so far because the disk was behind.
    pub fn dropped(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.dropped)
    }

    fn drop_chunk(&mut self, len: usize) {
        if self.pending_gap == 0 {
            tracing::warn!(instance = %self.instance, "console log: the disk is behind; dropping console output from the log (the console is not slowed)");
        }
        self.pending_gap += len as u64;
        self.dropped.fetch_add(len as u64, Ordering::Relaxed);
    }
}

impl OutputTap for LogTap {
    fn offer(&mut self, bytes: &Bytes) {
        if self.pending_gap > 0 {
            match self.tx.try_send(Msg::Gap(self.pending_gap)) {
                Ok(()) => self.pending_gap = 0,
                Err(mpsc::error::TrySendError::Full(_)) => return self.drop_chunk(bytes.len()),
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(Msg::Data(bytes.clone()))
        {
            self.drop_chunk(bytes.len());
        }
    }
}

/// Opens `instance`'s log in `dir` and starts its writer task; the task ends once the tap is
/// dropped and everything queued is written. Must be called within a tokio runtime.
pub fn start(dir: &Path, cfg: LogConfig, instance: &str) -> std::io::Result<LogTap> {
    let files = LogFiles::open(dir, cfg)?;
    let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
    tokio::spawn(run(rx, files, instance.to_owned()));
    Ok(tap(tx, instance))
}

fn tap(tx: mpsc::Sender<Msg>, instance: &str) -> LogTap {
    LogTap {
        tx,
        pending_gap: 0,
        dropped: Arc::default(),
        instance: instance.to_owned(),
    }
}

/// The text the log gets where output was dropped.
pub(crate) fn gap_marker(bytes: u64) -> String {
    format!("\r\n[serialgate: {bytes} bytes of console output not logged here]\r\n")
}

async fn run(mut rx: mpsc::Receiver<Msg>, mut files: LogFiles, instance: String) {
    let mut last_error: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = Vec::new();
        gather(&mut rx, &mut batch, first, &instance);
        if batch.len() < SMALL_BATCH {
            tokio::time::sleep(GATHER).await;
            if let Ok(more) = rx.try_recv() {
                gather(&mut rx, &mut batch, more, &instance);
            }
        }
        let now = crate::now_ms();
        let written = tokio::task::spawn_blocking(move || {
            let result = files.write(&batch, now);
            (files, result)
        })
        .await;
        let result;
        (files, result) = match written {
            Ok(done) => done,
            // The blocking pool is shutting down with the runtime.
            Err(_) => return,
        };
        if let Err(e) = result {
            let due = last_error.is_none_or(|t| t.elapsed() >= ERROR_LOG_INTERVAL);
            if due {
                tracing::warn!(instance, error = %e, "console log: cannot write; output is missing from the log");
                last_error = Some(Instant::now());
            }
        }
    }
}

/// Appends `first` and whatever else is queued now to `batch`, up to [`BATCH_BYTES`].
fn gather(rx: &mut mpsc::Receiver<Msg>, batch: &mut Vec<u8>, first: Msg, instance: &str) {
    let mut next = Some(first);
    while let Some(msg) = next.take() {
        match msg {
            Msg::Data(b) => batch.extend_from_slice(&b),
            Msg::Gap(n) => {
                tracing::warn!(
                    instance,
                    bytes = n,
                    "console log: output dropped while the disk was behind"
                );
                batch.extend_from_slice(gap_marker(n).as_bytes());
            }
        }
        if batch.len() < BATCH_BYTES {
            next = rx.try_recv().ok();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::files::log_name;

    #[tokio::test]
    async fn writes_what_it_is_queued_in_order_with_gap_markers() {
        let tmp = tempfile::tempdir().unwrap();
        let files = LogFiles::open(tmp.path(), LogConfig::default()).unwrap();
        let (tx, rx) = mpsc::channel(QUEUE_CHUNKS);
        let writer = tokio::spawn(run(rx, files, "i-1".to_owned()));
        let mut want = String::new();
        for i in 0..100 {
            tx.send(Msg::Data(Bytes::from(format!("{i}\n"))))
                .await
                .unwrap();
            want.push_str(&format!("{i}\n"));
        }
        tx.send(Msg::Gap(12)).await.unwrap();
        tx.send(Msg::Data(Bytes::from("end\n"))).await.unwrap();
        want.push_str(&gap_marker(12));
        want.push_str("end\n");
        // The task ends once the sender is gone and everything queued is written.
        drop(tx);
        writer.await.unwrap();
        let got = std::fs::read(tmp.path().join(log_name(0))).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }

    fn data(msg: Option<Msg>) -> Vec<u8> {
        match msg {
            Some(Msg::Data(b)) => b.to_vec(),
            other => panic!("expected data, got {other:?}"),
        }
    }

    #[test]
    fn a_full_queue_drops_counts_and_marks_the_gap() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut tap = tap(tx, "i-1");
        let dropped = tap.dropped();
        for chunk in ["a\n", "b\n", "ccc", "dddd"] {
            tap.offer(&Bytes::from(chunk));
        }
        assert_eq!(dropped.load(Ordering::Relaxed), 7);
        assert_eq!(data(rx.try_recv().ok()), b"a\n");
        // One slot free: the marker takes it, and the chunk behind it is dropped too.
        tap.offer(&Bytes::from("e\n"));
        assert_eq!(data(rx.try_recv().ok()), b"b\n");
        assert!(matches!(rx.try_recv(), Ok(Msg::Gap(7))));
        assert_eq!(dropped.load(Ordering::Relaxed), 9);
        // With room again: the rest of the gap is marked, then output flows.
        tap.offer(&Bytes::from("f\n"));
        assert!(matches!(rx.try_recv(), Ok(Msg::Gap(2))));
        assert_eq!(data(rx.try_recv().ok()), b"f\n");
        assert!(rx.try_recv().is_err());
    }
}
