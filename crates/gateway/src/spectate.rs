//! One spectator session: a read-only view of a serial port, beside whoever holds it.
//!
//! A spectator takes no slot and no lease: its grant (`SpectateSerialConsole`) is spent when it
//! authenticates, and the console's hub lets it watch (on this node or, through the relay, on
//! the owner). Output flows to the client one chunk at a time; the hub never waits for it, so a
//! spectator that stops reading skips ahead instead of slowing anyone. What it types is dropped
//! here, with one notice saying so; `~.` leaves. Its start and end are audited like a session's,
//! with the target `spectate:portN`; it ends with the maximum session duration as well.

use std::sync::Arc;
use std::time::Duration;

use backends::{Console, SpectateRequest};
use bytes::Bytes;
use console::leases::Slot;
use console::ops::Spectator;
use console::{SessionEvent, SessionPhase};
use consoles::SpectateRefused;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::Shared;
use crate::client::Client;
use crate::escape::help_text;
use crate::messages;
use crate::session::UserInput;
use crate::session_record::{EndReason, millis, record_end};
use crate::tape::{Subject, Tape, Terminal};

/// Lines of history a spectator sees first when its username does not say.
pub const DEFAULT_SPECTATOR_REPLAY_LINES: u32 = 50;

/// The longest a goodbye may take: a client that stopped reading cannot keep the task.
const CLOSE_BOUND: Duration = Duration::from_secs(2);

pub(crate) struct SpectatorTask {
    pub shared: Arc<Shared>,
    pub client: Client,
    pub spectator: Spectator,
    pub user_rx: mpsc::Receiver<UserInput>,
    pub conn_id: u64,
    pub peer: String,
    pub replay_lines: u32,
    /// The client's terminal, for the recording.
    pub terminal: Terminal,
}

/// Runs a spectator session on the gateway's session tracker, so shutdown waits for it. A panic
/// in it is logged and its channel closed; [`EndRecord`] writes its end record.
pub(crate) fn spawn(task: SpectatorTask) {
    let shared = Arc::clone(&task.shared);
    let (conn, client) = (task.conn_id, Arc::clone(&task.client));
    crate::session::spawn_guarded(&shared, conn, client, task.run());
}

/// A started spectator's end record, written on every exit path: by [`EndRecord::finish`], and
/// from `Drop` (reason `aborted`) when the task panicked or was cancelled.
struct EndRecord {
    shared: Arc<Shared>,
    conn_id: u64,
    start: SessionEvent,
    started: Instant,
    /// Bytes shown to the spectator so far.
    shown: u64,
    finished: bool,
}

impl EndRecord {
    fn event(&self, reason: EndReason) -> SessionEvent {
        SessionEvent {
            time_ms: self.shared.service.clock().now_ms(),
            phase: SessionPhase::Ended {
                reason: reason.as_str(),
                duration_ms: millis(self.started.elapsed()),
                bytes_in: 0,
                bytes_out: self.shown,
            },
            ..self.start.clone()
        }
    }

    async fn finish(mut self, reason: EndReason) {
        self.finished = true;
        record_end(&self.shared, self.conn_id, self.event(reason)).await;
    }
}

impl Drop for EndRecord {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        tracing::error!(conn = self.conn_id, instance = %self.start.instance_id, "spectator task ended abnormally; recording its end");
        let event = self.event(EndReason::Aborted);
        let (shared, conn_id) = (Arc::clone(&self.shared), self.conn_id);
        // Outside a runtime (process exit) the record is lost.
        if tokio::runtime::Handle::try_current().is_ok() {
            let tracker = shared.sessions.clone();
            tracker.spawn(async move { record_end(&shared, conn_id, event).await });
        }
    }
}

impl SpectatorTask {
    async fn run(mut self) {
        let session_id = format!("{}/{}", self.shared.config.node_id, self.conn_id);
        let who = Subject {
            instance: self.spectator.instance.id.as_str(),
            port: self.spectator.port.get(),
            session: &session_id,
            principal: &self.spectator.grant.principal_arn,
            spectator: true,
        };
        let mut tape = Tape::start(&self.shared, who, &self.terminal).await;
        let start = self.start_event(session_id, tape.id());
        if let Err(e) = self.shared.service.record_session(&start).await {
            tracing::error!(conn = self.conn_id, instance = %start.instance_id, error = %e, "cannot record the spectator's start; refusing");
            self.refuse(messages::SESSION_UNAVAILABLE.to_owned()).await;
            return;
        }
        let mut end = EndRecord {
            shared: Arc::clone(&self.shared),
            conn_id: self.conn_id,
            start,
            started: Instant::now(),
            shown: 0,
            finished: false,
        };
        let request = SpectateRequest {
            replay_lines: self.replay_lines,
            who: self.spectator.grant.principal_arn.clone(),
            max: self.shared.config.max_spectators,
        };
        let consoles = Arc::clone(&self.shared.config.consoles);
        let instance = end.start.instance_id.clone();
        let reason = match consoles.spectate(&self.spectator.instance, request).await {
            Ok(console) => {
                tracing::info!(conn = self.conn_id, peer = %self.peer, instance = %instance, key = %self.spectator.grant.key.fingerprint(), "spectator started");
                self.watch(console, &mut tape, &mut end.shown).await
            }
            Err(refused) => {
                tracing::info!(conn = self.conn_id, instance = %instance, why = %refused, "spectator refused");
                let text = match refused {
                    SpectateRefused::Full { max } => messages::spectators_full(max),
                    SpectateRefused::PerSession => messages::SPECTATE_PER_SESSION.to_owned(),
                    SpectateRefused::Unavailable(_) => messages::SESSION_UNAVAILABLE.to_owned(),
                };
                tape.output(&Bytes::from(format!("{text}\r\n")));
                self.refuse(text).await;
                EndReason::Refused
            }
        };
        tape.finish().await;
        end.finish(reason).await;
    }

