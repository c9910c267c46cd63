//! serialgate's durable audit trail: every authenticated API call (for one the caller's
//! policies refused, the action, the resource and the deciding statement), the unauthenticated
//! refusals counted per source and reason, and every SSH session, in a database that survives
//! the process.
//!
//! Two stores, one table layout ([`AuditRecord`]): [`SqliteAudit`] (the default, `audit.db` in
//! `state_dir`, one node) and [`PgAudit`] (`[audit] postgres`, one table that every node of a
//! cluster writes to). Both implement [`console::AuditSink`] for the service and [`AuditLog`]
//! for `serialgate audit`; [`Logged`] also writes each API call to the log, as the embedded
//! default does.
//!
//! Invariants: `record` returns `Ok` only once the record is committed (SQLite: WAL with
//! `synchronous=FULL`; PostgreSQL: a committed insert), so an acknowledged push survives a
//! `kill -9` of the node; a store that cannot answer within its timeout is an error, never a
//! wait; no database work runs on the async runtime's threads.

mod postgres;
mod record;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use console::{AuditEvent, AuditSink, RefusalEvent, SessionEvent, StoreError, TracingAudit};

pub use postgres::PgAudit;
pub use record::{AuditQuery, AuditRecord, format_time_ms, parse_time_ms};
pub use sqlite::{CommitStats, SqliteAudit};

/// An audit store that can be read back.
#[async_trait]
pub trait AuditLog: AuditSink {
    /// Records matching `query`, oldest first.
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

    /// Whether the store answers now (for `/ready`): by default an empty query, which goes
    /// through the same path as a write.
    async fn ping(&self) -> Result<(), StoreError> {
        let nothing = AuditQuery {
            since_ms: i64::MAX as u64,
            limit: 1,
            ..AuditQuery::default()
        };
        self.query(&nothing).await.map(|_| ())
    }
}

/// A durable sink that also writes every API call to the log (target `serialgate::audit`),
/// after the record is stored.
#[derive(Debug)]
pub struct Logged(pub Arc<dyn AuditSink>);

#[async_trait]
impl AuditSink for Logged {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.0.record(event).await?;
        TracingAudit.record(event).await
    }

    async fn record_session(&self, event: &SessionEvent) -> Result<(), StoreError> {
        self.0.record_session(event).await
    }

    async fn record_refusals(&self, events: &[RefusalEvent]) -> Result<(), StoreError> {
        self.0.record_refusals(events).await?;
        TracingAudit.record_refusals(events).await
    }
}
