//! The SQLite audit store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use audit::{AuditLog, AuditQuery, SqliteAudit};
use console::{AuditOutcome, AuditSink, SessionPhase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAudit::open(&dir.path().join("audit.db"), "node-a").unwrap();
    common::records_round_trip(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAudit::open(&dir.path().join("audit.db"), "node-a").unwrap();
    common::refusals_round_trip(&store).await;
    // One commit for the whole window.
    assert_eq!(store.commit_stats().commits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denials_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAudit::open(&dir.path().join("audit.db"), "node-a").unwrap();
    common::denials_round_trip(&store).await;
}

/// The table as the first version created it.
const FIRST_LAYOUT: &str = "id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, \
    kind TEXT NOT NULL, request_id TEXT, operation TEXT, session_id TEXT, principal_arn TEXT, \
    source_ip TEXT, instance_id TEXT, target TEXT, key_fingerprint TEXT, outcome TEXT NOT NULL, \
    duration_ms INTEGER, bytes_in INTEGER, bytes_out INTEGER, node TEXT NOT NULL";

/// The table as the version that counted refusals created it, before policy denials.
const REFUSAL_LAYOUT: &str = "id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, \
    kind TEXT NOT NULL, request_id TEXT, operation TEXT, session_id TEXT, principal_arn TEXT, \
    source_ip TEXT, instance_id TEXT, target TEXT, key_fingerprint TEXT, outcome TEXT NOT NULL, \
    duration_ms INTEGER, bytes_in INTEGER, bytes_out INTEGER, node TEXT NOT NULL, \
    count INTEGER, last_time_ms INTEGER, reason TEXT, access_key_id TEXT";

/// A database written by an older version (table `columns`, one record) opens: its row reads
/// back with the new fields empty, and new records, counted refusals and policy denials
/// included, are written beside it; opening again finds nothing to add.
async fn migrates_on_open(columns: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    {
        let old = rusqlite::Connection::open(&path).unwrap();
        old.execute_batch(&format!(
            "CREATE TABLE audit ({columns});
             INSERT INTO audit (time_ms, kind, request_id, operation, outcome, node) \
             VALUES (1, 'api', 'old-1', 'SendSerialConsoleSSHPublicKey', 'success', 'node-0');",
        ))
        .unwrap();
    }
    let store = SqliteAudit::open(&path, "node-a").unwrap();
    let old = store.query(&AuditQuery::default()).await.unwrap();
    assert_eq!(old.len(), 1);
    assert_eq!(old[0].request_id.as_deref(), Some("old-1"));
    assert_eq!((old[0].count, old[0].reason.as_deref()), (None, None));
    assert_eq!(
        (
            old[0].action.as_deref(),
            old[0].resource.as_deref(),
            old[0].statement.as_deref()
        ),
        (None, None, None)
    );
    common::refusals_round_trip(&store).await;
    common::denials_round_trip(&store).await;
    store
        .record(&common::api(
            9,
            "i-0123456789abcdef0",
            AuditOutcome::Success,
        ))
        .await
        .unwrap();
    // A session naming its recording, in the column added last.
    store
        .record_session(&common::session(10, SessionPhase::Started))
        .await
        .unwrap();
    drop(store);
    let again = SqliteAudit::open(&path, "node-a").unwrap();
    let all = again.query(&AuditQuery::default()).await.unwrap();
    let kinds: Vec<_> = all.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "api",
            "api-refused",
            "api-refused",
            "api",
            "session-start",
            "api",
            "api",
            "api"
        ]
    );
    assert_eq!(all[5].statement.as_deref(), Some(common::DENY_STATEMENT));
    assert_eq!(old[0].recording, None);
    assert!(
        all[4]
            .recording
            .as_deref()
            .is_some_and(|r| r.contains("-port0-"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_of_the_first_layout_is_migrated_on_open() {
    migrates_on_open(FIRST_LAYOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_the_denial_columns_is_migrated_on_open() {
    migrates_on_open(REFUSAL_LAYOUT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAudit::open(&dir.path().join("audit.db"), "node-a").unwrap();
    common::concurrent_writes_are_all_kept(Arc::new(store)).await;
}

/// What one process committed, another (`serialgate audit`, a restarted node) reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_survive_reopening_and_are_readable_while_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/audit.db");
    let writer = SqliteAudit::open(&path, "node-a").unwrap();
    writer
        .record(&common::api(
            1,
            "i-0123456789abcdef0",
            AuditOutcome::Success,
        ))
        .await
        .unwrap();
    let reader = SqliteAudit::open(&path, "cli").unwrap();
    assert_eq!(reader.query(&AuditQuery::default()).await.unwrap().len(), 1);
    drop(writer);
    drop(reader);
    let again = SqliteAudit::open(&path, "node-a").unwrap();
    let got = again.query(&AuditQuery::default()).await.unwrap();
    assert_eq!(got[0].request_id.as_deref(), Some("req-1"));
}

/// The trail names principals, addresses and key fingerprints: the database and the `-wal` and
/// `-shm` files SQLite creates beside it are owner-only whatever the umask, and a directory
/// created for it is 0700.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/audit.db");
    let store = SqliteAudit::open(&path, "node-a").unwrap();
    store
        .record(&common::api(
            1,
            "i-0123456789abcdef0",
            AuditOutcome::Success,
        ))
        .await
        .unwrap();
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    // While the store is open, in WAL mode, all three files exist.
    for name in ["audit.db", "audit.db-wal", "audit.db-shm"] {
        assert_eq!(mode(&dir.path().join("state").join(name)), 0o600, "{name}");
    }
}

/// Holds the database's write lock from a second connection, as another writer would: the
/// store's next commit stalls (in SQLite's busy wait) until the gate is opened.
struct Gate(rusqlite::Connection);

impl Gate {
    fn close(path: &std::path::Path) -> Gate {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        Gate(conn)
    }

    fn open(self) {
        self.0.execute_batch("COMMIT").unwrap();
    }
}

/// Whether request `n`'s record is in the database, as a fresh connection (another process)
/// sees it: committed, not merely queued.
fn committed(path: &std::path::Path, n: u64) -> bool {
    let conn = rusqlite::Connection::open(path).unwrap();
    let count: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE request_id = ?1",
            [format!("req-{n}")],
            |r| r.get(0),
        )
        .unwrap();
    count == 1
}

/// Starts `n` concurrent records (requests 0..n) while the gate holds the writer, and returns
/// once all of them are queued. Each task reports whether its record was committed at the
/// moment `record` returned.
async fn queue_behind_gate(
    store: &Arc<SqliteAudit>,
    path: &std::path::Path,
    n: u64,
) -> Vec<tokio::task::JoinHandle<bool>> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = Arc::clone(store);
            let path = path.to_owned();
            tokio::spawn(async move {
                store
                    .record(&common::api(
                        i,
                        "i-0123456789abcdef0",
                        AuditOutcome::Success,
                    ))
                    .await
                    .unwrap();
                committed(&path, i)
            })
        })
        .collect();
    while store.commit_stats().submitted < n {
        tokio::task::yield_now().await;
    }
    tasks
}

/// `record` returns only after the commit that holds its record: while the writer is held, no
/// caller is answered; afterwards each caller's record is visible to another connection the
/// moment its call returns.
#[tokio::test]
async fn records_are_acknowledged_only_once_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = Arc::new(SqliteAudit::open(&path, "node-a").unwrap());
    let gate = Gate::close(&path);
    let tasks = queue_behind_gate(&store, &path, 100).await;
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "a caller was answered while no commit could happen"
    );
    assert_eq!(store.commit_stats().commits, 0);
    gate.open();
    for t in tasks {
        assert!(
            t.await.unwrap(),
            "a record was acknowledged before it was committed"
        );
    }
    let stats = store.commit_stats();
    assert_eq!(stats.records, 100);
}