    fn start_event(&self, session_id: String, recording: Option<String>) -> SessionEvent {
        let s = &self.spectator;
        SessionEvent {
            time_ms: self.shared.service.clock().now_ms(),
            session_id,
            request_id: s.grant.request_id.clone(),
            principal_arn: s.grant.principal_arn.clone(),
            source_ip: self
                .peer
                .parse::<std::net::SocketAddr>()
                .ok()
                .map(|a| a.ip()),
            instance_id: s.instance.id.to_string(),
            target: format!("spectate:port{}", s.port),
            key_fingerprint: s.grant.key.fingerprint().to_owned(),
            console_node: None,
            recording,
            phase: SessionPhase::Started,
        }
    }

    /// Shows the console until something ends the view, counting the bytes shown in `shown`;
    /// returns why it ended.
    async fn watch(&mut self, mut console: Console, tape: &mut Tape, shown: &mut u64) -> EndReason {
        let shared = Arc::clone(&self.shared);
        let deadline = Instant::now() + shared.service.settings().max_session;
        let mut shutdown = shared.shutdown.clone();
        let mut told = false;
        // Counted in the session directory while it watches, refreshed as a lease is.
        let slot = Slot {
            instance: self.spectator.instance.id.clone(),
            port: self.spectator.port,
        };
        let id = format!("{}/{}", shared.config.node_id, self.conn_id);
        let every = (shared.service.settings().lease_ttl / 3).max(Duration::from_millis(100));
        let mut presence = tokio::time::interval(every);
        let (reason, farewell) = loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break (EndReason::Shutdown, Some(messages::SHUTDOWN)),
                _ = presence.tick() => shared.service.note_spectator(&slot, &id).await,
                () = sleep_until(deadline) => break (EndReason::MaxDuration, Some(messages::MAX_DURATION)),
                msg = self.user_rx.recv() => match msg {
                    None => break (EndReason::ClientClosed, None),
                    Some(UserInput::Disconnect) => break (EndReason::ClientEscape, None),
                    Some(UserInput::Resize(terminal)) => tape.resize(&terminal),
                    Some(UserInput::Help) => {
                        let esc = shared.config.escape.unwrap_or(b'~');
                        let help = Bytes::from(help_text(esc));
                        tape.output(&help);
                        if self.send(help).await.is_err() {
                            break (EndReason::ClientGone, None);
                        }
                    }
                    Some(UserInput::Data(_) | UserInput::Break) => {
                        if !told {
                            told = true;
                            let notice = Bytes::from_static(messages::READ_ONLY.as_bytes());
                            tape.output(&notice);
                            if self.send(notice).await.is_err() {
                                break (EndReason::ClientGone, None);
                            }
                        }
                    }
                },
                out = console.output.recv() => match out {
                    Some(bytes) => {
                        *shown += bytes.len() as u64;
                        tape.output(&bytes);
                        if self.send(bytes).await.is_err() {
                            break (EndReason::ClientGone, None);
                        }
                    }
                    None => break (EndReason::ConsoleGone, Some(messages::SPECTATE_ENDED)),
                },
            }
        };
        drop(console);
        shared.service.forget_spectator(&slot, &id).await;
        if reason != EndReason::ClientGone {
            if let Some(text) = farewell {
                tape.output(&Bytes::from_static(text.as_bytes()));
            }
            self.close(farewell, 0).await;
        }
        reason
    }

    /// One write to the client. Waiting here slows only this spectator: the hub skips ahead.
    async fn send(&self, bytes: Bytes) -> Result<(), ()> {
        self.client.send(bytes).await
    }

    async fn refuse(&self, text: String) {
        self.close(Some(&format!("{text}\r\n")), 1).await;
    }

    /// Says `farewell`, then closes the channel with `status`; bounded.
    async fn close(&self, farewell: Option<&str>, status: u32) {
        let client = Arc::clone(&self.client);
        let farewell = farewell.map(|t| Bytes::from(t.to_owned()));
        let _ = tokio::time::timeout(CLOSE_BOUND, async move {
            if let Some(text) = farewell {
                let _ = client.send(text).await;
            }
            client.close(Some(status)).await;
        })
        .await;
    }
}
