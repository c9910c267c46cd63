//! The gateway's persistent ed25519 host key, kept in `state_dir` with mode 0600.

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub use russh::keys::PrivateKey;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg};

/// File name of the host key inside `state_dir`.
pub const FILE_NAME: &str = "ssh_host_ed25519_key";

/// Host key problems, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("cannot create state directory {path} or make it private (0700): {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read host key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("host key {path} is not an OpenSSH private key: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("cannot write host key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate a host key: {0}")]
    Generate(String),
}

/// Loads the host key from `state_dir`, creating it on first use. The directory is made
/// private first (created 0700, or tightened to 0700 if group or others could use it).
pub fn load_or_create(state_dir: &Path) -> Result<PrivateKey, HostKeyError> {
    private_files::ensure_private_dir(state_dir).map_err(|source| HostKeyError::StateDir {
        path: state_dir.to_owned(),
        source,
    })?;
    let path = state_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => PrivateKey::from_openssh(&text).map_err(|e| HostKeyError::Parse {
            path: path.clone(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(&path),
        Err(source) => Err(HostKeyError::Read { path, source }),
    }
}

/// Loads the host key without creating it.
pub fn load(state_dir: &Path) -> Result<Option<PrivateKey>, HostKeyError> {
    let path = state_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => PrivateKey::from_openssh(&text)
            .map(Some)
            .map_err(|e| HostKeyError::Parse {
                path: path.clone(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HostKeyError::Read { path, source }),
    }
}

fn create(path: &Path) -> Result<PrivateKey, HostKeyError> {
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| HostKeyError::Generate(e.to_string()))?;
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| HostKeyError::Generate(e.to_string()))?;
    let write_err = |source| HostKeyError::Write {
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
    tracing::info!(path = %path.display(), fingerprint = %fingerprint(&key), "created SSH host key");
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
}
