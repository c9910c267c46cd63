//! The instance's configuration for `authorized-keys` (TOML, by default
//! `/etc/serialgate/authorized-keys.toml`): where the API is, who this instance is, its key
//! token, and the signer key its records must carry.
//!
//! A VM serialgate runs itself needs no token: its `http://169.254.169.254` is a channel QEMU
//! opens to serialgate for that VM alone, which names the instance. Any other endpoint needs one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use ssh_key::{Algorithm, PublicKey};

use super::fetch::Endpoint;

/// Where sshd's command finds its configuration unless `--config` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/serialgate/authorized-keys.toml";
/// The whole fetch (connect, TLS, request, answer), milliseconds.
const DEFAULT_TIMEOUT_MS: u64 = 2000;
/// sshd waits for the command; a login must not hang on an unreachable API for long.
const MAX_TIMEOUT_MS: u64 = 30_000;
/// The server refuses shorter tokens; refusing them here says so at once.
const MIN_TOKEN_BYTES: usize = 16;
/// Where a managed VM reaches serialgate (as EC2 guests reach instance metadata): the only
/// endpoint that needs no token.
pub const VM_ENDPOINT_HOST: &str = "169.254.169.254";

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The serialgate API listener, `http://…` or `https://…`.
    endpoint: String,
    /// This instance's id.
    instance_id: String,
    /// The instance's key token, inline (prefer `key_token_file`).
    key_token: Option<String>,
    /// A file holding the key token (trailing newlines ignored); should be mode 0600.
    key_token_file: Option<PathBuf>,
    /// The serialgate signer's public key, `ssh-ed25519 AAAA… serialgate-signer` (printed by
    /// `serialgate signer-key`).
    signer_public_key: String,
    /// A PEM file of the CAs to trust for https instead of the system's.
    ca_file: Option<PathBuf>,
    /// The whole fetch, milliseconds (default 2000, at most 30000).
    timeout_ms: Option<u64>,
}

/// The key token; never printed.
pub struct Token(Vec<u8>);

impl Token {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.0.zeroize();
    }
}

/// The checked configuration.
#[derive(Debug)]
pub struct HelperConfig {
    pub endpoint: Endpoint,
    pub instance_id: String,
    /// None only for a managed VM's endpoint (see the module's comment).
    pub token: Option<Token>,
    pub signer: PublicKey,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Things worth an operator's attention that do not stop the command.
    pub warnings: Vec<String>,
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<HelperConfig, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    parse(&text, &shown.to_string())
}

fn parse(text: &str, origin: &str) -> Result<HelperConfig, String> {
    let file: File = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
    let mut warnings = Vec::new();
    let endpoint = Endpoint::parse(&file.endpoint).map_err(|e| format!("{origin}: {e}"))?;
    if !valid_instance_id(&file.instance_id) {
        return Err(format!(
            "{origin}: instance_id {:?} is not an instance id (i- and lowercase hex)",
            file.instance_id
        ));
    }
    let token = match (file.key_token, &file.key_token_file) {
        (Some(inline), None) => Some(inline.into_bytes()),
        (None, Some(path)) => {
            if readable_by_others(path) {
                warnings.push(format!(
                    "{origin}: key_token_file {} is accessible by group or others; chmod 600 it",
                    path.display()
                ));
            }
            let mut bytes = std::fs::read(path).map_err(|e| {
                format!(
                    "{origin}: cannot read key_token_file {}: {e}",
                    path.display()
                )
            })?;
            while bytes.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
                bytes.pop();
            }
            Some(bytes)
        }
        (Some(_), Some(_)) => {
            return Err(format!(
                "{origin}: give only one of key_token, key_token_file"
            ));
        }
        (None, None) if endpoint.host == VM_ENDPOINT_HOST && !endpoint.tls => None,
        (None, None) => {
            return Err(format!(
                "{origin}: key_token_file (or key_token) is missing (only a VM serialgate runs, \
                 at http://{VM_ENDPOINT_HOST}, needs none)"
            ));
        }
    };
    let token = token.map(Token);
    if token.as_ref().is_some_and(|t| t.0.len() < MIN_TOKEN_BYTES) {
        return Err(format!(
            "{origin}: the key token must be at least {MIN_TOKEN_BYTES} bytes"
        ));
    }
    let signer = parse_signer(&file.signer_public_key)
        .map_err(|e| format!("{origin}: signer_public_key: {e}"))?;
    let timeout_ms = file.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(format!(
            "{origin}: timeout_ms must be 1 to {MAX_TIMEOUT_MS}, got {timeout_ms}"
        ));
    }
    Ok(HelperConfig {
        endpoint,
        instance_id: file.instance_id,
        token,
        signer,
        ca_file: file.ca_file,
        timeout: Duration::from_millis(timeout_ms),
        warnings,
    })
}

/// The pinned signer from its OpenSSH line (`ssh-ed25519 AAAA… serialgate-signer`).
fn parse_signer(line: &str) -> Result<PublicKey, String> {
    let key = PublicKey::from_openssh(line.trim())
        .map_err(|e| format!("not an OpenSSH public key line: {e}"))?;
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(format!(
            "the signer key must be ssh-ed25519, not {}",
            key.algorithm()
        ));
    }
    Ok(key)
}

