//! An attached relay session: DATA both ways between the connection and a console's channels,
//! BREAK from client to server, PING while quiet, CLOSE at the end.
//!
//! Invariants: at most one frame is read ahead of what the console (or the user) has taken, and
//! nothing is read from the console (or the user) while a frame is being written, so the
//! channels' bounds, the sockets' buffers and the one frame being sent are all the buffering
//! there is; a DATA frame gathers only what its source had queued already (see
//! [`crate::gather`]), so nothing waits for more to come. The idle deadline
//! runs only while the session waits for a frame: a session held up by a slow reader is not
//! mistaken for a dead peer.

use std::future::Future;
use std::io;
use std::time::Duration;

use backends::{BreakError, ConsoleInput, Input};
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::{Instant, sleep_until, timeout};

use crate::frame::{FrameError, FrameReader, FrameWriter, Kind};
use crate::gather::Gathered;

/// How long a side that said CLOSE waits for the peer to close (and for CLOSE to be written).
const LINGER: Duration = Duration::from_secs(1);

/// Something to send to the peer.
pub(crate) enum Outgoing {
    Data(Bytes),
    Break,
}

/// Something the peer sent for the local console or user.
pub(crate) enum Incoming {
    Data(Bytes),
    Break,
}

/// What the local source has next.
pub(crate) enum Next {
    Send(Outgoing),
    /// Nothing more will come, but the session goes on (a user who stopped typing for good may
    /// still read).
    Quiet,
    /// The local side is gone: say CLOSE and end.
    End,
}

/// Where the frames for the peer come from: the owner's console output (server), the user's
/// input (client). `next` must be cancel-safe.
pub(crate) trait Source: Send {
    fn next(&mut self) -> impl Future<Output = Next> + Send;

    /// What `next` would give at once, without waiting; `None` when nothing is queued.
    fn ready(&mut self) -> Option<Next>;
}

/// Where the peer's frames go: the owner's console input (server), the user's output (client).
pub(crate) trait Sink: Send {
    fn deliver(&mut self, message: Incoming) -> impl Future<Output = Result<(), End>> + Send;
}

/// Why a session ended, for the log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum End {
    #[error("the peer closed the session")]
    PeerClosed,
    #[error("the peer closed the connection without CLOSE")]
    PeerGone,
    #[error("nothing received from the peer within the idle timeout")]
    PeerSilent,
    #[error("the console ended")]
    ConsoleEnded,
    #[error("the local side went away")]
    LocalGone,
    #[error("shutting down")]
    Shutdown,
    #[error("a frame failed its authentication check")]
    Forged,
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("connection failed: {0}")]
    Io(#[from] io::Error),
}

impl From<FrameError> for End {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io(e) => End::Io(e),
            FrameError::BadTag => End::Forged,
            other => End::Protocol(other.to_string()),
        }
    }
}

impl Source for mpsc::Receiver<Bytes> {
    async fn next(&mut self) -> Next {
        match self.recv().await {
            Some(bytes) => Next::Send(Outgoing::Data(bytes)),
            None => Next::End,
        }
    }

    fn ready(&mut self) -> Option<Next> {
        match self.try_recv() {
            Ok(bytes) => Some(Next::Send(Outgoing::Data(bytes))),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Next::End),
        }
    }
}

impl Source for mpsc::Receiver<Input> {
    async fn next(&mut self) -> Next {
        match self.recv().await {
            Some(Input::Data(bytes)) => Next::Send(Outgoing::Data(bytes)),
            Some(Input::Break) => Next::Send(Outgoing::Break),
            None => Next::Quiet,
        }
    }

    fn ready(&mut self) -> Option<Next> {
        match self.try_recv() {
            Ok(Input::Data(bytes)) => Some(Next::Send(Outgoing::Data(bytes))),
            Ok(Input::Break) => Some(Next::Send(Outgoing::Break)),
            Err(TryRecvError::Empty) => None,
            Err(TryRecvError::Disconnected) => Some(Next::Quiet),
        }
    }
}

impl Sink for ConsoleInput {
    async fn deliver(&mut self, message: Incoming) -> Result<(), End> {
        match message {
            Incoming::Data(bytes) => self.write(bytes).await.map_err(|_| End::LocalGone),
            Incoming::Break => match self.send_break().await {
                Ok(()) => Ok(()),
                // The client was told (OK's flags) and refuses BREAK itself; one sent anyway
                // is dropped as the console would drop it.
                Err(BreakError::Unsupported) => Ok(()),
                Err(BreakError::Closed) => Err(End::LocalGone),
            },
        }
    }
}

impl Sink for mpsc::Sender<Bytes> {
    async fn deliver(&mut self, message: Incoming) -> Result<(), End> {
        match message {
            Incoming::Data(bytes) => self.send(bytes).await.map_err(|_| End::LocalGone),
            Incoming::Break => Err(End::Protocol("BREAK sent to the client".to_owned())),
        }
    }
}

/// The timing of a session.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// PING after this long without sending.
    pub ping: Duration,
    /// Give the peer up after this long without receiving.
    pub idle: Duration,
}

/// Runs a session until either side ends it. `gone` resolves when the local user is gone
/// (the client's console dropped); `stop` when the node shuts down.
pub(crate) async fn run<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    timing: Timing,
    source: impl Source,
    sink: impl Sink,
    gone: impl Future<Output = ()> + Send,
    stop: impl Future<Output = ()> + Send,
) -> End
where
    R: AsyncRead + Unpin + Send,
    W: AsyncWrite + Unpin + Send,
{
    let (end, said_close) = tokio::select! {
        end = read_loop(reader, sink, timing.idle) => (end, false),
        (end, said_close) = write_loop(writer, source, gone, stop, timing.ping) => (end, said_close),
    };
    if said_close {
        // The read loop was dropped, perhaps mid-frame: from here on, bytes are only discarded.
        let _ = timeout(LINGER, reader.drain()).await;
    }
    end
}

