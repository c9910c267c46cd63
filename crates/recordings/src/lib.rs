//! Session recordings: every SSH session's output as an asciicast v2 file in
//! `state_dir/recordings/`, which `asciinema play` and `serialgate recordings play` replay.
//!
//! A recording holds what the user saw (console output and serialgate's notices, `o` events),
//! the terminal's size changes (`r`), and what the user typed (`i`) only when configured:
//! console passwords are typed as input. Text is UTF-8 ([`Utf8Stream`] keeps a character split
//! across reads whole); bytes that are not UTF-8 become U+FFFD, as a terminal would show them.
//!
//! Writing is off the session's path ([`Recorder`]): events are queued without waiting and
//! written in batches on the blocking pool; when the disk falls behind, events are dropped and a
//! marker in the recording says how many bytes are missing. Retention ([`Recordings::sweep`])
//! deletes recordings past an age, then the oldest while the directory is over a total size,
//! never one still being written.
//!
//! Invariants: file names are built only from a validated instance id, a port number and hex;
//! the directory is 0700 and the files 0600; each line of a recording is one JSON value.

mod cast;
mod library;
mod play;
mod recorder;
mod utf8;

use std::path::{Path, PathBuf};

pub use cast::{DEFAULT_SIZE, Env, Event, Header, SessionInfo, parse_event, parse_header};
pub use library::{
    FindError, Listing, NewRecording, Recordings, RecordingsConfig, SWEEP_EVERY, Swept, find, list,
};
pub use play::Pacer;
pub use recorder::Recorder;
pub use utf8::Utf8Stream;

/// The recordings directory under `state_dir`.
pub fn dir_for(state_dir: &Path) -> PathBuf {
    state_dir.join("recordings")
}
