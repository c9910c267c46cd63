//! One serial session: the bridge between the SSH channel and the console.
//!
//! The task owns the session's lease (through [`LeaseGuard`]) and the console connection. It
//! never holds more than one chunk in flight each way: while the client is slow, console output
//! is not read (so the backend stops reading the console); while the console is slow, user input
//! is not read (so russh stops reading the socket). Everything else — shutdown, the maximum
//! duration, lease renewal, console reconnection — stays responsive meanwhile.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backends::{Backoff, BreakError, Console};
use bytes::Bytes;
use console::InstanceState;
use console::ops::OpenedSession;
use console::{ConsoleService, SessionEvent, SessionPhase};
use russh::ChannelId;
use russh::server::Handle;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::Shared;
use crate::config::GatewayConfig;
use crate::escape::help_text;
use crate::lease_guard::LeaseGuard;
use crate::messages;
use crate::notices::{Notice, Notices};

/// What the SSH side sends to the session task.
#[derive(Debug)]
pub(crate) enum UserInput {
    Data(Bytes),
    Break,
    Disconnect,
    Help,
}

/// Why a session ended (logged; the audit trail records it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    ClientClosed,
    ClientEscape,
    ClientGone,
    MaxDuration,
    Shutdown,
    LeaseLost,
}

impl EndReason {
    fn as_str(self) -> &'static str {
        match self {
            EndReason::ClientClosed => "client-closed",
            EndReason::ClientEscape => "client-escape",
            EndReason::ClientGone => "client-gone",
            EndReason::MaxDuration => "max-duration",
            EndReason::Shutdown => "shutdown",
            EndReason::LeaseLost => "lease-lost",
        }
    }
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

enum ConsoleResult {
    Ok,
    Closed,
    NoBreak,
}

pub(crate) struct SessionTask {
    pub shared: Arc<Shared>,
    pub handle: Handle,
    pub channel: ChannelId,
    pub opened: OpenedSession,
    pub guard: LeaseGuard,
    pub user_rx: mpsc::Receiver<UserInput>,
    pub conn_id: u64,
    pub peer: String,
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
}

