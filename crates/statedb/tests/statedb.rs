//! `state.db` from the outside: what is saved is what a restarted node loads, whoever wrote it
//! and however many wrote at once, and a file that is not a usable database says so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use console::control::StatePersistence;
use console::{AccountId, InstanceId, InstanceState};
use statedb::{FILE_NAME, StateDb};

const ALL_STATES: [InstanceState; 6] = [
    InstanceState::Pending,
    InstanceState::Running,
    InstanceState::Stopping,
    InstanceState::Stopped,
    InstanceState::ShuttingDown,
    InstanceState::Terminated,
];

fn instance(n: u32) -> InstanceId {
    InstanceId::parse(&format!("i-{n:017x}")).unwrap()
}

fn account(n: u32) -> AccountId {
    AccountId::parse(&format!("{n:012}")).unwrap()
}

#[tokio::test]
async fn a_new_database_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let saved = StateDb::open(dir.path()).unwrap().load().unwrap();
    assert!(saved.accounts.is_empty() && saved.instances.is_empty());
}

/// Every instance state and both switch positions survive a reopen, the latest write winning,
/// each key independent of the others.
#[tokio::test]
async fn switches_and_every_state_round_trip_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    for (n, state) in ALL_STATES.iter().enumerate() {
        let id = instance(u32::try_from(n).unwrap());
        // An earlier state first, so the one loaded must be the latest write.
        db.save_instance_state(&id, ALL_STATES[(n + 1) % ALL_STATES.len()])
            .await
            .unwrap();
        db.save_instance_state(&id, *state).await.unwrap();
    }
    db.save_serial_console_access(&account(1), false)
        .await
        .unwrap();
    db.save_serial_console_access(&account(1), true)
        .await
        .unwrap();
    db.save_serial_console_access(&account(2), true)
        .await
        .unwrap();
    db.save_serial_console_access(&account(2), false)
        .await
        .unwrap();
    drop(db);

    let db = StateDb::open(dir.path()).unwrap();
    let saved = db.load().unwrap();
    assert_eq!(saved.instances.len(), ALL_STATES.len());
    for (n, state) in ALL_STATES.iter().enumerate() {
        let id = instance(u32::try_from(n).unwrap());
        assert_eq!(saved.instances.get(id.as_str()), Some(state), "{id}");
    }
    assert_eq!(saved.accounts.get(account(1).as_str()), Some(&true));
    assert_eq!(saved.accounts.get(account(2).as_str()), Some(&false));
    assert_eq!(saved.accounts.len(), 2);

    // And a second generation of writes over the reopened file replaces the first.
    db.save_serial_console_access(&account(1), false)
        .await
        .unwrap();
    db.save_instance_state(&instance(0), InstanceState::Terminated)
        .await
        .unwrap();
    drop(db);
    let saved = StateDb::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(saved.accounts.get(account(1).as_str()), Some(&false));
    assert_eq!(
        saved.instances.get(instance(0).as_str()),
        Some(&InstanceState::Terminated)
    );
}

/// Many EC2 calls at once, from clones of one handle on several threads: every acknowledged
/// write is on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_through_one_handle_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let tasks: Vec<_> = (0..64u32)
        .map(|n| {
            let db = db.clone();
            tokio::spawn(async move {
                db.save_instance_state(&instance(n), ALL_STATES[n as usize % 6])
                    .await
                    .unwrap();
                db.save_serial_console_access(&account(n), n % 2 == 0)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    drop(db);
    let saved = StateDb::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(saved.instances.len(), 64);
    assert_eq!(saved.accounts.len(), 64);
    for n in 0..64u32 {
        assert_eq!(
            saved.instances.get(instance(n).as_str()),
            Some(&ALL_STATES[n as usize % 6])
        );
        assert_eq!(saved.accounts.get(account(n).as_str()), Some(&(n % 2 == 0)));
    }
}

/// Two handles on one file (two connections, as a second process would have) write at the same
/// time: the second waits for the first's lock instead of failing with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_writing_at_once_both_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let a = Arc::new(StateDb::open(dir.path()).unwrap());
    let b = Arc::new(StateDb::open(dir.path()).unwrap());
    let writer = |db: Arc<StateDb>, base: u32| {
        tokio::spawn(async move {
            for n in base..base + 100 {
                db.save_instance_state(&instance(n), InstanceState::Running)
                    .await
                    .unwrap();
            }
        })
    };
    let (ra, rb) = tokio::join!(writer(Arc::clone(&a), 0), writer(Arc::clone(&b), 1000));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(a.load().unwrap().instances.len(), 200);
}

/// A state written by a newer version is skipped, not fatal, and the rest still loads.
#[tokio::test]
async fn an_unknown_state_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    db.save_instance_state(&instance(1), InstanceState::Stopped)
        .await
        .unwrap();
    drop(db);
    let raw = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    raw.execute(
        "INSERT INTO instance_states (instance, state) VALUES (?1, 'hibernated')",
        [instance(2).as_str()],
    )
    .unwrap();
    drop(raw);
    let saved = StateDb::open(dir.path()).unwrap().load().unwrap();
    assert_eq!(
        saved.instances.get(instance(1).as_str()),
        Some(&InstanceState::Stopped)
    );
    assert!(!saved.instances.contains_key(instance(2).as_str()));
}

/// A `state.db` that is not a database is refused at open with the path and SQLite's reason,
/// and left as it was for the operator to look at.
#[tokio::test]
async fn a_corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    let junk = b"this is not an SQLite database, it is a text file of some length\n".repeat(100);
    std::fs::write(&path, &junk).unwrap();
    let err = StateDb::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("not a database"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), junk);
}

/// A state directory that cannot hold the file: the error names what is wrong and where.
#[tokio::test]
async fn a_state_dir_that_is_a_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("state");
    std::fs::write(&not_a_dir, b"").unwrap();
    let err = StateDb::open(&not_a_dir).unwrap_err().to_string();
    assert!(err.contains(&not_a_dir.display().to_string()), "{err}");
}

#[tokio::test]
async fn a_state_db_that_is_a_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    std::fs::create_dir(&path).unwrap();
    let err = StateDb::open(dir.path()).unwrap_err().to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
}

/// A write SQLite refuses (here a trigger aborts it, as a full disk or an I/O error would)
/// fails the EC2 call's save with SQLite's reason instead of being dropped.
#[tokio::test]
async fn a_refused_write_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(dir.path()).unwrap();
    let raw = rusqlite::Connection::open(dir.path().join(FILE_NAME)).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER refuse BEFORE UPDATE ON account_settings
         BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END;",
    )
    .unwrap();
    db.save_serial_console_access(&account(1), true)
        .await
        .unwrap();
    let err = db
        .save_serial_console_access(&account(1), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("state.db") && err.contains("simulated write failure"),
        "{err}"
    );
    assert_eq!(
        db.load().unwrap().accounts.get(account(1).as_str()),
        Some(&true)
    );
}
