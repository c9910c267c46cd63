//! The embedded audit store: a SQLite file (`audit.db` in `state_dir`) in WAL mode with
//! `synchronous=FULL`, owned by one dedicated thread (`writer`).
//!
//! Writers hand records to the thread over a bounded queue and wait for the commit. The thread
//! commits whatever has queued up meanwhile in one transaction (group commit), so under load
//! many pushes share one fsync while each is still acknowledged only after it.
//!
//! Durability: SQLite in WAL mode with `synchronous=FULL` syncs the WAL file to disk before
//! COMMIT returns, and a caller is answered only after the COMMIT of the transaction holding
//! its record has returned. So an acknowledged record survives a crash of the process and of
//! the machine (given a disk that honours fsync).

mod writer;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use console::{AuditEvent, AuditSink, RefusalEvent, SessionEvent, StoreError};
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use tokio::sync::{Semaphore, oneshot};

use crate::record::{ADDED_COLUMNS, from_sql_int, sql_int};
use crate::{AuditLog, AuditQuery, AuditRecord};
use writer::{Counters, Job, Queued};

pub use writer::CommitStats;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    time_ms INTEGER NOT NULL,
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
    duration_ms INTEGER,
    bytes_in INTEGER,
    bytes_out INTEGER,
    node TEXT NOT NULL,
    count INTEGER,
    last_time_ms INTEGER,
    reason TEXT,
    access_key_id TEXT,
    action TEXT,
    resource TEXT,
    statement TEXT,
    console_node TEXT,
    recording TEXT
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_ms);
CREATE INDEX IF NOT EXISTS audit_instance_time ON audit (instance_id, time_ms);
";

const INSERT: &str = "INSERT INTO audit (time_ms, kind, request_id, operation, session_id, \
    principal_arn, source_ip, instance_id, target, key_fingerprint, outcome, duration_ms, \
    bytes_in, bytes_out, node, count, last_time_ms, reason, access_key_id, action, resource, \
    statement, console_node, recording) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
    ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)";

const SELECT: &str = "SELECT time_ms, kind, request_id, operation, session_id, principal_arn, \
    source_ip, instance_id, target, key_fingerprint, outcome, duration_ms, bytes_in, bytes_out, \
    node, count, last_time_ms, reason, access_key_id, action, resource, statement, console_node, recording FROM audit \
    WHERE (?1 IS NULL OR instance_id = ?1) AND time_ms >= ?2 AND time_ms < ?3 \
    ORDER BY time_ms, id LIMIT ?4";

/// Jobs that may wait for the thread; beyond that, callers wait for room.
const QUEUE_CAPACITY: usize = 4096;

/// The SQLite store. Dropping it stops its thread once queued work is done.
#[derive(Debug)]
pub struct SqliteAudit {
    jobs: std::sync::mpsc::Sender<Queued>,
    /// Bounds the queue (the channel itself is unbounded, so that sending never blocks a
    /// runtime thread): a job holds one permit until the thread takes it.
    room: Arc<Semaphore>,
    counters: Arc<Counters>,
    path: PathBuf,
    node: String,
    timeout: Duration,
}

impl SqliteAudit {
    /// Opens (creating if needed) the database at `path` and starts its thread. `node` is
    /// written into every record.
    pub fn open(path: &Path, node: &str) -> Result<Self, StoreError> {
        let err = |e: &dyn std::fmt::Display| {
            StoreError::new(format!("audit database {}: {e}", path.display()))
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_files::create_dir(dir).map_err(|e| err(&e))?;
        }
        // The trail names principals, addresses and key fingerprints: owner-only, and SQLite
        // gives the -wal and -shm files it creates the database file's mode.
        private_files::prepare_sqlite_file(path).map_err(|e| err(&e))?;
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| err(&e))?;
        // WAL lets `serialgate audit` read while the server writes; FULL syncs the WAL on
        // every commit, so an acknowledged record survives a crash of the machine too.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| err(&e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| err(&e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| err(&e))?;
        migrate(&mut conn).map_err(|e| err(&e))?;
        let (jobs, rx) = std::sync::mpsc::channel();
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("audit-sqlite".to_owned())
            .spawn(move || writer::run(conn, rx, thread_counters))
            .map_err(|e| err(&e))?;
        Ok(Self {
            jobs,
            room: Arc::new(Semaphore::new(QUEUE_CAPACITY)),
            counters,
            path: path.to_owned(),
            node: node.to_owned(),
            timeout: Duration::from_secs(5),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits and records so far: `records / commits` is the mean group size.
    pub fn commit_stats(&self) -> CommitStats {
        self.counters.snapshot()
    }

    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || StoreError::new("audit database thread has stopped");
        let work = async {
            let room = Arc::clone(&self.room)
                .acquire_owned()
                .await
                .map_err(|_| stopped())?;
            let job = job(tx);
            let records = match &job {
                Job::Write(..) => 1,
                Job::WriteAll(records, _) => records.len() as u64,
                Job::Query(..) => 0,
            };
            self.jobs
                .send(Queued { job, _room: room })
                .map_err(|_| stopped())?;
            self.counters
                .submitted
                .fetch_add(records, Ordering::Relaxed);
            rx.await.map_err(|_| stopped())?
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| {
                StoreError::new(format!(
                    "audit database {}: no commit within {} s",
                    self.path.display(),
                    self.timeout.as_secs()
                ))
            })?
    }

    async fn write(&self, record: AuditRecord) -> Result<(), StoreError> {
        self.submit(|tx| Job::Write(Box::new(record), tx)).await
    }
}

/// Adds the columns a database created by an older version lacks (their old rows read as
/// NULL). Checked without a lock first, as nearly every open finds nothing to do; then under
/// the write lock, so two processes opening an old database at once add each column once.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    fn missing(conn: &Connection) -> rusqlite::Result<Vec<(&'static str, &'static str)>> {
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info('audit')")?;
        let present = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<HashSet<_>>>()?;
        Ok(ADDED_COLUMNS
            .into_iter()
            .filter(|(name, _)| !present.contains(*name))
            .map(|(name, sql_type)| (name, sql_type.sqlite))
            .collect())
    }
    if missing(conn)?.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for (name, sql_type) in missing(&tx)? {
        tx.execute_batch(&format!("ALTER TABLE audit ADD COLUMN {name} {sql_type}"))?;
    }
    tx.commit()
}

