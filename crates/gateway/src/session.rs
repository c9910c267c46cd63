//! One serial session: the bridge between the SSH channel and the console.
//!
//! The task owns the session's lease (through [`LeaseGuard`]) and the console connection. It
//! never holds more than one chunk in flight each way: while the client is slow, console output
//! is not read (so the backend stops reading the console); while the console is slow, user input
//! is not read (so russh stops reading the socket). Everything else — shutdown, the maximum
//! duration, lease renewal, console reconnection — stays responsive meanwhile.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use backends::{BreakError, Console};
use bytes::Bytes;
use console::InstanceState;
use console::ops::OpenedSession;
use console::{ConsoleService, SessionEvent, SessionPhase};
use russh::ChannelId;
use russh::server::Handle;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::Shared;
use crate::escape::help_text;
use crate::lease_guard::LeaseGuard;
use crate::messages;

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

impl SessionTask {
    pub(crate) async fn run(mut self) {
        let instance = self.opened.instance.id.clone();
        let port = self.guard.lease().map(|l| l.slot.port.get()).unwrap_or(0);
        let settings = self.shared.service.settings().clone();
        let started = Instant::now();
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

        tracing::info!(
            conn = self.conn_id,
            peer = %self.peer,
            instance = %instance,
            port,
            key = %self.opened.grant.key.fingerprint(),
            request_id = %self.opened.grant.request_id,
            "serial session started"
        );
        let service = &self.shared.service;
        let event = session_event(service, &self.opened, &self.peer, SessionPhase::Started);
        // The push that allowed this session is already durably audited; the start record must
        // not hold the console back for a disk flush, so it is written alongside.
        {
            let service = std::sync::Arc::clone(service);
            tokio::spawn(async move { service.audit_session(&event).await });
        }

        let cfg = &self.shared.config;
        let mut console: Option<Console> = None;
        let mut lost_notice_shown = false;
        let mut backoff = cfg.reconnect_min;
        let mut next_retry = Instant::now();
        let mut notices: VecDeque<Bytes> = VecDeque::new();
        let mut to_client: Option<BoxFut<Result<(), ()>>> = None;
        let mut to_console: Option<BoxFut<ConsoleResult>> = None;
        let (mut bytes_in, mut bytes_out) = (0u64, 0u64);

        // Connect before reading any input, so that what the user typed first reaches the
        // console instead of being dropped as typed-into-nothing.
        match cfg.consoles.open(&self.opened.instance).await {
            Ok(c) => console = Some(c),
            Err(e) => {
                tracing::warn!(conn = self.conn_id, instance = %instance, error = %e, "console unreachable at session start; reconnecting");
                notices.push_back(Bytes::from_static(messages::CONSOLE_LOST.as_bytes()));
                lost_notice_shown = true;
                next_retry = Instant::now() + backoff;
            }
        }

        let end = loop {
            // Start the next write to the client: notices first, then console output.
            if to_client.is_none()
                && let Some(n) = notices.pop_front()
            {
                to_client = Some(send_client(&self.handle, self.channel, n));
            }
            let reading_console = to_client.is_none() && console.is_some();
            tokio::select! {
                biased;
                _ = shutdown.changed() => break EndReason::Shutdown,
                () = sleep_until(deadline) => break EndReason::MaxDuration,
                () = sleep_until(warn_at), if !warned => {
                    warned = true;
                    notices.push_back(Bytes::from(messages::ending_soon(lead.as_secs())));
                }
                _ = renew.tick() => {
                    if let Some(lease) = self.guard.lease().cloned() {
                        match self.shared.service.renew_session(&lease).await {
                            Ok(Some(l)) => self.guard.update(l),
                            Ok(None) => {
                                self.guard.forget();
                                break EndReason::LeaseLost;
                            }
                            // A store outage must not cut a live session: keep going, retry.
                            Err(e) => tracing::warn!(conn = self.conn_id, error = %e, "lease renewal failed; will retry"),
                        }
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
                        ConsoleResult::NoBreak => notices.push_back(Bytes::from_static(messages::NO_BREAK.as_bytes())),
                        ConsoleResult::Closed => {
                            console = None;
                            next_retry = Instant::now();
                        }
                    }
                }
                msg = self.user_rx.recv(), if to_console.is_none() => match msg {
                    None => break EndReason::ClientClosed,
                    Some(UserInput::Disconnect) => break EndReason::ClientEscape,
                    Some(UserInput::Help) => {
                        let esc = cfg.escape.unwrap_or(b'~');
                        notices.push_back(Bytes::from(help_text(esc)));
                    }
                    Some(UserInput::Data(d)) => {
                        bytes_in += d.len() as u64;
                        // While the console is away, typed input has nowhere to go.
                        if let Some(c) = &console {
                            let input = c.input.clone();
                            to_console = Some(Box::pin(async move {
                                match input.write(d).await {
                                    Ok(()) => ConsoleResult::Ok,
                                    Err(_) => ConsoleResult::Closed,
                                }
                            }));
                        }
                    }
                    Some(UserInput::Break) => match &console {
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
                        None => notices.push_back(Bytes::from_static(messages::NO_BREAK.as_bytes())),
                    },
                },
                out = recv_output(&mut console), if reading_console => match out {
                    Some(bytes) => {
                        bytes_out += bytes.len() as u64;
                        to_client = Some(send_client(&self.handle, self.channel, bytes));
                    }
                    None => {
                        console = None;
                        next_retry = Instant::now();
                    }
                },
                () = sleep_until(next_retry), if console.is_none() => {
                    match cfg.consoles.open(&self.opened.instance).await {
                        Ok(c) => {
                            if lost_notice_shown {
                                notices.push_back(Bytes::from_static(messages::CONSOLE_BACK.as_bytes()));
                                lost_notice_shown = false;
                            }
                            backoff = cfg.reconnect_min;
                            console = Some(c);
                        }
                        Err(e) => {
                            if !lost_notice_shown {
                                tracing::warn!(conn = self.conn_id, instance = %instance, error = %e, "console unreachable; reconnecting");
                                let stopped = matches!(
                                    self.opened.instance.state(),
                                    InstanceState::Stopped | InstanceState::Stopping
                                );
                                let text = if stopped { messages::INSTANCE_STOPPED } else { messages::CONSOLE_LOST };
                                notices.push_back(Bytes::from_static(text.as_bytes()));
                                lost_notice_shown = true;
                            }
                            next_retry = Instant::now() + backoff;
                            backoff = (backoff * 2).min(cfg.reconnect_max);
                        }
                    }
                }
            }
        };

        // Drop the console first (closes the connection, kills an exec'd command), then say
        // goodbye and close the channel, then free the slot.
        drop(to_console.take());
        drop(console.take());
        let farewell: Option<&str> = match end {
            EndReason::Shutdown => Some(messages::SHUTDOWN),
            EndReason::MaxDuration => Some(messages::MAX_DURATION),
            EndReason::LeaseLost => Some(messages::LEASE_LOST),
            _ => None,
        };
        if end != EndReason::ClientGone {
            let h = self.handle.clone();
            let ch = self.channel;
            let pending = to_client.take();
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
        self.guard.release().await;
        tracing::info!(
            conn = self.conn_id,
            instance = %instance,
            port,
            reason = end.as_str(),
            duration_ms = started.elapsed().as_millis() as u64,
            bytes_in,
            bytes_out,
            "serial session ended"
        );
        let phase = SessionPhase::Ended {
            reason: end.as_str(),
            duration_ms: started.elapsed().as_millis() as u64,
            bytes_in,
            bytes_out,
        };
        let service = &self.shared.service;
        let event = session_event(service, &self.opened, &self.peer, phase);
        service.audit_session(&event).await;
    }
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
