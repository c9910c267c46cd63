//! One API connection: HTTP/1.1 (hyper) over TCP or TLS, with its deadlines kept by a watchdog.
//!
//! A connection is always in one phase: reading a request head, handling a request, or idle
//! between requests. Each phase has its own deadline (header-read, whole-request, idle); when it
//! passes, the connection is closed. hyper's own header-read timer cannot do this: it starts
//! when hyper begins waiting for a head, so on a keep-alive connection it counts the idle time
//! too and would close every idle connection after the (shorter) header timeout.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::response::Response;
use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::Service;

use crate::limits::ApiLimits;
use crate::server::RequestDeadline;

/// After the whole-request deadline the handler answers with a timeout error; this is how long
/// that answer may take before the watchdog closes the connection instead.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// The floor of a connection's read and write buffers (hyper refuses less than 8 KiB).
const MIN_BUF_SIZE: usize = 64 * 1024;

/// Where a connection is, and since when.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request head, since the accept (a TLS handshake counts) or since the first
    /// byte after an idle spell.
    Head(Instant),
    /// A request is being handled; its head began at this instant.
    Busy(Instant),
    /// No request in progress since this instant.
    Idle(Instant),
}

/// A connection's phase and the deadline that goes with it. Shared by the IO wrapper (which
/// sees bytes arrive), the service (which sees requests start and end) and the watchdog.
#[derive(Debug)]
pub(crate) struct Deadlines {
    header: Duration,
    idle: Duration,
    request: Duration,
    phase: Mutex<Phase>,
    /// Wakes the watchdog when a phase change may have brought the deadline forward.
    changed: Notify,
}

impl Deadlines {
    /// A connection accepted now: its first request head is due within the header timeout.
    pub(crate) fn new(limits: &ApiLimits) -> Self {
        Self {
            header: limits.header_read_timeout,
            idle: limits.idle_timeout,
            request: limits.request_timeout,
            phase: Mutex::new(Phase::Head(Instant::now())),
            changed: Notify::new(),
        }
    }

    fn phase(&self) -> MutexGuard<'_, Phase> {
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the current phase runs out, and what that means (for the log).
    pub(crate) fn deadline(&self) -> (Instant, &'static str) {
        match *self.phase() {
            Phase::Head(since) => (since + self.header, "request head not received in time"),
            Phase::Busy(since) => (
                since + self.request + ANSWER_GRACE,
                "request not answered in time",
            ),
            Phase::Idle(since) => (since + self.idle, "idle keep-alive timeout"),
        }
    }

    /// Bytes arrived: after an idle spell they start the next request head.
    fn bytes_read(&self) {
        let mut phase = self.phase();
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now());
            drop(phase);
            self.changed.notify_one();
        }
    }

    /// A request head is complete; returns the instant the request's deadline counts from.
    fn request_started(&self) -> Instant {
        let mut phase = self.phase();
        let since = match *phase {
            Phase::Head(since) | Phase::Busy(since) => since,
            // The head was already buffered (a pipelined request): it starts now.
            Phase::Idle(_) => Instant::now(),
        };
        *phase = Phase::Busy(since);
        since
    }

    fn request_finished(&self) {
        *self.phase() = Phase::Idle(Instant::now());
        self.changed.notify_one();
    }
}

