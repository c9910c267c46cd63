//! SSH public keys as the service accepts them: OpenSSH or RFC 4716 (SSH2) text, `ssh-ed25519`
//! or `ssh-rsa` with a 2048–4096-bit modulus, 80–4096 characters — AWS's key-pair rules.

use std::fmt;

use base64::Engine as _;
use ssh_key::public::KeyData;
use ssh_key::{HashAlg, PublicKey};

/// Why a key was refused. The text completes "SSHPublicKey is invalid: …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("SSHPublicKey must be 80 to 4096 characters long, got {0}")]
    Length(usize),
    #[error("SSHPublicKey is not in OpenSSH (\"ssh-ed25519 AAAA…\") or SSH2 (RFC 4716) format")]
    Format,
    #[error("SSHPublicKey is not valid base64")]
    Base64,
    #[error("SSHPublicKey blob is truncated or malformed")]
    Blob,
    #[error(
        "SSHPublicKey type {0} is not supported; use ssh-ed25519 or ssh-rsa (2048 to 4096 bits)"
    )]
    UnsupportedType(String),
    #[error("SSHPublicKey type {declared} does not match the key blob ({actual})")]
    TypeMismatch { declared: String, actual: String },
    #[error("SSHPublicKey RSA modulus is {0} bits; 2048 to 4096 bits are supported")]
    RsaSize(usize),
    #[error("SSHPublicKey RSA key is invalid")]
    RsaInvalid,
}

/// A validated public key. Two keys are equal when their key material is equal (comments are
/// ignored), which is how the gateway matches an offered key against a grant.
#[derive(Clone)]
pub struct SshPublicKey {
    key: PublicKey,
    fingerprint: String,
}

impl SshPublicKey {
    /// Parses and validates a key as sent to `SendSerialConsoleSSHPublicKey`.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let chars = text.chars().count();
        if !(80..=4096).contains(&chars) {
            return Err(KeyError::Length(chars));
        }
        let trimmed = text.trim();
        let key = if trimmed.starts_with("---- BEGIN SSH2 PUBLIC KEY ----") {
            parse_rfc4716(trimmed)?
        } else {
            parse_openssh(trimmed)?
        };
        Self::from_key(key)
    }

    /// Wraps a key that came from a trusted source (an SSH handshake, a store), applying the
    /// same type rules.
    pub fn from_key(mut key: PublicKey) -> Result<Self, KeyError> {
        check_type(key.key_data())?;
        key.set_comment("");
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        Ok(Self { key, fingerprint })
    }

    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `ssh-ed25519`, `ssh-rsa`.
    pub fn algorithm(&self) -> String {
        self.key.algorithm().to_string()
    }

    pub fn key_data(&self) -> &KeyData {
        self.key.key_data()
    }

    /// True when `other` carries the same key material.
    pub fn matches(&self, other: &KeyData) -> bool {
        self.key.key_data() == other
    }

    /// Canonical one-line OpenSSH form without comment, for storage.
    pub fn to_openssh(&self) -> String {
        self.key.to_openssh().unwrap_or_default()
    }
}

impl PartialEq for SshPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.key.key_data() == other.key.key_data()
    }
}

impl Eq for SshPublicKey {}

impl fmt::Debug for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public keys are not secret, but logs only need the fingerprint.
        write!(
            f,
            "SshPublicKey({} {})",
            self.key.algorithm(),
            self.fingerprint
        )
    }
}

fn check_type(data: &KeyData) -> Result<(), KeyError> {
    match data {
        KeyData::Ed25519(_) => Ok(()),
        KeyData::Rsa(rsa) => {
            let n = rsa.n().as_positive_bytes().ok_or(KeyError::RsaInvalid)?;
            let e = rsa.e().as_positive_bytes().ok_or(KeyError::RsaInvalid)?;
            // An even modulus or exponent cannot be a real RSA key (AWS: "RSA - SSH Public key is invalid").
            let odd = |b: &[u8]| b.last().is_some_and(|x| x & 1 == 1);
            if !odd(n) || !odd(e) || e.len() > 8 {
                return Err(KeyError::RsaInvalid);
            }
            let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
            if (2048..=4096).contains(&bits) {
                Ok(())
            } else {
                Err(KeyError::RsaSize(bits))
            }
        }
        other => Err(KeyError::UnsupportedType(other.algorithm().to_string())),
    }
}

