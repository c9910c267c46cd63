//! One row of the audit table, shared by both stores, and the query over it.

use console::{AuditEvent, AuditOutcome, RefusalEvent, SessionEvent, SessionPhase, StoreError};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// An authenticated API call (`kind = "api"`), a session's start or end (`session-start`,
/// `session-end`), or unauthenticated requests refused by one source for one reason within one
/// window, counted (`api-refused`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When it happened, ms since the Unix epoch; for `api-refused`, the first refusal counted.
    pub time_ms: u64,
    pub kind: String,
    /// The API request id; for a session, the id of the push that opened it.
    pub request_id: Option<String>,
    /// The API operation (`SendSerialConsoleSSHPublicKey`, …); none for sessions.
    pub operation: Option<String>,
    /// The session (`node/connection`); none for API calls.
    pub session_id: Option<String>,
    pub principal_arn: Option<String>,
    /// For `api-refused`, none means the sources beyond the window's limit, counted together.
    pub source_ip: Option<String>,
    pub instance_id: Option<String>,
    /// `port0`, `user:NAME`, or `spectate:port0` for a spectator.
    pub target: Option<String>,
    pub key_fingerprint: Option<String>,
    /// API calls and `api-refused`: `success` or the AWS error code the caller received. Session
    /// starts: `started`. Session ends: the reason (`client-closed`, `max-duration`, …).
    pub outcome: String,
    pub duration_ms: Option<u64>,
    /// Bytes from the client to the console.
    pub bytes_in: Option<u64>,
    /// Bytes from the console to the client.
    pub bytes_out: Option<u64>,
    /// The node that wrote the record.
    pub node: String,
    /// `api-refused`: how many requests were refused.
    pub count: Option<u64>,
    /// `api-refused`: the last refusal counted, ms since the Unix epoch.
    pub last_time_ms: Option<u64>,
    /// `api-refused`: why the signature check refused them (`signature-mismatch`,
    /// `unknown-access-key`, `missing-authentication`, …).
    pub reason: Option<String>,
    /// `api-refused`: the access key id the requests named, when every one that named a
    /// well-formed id named this one (never a secret or a signature).
    pub access_key_id: Option<String>,
    /// A call the caller's policies refused: the IAM action asked for
    /// (`ec2-instance-connect:SendSerialConsoleSSHPublicKey`, `ec2:GetConsoleOutput`, …).
    pub action: Option<String>,
    /// A call the caller's policies refused: the resource asked for (an instance ARN, or `*`).
    pub resource: Option<String>,
    /// A call the caller's policies refused: the `Deny` statement that refused it
    /// (`policy "NAME" Statement[I] (Sid "S")`); none, with `action` set, when no statement
    /// allowed it (an implicit deny).
    pub statement: Option<String>,
    /// Sessions in a cluster: the node that owned the console when the session started.
    pub console_node: Option<String>,
    /// Sessions: the id of the session's recording (`serialgate recordings play ID`), on the
    /// node that accepted the connection; none when recordings are off.
    pub recording: Option<String>,
}

impl AuditRecord {
    pub fn from_api(e: &AuditEvent, node: &str) -> Self {
        let denial = e.denial.as_ref();
        Self {
            time_ms: e.time_ms,
            kind: "api".to_owned(),
            request_id: Some(e.request_id.clone()),
            operation: Some(e.operation.to_string()),
            session_id: None,
            principal_arn: e.principal_arn.clone(),
            source_ip: e.source_ip.map(|ip| ip.to_string()),
            instance_id: e.instance_id.clone(),
            target: e.target.clone(),
            key_fingerprint: e.key_fingerprint.clone(),
            outcome: match &e.outcome {
                AuditOutcome::Success => "success".to_owned(),
                AuditOutcome::Error(code) => code.clone(),
            },
            duration_ms: None,
            bytes_in: None,
            bytes_out: None,
            node: node.to_owned(),
            count: None,
            last_time_ms: None,
            reason: None,
            access_key_id: None,
            action: denial.map(|d| d.action.iam_name().to_owned()),
            resource: denial.map(|d| d.resource.clone()),
            statement: denial.and_then(|d| d.denied_by.clone()),
            console_node: None,
            recording: None,
        }
    }