/// Serves HTTP/1.1 on `io` until the client leaves, a deadline passes, or `stop` asks for a
/// graceful end (the request in progress, if any, is finished first). With `half_close`, a
/// client that ends its sending side after a request still gets the answer.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    secure: bool,
    half_close: bool,
    router: Router,
    limits: &ApiLimits,
    deadlines: Arc<Deadlines>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = ConnService {
        router,
        peer,
        secure,
        request_timeout: limits.request_timeout,
        deadlines: Arc::clone(&deadlines),
    };
    let io = TokioIo::new(Tracked {
        io,
        deadlines: Arc::clone(&deadlines),
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes)
        // hyper's default (~400 KiB) lets every connection buffer that much; a body is read in
        // chunks anyway, so a head's worth plus room for a body chunk is enough.
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_SIZE))
        // The watchdog below keeps the header-read deadline (see the module comment).
        .header_read_timeout(None)
        .half_close(half_close);
    // Upgrades: the browser console's WebSocket leaves HTTP on its connection.
    let conn = builder.serve_connection(io, service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let mut draining = false;
    loop {
        let (deadline, _) = deadlines.deadline();
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "API connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                // The phase may have moved on since the sleep began.
                let (deadline, reason) = deadlines.deadline();
                if deadline <= Instant::now() {
                    tracing::debug!(%peer, reason, "closing API connection");
                    return;
                }
            }
            () = deadlines.changed.notified() => {}
            _ = stop.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// The per-connection service: tells the request who the peer is and when its deadline is,
/// tracks the phase, and hands the request to the router.
#[derive(Debug, Clone)]
struct ConnService {
    router: Router,
    peer: SocketAddr,
    /// Whether the connection is TLS.
    secure: bool,
    request_timeout: Duration,
    deadlines: Arc<Deadlines>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let since = self.deadlines.request_started();
        req.extensions_mut().insert(ConnectInfo(self.peer));
        req.extensions_mut().insert(SecureTransport(self.secure));
        req.extensions_mut()
            .insert(RequestDeadline(since + self.request_timeout));
        let finished = Finished(Arc::clone(&self.deadlines));
        let mut router = self.router.clone();
        Box::pin(async move {
            // Whether the handler completes or is dropped, the connection is idle after it.
            let _finished = finished;
            poll_fn(|cx| Service::<Request<Incoming>>::poll_ready(&mut router, cx)).await?;
            router.call(req).await
        })
    }
}

/// Whether the request came over TLS: `aws:SecureTransport` in its policies' conditions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SecureTransport(pub bool);

/// Where a request came from and whether over TLS, as its connection recorded them.
pub(crate) fn origin<B>(req: &Request<B>) -> (Option<std::net::IpAddr>, bool) {
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    let secure = req
        .extensions()
        .get::<SecureTransport>()
        .is_some_and(|s| s.0);
    (source_ip, secure)
}

/// Marks the end of a request when dropped.
#[derive(Debug)]
struct Finished(Arc<Deadlines>);

impl Drop for Finished {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// The connection's byte stream, reporting reads to [`Deadlines`].
#[derive(Debug)]
struct Tracked<I> {
    io: I,
    deadlines: Arc<Deadlines>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.deadlines.bytes_read();
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn limits() -> ApiLimits {
        ApiLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            ..ApiLimits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_phase_has_its_deadline() {
        let start = Instant::now();
        let d = Deadlines::new(&limits());
        // The first head is due 10 s after the accept, however the bytes trickle in.
        assert_eq!(d.deadline().0, start + Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(3)).await;
        d.bytes_read();
        assert_eq!(d.deadline().0, start + Duration::from_secs(10));
        // The request counts from its head's start.
        assert_eq!(d.request_started(), start);
        assert_eq!(
            d.deadline().0,
            start + Duration::from_secs(60) + ANSWER_GRACE
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        d.request_finished();
        let idle_since = Instant::now();
        assert_eq!(d.deadline().0, idle_since + Duration::from_secs(30));
        // The next head's first byte starts its own header deadline.
        tokio::time::advance(Duration::from_secs(20)).await;
        d.bytes_read();
        let head_since = Instant::now();
        assert_eq!(d.deadline().0, head_since + Duration::from_secs(10));
        assert_eq!(d.request_started(), head_since);
    }

    #[tokio::test(start_paused = true)]
    async fn a_buffered_pipelined_head_starts_when_handled() {
        let d = Deadlines::new(&limits());
        d.request_started();
        d.request_finished();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(d.request_started(), Instant::now());
    }
}