/// Group commit: the records that queue up while a commit is in progress all go into the next
/// one, whatever their number (up to the batch cap), not one commit each.
#[tokio::test]
async fn records_queued_during_a_commit_share_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = Arc::new(SqliteAudit::open(&path, "node-a").unwrap());
    let gate = Gate::close(&path);
    let tasks = queue_behind_gate(&store, &path, 300).await;
    gate.open();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    let stats = store.commit_stats();
    assert_eq!(stats.records, 300);
    // The commit the gate held (whatever the writer had taken by then), and one for the rest.
    assert!(stats.commits <= 2, "{stats:?}");
}

/// After a large group, a caller on its own is not held back waiting for the group to come
/// back: it is committed (within the store's 5 s timeout, which would otherwise fail it).
#[tokio::test]
async fn a_lone_record_after_a_group_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = Arc::new(SqliteAudit::open(&path, "node-a").unwrap());
    let gate = Gate::close(&path);
    let tasks = queue_behind_gate(&store, &path, 200).await;
    gate.open();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    let before = store.commit_stats();
    store
        .record(&common::api(
            1000,
            "i-0123456789abcdef0",
            AuditOutcome::Success,
        ))
        .await
        .unwrap();
    assert!(committed(&path, 1000));
    assert_eq!(store.commit_stats().commits, before.commits + 1);
}

/// A commit that fails answers every record in it with the error (none is reported as
/// stored), and the writer goes on with the next one.
#[tokio::test]
async fn a_failed_commit_fails_its_records_and_the_next_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    let store = SqliteAudit::open(&path, "node-a").unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON audit WHEN NEW.request_id = 'req-1'
         BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END;",
    )
    .unwrap();
    let err = store
        .record(&common::api(
            1,
            "i-0123456789abcdef0",
            AuditOutcome::Success,
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("simulated disk failure"), "{err}");
    assert!(!committed(&path, 1));
    store
        .record(&common::api(
            2,
            "i-0123456789abcdef0",
            AuditOutcome::Success,
        ))
        .await
        .unwrap();
    assert!(committed(&path, 2));
}
