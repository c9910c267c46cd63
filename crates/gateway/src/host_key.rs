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
    #[error("cannot create state directory {path}: {source}")]
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

/// Loads the host key from `state_dir`, creating it (and the directory) on first use.
pub fn load_or_create(state_dir: &Path) -> Result<PrivateKey, HostKeyError> {
    let path = state_dir.join(FILE_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) => PrivateKey::from_openssh(&text).map_err(|e| HostKeyError::Parse {
            path: path.clone(),
            reason: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(state_dir, &path),
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

fn create(state_dir: &Path, path: &Path) -> Result<PrivateKey, HostKeyError> {
    std::fs::create_dir_all(state_dir).map_err(|source| HostKeyError::StateDir {
        path: state_dir.to_owned(),
        source,
    })?;
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
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(write_err)?;
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

    #[test]
    fn created_once_with_0600_and_reused() {
        let dir = std::env::temp_dir().join(format!("sg-hostkey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let k1 = load_or_create(&dir).unwrap();
        let k2 = load_or_create(&dir).unwrap();
        assert_eq!(fingerprint(&k1), fingerprint(&k2));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(FILE_NAME))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(public_openssh(&k1).starts_with("ssh-ed25519 "));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
