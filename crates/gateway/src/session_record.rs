//! A session's bookkeeping: its audit records and its lease, kept on every exit path.
//!
//! Invariants: the start record is durable before the session shows the user a console byte
//! ([`SessionRecord::start`] returns only once the sink stored it); the lease is released and
//! the end record written however the session task ends — normally through
//! [`SessionRecord::finish`], and when the task panicked or was cancelled, from `Drop`, on a task
//! the gateway's shutdown waits for.

use std::sync::Arc;
use std::time::Duration;

use console::ops::OpenedSession;
use console::{ConsoleError, SessionEntry, SessionEvent, SessionPhase};
use tokio::time::Instant;

use crate::Shared;
use crate::lease_guard::{self, LeaseGuard};
use crate::tape::{Subject, Tape, Terminal};

/// Why a session ended (logged; the audit trail records it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EndReason {
    ClientClosed,
    ClientEscape,
    ClientGone,
    MaxDuration,
    Shutdown,
    /// The store answered that the lease is gone or fenced by a newer holder.
    LeaseLost,
    /// No renewal succeeded before the lease would lapse (the store failed or did not answer).
    LeaseUnrenewed,
    /// The session task panicked or was cancelled before it ended normally.
    Aborted,
    /// Someone asked for the session to end (`EndSerialConsoleSession`).
    Ended,
    /// No input and no output for `[sessions] idle_timeout_seconds`.
    Idle,
    /// A spectator could not watch (the limit, or the console unavailable).
    Refused,
    /// A spectator's console went away.
    ConsoleGone,
}

impl EndReason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EndReason::ClientClosed => "client-closed",
            EndReason::ClientEscape => "client-escape",
            EndReason::ClientGone => "client-gone",
            EndReason::MaxDuration => "max-duration",
            EndReason::Shutdown => "shutdown",
            EndReason::LeaseLost => "lease-lost",
            EndReason::LeaseUnrenewed => "lease-unrenewed",
            EndReason::Aborted => "aborted",
            EndReason::Ended => "ended",
            EndReason::Idle => "idle",
            EndReason::Refused => "refused",
            EndReason::ConsoleGone => "console-gone",
        }
    }

    /// Whether the session ended on request (an API call or the idle timeout): its slot is
    /// freed without the teardown block once the session stopped writing.
    pub(crate) fn frees_at_once(self) -> bool {
        matches!(self, EndReason::Ended | EndReason::Idle)
    }
}

/// Bytes counted each way, for the log and the audit record.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Traffic {
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// A started session's lease and end record. Fields are public to the crate so the session
/// loop can borrow the lease and the counters separately.
pub(crate) struct SessionRecord {
    shared: Arc<Shared>,
    /// The start record; the end record is made from it.
    event: SessionEvent,
    conn_id: u64,
    started: Instant,
    pub lease: LeaseGuard,
    pub traffic: Traffic,
    /// The session's recording.
    pub tape: Tape,
    finished: bool,
}

