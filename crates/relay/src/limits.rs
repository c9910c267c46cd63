//! The bounds a relay keeps: time allowed to an unauthenticated peer, connections, keepalive,
//! buffering.

use std::time::Duration;

/// Bounds shared by [`crate::RelayServer`] and [`crate::RelayClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayLimits {
    /// The whole setup of a connection: connecting (client), the handshake, the request and its
    /// reply (OK or ERROR; the whole history). A peer that has not got that far is dropped.
    /// Also how long a shutting-down server waits for its sessions to close. Default 5 s.
    pub handshake_timeout: Duration,
    /// Connections a server holds at once, authenticated or not; one more is accepted and
    /// closed at once. Default 256.
    pub max_connections: usize,
    /// An attached session sends PING after this long without sending anything, and considers
    /// the peer dead after three times this long without receiving anything while it waits to
    /// read. Default 10 s; at least 10 ms.
    pub keepalive: Duration,
    /// Capacity, in chunks, of the channels between a session and its console (each way).
    /// Default 8; at least 1.
    pub channel_capacity: usize,
    /// The largest history a client accepts from a server, in bytes. Default 1 MiB.
    pub max_history_bytes: usize,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(5),
            max_connections: 256,
            keepalive: Duration::from_secs(10),
            channel_capacity: 8,
            max_history_bytes: 1 << 20,
        }
    }
}

impl RelayLimits {
    /// The keepalive actually used: a zero interval would ping in a busy loop.
    pub(crate) fn ping_interval(&self) -> Duration {
        self.keepalive.max(Duration::from_millis(10))
    }

    /// How long a session waits for a frame before it gives the peer up.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.ping_interval().saturating_mul(3)
    }

    /// The console options for the channels of a relayed console.
    pub(crate) fn console_options(&self) -> backends::ConsoleOptions {
        backends::ConsoleOptions {
            output_buffer: self.channel_capacity.max(1),
            ..backends::ConsoleOptions::default()
        }
    }
}
