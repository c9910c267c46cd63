//! One serial session: the bridge between the client (an SSH channel) and the console.
//!
//! The task owns the session's lease and audit records (through [`SessionRecord`]), the lease's
//! renewals (through [`LeaseKeeper`]) and the console connection. It never holds more than one
//! chunk in flight each way: while the client is slow, console output is not read (so the
//! backend stops reading the console); while the console is slow, user input is not read (so
//! russh stops reading the socket). Everything else — shutdown, the maximum duration, lease
//! renewal, console reconnection — stays responsive meanwhile.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use backends::{Backoff, BreakError, Console};
use bytes::Bytes;
use console::ops::OpenedSession;
use console::{EndRequest, InstanceState};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Instant, sleep_until};

use crate::Shared;
use crate::client::{BoxFut, Client};
use crate::config::GatewayConfig;
use crate::escape::help_text;
use crate::lease_guard::LeaseGuard;
use crate::lease_keeper::{LeaseEnd, LeaseKeeper, LeaseTiming};
use crate::messages;
use crate::notices::{Notice, Notices};
use crate::session_end::{self, IdleClock};
use crate::session_record::{EndReason, SessionRecord, millis};
use crate::tape::{Tape, Terminal};

/// What the SSH side sends to the session task.
#[derive(Debug)]
pub(crate) enum UserInput {
    Data(Bytes),
    Break,
    Disconnect,
    Help,
    /// The client's terminal changed size (`window-change`).
    Resize(Terminal),
}

/// The longest a goodbye may take: a client that stopped reading cannot hold the slot.
const CLOSE_BOUND: Duration = Duration::from_secs(2);

enum ConsoleResult {
    Ok,
    Closed,
    NoBreak,
}

pub(crate) struct SessionTask {
    pub shared: Arc<Shared>,
    pub client: Client,
    pub opened: OpenedSession,
    pub user_rx: mpsc::Receiver<UserInput>,
    pub conn_id: u64,
    pub peer: String,
    /// Lines of history the user asked to see before live output (0: none).
    pub replay_lines: u32,
    /// The client's terminal, for the recording.
    pub terminal: Terminal,
}

/// Runs a session on the gateway's session tracker, so shutdown waits for it. A panic in it is
/// logged and its channel closed here; its slot and end record are seen to by
/// [`SessionRecord`] (or [`LeaseGuard`], before the session started).
pub(crate) fn spawn(task: SessionTask, lease: LeaseGuard) {
    let shared = Arc::clone(&task.shared);
    let (conn, client) = (task.conn_id, Arc::clone(&task.client));
    spawn_guarded(&shared, conn, client, task.run(lease));
}

/// Runs `task` (a session's or a spectator's) on the gateway's session tracker. If it panics,
/// the panic is logged and `client` closed, within [`CLOSE_BOUND`]; the task's own guards
/// release what it held and write its end record.
pub(crate) fn spawn_guarded(
    shared: &Shared,
    conn: u64,
    client: Client,
    task: impl Future<Output = ()> + Send + 'static,
) {
    let running = tokio::spawn(task);
    shared.sessions.spawn(async move {
        if let Err(e) = running.await
            && e.is_panic()
        {
            tracing::error!(conn, error = %e, "session task panicked; closing its channel");
            let _ = tokio::time::timeout(CLOSE_BOUND, client.close(None)).await;
        }
    });
}

/// The console side of a session: the connection if there is one, and when to try again if
/// not. Reconnection is paced by [`Backoff`] for every kind of console, so one that closes as
/// soon as it opens (a command that exits at once) is reopened a few times a minute, not
/// hundreds of times a second.
struct ConsoleLink {
    console: Option<Console>,
    backoff: Backoff,
    /// When to try to open the console again (while there is none).
    next_retry: Instant,
    /// Whether the user was told the console is lost (and so must be told it is back).
    lost_notice_shown: bool,
    /// Lines of history still to be replayed: by the first console that opens, not by a
    /// reconnection (which gets what the user missed from the hub instead).
    replay_lines: u32,
}

impl ConsoleLink {
    fn new(cfg: &GatewayConfig) -> Self {
        Self {
            console: None,
            backoff: Backoff::new(cfg.reconnect_min, cfg.reconnect_max, cfg.reconnect_reset),
            next_retry: Instant::now(),
            lost_notice_shown: false,
            replay_lines: 0,
        }
    }