async fn read_loop<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    mut sink: impl Sink,
    idle: Duration,
) -> End {
    // Cleared when the local side stops taking input. The session goes on: what the console
    // still has to say is delivered by the write loop, which ends the session when the console
    // (or the user) has gone; meanwhile frames are still read, for PING and CLOSE.
    let mut delivering = true;
    loop {
        let frame = match timeout(idle, reader.read()).await {
            Err(_) => return End::PeerSilent,
            Ok(Err(e)) => return e.into(),
            Ok(Ok(None)) => return End::PeerGone,
            Ok(Ok(Some(frame))) => frame,
        };
        let message = match frame.kind {
            Kind::Data if !frame.payload.is_empty() => Incoming::Data(frame.payload),
            Kind::Break if frame.payload.is_empty() => Incoming::Break,
            Kind::Ping => continue,
            Kind::Close => return End::PeerClosed,
            kind => return End::Protocol(format!("unexpected {kind:?} frame in a session")),
        };
        if !delivering {
            continue;
        }
        match sink.deliver(message).await {
            Ok(()) => {}
            Err(End::LocalGone) => delivering = false,
            Err(end) => return end,
        }
    }
}

/// Returns why it ended and whether it told the peer so (CLOSE).
async fn write_loop<W: AsyncWrite + Unpin>(
    writer: &mut FrameWriter<W>,
    source: impl Source,
    gone: impl Future<Output = ()>,
    stop: impl Future<Output = ()>,
    ping: Duration,
) -> (End, bool) {
    tokio::pin!(gone, stop);
    let mut source = Gathered::new(source);
    // The chunks of the DATA frame being sent; kept between frames.
    let mut parts = Vec::new();
    let mut quiet = false;
    let mut next_ping = Instant::now() + ping;
    loop {
        let sent = tokio::select! {
            biased;
            () = &mut stop => return (End::Shutdown, close(writer).await),
            () = &mut gone => return (End::LocalGone, close(writer).await),
            next = source.next(), if !quiet => match next {
                Next::Send(Outgoing::Data(first)) => {
                    source.gather(first, &mut parts);
                    let sent = if parts.is_empty() {
                        Ok(())
                    } else {
                        writer.send_parts(Kind::Data, &parts).await
                    };
                    // The chunks' memory goes back now, not at the next frame.
                    parts.clear();
                    sent
                }
                Next::Send(Outgoing::Break) => writer.send(Kind::Break, &[]).await,
                Next::Quiet => {
                    quiet = true;
                    continue;
                }
                Next::End => return (End::ConsoleEnded, close(writer).await),
            },
            () = sleep_until(next_ping) => writer.send(Kind::Ping, &[]).await,
        };
        if let Err(e) = sent {
            return (End::Io(e), false);
        }
        next_ping = Instant::now() + ping;
    }
}

/// Sends CLOSE, bounded: a peer that stopped reading does not hold the session. Returns
/// whether it went out.
async fn close<W: AsyncWrite + Unpin>(writer: &mut FrameWriter<W>) -> bool {
    matches!(
        timeout(LINGER, writer.send(Kind::Close, &[])).await,
        Ok(Ok(()))
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;

    /// A console input that is already gone, and says when it was first offered something.
    struct GoneInput(Option<oneshot::Sender<()>>);

    impl Sink for GoneInput {
        async fn deliver(&mut self, _message: Incoming) -> Result<(), End> {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
            Err(End::LocalGone)
        }
    }

    #[tokio::test]
    async fn output_still_flows_after_the_console_stopped_taking_input() {
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (read_half, write_half) = tokio::io::split(ours);
        let (mut reader, mut writer) = (FrameReader::new(read_half), FrameWriter::new(write_half));
        let (output_tx, output_rx) = mpsc::channel::<Bytes>(4);
        let (offered_tx, offered_rx) = oneshot::channel();
        let timing = Timing {
            ping: Duration::from_secs(3600),
            idle: Duration::from_secs(3600),
        };
        let session = tokio::spawn(async move {
            run(
                &mut reader,
                &mut writer,
                timing,
                output_rx,
                GoneInput(Some(offered_tx)),
                std::future::pending(),
                std::future::pending(),
            )
            .await
        });
        let (peer_read, peer_write) = tokio::io::split(theirs);
        let (mut peer_reader, mut peer_writer) =
            (FrameReader::new(peer_read), FrameWriter::new(peer_write));
        peer_writer.send(Kind::Data, b"typed").await.unwrap();
        offered_rx.await.unwrap();
        // The console's last words come after its input went away.
        output_tx
            .send(Bytes::from_static(b"goodbye"))
            .await
            .unwrap();
        drop(output_tx);
        let frame = peer_reader.read().await.unwrap().unwrap();
        assert_eq!(
            (frame.kind, &frame.payload[..]),
            (Kind::Data, &b"goodbye"[..])
        );
        let frame = peer_reader.read().await.unwrap().unwrap();
        assert_eq!(frame.kind, Kind::Close);
        drop(peer_writer);
        drop(peer_reader);
        assert!(matches!(session.await.unwrap(), End::ConsoleEnded));
    }
}
