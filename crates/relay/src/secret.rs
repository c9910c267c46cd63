//! The secret every node of a cluster shares, which the relay handshake proves knowledge of.

use std::fmt;

use zeroize::Zeroizing;

/// The shortest secret accepted, in bytes: shorter ones could be guessed offline from a
/// recorded handshake.
pub const MIN_SECRET_BYTES: usize = 16;

/// The cluster secret. Zeroized on drop; prints as `***`; no comparison operators.
#[derive(Clone)]
pub struct ClusterSecret(Zeroizing<Vec<u8>>);

/// The secret given is shorter than [`MIN_SECRET_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cluster secret must be at least {MIN_SECRET_BYTES} bytes, got {0}")]
pub struct SecretTooShort(pub usize);

impl ClusterSecret {
    /// Takes the secret's bytes; the caller's copy is theirs to zeroize.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecretTooShort> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(SecretTooShort(bytes.len()));
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterSecret(***)")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(
            ClusterSecret::from_bytes(&[7; 15]).err(),
            Some(SecretTooShort(15))
        );
        assert_eq!(
            ClusterSecret::from_bytes(&[7; 16]).unwrap().expose(),
            [7; 16]
        );
    }

    #[test]
    fn debug_never_shows_the_bytes() {
        let secret = ClusterSecret::from_bytes(b"correct horse battery staple").unwrap();
        let printed = format!("{secret:?}");
        assert_eq!(printed, "ClusterSecret(***)");
    }
}