    /// The console closed (or failed a write): schedule the reconnection and tell the user.
    fn lost(&mut self, task: &SessionTask, notices: &mut Notices) {
        let Some(console) = self.console.take() else {
            return;
        };
        let now = Instant::now();
        let delay = self.backoff.closed(now);
        self.next_retry = now + delay;
        if console.capabilities.kind == "exec" {
            tracing::debug!(conn = task.conn_id, instance = %task.opened.instance.id, delay_ms = millis(delay), "console command exited; restarting");
            notices.push(Notice::Restart(delay));
        } else if !delay.is_zero() && !self.lost_notice_shown {
            // A console that lasted is reconnected at once, quietly if that works; one that
            // closed soon after opening waits, and the user is told now.
            notices.push(Notice::Lost(lost_text(task)));
            self.lost_notice_shown = true;
        }
    }

    /// Opens the console at session start.
    async fn open(&mut self, task: &SessionTask, notices: &mut Notices) {
        let result = opening(task, self.replay_lines).await;
        self.opened(task, result, notices);
    }

    /// Takes the outcome of an attempt to open the console.
    fn opened(
        &mut self,
        task: &SessionTask,
        result: Result<Console, String>,
        notices: &mut Notices,
    ) {
        let instance = &task.opened.instance;
        match result {
            Ok(c) => {
                if self.lost_notice_shown {
                    notices.push(Notice::Back);
                    self.lost_notice_shown = false;
                }
                self.backoff.opened(Instant::now());
                self.console = Some(c);
                self.replay_lines = 0;
            }
            Err(e) => {
                if !self.lost_notice_shown {
                    tracing::warn!(conn = task.conn_id, instance = %instance.id, error = %e, "console unreachable; reconnecting");
                    notices.push(Notice::Lost(lost_text(task)));
                    self.lost_notice_shown = true;
                }
                self.next_retry = Instant::now() + self.backoff.failed();
            }
        }
    }
}

/// An attempt to open the session's console, as a future of its own: in a cluster it may wait
/// on the store and on another node, and the session loop must go on watching its lease
/// meanwhile.
fn opening(task: &SessionTask, replay_lines: u32) -> BoxFut<Result<Console, String>> {
    let consoles = Arc::clone(&task.shared.config.consoles);
    let instance = Arc::clone(&task.opened.instance);
    Box::pin(async move { consoles.open(&instance, replay_lines).await })
}

/// What the user is told while the console is away: why, if the instance says so.
fn lost_text(task: &SessionTask) -> &'static str {
    let stopped = matches!(
        task.opened.instance.state(),
        InstanceState::Stopped | InstanceState::Stopping
    );
    if stopped {
        messages::INSTANCE_STOPPED
    } else {
        messages::CONSOLE_LOST
    }
}

impl SessionTask {
    /// Runs the session: record its start (durably, before anything reaches the client),
    /// connect the console, bridge until something ends it, then close the channel, free the
    /// slot and record the end.
    async fn run(mut self, lease: LeaseGuard) {
        let shared = Arc::clone(&self.shared);
        // Watching before the session is listed, so no request to end it can come first.
        let mut end_requests = shared.service.directory().end_requests();
        let start = SessionRecord::start(
            shared,
            &self.opened,
            &self.peer,
            self.conn_id,
            lease,
            &self.terminal,
        );
        let mut record = match start.await {
            Ok(record) => record,
            Err((e, mut lease)) => {
                // A session the audit trail would not know about must not show the console.
                tracing::error!(conn = self.conn_id, instance = %self.opened.instance.id, error = %e, "cannot record the session start; refusing the session");
                lease.release().await;
                self.refuse(messages::SESSION_UNAVAILABLE).await;
                return;
            }
        };
        let mut link = ConsoleLink::new(&self.shared.config);
        link.replay_lines = self.replay_lines;
        let mut notices = Notices::default();
        // Connect before reading any input, so that what the user typed first reaches the
        // console instead of being dropped as typed-into-nothing.
        link.open(&self, &mut notices).await;
        let (end, to_client) = self
            .bridge(&mut link, &mut notices, &mut record, &mut end_requests)
            .await;
        // Drop the console first (closes the connection, kills an exec'd command), then say
        // goodbye and close the channel, then free the slot and record the end.
        drop(link);
        self.close_channel(&end, to_client, &mut record.tape).await;
        record.finish(end.reason).await;
    }

