//! The WebSocket between the page and its session (the framing is `webconsole::protocol`).
//!
//! Cross-site WebSocket hijacking is refused before the upgrade: the `Origin` must be this
//! server's own. After the upgrade, the cookie's key opens the session as an SSH key would; a
//! refusal is a close with a 4000–4999 code and a reason the page shows. Output in flight to
//! the page is bounded by the page's acknowledgements ([`WINDOW`]), so a slow tab holds back
//! its own session (and console), never the server's memory.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use console::browser::{
    BrowserInput, BrowserOutput, BrowserRefused, BrowserRequest, BrowserSession,
};
use console::{InstanceId, SerialPort};
use webconsole::protocol::{self, FromBrowser};

use super::cookie;
use super::parked::{Detached, Parked};
use crate::connection::SecureTransport;
use crate::server::ApiState;

/// Unacknowledged output the page may have in flight; also the most a session keeps to send
/// again after a dropped connection. The page acknowledges as its terminal finishes writing,
/// so this is what lets a fast console run ahead of the terminal: 256 KiB held a headless
/// Chromium to ~2.6 MB/s, its terminal's own pace is ~4 MB/s (scripts/bench-browser.sh).
const WINDOW: u64 = 1024 * 1024;

/// How long the page has to send its terminal size before the session opens without it.
const FIRST_MESSAGE_WAIT: Duration = Duration::from_secs(2);

/// Close codes (the page shows the reason and does not reconnect).
const ENDED: u16 = 4000;
const NO_GRANT: u16 = 4001;
const BUSY: u16 = 4002;
const UNAVAILABLE: u16 = 4003;
const PROTOCOL_ERROR: u16 = 4004;