fn decode_blob(b64: &str) -> Result<PublicKey, KeyError> {
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| KeyError::Base64)?;
    PublicKey::from_bytes(&blob).map_err(|_| KeyError::Blob)
}

/// `TYPE BASE64 [COMMENT]`. Parsed by hand rather than with `PublicKey::from_openssh` so each
/// failure gets its own reason (bad base64 vs. truncated blob vs. mismatched type).
fn parse_openssh(line: &str) -> Result<PublicKey, KeyError> {
    if line.contains('\n') {
        return Err(KeyError::Format);
    }
    let mut parts = line.split_ascii_whitespace();
    let (Some(declared), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(KeyError::Format);
    };
    let known = [
        "ssh-ed25519",
        "ssh-rsa",
        "ssh-dss",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    if !known.contains(&declared) && !declared.ends_with("-cert-v01@openssh.com") {
        return Err(KeyError::Format);
    }
    if declared != "ssh-ed25519" && declared != "ssh-rsa" {
        return Err(KeyError::UnsupportedType(declared.to_owned()));
    }
    let key = decode_blob(b64)?;
    let actual = key.algorithm().to_string();
    if actual != declared {
        return Err(KeyError::TypeMismatch {
            declared: declared.to_owned(),
            actual,
        });
    }
    Ok(key)
}

/// RFC 4716: BEGIN/END markers, `Header: value` lines (a trailing `\` continues a header), then
/// the base64 body over one or more lines.
fn parse_rfc4716(text: &str) -> Result<PublicKey, KeyError> {
    let mut lines = text.lines().map(str::trim_end);
    if lines.next() != Some("---- BEGIN SSH2 PUBLIC KEY ----") {
        return Err(KeyError::Format);
    }
    let mut body = String::new();
    let mut in_header_continuation = false;
    let mut ended = false;
    for line in lines.by_ref() {
        if line == "---- END SSH2 PUBLIC KEY ----" {
            ended = true;
            break;
        }
        if in_header_continuation {
            in_header_continuation = line.ends_with('\\');
            continue;
        }
        if body.is_empty() && line.contains(':') {
            in_header_continuation = line.ends_with('\\');
            continue;
        }
        body.push_str(line.trim());
    }
    if !ended || lines.any(|l| !l.trim().is_empty()) || body.is_empty() {
        return Err(KeyError::Format);
    }
    decode_blob(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str = include_str!("../../../testdata/keys/ed25519.pub");
    const ED25519_RFC4716: &str = include_str!("../../../testdata/keys/ed25519.rfc4716.pub");
    const RSA2048: &str = include_str!("../../../testdata/keys/rsa2048.pub");
    const RSA2048_RFC4716: &str = include_str!("../../../testdata/keys/rsa2048.rfc4716.pub");
    const RSA3072: &str = include_str!("../../../testdata/keys/rsa3072.pub");
    const RSA4096: &str = include_str!("../../../testdata/keys/rsa4096.pub");
    const RSA1024: &str = include_str!("../../../testdata/keys/rsa1024.pub");
    const RSA5120: &str = include_str!("../../../testdata/keys/rsa5120.pub");
    const ECDSA: &str = include_str!("../../../testdata/keys/ecdsa256.pub");
    const DSA: &str = include_str!("../../../testdata/keys/dsa.pub");

    #[test]
    fn supported_keys_in_both_formats() {
        for k in [ED25519, RSA2048, RSA3072, RSA4096] {
            SshPublicKey::parse(k).unwrap();
        }
        assert_eq!(
            SshPublicKey::parse(RSA2048_RFC4716).unwrap(),
            SshPublicKey::parse(RSA2048).unwrap()
        );
        assert_eq!(
            SshPublicKey::parse(ED25519_RFC4716).unwrap(),
            SshPublicKey::parse(ED25519).unwrap()
        );
    }

    #[test]
    fn unsupported_keys() {
        assert_eq!(SshPublicKey::parse(RSA1024), Err(KeyError::RsaSize(1024)));
        assert_eq!(SshPublicKey::parse(RSA5120), Err(KeyError::RsaSize(5120)));
        assert!(matches!(
            SshPublicKey::parse(ECDSA),
            Err(KeyError::UnsupportedType(_))
        ));
        assert!(matches!(
            SshPublicKey::parse(DSA),
            Err(KeyError::UnsupportedType(_))
        ));
    }

    #[test]
    fn ed25519_accepted_and_fingerprinted() {
        let k = SshPublicKey::parse(ED25519).unwrap();
        assert_eq!(k.algorithm(), "ssh-ed25519");
        assert!(k.fingerprint().starts_with("SHA256:"));
        assert_eq!(k.fingerprint().len(), "SHA256:".len() + 43);
    }

    #[test]
    fn comment_does_not_change_identity() {
        let a = SshPublicKey::parse(ED25519).unwrap();
        let no_comment = ED25519.trim().rsplit_once(' ').unwrap().0;
        let b = SshPublicKey::parse(&format!("{no_comment} other-comment-padding")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn rfc4716_form_matches_openssh_form() {
        let b64 = ED25519.split(' ').nth(1).unwrap();
        let text = format!(
            "---- BEGIN SSH2 PUBLIC KEY ----\nComment: \"a long \\\n comment\"\n{}\n{}\n---- END SSH2 PUBLIC KEY ----\n",
            &b64[..40],
            &b64[40..]
        );
        let a = SshPublicKey::parse(&text).unwrap();
        assert_eq!(a, SshPublicKey::parse(ED25519).unwrap());
    }

    #[test]
    fn rejects() {
        assert_eq!(
            SshPublicKey::parse("ssh-ed25519 AAAA"),
            Err(KeyError::Length(16))
        );
        let pad = "x".repeat(80);
        assert_eq!(
            SshPublicKey::parse(&format!("ssh-ed25519 !!!notbase64 {pad}")),
            Err(KeyError::Base64)
        );
        // Truncated blob: cut the base64 on a 4-char boundary.
        let b64 = ED25519.split(' ').nth(1).unwrap();
        assert_eq!(
            SshPublicKey::parse(&format!("ssh-ed25519 {} {pad}", &b64[..48])),
            Err(KeyError::Blob)
        );
        assert!(matches!(
            SshPublicKey::parse(&format!("ssh-rsa {b64} {pad}")),
            Err(KeyError::TypeMismatch { .. })
        ));
        assert!(matches!(
            SshPublicKey::parse(&format!("ecdsa-sha2-nistp256 {b64} {pad}")),
            Err(KeyError::UnsupportedType(_))
        ));
        assert!(matches!(
            SshPublicKey::parse(&format!("sk-ssh-ed25519@openssh.com {b64} {pad}")),
            Err(KeyError::UnsupportedType(_))
        ));
        assert!(matches!(
            SshPublicKey::parse(&format!("ssh-dss {b64} {pad}")),
            Err(KeyError::UnsupportedType(_))
        ));
        assert_eq!(
            SshPublicKey::parse(&format!("hello world {pad}")),
            Err(KeyError::Format)
        );
        assert_eq!(
            SshPublicKey::parse(&format!("---- BEGIN SSH2 PUBLIC KEY ----\n{b64}\n{pad}")),
            Err(KeyError::Format)
        );
    }
}
