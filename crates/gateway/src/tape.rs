//! A session's recording, as the session tasks use it: what the user saw, what they typed (when
//! recordings keep input) and their terminal's size changes. A session that is not recorded
//! (recordings off, or the file could not be created) has an empty tape.

use bytes::Bytes;
use recordings::{NewRecording, Recorder};

use crate::Shared;

/// The client's terminal, from its pty request (none: 0 × 0 and no `TERM`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Terminal {
    pub cols: u32,
    pub rows: u32,
    pub term: Option<String>,
}

/// The largest terminal dimension taken from a client; anything larger is recorded as this.
const MAX_DIMENSION: u32 = 10_000;

impl Terminal {
    pub(crate) fn new(cols: u32, rows: u32, term: &str) -> Self {
        // TERM goes into the recording's header as a JSON string: keep it short and printable.
        let term =
            (!term.is_empty() && term.len() <= 64 && term.bytes().all(|b| b.is_ascii_graphic()))
                .then(|| term.to_owned());
        Self {
            cols: cols.min(MAX_DIMENSION),
            rows: rows.min(MAX_DIMENSION),
            term,
        }
    }
}

/// Who a recording is of.
pub(crate) struct Subject<'a> {
    pub instance: &'a str,
    pub port: u32,
    pub session: &'a str,
    pub principal: &'a str,
    pub spectator: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Tape(Option<Recorder>);

impl Tape {
    /// Starts recording, if recordings are on. A recording that cannot start is logged and the
    /// session goes on unrecorded: the audit record then names no recording.
    pub(crate) async fn start(shared: &Shared, who: Subject<'_>, terminal: &Terminal) -> Self {
        let Some(recordings) = &shared.config.recordings else {
            return Self(None);
        };
        let new = NewRecording {
            instance: who.instance.to_owned(),
            port: who.port,
            session: who.session.to_owned(),
            principal: who.principal.to_owned(),
            spectator: who.spectator,
            size: (terminal.cols, terminal.rows),
            term: terminal.term.clone(),
        };
        match recordings.start(new).await {
            Ok(recorder) => Self(Some(recorder)),
            Err(e) => {
                tracing::warn!(instance = who.instance, session = who.session, dir = %recordings.dir().display(), error = %e, "cannot start the session's recording; the session is not recorded");
                Self(None)
            }
        }
    }

    /// The recording's id, if the session is recorded.
    pub(crate) fn id(&self) -> Option<String> {
        self.0.as_ref().map(|r| r.id().to_owned())
    }

    pub(crate) fn output(&mut self, bytes: &Bytes) {
        if let Some(r) = &mut self.0 {
            r.output(bytes);
        }
    }

    pub(crate) fn input(&mut self, bytes: &Bytes) {
        if let Some(r) = &mut self.0 {
            r.input(bytes);
        }
    }

    pub(crate) fn resize(&mut self, terminal: &Terminal) {
        if let Some(r) = &mut self.0 {
            r.resize(terminal.cols.max(1), terminal.rows.max(1));
        }
    }

    /// Ends the recording once what is queued is written.
    pub(crate) async fn finish(&mut self) {
        if let Some(r) = self.0.take() {
            r.finish().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clients_terminal_is_bounded_and_printable() {
        let t = Terminal::new(132, 43, "xterm-256color");
        assert_eq!(
            (t.cols, t.rows, t.term.as_deref()),
            (132, 43, Some("xterm-256color"))
        );
        let huge = Terminal::new(u32::MAX, 1 << 20, "");
        assert_eq!(
            (huge.cols, huge.rows, huge.term),
            (MAX_DIMENSION, MAX_DIMENSION, None)
        );
        for odd in ["xterm\u{1b}[31m", "a b", &"x".repeat(65), "\u{e9}"] {
            assert_eq!(Terminal::new(80, 24, odd).term, None, "{odd:?}");
        }
    }
}
