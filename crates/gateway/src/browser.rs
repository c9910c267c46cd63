//! Browser sessions: a serial session whose client is the web listener's WebSocket, reached
//! through the channels of [`console::browser`]. The session itself is the SSH path's
//! ([`SessionTask`]): the same grant, lease, audit records, recording, maximum duration and
//! teardown. The browser has buttons for BREAK and Disconnect, so its input is not scanned for
//! escape sequences.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use bytes::Bytes;
use console::browser::{
    BrowserInput, BrowserOutput, BrowserRefused, BrowserRequest, BrowserSession, BrowserSessions,
};
use console::ops::SessionDenied;
use tokio::sync::mpsc;

use crate::Shared;
use crate::client::{BoxFut, ClientPort};
use crate::lease_guard::LeaseGuard;
use crate::messages;
use crate::session::{self, SessionTask, UserInput};
use crate::tape::Terminal;

/// Messages queued each way, at most: the session keeps one chunk in flight itself.
const QUEUE: usize = 4;

/// The TERM a browser's terminal (xterm.js) emulates, for the recording.
const BROWSER_TERM: &str = "xterm-256color";

pub(crate) struct Browsers {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Browsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browsers").finish_non_exhaustive()
    }
}

impl Browsers {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl BrowserSessions for Browsers {
    async fn open(&self, req: BrowserRequest) -> Result<BrowserSession, BrowserRefused> {
        let shared = &self.shared;
        if *shared.shutdown.borrow() {
            return Err(BrowserRefused::Unavailable(
                messages::SHUTDOWN.trim().to_owned(),
            ));
        }
        let conn_id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let holder = format!("{}/{}", shared.config.node_id, conn_id);
        let opened = shared
            .service
            .open_session(&req.instance, req.port, &req.key, &holder)
            .await
            .map_err(|e| match e {
                SessionDenied::NoGrant => BrowserRefused::NoGrant(
                    "This console link was already used, or it expired before the page \
                     connected. Open a new link."
                        .to_owned(),
                ),
                SessionDenied::LimitExceeded(why) => {
                    BrowserRefused::Busy(format!("This port has its one session already: {why}."))
                }
                SessionDenied::Unavailable(why) => {
                    tracing::warn!(conn = conn_id, peer = %req.peer, why, "browser session refused: store unavailable");
                    BrowserRefused::Unavailable(messages::SESSION_UNAVAILABLE.to_owned())
                }
            })?;
        let principal = opened.grant.principal_arn.clone();
        let guard = LeaseGuard::new(Arc::clone(shared), opened.lease.clone());
        let ends_at_ms = shared
            .service
            .clock()
            .now_ms()
            .saturating_add(millis(shared.service.settings().max_session));
        let (input_tx, mut input_rx) = mpsc::channel::<BrowserInput>(QUEUE);
        let (user_tx, user_rx) = mpsc::channel::<UserInput>(QUEUE);
        let (output_tx, output_rx) = mpsc::channel::<BrowserOutput>(QUEUE);
        // The browser's messages in the session's terms. Ends when the browser side closes
        // its sender (the socket closed) or the session stops reading.
        shared.sessions.spawn(async move {
            while let Some(msg) = input_rx.recv().await {
                let input = match msg {
                    BrowserInput::Data(d) => UserInput::Data(d),
                    BrowserInput::Break => UserInput::Break,
                    BrowserInput::Resize { cols, rows } => UserInput::Resize(Terminal::new(
                        u32::from(cols),
                        u32::from(rows),
                        BROWSER_TERM,
                    )),
                    BrowserInput::Disconnect => UserInput::Disconnect,
                };
                if user_tx.send(input).await.is_err() {
                    break;
                }
            }
        });
        tracing::info!(conn = conn_id, peer = %req.peer, instance = %req.instance, port = %req.port, "browser session opened");
        session::spawn(
            SessionTask {
                shared: Arc::clone(shared),
                client: Arc::new(BrowserPort { output: output_tx }),
                opened,
                user_rx,
                conn_id,
                peer: req.peer.to_string(),
                replay_lines: 0,
                terminal: Terminal::new(u32::from(req.cols), u32::from(req.rows), BROWSER_TERM),
            },
            guard,
        );
        Ok(BrowserSession {
            input: input_tx,
            output: output_rx,
            ends_at_ms,
            principal,
        })
    }
}

/// The session's output, onto the channel the web listener drains into the WebSocket.
struct BrowserPort {
    output: mpsc::Sender<BrowserOutput>,
}

impl ClientPort for BrowserPort {
    fn send(&self, data: Bytes) -> BoxFut<Result<(), ()>> {
        let output = self.output.clone();
        Box::pin(async move { output.send(BrowserOutput::Data(data)).await.map_err(|_| ()) })
    }

    fn close(&self, exit_status: Option<u32>) -> BoxFut<()> {
        let output = self.output.clone();
        Box::pin(async move {
            let status = exit_status.unwrap_or(1);
            let _ = output.send(BrowserOutput::Closed { status }).await;
        })
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
