//! State that must survive a restart: each account's serial console switch and each instance's
//! state as the EC2 calls last set it. SQLite in `state_dir` (`state.db`), written through on
//! every change; read once at startup.
//!
//! Writes are tiny and rare (an EC2 call), so a mutex around one connection, used from
//! `spawn_blocking`, is all the concurrency this needs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use console::control::StatePersistence;
use console::{AccountId, InstanceId, InstanceState, StoreError};
use rusqlite::{Connection, params};

/// The file name inside `state_dir`.
pub const FILE_NAME: &str = "state.db";

/// What was saved, as loaded at startup.
#[derive(Debug, Default, Clone)]
pub struct Saved {
    pub accounts: HashMap<String, bool>,
    pub instances: HashMap<String, InstanceState>,
}

/// The state database.
#[derive(Debug, Clone)]
pub struct StateDb {
    conn: Arc<Mutex<Connection>>,
}

impl StateDb {
    /// Opens (creating if needed) `state_dir/state.db`, owner-only (0600, and its `-wal`/`-shm`
    /// with it).
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
        private_files::create_dir(state_dir)
            .map_err(|e| StoreError::new(format!("{}: {e}", state_dir.display())))?;
        let path = state_dir.join(FILE_NAME);
        private_files::prepare_sqlite_file(&path)
            .map_err(|e| StoreError::new(format!("{}: {e}", path.display())))?;
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::new(format!("{}: {e}", path.display())))?;
        // Another connection on the file (a second process) waits for the lock instead of
        // failing the EC2 call with "database is locked".
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| StoreError::new(format!("{}: {e}", path.display())))?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS account_settings (
                 account TEXT PRIMARY KEY, serial_console_access INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS instance_states (
                 instance TEXT PRIMARY KEY, state TEXT NOT NULL);",
        )
        .map_err(|e| StoreError::new(format!("{}: {e}", path.display())))?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Everything saved so far.
    pub fn load(&self) -> Result<Saved, StoreError> {
        let conn = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        let err = |e: rusqlite::Error| StoreError::new(format!("state.db: {e}"));
        let mut saved = Saved::default();
        let mut q = conn
            .prepare("SELECT account, serial_console_access FROM account_settings")
            .map_err(err)?;
        let rows = q
            .query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? != 0))
            })
            .map_err(err)?;
        for row in rows {
            let (a, on) = row.map_err(err)?;
            saved.accounts.insert(a, on);
        }
        let mut q = conn
            .prepare("SELECT instance, state FROM instance_states")
            .map_err(err)?;
        let rows = q
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(err)?;
        for row in rows {
            let (i, s) = row.map_err(err)?;
            // An unknown state written by a newer version is ignored rather than fatal.
            if let Some(state) = InstanceState::parse(&s) {
                saved.instances.insert(i, state);
            }
        }
        Ok(saved)
    }

    async fn write(&self, sql: &'static str, a: String, b: String) -> Result<(), StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            conn.execute(sql, params![a, b])
                .map(|_| ())
                .map_err(|e| StoreError::new(format!("state.db: {e}")))
        })
        .await
        .map_err(|e| StoreError::new(format!("state.db writer: {e}")))?
    }
}

#[async_trait]
impl StatePersistence for StateDb {
    async fn save_instance_state(
        &self,
        instance: &InstanceId,
        state: InstanceState,
    ) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO instance_states (instance, state) VALUES (?1, ?2)
             ON CONFLICT(instance) DO UPDATE SET state = excluded.state",
            instance.to_string(),
            state.as_str().to_owned(),
        )
        .await
    }

    async fn save_serial_console_access(
        &self,
        account: &AccountId,
        on: bool,
    ) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO account_settings (account, serial_console_access) VALUES (?1, ?2)
             ON CONFLICT(account) DO UPDATE SET serial_console_access = excluded.serial_console_access",
            account.to_string(),
            if on { "1" } else { "0" }.to_owned(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(dir.path()).unwrap();
        let i = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let a = AccountId::parse("111122223333").unwrap();
        db.save_instance_state(&i, InstanceState::Running)
            .await
            .unwrap();
        db.save_instance_state(&i, InstanceState::Stopped)
            .await
            .unwrap();
        db.save_serial_console_access(&a, false).await.unwrap();
        drop(db);
        let saved = StateDb::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(
            saved.instances.get("i-0123456789abcdef0"),
            Some(&InstanceState::Stopped)
        );
        assert_eq!(saved.accounts.get("111122223333"), Some(&false));
    }

    /// state.db and the `-wal`/`-shm` files SQLite creates beside it are owner-only whatever
    /// the umask; a state directory created for it is 0700.
    #[cfg(unix)]
    #[tokio::test]
    async fn files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let db = StateDb::open(&dir).unwrap();
        db.save_serial_console_access(&AccountId::parse("111122223333").unwrap(), true)
            .await
            .unwrap();
        assert_eq!(mode(&dir), 0o700);
        for name in ["state.db", "state.db-wal", "state.db-shm"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
    }
}
