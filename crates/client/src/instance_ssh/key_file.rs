//! The ephemeral private key on a tmpfs (`$XDG_RUNTIME_DIR`, else `/dev/shm`), for as long as
//! `ssh` runs: created exclusively with mode 0600 under an unguessable name, removed when the
//! guard drops, whatever ended the command.

use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use crate::errors::Failure;

/// The shared-memory file system every Linux mounts, when no per-user runtime dir is set.
const SHM: &str = "/dev/shm";

/// The directory the key goes to: `$XDG_RUNTIME_DIR` (a per-user tmpfs) when it names a
/// directory, else `/dev/shm`; never a disk.
pub fn directory(runtime_dir: Option<OsString>) -> Result<PathBuf, Failure> {
    let from_env = runtime_dir
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && p.is_dir());
    from_env
        .or_else(|| Some(PathBuf::from(SHM)).filter(|p| p.is_dir()))
        .ok_or_else(|| {
            Failure::other(
                "no memory-backed directory for the ephemeral key: set XDG_RUNTIME_DIR to one \
                 (or mount /dev/shm)",
            )
        })
}

/// A fresh, unguessable file name in `dir`.
pub fn new_path(dir: &Path) -> PathBuf {
    let tag: u128 = rand::random();
    dir.join(format!("serialgate-ssh-{tag:032x}"))
}

/// The key file; removed on drop.
#[derive(Debug)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    /// Writes `contents` to `path`, which must not exist (a file or link planted there is
    /// refused, not followed).
    pub fn create(path: PathBuf, contents: &[u8]) -> Result<Self, Failure> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                Failure::other(format!(
                    "cannot create the key file {}: {e}",
                    path.display()
                ))
            })?;
        // From here on the guard removes the file, also when writing fails.
        let guard = Self { path };
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                Failure::other(format!(
                    "cannot write the key file {}: {e}",
                    guard.path.display()
                ))
            })?;
        Ok(guard)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn the_runtime_dir_wins_when_it_exists() {
        let dir = tempfile::tempdir().unwrap();
        let chosen = directory(Some(dir.path().as_os_str().to_owned())).unwrap();
        assert_eq!(chosen, dir.path());
        if Path::new(SHM).is_dir() {
            let missing = dir.path().join("absent").into_os_string();
            assert_eq!(directory(Some(missing)).unwrap(), Path::new(SHM));
            assert_eq!(directory(Some("relative".into())).unwrap(), Path::new(SHM));
            assert_eq!(directory(None).unwrap(), Path::new(SHM));
        }
    }

    #[test]
    fn the_file_is_private_and_goes_with_the_guard() {
        let dir = tempfile::tempdir().unwrap();
        let path = new_path(dir.path());
        assert_ne!(path, new_path(dir.path()));
        let key = KeyFile::create(path.clone(), b"secret").unwrap();
        let meta = std::fs::metadata(key.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret");
        drop(key);
        assert!(!path.exists());
    }

    #[test]
    fn an_existing_file_or_link_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(KeyFile::create(link, b"secret").is_err());
        assert!(KeyFile::create(target.clone(), b"secret").is_err());
        // The refused attempts did not remove or change what was there.
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    }
}