impl ConsoleLink {
    fn new(cfg: &GatewayConfig) -> Self {
        Self {
            console: None,
            backoff: Backoff::new(cfg.reconnect_min, cfg.reconnect_max, cfg.reconnect_reset),
            next_retry: Instant::now(),
            lost_notice_shown: false,
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

    /// Opens the console: at session start, and when `next_retry` comes while there is none.
    async fn open(&mut self, task: &SessionTask, notices: &mut Notices) {
        let cfg = &task.shared.config;
        let instance = &task.opened.instance;
        match cfg.consoles.open(instance).await {
            Ok(c) => {
                if self.lost_notice_shown {
                    notices.push(Notice::Back);
                    self.lost_notice_shown = false;
                }
                self.backoff.opened(Instant::now());
                self.console = Some(c);
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

/// Bytes counted each way, for the log and the audit record.
#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    bytes_in: u64,
    bytes_out: u64,
}

impl SessionTask {
    /// Runs the session: record its start, connect the console, bridge until something ends
    /// it, then close the channel, free the slot and record the end.
    pub(crate) async fn run(mut self) {
        let started = Instant::now();
        self.record_start();
        let mut link = ConsoleLink::new(&self.shared.config);
        let mut notices = Notices::default();
        // Connect before reading any input, so that what the user typed first reaches the
        // console instead of being dropped as typed-into-nothing.
        link.open(&self, &mut notices).await;
        let mut traffic = Traffic::default();
        let (end, to_client) = self
            .bridge(started, &mut link, &mut notices, &mut traffic)
            .await;
        // Drop the console first (closes the connection, kills an exec'd command), then say
        // goodbye and close the channel, then free the slot.
        drop(link);
        self.close_channel(end, to_client).await;
        self.guard.release().await;
        self.record_end(end, started, traffic).await;
    }

    /// Logs the start and writes its audit record alongside: the push that allowed this
    /// session is already durably audited, and the start record must not hold the console back
    /// for a disk flush.
    fn record_start(&self) {
        let port = self.guard.lease().map(|l| l.slot.port.get()).unwrap_or(0);
        tracing::info!(
            conn = self.conn_id,
            peer = %self.peer,
            instance = %self.opened.instance.id,
            port,
            key = %self.opened.grant.key.fingerprint(),
            request_id = %self.opened.grant.request_id,
            "serial session started"
        );
        let service = Arc::clone(&self.shared.service);
        let event = session_event(&service, &self.opened, &self.peer, SessionPhase::Started);
        tokio::spawn(async move { service.audit_session(&event).await });
    }

    /// Moves bytes between the channel and the console until the session ends; returns why,
    /// and the write to the client still in flight (delivered before the goodbye).
    async fn bridge(
        &mut self,
        started: Instant,
        link: &mut ConsoleLink,
        notices: &mut Notices,
        traffic: &mut Traffic,
    ) -> (EndReason, Option<BoxFut<Result<(), ()>>>) {
        let instance = self.opened.instance.id.clone();
        let settings = self.shared.service.settings().clone();
        let deadline = started + settings.max_session;
        let lead = Duration::from_secs(60).min(settings.max_session / 2);
        let warn_at = deadline - lead;
        let mut warned = false;
        let mut shutdown = self.shared.shutdown.clone();
        let mut renew = tokio::time::interval_at(
            started + settings.lease_ttl / 3,
            (settings.lease_ttl / 3).max(Duration::from_millis(100)),
        );
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shared = Arc::clone(&self.shared);
        let cfg = &shared.config;
        let mut to_client: Option<BoxFut<Result<(), ()>>> = None;
        let mut to_console: Option<BoxFut<ConsoleResult>> = None;

        let end = loop {
            // Start the next write to the client: notices first, then console output.
            if to_client.is_none()
                && let Some(n) = notices.pop()
            {
                to_client = Some(send_client(&self.handle, self.channel, n));
            }
            let reading_console = to_client.is_none() && link.console.is_some();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break EndReason::Shutdown,
                () = sleep_until(deadline) => break EndReason::MaxDuration,
                () = sleep_until(warn_at), if !warned => {
                    warned = true;
                    notices.push(Notice::Text(Bytes::from(messages::ending_soon(lead.as_secs()))));
                }
                _ = renew.tick() => {
                    if !self.renew_lease().await {
                        break EndReason::LeaseLost;
                    }
                }
                r = async { match to_client.as_mut() { Some(f) => f.as_mut().await, None => std::future::pending().await } }, if to_client.is_some() => {
                    to_client = None;
                    if r.is_err() {
                        break EndReason::ClientGone;
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
                    None => break EndReason::ClientClosed,
                    Some(UserInput::Disconnect) => break EndReason::ClientEscape,
                    Some(UserInput::Help) => {
                        let esc = cfg.escape.unwrap_or(b'~');
                        notices.push(Notice::Text(Bytes::from(help_text(esc))));
                    }
                    Some(UserInput::Data(d)) => {
                        traffic.bytes_in += d.len() as u64;
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
                        traffic.bytes_out += bytes.len() as u64;
                        to_client = Some(send_client(&self.handle, self.channel, bytes));
                    }
                    None => link.lost(self, notices),
                },
                () = sleep_until(link.next_retry), if link.console.is_none() => {
                    link.open(self, notices).await;
                }
            }
        };
        drop(to_console);
        (end, to_client)
    }

    /// Renews the session's lease; false when it was lost (someone else may hold the slot). A
    /// store outage must not cut a live session: it is logged and retried at the next tick.
    async fn renew_lease(&mut self) -> bool {
        let Some(lease) = self.guard.lease().cloned() else {
            return true;
        };
        match self.shared.service.renew_session(&lease).await {
            Ok(Some(l)) => self.guard.update(l),
            Ok(None) => {
                self.guard.forget();
                return false;
            }
            Err(e) => {
                tracing::warn!(conn = self.conn_id, error = %e, "lease renewal failed; will retry")
            }
        }
        true
    }

    /// Delivers the write in flight and the goodbye, then closes the channel (bounded: a client
    /// that stopped reading cannot hold the slot).
    async fn close_channel(&self, end: EndReason, pending: Option<BoxFut<Result<(), ()>>>) {
        if end == EndReason::ClientGone {
            return;
        }
        let farewell: Option<&str> = match end {
            EndReason::Shutdown => Some(messages::SHUTDOWN),
            EndReason::MaxDuration => Some(messages::MAX_DURATION),
            EndReason::LeaseLost => Some(messages::LEASE_LOST),
            _ => None,
        };
        let h = self.handle.clone();
        let ch = self.channel;
        let _ = tokio::time::timeout(Duration::from_secs(2), async move {
            if let Some(f) = pending {
                let _ = f.await;
            }
            if let Some(msg) = farewell {
                let _ = h.data(ch, Bytes::from_static(msg.as_bytes())).await;
            }
            let _ = h.exit_status_request(ch, 0).await;
            let _ = h.eof(ch).await;
            let _ = h.close(ch).await;
        })
        .await;
    }

    /// Logs the end and writes its audit record.
    async fn record_end(&self, end: EndReason, started: Instant, traffic: Traffic) {
        let duration_ms = millis(started.elapsed());
        let port = self.opened.lease.slot.port.get();
        tracing::info!(
            conn = self.conn_id,
            instance = %self.opened.instance.id,
            port,
            reason = end.as_str(),
            duration_ms,
            bytes_in = traffic.bytes_in,
            bytes_out = traffic.bytes_out,
            "serial session ended"
        );
        let phase = SessionPhase::Ended {
            reason: end.as_str(),
            duration_ms,
            bytes_in: traffic.bytes_in,
            bytes_out: traffic.bytes_out,
        };
        let service = &self.shared.service;
        let event = session_event(service, &self.opened, &self.peer, phase);
        service.audit_session(&event).await;
    }
}

/// Whole milliseconds, saturating (a session does not last 584 million years, but the
/// conversion is checked all the same).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The audit record of a session's start or end.
fn session_event(
    service: &ConsoleService,
    opened: &OpenedSession,
    peer: &str,
    phase: SessionPhase,
) -> SessionEvent {
    SessionEvent {
        time_ms: service.clock().now_ms(),
        session_id: opened.lease.holder.clone(),
        request_id: opened.grant.request_id.clone(),
        principal_arn: opened.grant.principal_arn.clone(),
        source_ip: peer.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()),
        instance_id: opened.instance.id.to_string(),
        target: format!("port{}", opened.lease.slot.port),
        key_fingerprint: opened.grant.key.fingerprint().to_owned(),
        phase,
    }
}

fn send_client(handle: &Handle, channel: ChannelId, data: Bytes) -> BoxFut<Result<(), ()>> {
    let handle = handle.clone();
    Box::pin(async move { handle.data(channel, data).await.map_err(|_| ()) })
}

async fn recv_output(console: &mut Option<Console>) -> Option<Bytes> {
    match console {
        Some(c) => c.output.recv().await,
        None => std::future::pending().await,
    }
}