#[async_trait]
impl AuditSink for SqliteAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.write(AuditRecord::from_api(event, &self.node)).await
    }

    async fn record_session(&self, event: &SessionEvent) -> Result<(), StoreError> {
        self.write(AuditRecord::from_session(event, &self.node))
            .await
    }

    /// In one transaction: a window's counts come all at once, and one commit serves them.
    async fn record_refusals(&self, events: &[RefusalEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let records = events
            .iter()
            .map(|e| AuditRecord::from_refusal(e, &self.node))
            .collect();
        self.submit(|tx| Job::WriteAll(records, tx)).await
    }
}

#[async_trait]
impl AuditLog for SqliteAudit {
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let query = query.clone();
        self.submit(|tx| Job::Query(query, tx)).await
    }
}

/// Inserts `records` in one transaction.
fn insert_all<'a>(
    conn: &mut Connection,
    records: impl Iterator<Item = &'a AuditRecord>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        for r in records {
            stmt.execute(params![
                sql_int(r.time_ms),
                r.kind,
                r.request_id,
                r.operation,
                r.session_id,
                r.principal_arn,
                r.source_ip,
                r.instance_id,
                r.target,
                r.key_fingerprint,
                r.outcome,
                r.duration_ms.map(sql_int),
                r.bytes_in.map(sql_int),
                r.bytes_out.map(sql_int),
                r.node,
                r.count.map(sql_int),
                r.last_time_ms.map(sql_int),
                r.reason,
                r.access_key_id,
                r.action,
                r.resource,
                r.statement,
                r.console_node,
                r.recording,
            ])?;
        }
    }
    tx.commit()
}

/// The records matching `q`, oldest first.
fn select(conn: &Connection, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
    let run = || -> rusqlite::Result<Vec<AuditRecord>> {
        let mut stmt = conn.prepare_cached(SELECT)?;
        let rows = stmt.query_map(
            params![
                q.instance_id,
                sql_int(q.since_ms),
                sql_int(q.until_ms),
                i64::from(q.limit)
            ],
            |row| {
                Ok(AuditRecord {
                    time_ms: from_sql_int(row.get(0)?),
                    kind: row.get(1)?,
                    request_id: row.get(2)?,
                    operation: row.get(3)?,
                    session_id: row.get(4)?,
                    principal_arn: row.get(5)?,
                    source_ip: row.get(6)?,
                    instance_id: row.get(7)?,
                    target: row.get(8)?,
                    key_fingerprint: row.get(9)?,
                    outcome: row.get(10)?,
                    duration_ms: row.get::<_, Option<i64>>(11)?.map(from_sql_int),
                    bytes_in: row.get::<_, Option<i64>>(12)?.map(from_sql_int),
                    bytes_out: row.get::<_, Option<i64>>(13)?.map(from_sql_int),
                    node: row.get(14)?,
                    count: row.get::<_, Option<i64>>(15)?.map(from_sql_int),
                    last_time_ms: row.get::<_, Option<i64>>(16)?.map(from_sql_int),
                    reason: row.get(17)?,
                    access_key_id: row.get(18)?,
                    action: row.get(19)?,
                    resource: row.get(20)?,
                    statement: row.get(21)?,
                    console_node: row.get(22)?,
                    recording: row.get(23)?,
                })
            },
        )?;
        rows.collect()
    };
    run().map_err(|e| StoreError::new(format!("audit database: {e}")))
}