/// `GET /console/<instance>/<port>/ws`.
pub(crate) async fn socket(
    State(state): State<Arc<ApiState>>,
    Path((instance, port)): Path<(String, String)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    secure: Option<axum::Extension<SecureTransport>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(browser) = &state.browser else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let secure = secure.is_some_and(|s| s.0.0);
    if !same_origin(&headers, secure) {
        tracing::info!(%peer, "browser console WebSocket refused: not from this server's page");
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    let target = match (InstanceId::parse(&instance), port.parse::<u32>()) {
        (Ok(i), Ok(p)) if p <= 255 => Some((i, SerialPort::new(p))),
        _ => None,
    };
    let secret = cookie::secret(&headers);
    let sessions = Arc::clone(&browser.sessions);
    let parked = Arc::clone(&browser.parked);
    ws.max_message_size(protocol::MAX_FROM_BROWSER)
        .max_frame_size(protocol::MAX_FROM_BROWSER)
        .on_upgrade(move |socket| async move {
            let Some((instance, port)) = target else {
                return close(socket, NO_GRANT, "There is no such console.").await;
            };
            let Some(secret) = secret else {
                return close(
                    socket,
                    NO_GRANT,
                    "This page has no console link (or it expired). Open a new link.",
                )
                .await;
            };
            let page = Page {
                sessions,
                parked,
                instance,
                port,
                key: cookie::key_bytes(&secret),
                peer,
            };
            page.run(socket).await;
        })
}

/// The page's origin must be this server's: `http(s)://<Host>`.
fn same_origin(headers: &HeaderMap, secure: bool) -> bool {
    let (Some(origin), Some(host)) = (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let scheme = if secure { "https" } else { "http" };
    origin
        .strip_prefix(scheme)
        .and_then(|rest| rest.strip_prefix("://"))
        .is_some_and(|o| o.eq_ignore_ascii_case(host))
}

/// One page's connection, and what it needs to open or take back its session.
struct Page {
    sessions: Arc<dyn console::browser::BrowserSessions>,
    parked: Arc<Parked>,
    instance: InstanceId,
    port: SerialPort,
    /// The key the cookie's secret stands for.
    key: [u8; 32],
    peer: SocketAddr,
}

/// How a connection left its session.
enum Left {
    /// The session ended, or the page closed the socket: nothing to keep.
    Ended,
    /// The connection dropped without a close: the page may come back for it.
    Dropped(Detached),
}

impl Page {
    async fn run(self, mut socket: WebSocket) {
        // The page sends its size first; the recording's header wants it.
        let (mut cols, mut rows, mut early) = (80, 24, None);
        match tokio::time::timeout(FIRST_MESSAGE_WAIT, socket.recv()).await {
            Ok(Some(Ok(Message::Binary(b)))) => match protocol::parse(&b) {
                Ok(FromBrowser::Resize { cols: c, rows: r }) => (cols, rows) = (c, r),
                Ok(_) => early = Some(b),
                Err(e) => return close(socket, PROTOCOL_ERROR, &e.to_string()).await,
            },
            Ok(None | Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return,
            Ok(Some(Ok(_))) | Err(_) => {}
        }
        let detached = match self.parked.take(&self.key, &self.instance, self.port) {
            // A page coming back after a dropped connection: its session, as it left it.
            Some(d) => {
                let _ = d
                    .session
                    .input
                    .send(BrowserInput::Resize { cols, rows })
                    .await;
                tracing::info!(peer = %self.peer, instance = %self.instance, "browser page reattached to its session");
                d
            }
            None => match self.open(cols, rows).await {
                Ok(session) => Detached {
                    session,
                    unacked: VecDeque::new(),
                },
                Err((code, text)) => return close(socket, code, &text).await,
            },
        };
        let status = serde_json::json!({
            "instance": self.instance.to_string(),
            "port": self.port.get(),
            "ends_at_ms": detached.session.ends_at_ms,
            "principal": detached.session.principal,
        });
        if send(&mut socket, protocol::status_frame(&status.to_string()))
            .await
            .is_err()
        {
            return self.park(detached);
        }
        if let Left::Dropped(d) = bridge(socket, detached, early).await {
            self.park(d);
        }
    }

    async fn open(&self, cols: u16, rows: u16) -> Result<BrowserSession, (u16, String)> {
        let request = BrowserRequest {
            instance: self.instance.clone(),
            port: self.port,
            key: cookie::key_data(&self.key),
            peer: self.peer,
            cols,
            rows,
        };
        self.sessions.open(request).await.map_err(|e| {
            let code = match e {
                BrowserRefused::NoGrant(_) => NO_GRANT,
                BrowserRefused::Busy(_) => BUSY,
                BrowserRefused::Unavailable(_) => UNAVAILABLE,
            };
            (code, e.to_string())
        })
    }

    fn park(self, detached: Detached) {
        tracing::info!(peer = %self.peer, instance = %self.instance, grace_s = super::RECONNECT_GRACE.as_secs(), "browser page dropped its connection; keeping its session for it");
        self.parked
            .park(self.key, self.instance, self.port, detached);
    }
}

/// Moves messages both ways until the session ends or the page goes away. Output the page has
/// not acknowledged is kept (at most [`WINDOW`]), to be sent again if the page comes back.
async fn bridge(mut socket: WebSocket, detached: Detached, early: Option<Bytes>) -> Left {
    let Detached {
        session,
        mut unacked,
    } = detached;
    let mut in_flight: u64 = 0;
    // What a previous connection sent and the page never acknowledged, first.
    for d in &unacked {
        in_flight = in_flight.saturating_add(d.len() as u64);
        if send(&mut socket, protocol::output_frame(d)).await.is_err() {
            return Left::Dropped(Detached { session, unacked });
        }
    }
    if let Some(b) = early
        && let Err(e) = forward(&session.input, &b, &mut in_flight, &mut unacked).await
    {
        close(socket, PROTOCOL_ERROR, &e).await;
        return Left::Ended;
    }
    let BrowserSession {
        input,
        mut output,
        ends_at_ms,
        principal,
    } = session;
    let left = |input, output, unacked| {
        Left::Dropped(Detached {
            session: BrowserSession {
                input,
                output,
                ends_at_ms,
                principal: principal.clone(),
            },
            unacked,
        })
    };
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if let Err(e) = forward(&input, &b, &mut in_flight, &mut unacked).await {
                        // Ending the input ends the session (as a client that left).
                        drop(input);
                        close(socket, PROTOCOL_ERROR, &e).await;
                        return Left::Ended;
                    }
                }
                // Pings are answered by the WebSocket layer; text is not part of the protocol.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_))) => {}
                // The page closed the socket (Disconnect, or the tab closed): the session ends
                // as an SSH client's would.
                Some(Ok(Message::Close(_))) => return Left::Ended,
                // The connection dropped without a close: the page may come back.
                Some(Err(_)) | None => return left(input, output, unacked),
            },
            out = output.recv(), if in_flight < WINDOW => match out {
                Some(BrowserOutput::Data(d)) => {
                    in_flight = in_flight.saturating_add(d.len() as u64);
                    let sent = send(&mut socket, protocol::output_frame(&d)).await;
                    unacked.push_back(d);
                    if sent.is_err() {
                        return left(input, output, unacked);
                    }
                }
                Some(BrowserOutput::Closed { status }) => {
                    // The session said goodbye in the terminal already; this is for the page.
                    let text = if status == 0 {
                        "The session ended."
                    } else {
                        "The session could not start."
                    };
                    close(socket, ENDED, text).await;
                    return Left::Ended;
                }
                None => {
                    close(socket, ENDED, "The session ended.").await;
                    return Left::Ended;
                }
            },
        }
    }
}

