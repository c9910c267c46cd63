//! The signals a session reacts to: SIGWINCH (pass the new size on) and SIGTERM, SIGHUP and
//! SIGINT (end the session, so the terminal guard restores the terminal before exit).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Resized,
    /// End with exit code 128 + this signal number.
    Terminate(i32),
}

/// Signal streams; creating them replaces the default action (dying on the spot), so they
/// must exist before the terminal enters raw mode.
#[derive(Debug)]
pub struct Signals {
    winch: Signal,
    term: Signal,
    hup: Signal,
    int: Signal,
}

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

impl Signals {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            winch: signal(SignalKind::window_change())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// The next signal (cancel-safe).
    pub async fn recv(&mut self) -> Event {
        tokio::select! {
            _ = self.winch.recv() => Event::Resized,
            _ = self.term.recv() => Event::Terminate(SIGTERM),
            _ = self.hup.recv() => Event::Terminate(SIGHUP),
            _ = self.int.recv() => Event::Terminate(SIGINT),
        }
    }
}
