//! Owner-only directories and files for `state_dir`, whatever the process umask.
//!
//! `state_dir` holds the SSH host key and the audit trail (principal ARNs, source addresses, key
//! fingerprints), so it is 0700 and every file serialgate creates in it is 0600. Modes are set
//! explicitly after creation: the umask can only take bits away, and a file that already
//! existed keeps whatever mode it had unless it is tightened here.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Mode of `state_dir` and the directories serialgate creates for it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file serialgate creates in `state_dir`.
pub const FILE_MODE: u32 = 0o600;

/// SQLite's companion files beside a database: it creates them with the database's own mode.
const SQLITE_COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Makes `dir` a private directory: creates it (and missing parents) 0700, or tightens an
/// existing one that group or others can use to 0700, logging that at info.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    create_dir(dir)?;
    tighten(dir, DIR_MODE, "directory")
}

/// Creates `dir` (and missing parents) 0700 if it does not exist; an existing directory is
/// left as it is (it may be someone else's, e.g. a temporary directory).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(DIR_MODE);
    }
    builder.create(dir)?;
    set_mode(dir, DIR_MODE)
}

/// Opens `path` for writing, truncated, created 0600 (an existing file is set to 0600 too).
pub fn create_file(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(FILE_MODE);
    }
    let file = opts.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(file)
}

/// Opens `path` for appending, created 0600 if missing; an existing file is tightened to 0600.
pub fn open_append(path: &Path) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(FILE_MODE);
    }
    let file = opts.open(path)?;
    tighten(path, FILE_MODE, "file")?;
    Ok(file)
}

/// Readies a SQLite database path before SQLite opens it: creates the file 0600 if it is
/// missing (SQLite itself would create it 0644 minus the umask) and tightens it and any
/// companion (`-wal`, `-shm`, `-journal`) that exists with wider modes. SQLite gives the
/// companions it creates later the database file's mode, so they are 0600 as well.
pub fn prepare_sqlite_file(path: &Path) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    // Neither truncate nor write: an existing database is only opened, never changed.
    opts.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(FILE_MODE);
    }
    drop(opts.open(path)?);
    tighten(path, FILE_MODE, "file")?;
    for suffix in SQLITE_COMPANIONS {
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        match tighten(Path::new(&companion), FILE_MODE, "file") {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

/// Sets `mode` on `path` if it has bits beyond it, logging the change.
fn tighten(path: &Path, mode: u32, what: &str) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let current = std::fs::metadata(path)?.permissions().mode() & 0o7777;
        if current & !mode != 0 {
            set_mode(path, mode)?;
            tracing::info!(
                path = %path.display(),
                "{what} was {current:04o}, accessible by group or others; set to {mode:04o}"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode, what);
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(test)]
#[cfg(unix)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn appended_files_are_0600_and_keep_their_contents() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("log");
        std::fs::write(&path, b"kept").unwrap();
        chmod(&path, 0o644);
        let mut f = open_append(&path).unwrap();
        std::io::Write::write_all(&mut f, b"+more").unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"kept+more");
        let fresh = tmp.path().join("fresh");
        drop(open_append(&fresh).unwrap());
        assert_eq!(mode(&fresh), 0o600);
    }

    #[test]
    fn new_directories_are_0700_parents_included() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/state");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&tmp.path().join("a/b")), 0o700);
    }

    #[test]
    fn an_open_directory_is_tightened_and_a_private_one_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, 0o755);
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // Already private but narrower: not widened.
        chmod(&dir, 0o500);
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o500);
        chmod(&dir, 0o700);
    }

    #[test]
    fn create_dir_leaves_an_existing_directory_alone() {
        let tmp = tempfile::tempdir().unwrap();
        chmod(tmp.path(), 0o755);
        create_dir(tmp.path()).unwrap();
        assert_eq!(mode(tmp.path()), 0o755);
        let fresh = tmp.path().join("fresh");
        create_dir(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
    }

    #[test]
    fn created_files_are_0600_even_if_they_existed_wider() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("key");
        drop(create_file(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        chmod(&path, 0o644);
        drop(create_file(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn sqlite_paths_are_created_0600_and_companions_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("x.db");
        prepare_sqlite_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);
        // An existing database keeps its content; it and a leftover WAL lose their wide modes.
        std::fs::write(&db, b"content").unwrap();
        chmod(&db, 0o644);
        let wal = tmp.path().join("x.db-wal");
        std::fs::write(&wal, b"").unwrap();
        chmod(&wal, 0o664);
        prepare_sqlite_file(&db).unwrap();
        assert_eq!(std::fs::read(&db).unwrap(), b"content");
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
        assert!(!tmp.path().join("x.db-shm").exists());
    }
}