/// One message from the page, onto the session.
async fn forward(
    input: &tokio::sync::mpsc::Sender<BrowserInput>,
    msg: &[u8],
    in_flight: &mut u64,
    unacked: &mut VecDeque<Bytes>,
) -> Result<(), String> {
    let to_session = match protocol::parse(msg).map_err(|e| e.to_string())? {
        FromBrowser::Input(d) => vec![BrowserInput::Data(Bytes::copy_from_slice(d))],
        FromBrowser::Resize { cols, rows } => vec![BrowserInput::Resize { cols, rows }],
        FromBrowser::Break(letter) => {
            let mut v = vec![BrowserInput::Break];
            if let Some(l) = letter {
                v.push(BrowserInput::Data(Bytes::copy_from_slice(&[l])));
            }
            v
        }
        FromBrowser::Ack(n) => {
            // Never more than was sent: a larger count empties the window and no more.
            *in_flight = in_flight.saturating_sub(u64::from(n));
            acknowledge(unacked, n as usize);
            Vec::new()
        }
    };
    for m in to_session {
        // The session has ended when this fails; its end arrives on the output side.
        let _ = input.send(m).await;
    }
    Ok(())
}

/// Drops the first `n` unacknowledged bytes.
fn acknowledge(unacked: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = unacked.front_mut() else {
            return;
        };
        if front.len() <= n {
            n -= front.len();
            unacked.pop_front();
        } else {
            let _ = front.split_to(n);
            return;
        }
    }
}

async fn send(socket: &mut WebSocket, frame: Vec<u8>) -> Result<(), axum::Error> {
    socket.send(Message::Binary(Bytes::from(frame))).await
}

/// Says `reason` (an end message), then closes with `code` and `reason` cut to the 123 bytes a
/// close frame holds.
async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = send(&mut socket, protocol::end_frame(reason)).await;
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..end].into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_output_is_forgotten_and_partial_frames_are_cut() {
        let mut unacked = VecDeque::from([Bytes::from_static(b"abc"), Bytes::from_static(b"defg")]);
        acknowledge(&mut unacked, 2);
        assert_eq!(
            unacked,
            [Bytes::from_static(b"c"), Bytes::from_static(b"defg")]
        );
        acknowledge(&mut unacked, 3);
        assert_eq!(unacked, [Bytes::from_static(b"fg")]);
        // More than was sent: everything, and no more.
        acknowledge(&mut unacked, 1000);
        assert!(unacked.is_empty());
    }

    #[test]
    fn only_this_servers_own_pages_may_connect() {
        let headers = |origin: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, "console.example:4580".parse().unwrap());
            h.insert(header::ORIGIN, origin.parse().unwrap());
            h
        };
        assert!(same_origin(&headers("http://console.example:4580"), false));
        assert!(same_origin(&headers("https://console.example:4580"), true));
        assert!(!same_origin(&headers("http://console.example:4580"), true));
        assert!(!same_origin(&headers("http://evil.example"), false));
        assert!(!same_origin(
            &headers("http://console.example:4580.evil"),
            false
        ));
        assert!(!same_origin(&headers("null"), false));
        assert!(!same_origin(&HeaderMap::new(), false));
    }
}
