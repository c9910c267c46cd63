//! The SQLite audit store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use audit::{AuditLog, AuditQuery, SqliteAudit};
use console::{AuditOutcome, AuditSink};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteAudit::open(&dir.path().join("audit.db"), "node-a").unwrap();
    common::records_round_trip(&store).await;
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