/// `i-` and lowercase hex, 10 to 32 characters (EC2's instance id shape).
fn valid_instance_id(id: &str) -> bool {
    (10..=32).contains(&id.len())
        && id
            .strip_prefix("i-")
            .is_some_and(|hex| hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

fn readable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
}

#[cfg(test)]
mod tests {
    use ssh_key::PrivateKey;

    use super::*;

    fn signer_line() -> String {
        let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        format!(
            "{} serialgate-signer",
            key.public_key().to_openssh().unwrap()
        )
    }

    fn config(extra: &str) -> String {
        format!(
            "endpoint = \"https://keys.example.com:8443\"\ninstance_id = \"i-0123456789abcdef0\"\n\
             signer_public_key = \"{}\"\n{extra}",
            signer_line()
        )
    }

    #[test]
    fn a_full_configuration() {
        let c = parse(
            &config(
                "key_token = \"0123456789abcdef\"\nca_file = \"/etc/ca.pem\"\ntimeout_ms = 500\n",
            ),
            "t",
        )
        .unwrap();
        assert_eq!(c.endpoint.port, 8443);
        assert_eq!(c.instance_id, "i-0123456789abcdef0");
        assert_eq!(c.token.as_ref().unwrap().as_bytes(), b"0123456789abcdef");
        assert_eq!(c.ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert!(
            !format!("{c:?}").contains("0123456789abcdef\""),
            "the token is redacted"
        );
    }

    #[test]
    fn the_token_file_is_read_and_checked() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef-file\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let text = config(&format!(
            "key_token_file = {:?}\n",
            path.display().to_string()
        ));
        let c = parse(&text, "t").unwrap();
        assert_eq!(
            c.token.as_ref().unwrap().as_bytes(),
            b"0123456789abcdef-file"
        );
        assert_eq!(c.timeout, Duration::from_millis(DEFAULT_TIMEOUT_MS));
        assert!(c.warnings.is_empty());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = parse(&text, "t").unwrap();
        assert!(c.warnings[0].contains("chmod 600"), "{:?}", c.warnings);
    }

    #[test]
    fn mistakes_are_refused_with_the_key_named() {
        let cases = [
            (config(""), "key_token_file"),
            (config("key_token = \"short\"\n"), "at least 16 bytes"),
            (
                config("key_token = \"0123456789abcdef\"\nkey_token_file = \"/x\"\n"),
                "only one",
            ),
            (
                config("key_token = \"0123456789abcdef\"\ntimeout_ms = 0\n"),
                "timeout_ms",
            ),
            (
                config("key_token = \"0123456789abcdef\"\nbogus = 1\n"),
                "unknown field",
            ),
            (
                config("key_token = \"0123456789abcdef\"\n")
                    .replace("i-0123456789abcdef0", "i-XYZ"),
                "instance_id",
            ),
            (
                config("key_token = \"0123456789abcdef\"\n").replace("https://", "ftp://"),
                "http://",
            ),
            (
                config("key_token = \"0123456789abcdef\"\n").replace("ssh-ed25519", "ssh-rsa"),
                "signer_public_key",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text, "t").unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
    }

    #[test]
    fn only_a_managed_vms_endpoint_goes_without_a_token() {
        let vm = config("").replace("https://keys.example.com:8443", "http://169.254.169.254");
        let c = parse(&vm, "t").unwrap();
        assert!(c.token.is_none());
        assert_eq!(
            (c.endpoint.host.as_str(), c.endpoint.port),
            (VM_ENDPOINT_HOST, 80)
        );
        let with_token = parse(&format!("{vm}key_token = \"0123456789abcdef\"\n"), "t").unwrap();
        assert!(with_token.token.is_some());
        for elsewhere in ["https://169.254.169.254", "http://169.254.169.253"] {
            let text = config("").replace("https://keys.example.com:8443", elsewhere);
            let err = parse(&text, "t").unwrap_err();
            assert!(err.contains("key_token_file"), "{elsewhere}: {err}");
        }
    }

    #[test]
    fn the_signer_must_be_ed25519() {
        assert!(parse_signer(&format!("{}\n", signer_line())).is_ok());
        assert!(parse_signer("ssh-ed25519 AAAA").is_err());
        let ecdsa = PrivateKey::random(
            &mut rand::rng(),
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP256,
            },
        )
        .unwrap();
        let err = parse_signer(&ecdsa.public_key().to_openssh().unwrap()).unwrap_err();
        assert!(err.contains("must be ssh-ed25519"), "{err}");
    }

    #[test]
    fn instance_ids() {
        assert!(valid_instance_id("i-0123456789abcdef0"));
        assert!(valid_instance_id("i-01234567"));
        assert!(!valid_instance_id("i-0123456"));
        assert!(!valid_instance_id("i-0123456789ABCDEF0"));
        assert!(!valid_instance_id("x-0123456789abcdef0"));
    }
}
