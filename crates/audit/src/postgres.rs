//! The shared audit store: one PostgreSQL table (`serialgate_audit`) that every node writes to.
//!
//! The connection is made on first use and again whenever it has dropped, each attempt bounded
//! by the timeout, so a node starts while PostgreSQL is away (its pushes fail closed meanwhile)
//! and recovers by itself. An insert returns once PostgreSQL has committed it.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use console::{AuditEvent, AuditSink, RefusalEvent, SessionEvent, StoreError};
use tokio::sync::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use crate::record::{ADDED_COLUMNS, from_sql_int, sql_int};
use crate::{AuditLog, AuditQuery, AuditRecord};

/// Created by the first node to start; the advisory lock keeps nodes starting together from
/// racing on the catalog. Then the columns a table created by an older version lacks
/// ([`migration`]), in the same transaction.
const SCHEMA: &str = "
SELECT pg_advisory_xact_lock(7262418337);
CREATE TABLE IF NOT EXISTS serialgate_audit (
    id BIGSERIAL PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    request_id TEXT,
    operation TEXT,
    session_id TEXT,
    principal_arn TEXT,
    source_ip TEXT,
    instance_id TEXT,
    target TEXT,
    key_fingerprint TEXT,
    outcome TEXT NOT NULL,
    duration_ms BIGINT,
    bytes_in BIGINT,
    bytes_out BIGINT,
    node TEXT NOT NULL,
    count BIGINT,
    last_time_ms BIGINT,
    reason TEXT,
    access_key_id TEXT,
    action TEXT,
    resource TEXT,
    statement TEXT,
    console_node TEXT,
    recording TEXT
);
CREATE INDEX IF NOT EXISTS serialgate_audit_time ON serialgate_audit (time_ms);
CREATE INDEX IF NOT EXISTS serialgate_audit_instance_time
    ON serialgate_audit (instance_id, time_ms);
";

/// Adds each column of [`ADDED_COLUMNS`] the table lacks. The catalog is asked first, as
/// `ALTER TABLE` would take the table's exclusive lock on every connect, even with nothing to add.
fn migration() -> String {
    ADDED_COLUMNS
        .iter()
        .map(|(name, sql_type)| {
            format!(
                "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = 'serialgate_audit' \
                 AND column_name = '{name}') THEN ALTER TABLE serialgate_audit ADD COLUMN \
                 {name} {}; END IF; END $$;\n",
                sql_type.postgres
            )
        })
        .collect()
}

const INSERT: &str = "INSERT INTO serialgate_audit (time_ms, kind, request_id, operation, \
    session_id, principal_arn, source_ip, instance_id, target, key_fingerprint, outcome, \
    duration_ms, bytes_in, bytes_out, node, count, last_time_ms, reason, access_key_id, action, \
    resource, statement, console_node, recording) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
    $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)";

const SELECT: &str = "SELECT time_ms, kind, request_id, operation, session_id, principal_arn, \
    source_ip, instance_id, target, key_fingerprint, outcome, duration_ms, bytes_in, bytes_out, \
    node, count, last_time_ms, reason, access_key_id, action, resource, statement, console_node, recording \
    FROM serialgate_audit WHERE ($1::TEXT IS NULL OR instance_id = $1) AND time_ms >= $2 \
    AND time_ms < $3 ORDER BY time_ms, id LIMIT $4";

/// A live connection and its prepared insert.
#[derive(Debug)]
struct Conn {
    client: Client,
    insert: Statement,
}

/// The PostgreSQL store.
#[derive(Debug)]
pub struct PgAudit {
    config: tokio_postgres::Config,
    /// Printable target (host and database, no password) for errors.
    target: String,
    node: String,
    timeout: Duration,
    /// The current connection; replaced when it has closed. Held only to clone or replace it,
    /// never across a query.
    conn: Mutex<Option<Arc<Conn>>>,
}

