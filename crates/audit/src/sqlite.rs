//! The embedded audit store: a SQLite file (`audit.db` in `state_dir`) in WAL mode with
//! `synchronous=FULL`, owned by one dedicated thread.
//!
//! Writers hand records to the thread over a bounded channel and wait for the commit. The
//! thread commits whatever has queued up meanwhile in one transaction (group commit), so under
//! load many pushes share one fsync while each is still acknowledged only after it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use console::{AuditEvent, AuditSink, SessionEvent, StoreError};
use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::{mpsc, oneshot};

use crate::record::{from_sql_int, sql_int};
use crate::{AuditLog, AuditQuery, AuditRecord};

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
    node TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit (time_ms);
CREATE INDEX IF NOT EXISTS audit_instance_time ON audit (instance_id, time_ms);
";

const INSERT: &str = "INSERT INTO audit (time_ms, kind, request_id, operation, session_id, \
    principal_arn, source_ip, instance_id, target, key_fingerprint, outcome, duration_ms, \
    bytes_in, bytes_out, node) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, \
    ?14, ?15)";

const SELECT: &str = "SELECT time_ms, kind, request_id, operation, session_id, principal_arn, \
    source_ip, instance_id, target, key_fingerprint, outcome, duration_ms, bytes_in, bytes_out, \
    node FROM audit WHERE (?1 IS NULL OR instance_id = ?1) AND time_ms >= ?2 AND time_ms < ?3 \
    ORDER BY time_ms, id LIMIT ?4";

/// Records committed together at most, so one slow batch cannot starve the queue.
const MAX_BATCH: usize = 512;

enum Job {
    Write(Box<AuditRecord>, oneshot::Sender<Result<(), StoreError>>),
    Query(
        AuditQuery,
        oneshot::Sender<Result<Vec<AuditRecord>, StoreError>>,
    ),
}

/// The SQLite store. Dropping it stops its thread once queued work is done.
#[derive(Debug)]
pub struct SqliteAudit {
    jobs: mpsc::Sender<Job>,
    path: PathBuf,
    node: String,
    timeout: Duration,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Write(..) => "Write",
            Job::Query(..) => "Query",
        })
    }
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
        let conn = Connection::open_with_flags(
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
        let (jobs, rx) = mpsc::channel(4096);
        std::thread::Builder::new()
            .name("audit-sqlite".to_owned())
            .spawn(move || run(conn, rx))
            .map_err(|e| err(&e))?;
        Ok(Self {
            jobs,
            path: path.to_owned(),
            node: node.to_owned(),
            timeout: Duration::from_secs(5),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let stopped = || StoreError::new("audit database thread has stopped");
        let work = async {
            self.jobs.send(job(tx)).await.map_err(|_| stopped())?;
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

#[async_trait]
impl AuditSink for SqliteAudit {
    async fn record(&self, event: &AuditEvent) -> Result<(), StoreError> {
        self.write(AuditRecord::from_api(event, &self.node)).await
    }

    async fn record_session(&self, event: &SessionEvent) -> Result<(), StoreError> {
        self.write(AuditRecord::from_session(event, &self.node))
            .await
    }
}

#[async_trait]
impl AuditLog for SqliteAudit {
    async fn query(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let query = query.clone();
        self.submit(|tx| Job::Query(query, tx)).await
    }
}

/// The thread: waits for a job, then takes every write already queued behind it into the same
/// transaction.
fn run(mut conn: Connection, mut jobs: mpsc::Receiver<Job>) {
    while let Some(job) = jobs.blocking_recv() {
        let mut batch = Vec::new();
        let mut next = Some(job);
        while let Some(job) = next.take() {
            match job {
                Job::Write(record, reply) => batch.push((record, reply)),
                Job::Query(query, reply) => {
                    // Answer after the writes queued before it, so a reader sees them.
                    commit(&mut conn, std::mem::take(&mut batch));
                    let _ = reply.send(select(&conn, &query));
                }
            }
            if batch.len() < MAX_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        commit(&mut conn, batch);
    }
}

type Pending = Vec<(Box<AuditRecord>, oneshot::Sender<Result<(), StoreError>>)>;

fn commit(conn: &mut Connection, batch: Pending) {
    if batch.is_empty() {
        return;
    }
    let result = insert_all(conn, batch.iter().map(|(r, _)| r.as_ref()))
        .map_err(|e| StoreError::new(format!("audit database: {e}")));
    for (_, reply) in batch {
        let _ = reply.send(result.clone());
    }
}

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
            ])?;
        }
    }
    tx.commit()
}

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
                })
            },
        )?;
        rows.collect()
    };
    run().map_err(|e| StoreError::new(format!("audit database: {e}")))
}