impl SessionRecord {
    /// Logs the start and writes its audit record, waiting until the sink has stored it. On
    /// failure the session must not start: the lease comes back for the caller to release.
    pub(crate) async fn start(
        shared: Arc<Shared>,
        opened: &OpenedSession,
        peer: &str,
        conn_id: u64,
        lease: LeaseGuard,
        terminal: &Terminal,
    ) -> Result<Self, (ConsoleError, LeaseGuard)> {
        let started = Instant::now();
        let console_node = shared.config.consoles.owner(&opened.instance.id).await;
        // Recording from the start, so the start record can name it.
        let who = Subject {
            instance: opened.instance.id.as_str(),
            port: opened.lease.slot.port.get(),
            session: &opened.lease.holder,
            principal: &opened.grant.principal_arn,
            spectator: false,
        };
        let tape = Tape::start(&shared, who, terminal).await;
        let event = SessionEvent {
            time_ms: shared.service.clock().now_ms(),
            session_id: opened.lease.holder.clone(),
            request_id: opened.grant.request_id.clone(),
            principal_arn: opened.grant.principal_arn.clone(),
            source_ip: peer.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()),
            instance_id: opened.instance.id.to_string(),
            target: format!("port{}", opened.lease.slot.port),
            key_fingerprint: opened.grant.key.fingerprint().to_owned(),
            console_node,
            recording: tape.id(),
            phase: SessionPhase::Started,
        };
        if let Err(e) = shared.service.record_session(&event).await {
            return Err((e, lease));
        }
        let entry = SessionEntry {
            slot: opened.lease.slot.clone(),
            token: opened.lease.token,
            principal_arn: opened.grant.principal_arn.clone(),
            source_address: Some(peer.to_owned()),
            started_ms: event.time_ms,
            node: shared.config.node_id.clone(),
            spectators: 0,
            expires_at_ms: lease.lease().map_or(0, |l| l.expires_at_ms),
        };
        // A store that fails here fails the lease renewals too, which end the session; if it
        // recovers, the session goes on unlisted (and cannot be ended through the API).
        if let Err(e) = shared.service.list_session(&entry).await {
            tracing::warn!(conn = conn_id, instance = %opened.instance.id, error = %e, "session not listed in the session directory");
        }
        tracing::info!(
            conn = conn_id,
            peer = %peer,
            instance = %opened.instance.id,
            port = opened.lease.slot.port.get(),
            key = %opened.grant.key.fingerprint(),
            request_id = %opened.grant.request_id,
            recording = tape.id().as_deref().unwrap_or("-"),
            "serial session started"
        );
        Ok(Self {
            shared,
            event,
            conn_id,
            started,
            lease,
            traffic: Traffic::default(),
            tape,
            finished: false,
        })
    }

    /// Frees the slot, then logs the end and writes its audit record.
    pub(crate) async fn finish(mut self, end: EndReason) {
        self.finished = true;
        if end.frees_at_once() {
            self.lease.release_now().await;
        } else {
            self.lease.release().await;
        }
        self.tape.finish().await;
        let event = self.end_event(end);
        record_end(&self.shared, self.conn_id, event).await;
    }

    fn end_event(&self, end: EndReason) -> SessionEvent {
        SessionEvent {
            time_ms: self.shared.service.clock().now_ms(),
            phase: SessionPhase::Ended {
                reason: end.as_str(),
                duration_ms: millis(self.started.elapsed()),
                bytes_in: self.traffic.bytes_in,
                bytes_out: self.traffic.bytes_out,
            },
            ..self.event.clone()
        }
    }
}

impl Drop for SessionRecord {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        tracing::error!(
            conn = self.conn_id,
            instance = %self.event.instance_id,
            "session task ended abnormally; releasing its slot and recording its end"
        );
        let lease = self.lease.take();
        let event = self.end_event(EndReason::Aborted);
        let shared = Arc::clone(&self.shared);
        let conn_id = self.conn_id;
        // Outside a runtime (process exit) the lease lapses by itself; the record is lost.
        if tokio::runtime::Handle::try_current().is_ok() {
            let tracker = shared.sessions.clone();
            tracker.spawn(async move {
                if let Some(lease) = lease {
                    lease_guard::release(&shared, &lease).await;
                }
                record_end(&shared, conn_id, event).await;
            });
        }
    }
}

pub(crate) async fn record_end(shared: &Shared, conn_id: u64, event: SessionEvent) {
    if let SessionPhase::Ended {
        reason,
        duration_ms,
        bytes_in,
        bytes_out,
    } = &event.phase
    {
        tracing::info!(
            conn = conn_id,
            instance = %event.instance_id,
            target = %event.target,
            reason,
            duration_ms,
            bytes_in,
            bytes_out,
            "serial session ended"
        );
    }
    // The session is over either way; a failing sink is the operator's to see.
    if let Err(e) = shared.service.record_session(&event).await {
        tracing::error!(conn = conn_id, error = %e, session = %event.session_id, "session end audit record failed");
    }
}

/// Whole milliseconds, saturating (a session does not last 584 million years, but the
/// conversion is checked all the same).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
