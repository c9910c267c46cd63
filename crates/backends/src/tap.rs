//! The consumers of a hub's output besides the attached user: each gets every chunk, in order,
//! and none of them may slow the console down.
//!
//! The attached user is the one consumer that exerts backpressure (a slow reader slows the
//! console rather than losing bytes). Everything else that wants the output (the console log
//! on disk) is a tap: it is handed each chunk on the
//! hub's task and must return at once, so a tap that cannot keep up drops, and says so itself.

use bytes::Bytes;

/// A consumer of a hub's console output that never waits.
pub trait OutputTap: Send + 'static {
    /// Called on the hub's task with every chunk the console prints, in order. Must not block
    /// or wait: queue the chunk (a `Bytes` clone is a reference count) or drop it.
    fn offer(&mut self, bytes: &Bytes);
}

/// What a hub starts with besides its console.
pub struct HubSetup {
    /// Output kept in memory, bytes: what `GetConsoleOutput` and a replay are served from.
    pub history_bytes: usize,
    /// Output from before this start (the tail of the console log), kept as if it had just
    /// arrived; not passed to the taps.
    pub seed: Option<crate::HubSnapshot>,
    /// The consumers of every chunk (see [`OutputTap`]).
    pub taps: Vec<Box<dyn OutputTap>>,
}

impl HubSetup {
    /// `history_bytes` of history, nothing seeded, no taps.
    pub fn new(history_bytes: usize) -> Self {
        Self {
            history_bytes,
            seed: None,
            taps: Vec::new(),
        }
    }
}

impl std::fmt::Debug for HubSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSetup")
            .field("history_bytes", &self.history_bytes)
            .field("seed_bytes", &self.seed.as_ref().map(|s| s.bytes.len()))
            .field("taps", &self.taps.len())
            .finish()
    }
}