impl PgAudit {
    /// Checks `url` (`postgres://USER:PASSWORD@HOST:PORT/DB`) without connecting.
    pub fn new(url: &str, node: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::new(format!("[audit] postgres: not a usable URL: {e}")))?;
        // The schema is created with `IF NOT EXISTS`, which makes the server send a NOTICE on
        // every connection, logged at INFO: ask for warnings and errors only.
        let options = match config.get_options() {
            Some(o) => format!("{o} -c client_min_messages=warning"),
            None => "-c client_min_messages=warning".to_owned(),
        };
        config.options(&options);
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .collect();
        let target = format!(
            "postgres {} db {}",
            hosts.join(","),
            config.get_dbname().unwrap_or("-")
        );
        Ok(Self {
            config,
            target,
            node: node.to_owned(),
            timeout: Duration::from_secs(5),
            conn: Mutex::new(None),
        })
    }

    /// Connects now (and creates the table): a readiness check at startup.
    pub async fn connect(&self) -> Result<(), StoreError> {
        self.conn().await.map(|_| ())
    }

    /// One round trip (`SELECT 1`) within the timeout, connecting first if needed: whether a
    /// record written now would commit.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        tokio::time::timeout(self.timeout, conn.client.simple_query("SELECT 1"))
            .await
            .map_err(|_| self.err("no answer within the timeout"))?
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::new(format!("audit {}: {e}", self.target))
    }

    async fn conn(&self) -> Result<Arc<Conn>, StoreError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(Arc::clone(c));
        }
        *slot = None;
        let connect = async {
            let (client, connection) = self.config.connect(NoTls).await?;
            let target = self.target.clone();
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "audit {target}: connection lost");
                }
            });
            client
                .batch_execute(&format!("BEGIN;\n{SCHEMA}{}COMMIT;", migration()))
                .await?;
            let insert = client.prepare(INSERT).await?;
            Ok::<_, tokio_postgres::Error>(Conn { client, insert })
        };
        let conn = tokio::time::timeout(self.timeout, connect)
            .await
            .map_err(|_| self.err("no connection within the timeout"))?
            .map_err(|e| self.err(e))?;
        let conn = Arc::new(conn);
        *slot = Some(Arc::clone(&conn));
        Ok(conn)
    }

    async fn write(&self, r: AuditRecord) -> Result<(), StoreError> {
        let conn = self.conn().await?;
        let (count, last_time_ms) = (r.count.map(sql_int), r.last_time_ms.map(sql_int));
        let params: [&(dyn ToSql + Sync); 24] = [
            &sql_int(r.time_ms),
            &r.kind,
            &r.request_id,
            &r.operation,
            &r.session_id,
            &r.principal_arn,
            &r.source_ip,
            &r.instance_id,
            &r.target,
            &r.key_fingerprint,
            &r.outcome,
            &r.duration_ms.map(sql_int),
            &r.bytes_in.map(sql_int),
            &r.bytes_out.map(sql_int),
            &r.node,
            &count,
            &last_time_ms,
            &r.reason,
            &r.access_key_id,
            &r.action,
            &r.resource,
            &r.statement,
            &r.console_node,
            &r.recording,
        ];
        tokio::time::timeout(self.timeout, conn.client.execute(&conn.insert, &params))
            .await
            .map_err(|_| self.err("no commit within the timeout"))?
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[async_trait]
impl AuditSink for PgAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.write(AuditRecord::from_api(event, &self.node)).await
    }

    async fn record_session(&self, event: &SessionEvent) -> Result<(), StoreError> {
        self.write(AuditRecord::from_session(event, &self.node))
            .await
    }

    /// One insert after the other: the connection is shared by every task of the node, so a
    /// transaction on it would take in their inserts too. A window's counts come once a minute.
    async fn record_refusals(&self, events: &[RefusalEvent]) -> Result<(), StoreError> {
        for e in events {
            self.write(AuditRecord::from_refusal(e, &self.node)).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl AuditLog for PgAudit {
    async fn ping(&self) -> Result<(), StoreError> {
        PgAudit::ping(self).await
    }

    async fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let conn = self.conn().await?;
        let (since, until, limit) = (sql_int(q.since_ms), sql_int(q.until_ms), i64::from(q.limit));
        let rows = tokio::time::timeout(
            self.timeout,
            conn.client
                .query(SELECT, &[&q.instance_id, &since, &until, &limit]),
        )
        .await
        .map_err(|_| self.err("no answer within the timeout"))?
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|row| {
                let int = |i: usize| {
                    row.try_get::<_, Option<i64>>(i)
                        .map(|v| v.map(from_sql_int))
                };
                Ok(AuditRecord {
                    time_ms: from_sql_int(row.try_get(0)?),
                    kind: row.try_get(1)?,
                    request_id: row.try_get(2)?,
                    operation: row.try_get(3)?,
                    session_id: row.try_get(4)?,
                    principal_arn: row.try_get(5)?,
                    source_ip: row.try_get(6)?,
                    instance_id: row.try_get(7)?,
                    target: row.try_get(8)?,
                    key_fingerprint: row.try_get(9)?,
                    outcome: row.try_get(10)?,
                    duration_ms: int(11)?,
                    bytes_in: int(12)?,
                    bytes_out: int(13)?,
                    node: row.try_get(14)?,
                    count: int(15)?,
                    last_time_ms: int(16)?,
                    reason: row.try_get(17)?,
                    access_key_id: row.try_get(18)?,
                    action: row.try_get(19)?,
                    resource: row.try_get(20)?,
                    statement: row.try_get(21)?,
                    console_node: row.try_get(22)?,
                    recording: row.try_get(23)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.err(e))
    }
}
