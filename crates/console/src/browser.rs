//! The seam between the web listener (which speaks WebSocket to a browser) and the session
//! machinery (which runs serial sessions): a browser session is opened with the key the
//! browser's link was spent for, then moves bytes over two bounded channels.
//!
//! The web side knows nothing of leases, audit or consoles; the session side knows nothing of
//! HTTP. Both channels hold a few messages at most, so a slow browser holds back the session's
//! one chunk in flight (and so the console), never a growing buffer.

use std::net::SocketAddr;

use async_trait::async_trait;
use bytes::Bytes;
use ssh_key::public::KeyData;
use tokio::sync::mpsc;

use crate::ids::{InstanceId, SerialPort};

/// What the browser asks to open.
#[derive(Debug, Clone)]
pub struct BrowserRequest {
    pub instance: InstanceId,
    pub port: SerialPort,
    /// The key the link was spent for (see `ConsoleService::push_browser_key`).
    pub key: KeyData,
    pub peer: SocketAddr,
    pub cols: u16,
    pub rows: u16,
}

/// From the browser to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserInput {
    /// Keystrokes (or pasted text) for the console.
    Data(Bytes),
    /// A serial BREAK (a SysRq letter, if any, follows as data).
    Break,
    Resize {
        cols: u16,
        rows: u16,
    },
    /// The user pressed Disconnect.
    Disconnect,
}

/// From the session to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserOutput {
    /// Console output or a notice, as the terminal shows it.
    Data(Bytes),
    /// The session ended; nothing follows. `status` is 0 for an orderly end, 1 for a refusal.
    Closed { status: u32 },
}

/// An opened browser session.
#[derive(Debug)]
pub struct BrowserSession {
    pub input: mpsc::Sender<BrowserInput>,
    pub output: mpsc::Receiver<BrowserOutput>,
    /// When the maximum session duration ends it, milliseconds since the Unix epoch.
    pub ends_at_ms: u64,
    /// Who opened it (the link's signer).
    pub principal: String,
}

/// Why a browser session did not open; the text is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrowserRefused {
    /// No live, unspent grant for the key: the link's window passed, or it was used.
    #[error("{0}")]
    NoGrant(String),
    /// Another session holds the port, or it is being torn down.
    #[error("{0}")]
    Busy(String),
    /// The store, or the server, cannot run a session now.
    #[error("{0}")]
    Unavailable(String),
}

/// Opens browser sessions on the session machinery.
#[async_trait]
pub trait BrowserSessions: Send + Sync + std::fmt::Debug {
    async fn open(&self, req: BrowserRequest) -> Result<BrowserSession, BrowserRefused>;
}
