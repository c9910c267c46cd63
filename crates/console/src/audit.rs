//! Audit events: what happened, who did it, and how it ended.
//!
//! Events carry key fingerprints, never key material or credentials.

use std::borrow::Cow;
use std::net::IpAddr;

use async_trait::async_trait;

use crate::error::{Denial, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditOutcome {
    Success,
    /// Refused with this AWS error code.
    Error(String),
}

/// One authenticated API call: allowed or refused, from the moment its signature verified.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub time_ms: u64,
    pub request_id: String,
    /// The operation (`SendSerialConsoleSSHPublicKey`, `DescribeInstances`, …); for a call that
    /// named none this service knows, the name it asked for, or `-`.
    pub operation: Cow<'static, str>,
    pub principal_arn: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub instance_id: Option<String>,
    /// `port0` or `user:NAME`.
    pub target: Option<String>,
    pub key_fingerprint: Option<String>,
    pub outcome: AuditOutcome,
    /// For a call the caller's policies refused: the action, the resource and the deciding
    /// statement (none for an implicit deny).
    pub denial: Option<Denial>,
}

/// Requests refused before their signature verified, so with no caller to name: counted per
/// source, reason and error code over one window, never recorded one by one (junk traffic must
/// not fill the disk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalEvent {
    /// The first and the last refusal counted, ms since the Unix epoch.
    pub first_ms: u64,
    pub last_ms: u64,
    /// Where they came from; `None` for the sources past the window's limit, counted together.
    pub source_ip: Option<IpAddr>,
    /// Why the signature check refused them: `missing-authentication`, `incomplete-signature`,
    /// `wrong-scope`, `expired`, `unknown-access-key`, `invalid-token`, `signature-mismatch`,
    /// `payload-hash-mismatch`.
    pub reason: &'static str,
    /// The AWS error code the callers received.
    pub code: &'static str,
    /// How many requests.
    pub count: u64,
    /// The access key id the requests named, when every one that named a well-formed id named
    /// this one. Never a secret or a signature.
    pub access_key_id: Option<String>,
}

/// One SSH session's start or end, as the gateway saw it.
#[derive(Debug, Clone)]
pub struct SessionEvent {
    pub time_ms: u64,
    /// The session's lease holder (`node/connection`), unique per session.
    pub session_id: String,
    /// The push that opened the session, and who made it.
    pub request_id: String,
    pub principal_arn: String,
    pub source_ip: Option<IpAddr>,
    pub instance_id: String,
    /// `port0`.
    pub target: String,
    pub key_fingerprint: String,
    /// In a cluster, the node that owned the console when the session started (the node that
    /// accepted the connection writes the record); none on a node alone.
    pub console_node: Option<String>,
    /// The session's recording, if it is recorded.
    pub recording: Option<String>,
    pub phase: SessionPhase,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionPhase {
    Started,
    Ended {
        /// `client-closed`, `client-escape`, `client-gone`, `max-duration`, `shutdown`,
        /// `lease-lost`, `lease-unrenewed`, `aborted` (the session task panicked or was cancelled).
        reason: &'static str,
        duration_ms: u64,
        /// Bytes from the client to the console.
        bytes_in: u64,
        /// Bytes from the console to the client.
        bytes_out: u64,
    },
}

/// Where audit events go. `record` returning `Ok` means the event is stored as durably as the
/// sink can make it; a push is acknowledged only after that.
#[async_trait]
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError>;

    /// Records a session's start or end. Sinks that keep no session records ignore them: the
    /// gateway logs every session itself.
    async fn record_session(&self, _event: &SessionEvent) -> Result<(), StoreError> {
        Ok(())
    }

    /// Records counted refusals of unauthenticated requests, all at once. Sinks that keep no
    /// such records ignore them.
    async fn record_refusals(&self, _events: &[RefusalEvent]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Writes events to the log (target `serialgate::audit`). The embedded default.
#[derive(Debug, Default, Clone, Copy)]
pub struct TracingAudit;

#[async_trait]
impl AuditSink for TracingAudit {
    async fn record(&self, e: &AuditEvent) -> Result<(), StoreError> {
        let outcome = match &e.outcome {
            AuditOutcome::Success => "success",
            AuditOutcome::Error(code) => code.as_str(),
        };
        // Debug, not info: every call is already in the durable audit store, and a log line
        // per request costs about a tenth of the API's throughput. `serialgate::audit=debug`
        // in the log filter shows them.
        tracing::debug!(
            target: "serialgate::audit",
            request_id = %e.request_id,
            operation = &*e.operation,
            principal = e.principal_arn.as_deref().unwrap_or("-"),
            source_ip = %e.source_ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
            instance = e.instance_id.as_deref().unwrap_or("-"),
            port_or_user = e.target.as_deref().unwrap_or("-"),
            key = e.key_fingerprint.as_deref().unwrap_or("-"),
            outcome,
            "api call"
        );
        Ok(())
    }

    async fn record_refusals(&self, events: &[RefusalEvent]) -> Result<(), StoreError> {
        for e in events {
            tracing::debug!(
                target: "serialgate::audit",
                source_ip = %e.source_ip.map_or_else(|| "other sources".to_owned(), |ip| ip.to_string()),
                reason = e.reason,
                outcome = e.code,
                count = e.count,
                access_key_id = e.access_key_id.as_deref().unwrap_or("-"),
                "unauthenticated requests refused"
            );
        }
        Ok(())
    }
}
