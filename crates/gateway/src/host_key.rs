//! The gateway's persistent ed25519 host key, kept in `state_dir` with mode 0600, and the
//! machinery behind it for any such key (the instance key signer is another).

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg};

/// File name of the host key inside `state_dir`.
pub const FILE_NAME: &str = "ssh_host_ed25519_key";

/// A persistent ed25519 key in `state_dir`: its file name, and what messages call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyFile {
    pub file_name: &'static str,
    pub what: &'static str,
}

/// The SSH host key.
pub const HOST_KEY: KeyFile = KeyFile {
    file_name: FILE_NAME,
    what: "SSH host key",
};

/// Key file problems, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("cannot create state directory {path} or make it private (0700): {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path} is not an OpenSSH private key: {reason}")]
    Parse {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot write {what} {path}: {source}")]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a {what}: {reason}")]
    Generate { what: &'static str, reason: String },
}

/// Loads the host key from `state_dir`, creating it on first use. The directory is made
/// private first (created 0700, or tightened to 0700 if group or others could use it).
pub fn load_or_create(state_dir: &Path) -> Result<PrivateKey, KeyFileError> {
    load_or_create_file(state_dir, HOST_KEY)
}

/// Loads `file` from `state_dir`, creating a new ed25519 key there on first use, after making
/// the directory private as [`load_or_create`] does.
pub fn load_or_create_file(state_dir: &Path, file: KeyFile) -> Result<PrivateKey, KeyFileError> {
    private_files::ensure_private_dir(state_dir).map_err(|source| KeyFileError::StateDir {
        path: state_dir.to_owned(),
        source,
    })?;
    match load_file(state_dir, file)? {
        Some(key) => Ok(key),
        None => create(&state_dir.join(file.file_name), file.what),
    }
}

/// Loads the host key without creating it.
pub fn load(state_dir: &Path) -> Result<Option<PrivateKey>, KeyFileError> {
    load_file(state_dir, HOST_KEY)
}

/// Loads `file` from `state_dir` without creating it.
pub fn load_file(state_dir: &Path, file: KeyFile) -> Result<Option<PrivateKey>, KeyFileError> {
    let path = state_dir.join(file.file_name);
    match std::fs::read_to_string(&path) {
        Ok(text) => PrivateKey::from_openssh(&text)
            .map(Some)
            .map_err(|e| KeyFileError::Parse {
                what: file.what,
                path: path.clone(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyFileError::Read {
            what: file.what,
            path,
            source,
        }),
    }
}

fn create(path: &Path, what: &'static str) -> Result<PrivateKey, KeyFileError> {
    let generate = |e: russh::keys::ssh_key::Error| KeyFileError::Generate {
        what,
        reason: e.to_string(),
    };
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(generate)?;
    let text = key.to_openssh(LineEnding::LF).map_err(generate)?;
    let write_err = |source| KeyFileError::Write {
        what,
        path: path.to_owned(),
        source,
    };
    // Write to a temporary file created 0600, then rename: the key is never readable by others
    // and a crash never leaves half a key behind.
    let tmp = path.with_extension("tmp");
    let mut f = private_files::create_file(&tmp).map_err(write_err)?;
    f.write_all(text.as_bytes()).map_err(write_err)?;
    f.sync_all().map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)?;
    tracing::info!(path = %path.display(), fingerprint = %fingerprint(&key), "created {what}");
    Ok(key)
}

/// `SHA256:…` of the public half.
pub fn fingerprint(key: &PrivateKey) -> String {
    key.public_key().fingerprint(HashAlg::Sha256).to_string()
}

/// The public half in OpenSSH form.
pub fn public_openssh(key: &PrivateKey) -> String {
    key.public_key().to_openssh().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn created_once_with_0600_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let k1 = load_or_create(&dir).unwrap();
        let k2 = load_or_create(&dir).unwrap();
        assert_eq!(fingerprint(&k1), fingerprint(&k2));
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
            assert_eq!(mode(&dir), 0o700, "state_dir is created private");
        }
        assert!(public_openssh(&k1).starts_with("ssh-ed25519 "));
    }

    #[cfg(unix)]
    #[test]
    fn an_open_state_dir_is_tightened() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let k1 = load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // Also on a later start, with the key already there.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o750)).unwrap();
        let k2 = load_or_create(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(fingerprint(&k1), fingerprint(&k2));
    }

    #[test]
    fn another_key_file_is_a_separate_key_with_the_same_care() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let other = KeyFile {
            file_name: "other_ed25519",
            what: "other key",
        };
        assert!(load_file(&dir, other).unwrap().is_none());
        let host = load_or_create(&dir).unwrap();
        let k1 = load_or_create_file(&dir, other).unwrap();
        let k2 = load_file(&dir, other).unwrap().unwrap();
        assert_eq!(fingerprint(&k1), fingerprint(&k2));
        assert_ne!(fingerprint(&host), fingerprint(&k1));
        #[cfg(unix)]
        assert_eq!(mode(&dir.join("other_ed25519")), 0o600);
        std::fs::write(dir.join("other_ed25519"), "junk").unwrap();
        let e = load_or_create_file(&dir, other).unwrap_err().to_string();
        assert!(e.starts_with("other key "), "{e}");
        assert!(e.contains("is not an OpenSSH private key"), "{e}");
    }
}