    /// Moves bytes between the channel and the console until the session ends; returns why,
    /// and the write to the client still in flight (delivered before the goodbye).
    async fn bridge(
        &mut self,
        link: &mut ConsoleLink,
        notices: &mut Notices,
        record: &mut SessionRecord,
        end_requests: &mut broadcast::Receiver<EndRequest>,
    ) -> (Ending, Option<BoxFut<Result<(), ()>>>) {
        let instance = self.opened.instance.id.clone();
        let started = Instant::now();
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.config;
        let settings = shared.service.settings();
        let deadline = started + settings.max_session;
        let lead = Duration::from_secs(60).min(settings.max_session / 2);
        let warn_at = deadline - lead;
        let mut warned = false;
        let mut shutdown = shared.shutdown.clone();
        let Some(lease) = record.lease.lease() else {
            return (Ending::plain(EndReason::LeaseLost), None);
        };
        let (slot, token) = (lease.slot.clone(), lease.token);
        let mut idle = IdleClock::new(settings.idle_timeout);
        let idle_request = IdleClock::request(lease);
        let timing = LeaseTiming::new(settings.lease_ttl, cfg.store_timeout);
        let mut keeper = LeaseKeeper::new(Arc::clone(&shared.service), timing, lease);
        let mut to_client: Option<BoxFut<Result<(), ()>>> = None;
        let mut to_console: Option<BoxFut<ConsoleResult>> = None;
        // A reconnection in flight (see `opening`).
        let mut reopening: Option<BoxFut<Result<Console, String>>> = None;

        let end = loop {
            // Start the next write to the client: notices first, then console output.
            if to_client.is_none()
                && let Some(n) = notices.pop()
            {
                record.tape.output(&n);
                to_client = Some(self.client.send(n));
            }
            let reading_console = to_client.is_none() && link.console.is_some();
            tokio::select! {
                biased;
                // First: a session that may no longer hold its slot stops before anything else.
                lost = keeper.watch(&mut record.lease) => {
                    break match lost {
                        LeaseEnd::Lost | LeaseEnd::Unrenewed => {
                            tracing::warn!(conn = self.conn_id, instance = %instance, why = ?lost, "session lease lost or not renewed in time; closing");
                            Ending::plain(if lost == LeaseEnd::Lost { EndReason::LeaseLost } else { EndReason::LeaseUnrenewed })
                        }
                        LeaseEnd::EndRequested(req) => Ending::requested(EndReason::Ended, req),
                    };
                }
                req = session_end::requested(end_requests, &slot, token) => {
                    break Ending::requested(EndReason::Ended, req);
                }
                () = idle.expired() => break Ending::requested(EndReason::Idle, idle_request.clone()),
                _ = shutdown.changed() => break Ending::plain(EndReason::Shutdown),
                () = sleep_until(deadline) => break Ending::plain(EndReason::MaxDuration),
                () = sleep_until(warn_at), if !warned => {
                    warned = true;
                    notices.push(Notice::Text(Bytes::from(messages::ending_soon(lead.as_secs()))));
                }
                r = async { match to_client.as_mut() { Some(f) => f.as_mut().await, None => std::future::pending().await } }, if to_client.is_some() => {
                    to_client = None;
                    if r.is_err() {
                        break Ending::plain(EndReason::ClientGone);
                    }
                }
                r = async { match to_console.as_mut() { Some(f) => f.as_mut().await, None => std::future::pending().await } }, if to_console.is_some() => {
                    to_console = None;
                    match r {
                        ConsoleResult::Ok => {}
                        ConsoleResult::NoBreak => notices.push(Notice::text(messages::NO_BREAK)),
                        ConsoleResult::Closed => link.lost(self, notices),
                    }
                }
                msg = self.user_rx.recv(), if to_console.is_none() => match msg {
                    None => break Ending::plain(EndReason::ClientClosed),
                    Some(UserInput::Disconnect) => break Ending::plain(EndReason::ClientEscape),
                    Some(UserInput::Help) => {
                        let esc = cfg.escape.unwrap_or(b'~');
                        notices.push(Notice::Text(Bytes::from(help_text(esc))));
                    }
                    Some(UserInput::Resize(terminal)) => record.tape.resize(&terminal),
                    Some(UserInput::Data(d)) => {
                        record.traffic.bytes_in += d.len() as u64;
                        record.tape.input(&d);
                        idle.touch();
                        // While the console is away, typed input has nowhere to go.
                        if let Some(c) = &link.console {
                            let input = c.input.clone();
                            to_console = Some(Box::pin(async move {
                                match input.write(d).await {
                                    Ok(()) => ConsoleResult::Ok,
                                    Err(_) => ConsoleResult::Closed,
                                }
                            }));
                        }
                    }
                    Some(UserInput::Break) => match &link.console {
                        Some(c) => {
                            let input = c.input.clone();
                            tracing::info!(conn = self.conn_id, instance = %instance, "BREAK sent");
                            to_console = Some(Box::pin(async move {
                                match input.send_break().await {
                                    Ok(()) => ConsoleResult::Ok,
                                    Err(BreakError::Unsupported) => ConsoleResult::NoBreak,
                                    Err(BreakError::Closed) => ConsoleResult::Closed,
                                }
                            }));
                        }
                        None => notices.push(Notice::text(messages::NO_BREAK)),
                    },
                },
                out = recv_output(&mut link.console), if reading_console => match out {
                    Some(bytes) => {
                        record.traffic.bytes_out += bytes.len() as u64;
                        idle.touch();
                        record.tape.output(&bytes);
                        to_client = Some(self.client.send(bytes));
                    }
                    None => link.lost(self, notices),
                },
                () = sleep_until(link.next_retry), if link.console.is_none() && reopening.is_none() => {
                    reopening = Some(opening(self, link.replay_lines));
                }
                r = async { match reopening.as_mut() { Some(f) => f.as_mut().await, None => std::future::pending().await } }, if reopening.is_some() => {
                    reopening = None;
                    link.opened(self, r, notices);
                }
            }
        };
        drop(to_console);
        (end, to_client)
    }

