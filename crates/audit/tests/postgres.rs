//! The PostgreSQL audit store against a real, throwaway PostgreSQL cluster (`initdb` + `pg_ctl`
//! in a temporary directory, on a free loopback port), started and stopped by this test.
//! Fails, never skips, when PostgreSQL's server programs are missing: CI installs them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit::{AuditLog, AuditQuery, PgAudit};
use console::{AuditOutcome, AuditSink};

/// A running cluster, stopped (immediately) on drop.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl Cluster {
    fn url(&self) -> String {
        format!("postgres://serialgate@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> std::process::Output {
        run(&self.bin.join("pg_ctl"), args, self.as_postgres)
    }

    fn stop(&self) {
        let data = self.dir.path().join("data");
        self.pg_ctl(&[
            "stop",
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
        ]);
    }

    fn start(&self) {
        let data = self.dir.path().join("data");
        let sock = self.dir.path().to_str().unwrap().to_owned();
        let opts = format!(
            "-p {} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port
        );
        let out = self.pg_ctl(&[
            "start",
            "-D",
            data.to_str().unwrap(),
            "-l",
            self.dir.path().join("log").to_str().unwrap(),
            "-o",
            &opts,
            "-w",
            "-t",
            "30",
        ]);
        let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
        assert!(out.status.success(), "pg_ctl start: {out:?}\n{log}");
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(bin: &Path, args: &[&str], as_postgres: bool) -> std::process::Output {
    let mut cmd = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.args(args).output().expect("run a PostgreSQL program")
}

/// The newest `/usr/lib/postgresql/*/bin`, or the directory of `initdb` on the PATH.
fn server_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    versions.sort();
    if let Some(bin) = versions.pop() {
        return bin;
    }
    let which = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match which.and_then(|p| p.parent().map(Path::to_owned)) {
        Some(dir) => dir,
        None => panic!(
            "PostgreSQL's server programs (initdb, pg_ctl) are not installed, and this test \
             needs them (it does not skip). Install: apt-get install --no-install-recommends \
             postgresql"
        ),
    }
}

fn start_cluster() -> Cluster {
    let bin = server_bin();
    let dir = tempfile::tempdir().unwrap();
    // initdb refuses to run as root: then the cluster belongs to the postgres user.
    let as_postgres = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if as_postgres {
        let ok = Command::new("chown")
            .args(["-R", "postgres:", dir.path().to_str().unwrap()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown the cluster directory to postgres");
    }
    let data = dir.path().join("data");
    let out = run(
        &bin.join("initdb"),
        &[
            "-D",
            data.to_str().unwrap(),
            "-A",
            "trust",
            "-U",
            "serialgate",
            "--no-sync",
        ],
        as_postgres,
    );
    assert!(out.status.success(), "initdb: {out:?}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = Cluster {
        bin,
        dir,
        port,
        as_postgres,
    };
    cluster.start();
    cluster
}

/// One cluster for the whole property list: starting one costs seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store() {
    let cluster = start_cluster();
    // A table of the first layout, as an older version created it, with one record.
    let (old, connection) = tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    old.batch_execute(
        "CREATE TABLE serialgate_audit (id BIGSERIAL PRIMARY KEY, time_ms BIGINT NOT NULL, \
         kind TEXT NOT NULL, request_id TEXT, operation TEXT, session_id TEXT, \
         principal_arn TEXT, source_ip TEXT, instance_id TEXT, target TEXT, key_fingerprint TEXT, \
         outcome TEXT NOT NULL, duration_ms BIGINT, bytes_in BIGINT, bytes_out BIGINT, \
         node TEXT NOT NULL);
         INSERT INTO serialgate_audit (time_ms, kind, request_id, outcome, node) \
         VALUES (1, 'api', 'old-1', 'success', 'node-0');",
    )
    .await
    .unwrap();
    let store = PgAudit::new(&cluster.url(), "node-a").unwrap();
    store.connect().await.unwrap();
    let got = store.query(&AuditQuery::default()).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (
            got[0].request_id.as_deref(),
            got[0].count,
            got[0].statement.as_deref()
        ),
        (Some("old-1"), None, None)
    );
    old.batch_execute("DELETE FROM serialgate_audit")
        .await
        .unwrap();
    common::records_round_trip(&store).await;
    common::refusals_round_trip(&store).await;
    common::denials_round_trip(&store).await;
    // A second connection finds the columns there (nothing to add, no error).
    PgAudit::new(&cluster.url(), "node-c")
        .unwrap()
        .connect()
        .await
        .unwrap();

    // A second node on the same table sees the first node's records, and adds its own.
    let other: Arc<dyn AuditLog> = Arc::new(PgAudit::new(&cluster.url(), "node-b").unwrap());
    common::concurrent_writes_are_all_kept(Arc::clone(&other)).await;
    assert_eq!(
        store.query(&AuditQuery::default()).await.unwrap().len(),
        209
    );

    // PostgreSQL away: writes fail (so pushes fail closed), within the bound.
    cluster.stop();
    let started = Instant::now();
    let r = store
        .record(&common::api(
            9,
            "i-0123456789abcdef0",
            AuditOutcome::Success,
        ))
        .await;
    assert!(r.is_err(), "write while PostgreSQL is down");
    assert!(started.elapsed() < Duration::from_secs(6));

    // Back: the store reconnects by itself.
    cluster.start();
    store
        .record(&common::api(
            10,
            "i-0123456789abcdef0",
            AuditOutcome::Success,
        ))
        .await
        .unwrap();
    let got = store.query(&AuditQuery::default()).await.unwrap();
    assert!(
        got.iter()
            .any(|r| r.request_id.as_deref() == Some("req-10"))
    );
    assert!(!got.iter().any(|r| r.request_id.as_deref() == Some("req-9")));
}

#[test]
fn a_bad_url_is_refused_without_connecting() {
    assert!(PgAudit::new("postgres://[::1:5432/x", "n").is_err());
}
