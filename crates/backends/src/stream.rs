//! The connection task for byte-stream consoles (unix, tcp, telnet, tty, exec): one loop that
//! moves bytes between a stream and the handle's bounded channels.
//!
//! Invariants: the task holds one read buffer of `read_chunk` bytes and at most one undelivered
//! output chunk; it reads from the console only while that chunk has been delivered, so a reader
//! that stops reading stops the console (backpressure reaches the peer through the socket or
//! tty). Pending writes are bounded to a few `read_chunk`s. All I/O errors end the task; what the
//! console sent before it closed is still delivered before `output` closes.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::console::{Capabilities, Console, ConsoleOptions, Input, TaskEnds, channels};

/// Translates between the wire and the user's bytes (identity for raw streams, RFC 854 for telnet).
pub(crate) trait Codec: Send + 'static {
    /// Consumes bytes read from the console: user data goes to `data`, protocol replies owed to
    /// the console go to `replies`. Must accept sequences split across calls.
    fn decode(&mut self, wire: &[u8], data: &mut Vec<u8>, replies: &mut BytesMut);
    /// Appends the wire form of user bytes to `wire`.
    fn encode(&mut self, data: &[u8], wire: &mut BytesMut);
    /// The in-band BREAK, if the protocol has one; otherwise the line's own is used.
    fn break_sequence(&self) -> Option<&'static [u8]>;
}

/// Bytes pass untouched.
#[derive(Debug, Default)]
pub(crate) struct Raw;

impl Codec for Raw {
    fn decode(&mut self, wire: &[u8], data: &mut Vec<u8>, _replies: &mut BytesMut) {
        data.extend_from_slice(wire);
    }

    fn encode(&mut self, data: &[u8], wire: &mut BytesMut) {
        wire.extend_from_slice(data);
    }

    fn break_sequence(&self) -> Option<&'static [u8]> {
        None
    }
}

/// A stream a console speaks over, with what differs between kinds of line.
pub(crate) trait Line: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Sends a BREAK out of band (a tty's line condition). Lines without one never get here,
    /// because the handle refuses BREAK when the capabilities say so.
    fn hard_break(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        std::future::ready(Err(io::ErrorKind::Unsupported.into()))
    }

    /// Whether a read error just means the far end closed (a pty reads EIO once its child exits).
    fn read_error_is_eof(&self, _error: &io::Error) -> bool {
        false
    }
}

impl Line for tokio::net::UnixStream {}
impl Line for tokio::net::TcpStream {}