    /// Delivers the write in flight and the goodbye, then closes the channel. Bounded: a client
    /// that stopped reading cannot hold the slot, nor a shutdown past half its grace.
    async fn close_channel(
        &self,
        ending: &Ending,
        pending: Option<BoxFut<Result<(), ()>>>,
        tape: &mut Tape,
    ) {
        let end = ending.reason;
        if end == EndReason::ClientGone {
            return;
        }
        let farewell: Option<String> = match (&ending.request, end) {
            (Some(req), _) => {
                tracing::info!(conn = self.conn_id, instance = %req.slot.instance, by = %req.by, reason = %req.reason, "session ended on request");
                Some(session_end::farewell(req))
            }
            (None, EndReason::Shutdown) => Some(messages::SHUTDOWN.to_owned()),
            (None, EndReason::MaxDuration) => Some(messages::MAX_DURATION.to_owned()),
            (None, EndReason::LeaseLost | EndReason::LeaseUnrenewed) => {
                Some(messages::LEASE_LOST.to_owned())
            }
            _ => None,
        };
        if let Some(text) = &farewell {
            tape.output(&Bytes::from(text.clone()));
        }
        let bound = match end {
            EndReason::Shutdown => CLOSE_BOUND.min(self.shared.config.shutdown_grace / 2),
            _ => CLOSE_BOUND,
        };
        let client = Arc::clone(&self.client);
        let _ = tokio::time::timeout(bound, async move {
            if let Some(f) = pending {
                let _ = f.await;
            }
            if let Some(msg) = farewell {
                let _ = client.send(Bytes::from(msg)).await;
            }
            client.close(Some(0)).await;
        })
        .await;
    }

    /// Tells the user the session cannot start and closes the channel with exit status 1.
    async fn refuse(&self, text: &'static str) {
        let client = Arc::clone(&self.client);
        let _ = tokio::time::timeout(CLOSE_BOUND, async move {
            let _ = client.send(Bytes::from(format!("{text}\r\n"))).await;
            client.close(Some(1)).await;
        })
        .await;
    }
}

/// Why the session loop stopped, and the request that stopped it, if any.
struct Ending {
    reason: EndReason,
    request: Option<EndRequest>,
}

impl Ending {
    fn plain(reason: EndReason) -> Self {
        Self {
            reason,
            request: None,
        }
    }

    fn requested(reason: EndReason, request: EndRequest) -> Self {
        Self {
            reason,
            request: Some(request),
        }
    }
}

async fn recv_output(console: &mut Option<Console>) -> Option<Bytes> {
    match console {
        Some(c) => c.output.recv().await,
        None => std::future::pending().await,
    }
}