    pub fn from_refusal(e: &RefusalEvent, node: &str) -> Self {
        Self {
            time_ms: e.first_ms,
            kind: "api-refused".to_owned(),
            request_id: None,
            operation: None,
            session_id: None,
            principal_arn: None,
            source_ip: e.source_ip.map(|ip| ip.to_string()),
            instance_id: None,
            target: None,
            key_fingerprint: None,
            outcome: e.code.to_owned(),
            duration_ms: None,
            bytes_in: None,
            bytes_out: None,
            node: node.to_owned(),
            count: Some(e.count),
            last_time_ms: Some(e.last_ms),
            reason: Some(e.reason.to_owned()),
            access_key_id: e.access_key_id.clone(),
            action: None,
            resource: None,
            statement: None,
            console_node: None,
            recording: None,
        }
    }

    pub fn from_session(e: &SessionEvent, node: &str) -> Self {
        let (kind, outcome, duration_ms, bytes_in, bytes_out) = match &e.phase {
            SessionPhase::Started => ("session-start", "started", None, None, None),
            SessionPhase::Ended {
                reason,
                duration_ms,
                bytes_in,
                bytes_out,
            } => (
                "session-end",
                *reason,
                Some(*duration_ms),
                Some(*bytes_in),
                Some(*bytes_out),
            ),
        };
        Self {
            time_ms: e.time_ms,
            kind: kind.to_owned(),
            request_id: Some(e.request_id.clone()),
            operation: None,
            session_id: Some(e.session_id.clone()),
            principal_arn: Some(e.principal_arn.clone()),
            source_ip: e.source_ip.map(|ip| ip.to_string()),
            instance_id: Some(e.instance_id.clone()),
            target: Some(e.target.clone()),
            key_fingerprint: Some(e.key_fingerprint.clone()),
            outcome: outcome.to_owned(),
            duration_ms,
            bytes_in,
            bytes_out,
            node: node.to_owned(),
            count: None,
            last_time_ms: None,
            reason: None,
            access_key_id: None,
            action: None,
            resource: None,
            statement: None,
            console_node: e.console_node.clone(),
            recording: e.recording.clone(),
        }
    }
}

/// Which records to read: optionally one instance, within `[since_ms, until_ms)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    pub instance_id: Option<String>,
    pub since_ms: u64,
    pub until_ms: u64,
    /// At most this many records (the oldest first).
    pub limit: u32,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            instance_id: None,
            since_ms: 0,
            until_ms: i64::MAX as u64,
            limit: 100_000,
        }
    }
}

/// `2026-11-27T21:37:54.123Z`.
pub fn format_time_ms(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Parses an RFC 3339 time (`2026-11-27T21:00:00Z`, `2026-11-27T22:00:00+01:00`) into ms since
/// the Unix epoch.
pub fn parse_time_ms(s: &str) -> Result<u64, StoreError> {
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
        StoreError::new(format!(
            "{s:?} is not an RFC 3339 time like 2026-11-27T21:00:00Z: {e}"
        ))
    })?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000)
        .map_err(|_| StoreError::new(format!("{s:?} is before 1970")))
}

/// A column's type in each store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SqlType {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

const INTEGER: SqlType = SqlType {
    sqlite: "INTEGER",
    postgres: "BIGINT",
};
const TEXT: SqlType = SqlType {
    sqlite: "TEXT",
    postgres: "TEXT",
};

/// The columns added after the table's first layout (for `api-refused`, for calls the caller's
/// policies refused, for clusters, for recordings), in table order: both stores add those an existing table lacks
/// when they open it.
pub(crate) const ADDED_COLUMNS: [(&str, SqlType); 9] = [
    ("count", INTEGER),
    ("last_time_ms", INTEGER),
    ("reason", TEXT),
    ("access_key_id", TEXT),
    ("action", TEXT),
    ("resource", TEXT),
    ("statement", TEXT),
    ("console_node", TEXT),
    ("recording", TEXT),
];

/// u64 → i64 for SQL integers (times and counters never come near the limit).
pub(crate) fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// i64 → u64 from SQL integers.
pub(crate) fn from_sql_int(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        let ms = parse_time_ms("2026-11-27T21:37:54.123Z").unwrap();
        assert_eq!(format_time_ms(ms), "2026-11-27T21:37:54.123Z");
        assert_eq!(parse_time_ms("2026-11-27T22:37:54.123+01:00").unwrap(), ms);
        assert!(parse_time_ms("yesterday").is_err());
    }
}