/// Why a connection task ended, for the log.
#[derive(Debug)]
pub(crate) enum End {
    /// The caller dropped the console.
    Dropped,
    /// The console closed its end; everything it sent was delivered.
    Closed,
    /// An I/O error; everything read before it was delivered.
    Failed(&'static str, io::Error),
}

/// One event from the stream.
enum Io {
    Read(io::Result<usize>),
    Wrote(io::Result<usize>),
}

/// Polls the stream for whichever of writing and reading is wanted; both in one future because
/// they need the stream mutably at the same time.
fn poll_line<L: Line>(
    line: &mut L,
    buf: &mut [u8],
    want_read: bool,
    wire: &[u8],
    cx: &mut Context<'_>,
) -> Poll<Io> {
    if !wire.is_empty()
        && let Poll::Ready(result) = Pin::new(&mut *line).poll_write(cx, wire)
    {
        return Poll::Ready(Io::Wrote(result));
    }
    if want_read {
        let mut read_buf = ReadBuf::new(buf);
        if let Poll::Ready(result) = Pin::new(&mut *line).poll_read(cx, &mut read_buf) {
            return Poll::Ready(Io::Read(result.map(|()| read_buf.filled().len())));
        }
    }
    Poll::Pending
}

/// Runs one connection until the console closes, an I/O error, or the caller drops the console.
pub(crate) async fn pump<L: Line, C: Codec>(
    mut line: L,
    mut codec: C,
    ends: TaskEnds,
    read_chunk: usize,
    coalesce: std::time::Duration,
) -> End {
    let TaskEnds { mut input, output } = ends;
    let mut buf = vec![0u8; read_chunk];
    // Encoded bytes waiting to be written; bounded because reading (the source of telnet
    // replies) pauses above `wire_limit` and user input is encoded a slice at a time.
    let mut wire = BytesMut::new();
    // When bytes last went out, if ever; a BREAK waits for them to settle (see the Break arm).
    let mut last_write: Option<tokio::time::Instant> = None;
    let wire_limit = 2 * read_chunk;
    // The rest of the user message being encoded.
    let mut unencoded = Bytes::new();
    // Output read but not yet accepted by the channel.
    let mut undelivered: Option<Bytes> = None;
    // Set when the console closed or failed: deliver what is left, then end.
    let mut ending: Option<End> = None;
    let mut input_open = true;
    // Read pacing (see `ConsoleOptions::coalesce`): armed after the second read in a row that
    // did not fill the buffer, reading waits for it. A full read means the console is
    // flooding, and reading goes on at once; so does the read after it, which usually just
    // drained the line: pausing there would cap a flood at one line buffer per window.
    let pause = tokio::time::sleep(std::time::Duration::ZERO);
    tokio::pin!(pause);
    let mut paused = false;
    let mut last_read_full = false;

    loop {
        if undelivered.is_none()
            && let Some(end) = ending.take()
        {
            return end;
        }
        let want_read =
            !paused && ending.is_none() && undelivered.is_none() && wire.len() < wire_limit;
        let want_input = input_open && ending.is_none() && wire.is_empty() && unencoded.is_empty();
        tokio::select! {
            biased;
            () = output.closed() => return End::Dropped,
            permit = output.reserve(), if undelivered.is_some() => match permit {
                Ok(permit) => {
                    if let Some(chunk) = undelivered.take() {
                        permit.send(chunk);
                    }
                }
                Err(_) => return End::Dropped,
            },
            () = &mut pause, if paused => paused = false,
            event = poll_fn(|cx| poll_line(&mut line, &mut buf, want_read, &wire, cx)) => match event {
                Io::Read(Ok(0)) => ending = Some(End::Closed),
                Io::Read(Ok(n)) => {
                    let full = n == buf.len();
                    if !full && !last_read_full && !coalesce.is_zero() {
                        pause.as_mut().reset(tokio::time::Instant::now() + coalesce);
                        paused = true;
                    }
                    last_read_full = full;
                    let mut data = Vec::with_capacity(n);
                    codec.decode(buf.get(..n).unwrap_or_default(), &mut data, &mut wire);
                    if !data.is_empty() {
                        undelivered = Some(Bytes::from(data));
                    }
                }
                Io::Read(Err(e)) if line.read_error_is_eof(&e) => ending = Some(End::Closed),
                Io::Read(Err(e)) => ending = Some(End::Failed("read", e)),
                Io::Wrote(Ok(0)) => ending = Some(End::Failed("write", io::ErrorKind::WriteZero.into())),
                Io::Wrote(Ok(n)) => {
                    last_write = Some(tokio::time::Instant::now());
                    wire.advance(n.min(wire.len()));
                    if wire.is_empty() {
                        // Drop the allocation so an idle connection holds no write buffer.
                        wire = BytesMut::new();
                        encode_slice(&mut codec, &mut unencoded, &mut wire, read_chunk);
                    }
                }
                Io::Wrote(Err(e)) => ending = Some(End::Failed("write", e)),
            },
            message = input.recv(), if want_input => match message {
                None => input_open = false,
                Some(Input::Data(data)) => {
                    unencoded = data;
                    encode_slice(&mut codec, &mut unencoded, &mut wire, read_chunk);
                }
                Some(Input::Break) => match codec.break_sequence() {
                    Some(sequence) => {
                        // A UART that still holds the bytes typed just before (QEMU's 16550
                        // FIFO, say) can pin the break on one of them instead of the NUL it
                        // queues for it, so the guest sees a stray character and no BREAK. Give
                        // the far end a moment to drain what was just written.
                        let settle = break_settle(last_write, tokio::time::Instant::now());
                        if !settle.is_zero() {
                            tokio::time::sleep(settle).await;
                        }
                        wire.extend_from_slice(sequence);
                    }
                    None => {
                        if let Err(e) = line.hard_break().await {
                            ending = Some(End::Failed("break", e));
                        }
                    }
                },
            },
        }
    }
}

/// How long a BREAK waits after the last bytes written.
const BREAK_SETTLE: std::time::Duration = std::time::Duration::from_millis(150);

/// How long a BREAK due at `now` must still wait for bytes written at `last_write` to drain.
/// Nothing written yet means no wait. (Not `now - BREAK_SETTLE` as a start value: an `Instant`
/// cannot go below the clock's origin, which on Linux is boot time.)
fn break_settle(
    last_write: Option<tokio::time::Instant>,
    now: tokio::time::Instant,
) -> std::time::Duration {
    last_write.map_or(std::time::Duration::ZERO, |t| {
        BREAK_SETTLE.saturating_sub(now.saturating_duration_since(t))
    })
}

/// Moves up to `max` user bytes from `unencoded` into `wire`, so a large paste is encoded (and
/// buffered) a slice at a time.
fn encode_slice<C: Codec>(codec: &mut C, unencoded: &mut Bytes, wire: &mut BytesMut, max: usize) {
    if unencoded.is_empty() {
        return;
    }
    let slice = unencoded.split_to(max.min(unencoded.len()));
    codec.encode(&slice, wire);
}

/// Starts the connection task for `line` and returns the caller's handle. `after` runs once the
/// stream has been dropped (the exec backend reaps its child there).
pub(crate) fn start<L, C, F>(
    line: L,
    codec: C,
    capabilities: Capabilities,
    label: String,
    opts: &ConsoleOptions,
    after: F,
) -> Console
where
    L: Line,
    C: Codec,
    F: Future<Output = ()> + Send + 'static,
{
    let (console, ends) = channels(capabilities, opts);
    let (read_chunk, coalesce) = (opts.chunk(), opts.coalesce);
    tokio::spawn(async move {
        let end = pump(line, codec, ends, read_chunk, coalesce).await;
        log_end(&label, &end);
        after.await;
    });
    console
}

/// Logs how a connection ended: I/O failures are worth a warning, the rest is routine.
pub(crate) fn log_end(label: &str, end: &End) {
    match end {
        End::Dropped => tracing::debug!(console = %label, "console released"),
        End::Closed => tracing::info!(console = %label, "console closed by the far end"),
        End::Failed(op, error) => {
            tracing::warn!(console = %label, %error, "console {op} failed; connection closed");
        }
    }
}

/// Adapts any stream (e.g. `tokio::io::duplex`) to [`Line`], for [`crate::Console::from_stream`].
#[derive(Debug)]
pub(crate) struct Plain<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for Plain<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Plain<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Line for Plain<S> {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{BREAK_SETTLE, break_settle};

    #[test]
    fn a_break_waits_only_for_recent_writes() {
        // Ten seconds ahead, so that `now - 1 s` below exists even right after boot.
        let now = Instant::now() + Duration::from_secs(10);
        assert_eq!(break_settle(None, now), Duration::ZERO);
        assert_eq!(break_settle(Some(now), now), BREAK_SETTLE);
        assert_eq!(
            break_settle(Some(now - Duration::from_millis(100)), now),
            Duration::from_millis(50)
        );
        assert_eq!(
            break_settle(Some(now - Duration::from_secs(1)), now),
            Duration::ZERO
        );
        // A write stamped after `now` waits the full time rather than underflowing.
        assert_eq!(
            break_settle(Some(now + Duration::from_secs(1)), now),
            BREAK_SETTLE
        );
    }
}
