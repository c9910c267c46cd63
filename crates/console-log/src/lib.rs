//! What a console prints, kept on disk: `state_dir/console/<instance>/console.log` (current),
//! `console.log.1` … `console.log.N` (older), each with a time index beside it
//! (`console.idx`, `console.idx.1` …).
//!
//! The log holds the console's bytes exactly as they came (plus a one-line marker where output
//! had to be dropped), so `cat` and `less -R` read it. Time lives in the index, not in the log:
//! a line of ASCII text `OFFSET UNIX_MS` whenever a write starts in a new second of the clock,
//! so `--since` finds its place to the second without the log's bytes ever being rewritten.
//! Prefixing each line with a time would make the log unreadable for everything that prints
//! without newlines (a boot menu, a progress bar) and would have to guess where lines are.
//!
//! Rotation is by size and starts on a line boundary: once a file holds `max_bytes`, it ends
//! at the next newline, or at the hard cap (`max_bytes` plus `min(max_bytes, 64 KiB)`) for a
//! console that prints no newline; `keep_files` files are kept in all.
//!
//! Writing is off the console's path ([`start`]): the hub hands each chunk to a [`LogTap`],
//! which queues it on a bounded channel for a writer task (the file I/O runs on tokio's
//! blocking pool). When the disk cannot keep up, chunks are dropped, counted, and a marker in
//! the log says how many bytes are missing; the console and its user never wait on the disk.
//!
//! Invariants: paths are built only from a validated [`InstanceId`]; directories are 0700 and
//! files 0600; the log's bytes are the console's bytes, in order, apart from gap markers.

mod ansi;
mod files;
mod index;
mod read;
mod tail;
mod task;
mod writer;

use std::path::{Path, PathBuf};

use console::InstanceId;

pub use ansi::{Stripper, strip};
pub use files::{index_name, log_name};
pub use read::{Follower, LogFile, list_files, start_offset};
pub use tail::tail;
pub use task::{LogTap, start};
pub use writer::LogFiles;

/// Size and number of a console's log files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogConfig {
    /// A file is rotated at its first newline once it holds this many bytes. At least 1.
    pub max_bytes: u64,
    /// Files kept in all, the current one included. At least 1.
    pub keep_files: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_bytes: 8 * 1024 * 1024,
            keep_files: 4,
        }
    }
}

impl LogConfig {
    /// The size at which a file is rotated even without a newline.
    pub fn hard_cap(&self) -> u64 {
        let max = self.max_bytes.max(1);
        max + max.min(64 * 1024)
    }
}

/// The directory of `instance`'s console log under `state_dir`.
pub fn dir_for(state_dir: &Path, instance: &InstanceId) -> PathBuf {
    state_dir.join("console").join(instance.as_str())
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
