//! What a relay client reports when it cannot reach a console through another node.

use std::io;

/// Why a relayed request failed. The text is for the operator's log.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The TCP connection could not be made.
    #[error("cannot connect to the relay: {0}")]
    Connect(io::Error),
    /// The setup (connect, handshake, request and reply) took longer than the limit.
    #[error("the relay did not answer in time")]
    Timeout,
    /// The peer refused our proof of the cluster secret, or failed to prove its own.
    #[error("relay authentication failed (is the cluster secret the same on both nodes?)")]
    Auth,
    /// The owner answered the request with an error (its console could not be attached, or it
    /// speaks another protocol version): the owner's text.
    #[error("the owner refused: {0}")]
    Refused(String),
    /// The peer closed the connection before answering.
    #[error("the relay closed the connection")]
    Closed,
    /// A frame from the peer failed its authentication check: altered, replayed, reordered or
    /// dropped on the way (or sent by something that does not know the keys).
    #[error("a relay frame failed its authentication check; connection closed")]
    Tampered,
    /// The peer sent something the protocol does not allow there.
    #[error("relay protocol error: {0}")]
    Protocol(String),
    /// The connection failed after it was made.
    #[error("relay connection failed: {0}")]
    Io(#[from] io::Error),
    /// No nonce could be drawn from the system's generator.
    #[error("no system randomness: {0}")]
    Random(String),
}

impl From<crate::frame::FrameError> for RelayError {
    fn from(e: crate::frame::FrameError) -> Self {
        match e {
            crate::frame::FrameError::Io(e) => RelayError::Io(e),
            crate::frame::FrameError::BadTag => RelayError::Tampered,
            other => RelayError::Protocol(other.to_string()),
        }
    }
}
