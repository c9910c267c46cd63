//! The WebSocket between the page and its session (the framing is `webconsole::protocol`).
//!
//! Cross-site WebSocket hijacking is refused before the upgrade: the `Origin` must be this
//! server's own. After the upgrade, the cookie's key opens the session as an SSH key would; a
//! refusal is a close with a 4000–4999 code and a reason the page shows. Output in flight to
//! the page is bounded by the page's acknowledgements ([`WINDOW`]), so a slow tab holds back
//! its own session (and console), never the server's memory.

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
use crate::connection::SecureTransport;
use crate::server::ApiState;

/// Unacknowledged output the page may have in flight.
const WINDOW: u64 = 256 * 1024;

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
            run(
                socket,
                sessions,
                instance,
                port,
                cookie::key_for(&secret),
                peer,
            )
            .await;
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

async fn run(
    mut socket: WebSocket,
    sessions: Arc<dyn console::browser::BrowserSessions>,
    instance: InstanceId,
    port: SerialPort,
    key: ssh_key::public::KeyData,
    peer: SocketAddr,
) {
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
    let request = BrowserRequest {
        instance: instance.clone(),
        port,
        key,
        peer,
        cols,
        rows,
    };
    let session = match sessions.open(request).await {
        Ok(s) => s,
        Err(e) => {
            let code = match e {
                BrowserRefused::NoGrant(_) => NO_GRANT,
                BrowserRefused::Busy(_) => BUSY,
                BrowserRefused::Unavailable(_) => UNAVAILABLE,
            };
            return close(socket, code, &e.to_string()).await;
        }
    };
    let status = serde_json::json!({
        "instance": instance.to_string(),
        "port": port.get(),
        "ends_at_ms": session.ends_at_ms,
        "principal": session.principal,
    });
    if send(&mut socket, protocol::status_frame(&status.to_string()))
        .await
        .is_err()
    {
        return;
    }
    bridge(socket, session, early).await;
}

/// Moves messages both ways until the session ends or the page goes away.
async fn bridge(mut socket: WebSocket, session: BrowserSession, early: Option<Bytes>) {
    let BrowserSession {
        input, mut output, ..
    } = session;
    let mut in_flight: u64 = 0;
    if let Some(b) = early
        && let Err(e) = forward(&input, &b, &mut in_flight).await
    {
        return close(socket, PROTOCOL_ERROR, &e).await;
    }
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    if let Err(e) = forward(&input, &b, &mut in_flight).await {
                        // Ending the input ends the session (as a client that left).
                        drop(input);
                        return close(socket, PROTOCOL_ERROR, &e).await;
                    }
                }
                // Pings are answered by the WebSocket layer; text is not part of the protocol.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Text(_))) => {}
                // The page left (or the network did): the session ends as an SSH client's would.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
            },
            out = output.recv(), if in_flight < WINDOW => match out {
                Some(BrowserOutput::Data(d)) => {
                    in_flight = in_flight.saturating_add(d.len() as u64);
                    if send(&mut socket, protocol::output_frame(&d)).await.is_err() {
                        return;
                    }
                }
                Some(BrowserOutput::Closed { status }) => {
                    // The session said goodbye in the terminal already; this is for the page.
                    let text = if status == 0 {
                        "The session ended."
                    } else {
                        "The session could not start."
                    };
                    let _ = send(&mut socket, protocol::end_frame(text)).await;
                    return close(socket, ENDED, text).await;
                }
                None => return close(socket, ENDED, "The session ended.").await,
            },
        }
    }
}

/// One message from the page, onto the session.
async fn forward(
    input: &tokio::sync::mpsc::Sender<BrowserInput>,
    msg: &[u8],
    in_flight: &mut u64,
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
            *in_flight = in_flight.saturating_sub(u64::from(n));
            Vec::new()
        }
    };
    for m in to_session {
        // The session has ended when this fails; its end arrives on the output side.
        let _ = input.send(m).await;
    }
    Ok(())
}

async fn send(socket: &mut WebSocket, frame: Vec<u8>) -> Result<(), axum::Error> {
    socket.send(Message::Binary(Bytes::from(frame))).await
}

/// Closes with `code` and `reason` (cut to the 123 bytes a close frame holds).
async fn close(mut socket: WebSocket, code: u16, reason: &str) {
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
