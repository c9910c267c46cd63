//! Secret material (secret access keys, session tokens) and the lookup seam that supplies it.

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A secret access key or session token.
///
/// There is deliberately no `PartialEq` and no `Display`: the only comparison is the
/// crate-internal constant-time one, and the only way to print it is `Debug`, which redacts.
/// The bytes are wiped when the value is dropped so they do not linger in freed memory.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret. The caller's own copies (config strings, env vars) are not wiped.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the rare caller that must hand it on (e.g. a client signer).
    /// The name is meant to stand out in review.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// Compares with `other` in time independent of where the bytes differ.
    pub(crate) fn ct_eq_bytes(&self, other: &[u8]) -> bool {
        bool::from(self.0.as_bytes().ct_eq(other))
    }
}

impl From<String> for SecretKey {
    fn from(secret: String) -> Self {
        Self(secret)
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

/// What a [`SecretLookup`] returns for a known access key id.
#[derive(Debug, Clone)]
pub struct SigningSecret<P> {
    /// The secret access key.
    pub secret: SecretKey,
    /// For temporary credentials: the token the client must send as `X-Amz-Security-Token`.
    /// When `None`, a request that carries the header is rejected.
    pub session_token: Option<SecretKey>,
    /// Who this key belongs to; handed back inside [`crate::Verified`].
    pub principal: P,
}

impl<P> SigningSecret<P> {
    /// A long-term credential (no session token).
    pub fn new(secret: SecretKey, principal: P) -> Self {
        Self {
            secret,
            session_token: None,
            principal,
        }
    }

    /// Marks the credential as temporary, bound to `token`.
    #[must_use]
    pub fn with_session_token(mut self, token: SecretKey) -> Self {
        self.session_token = Some(token);
        self
    }
}

/// Where the verifier gets the secret for an access key id.
///
/// The verifier calls `lookup` at most once per request, and only after every check that needs
/// no secret has passed, so an implementation may do I/O without being an amplifier for junk
/// requests.
pub trait SecretLookup {
    /// The identity attached to a key, returned to the caller on success.
    type Principal;

    /// The secret for `access_key_id`, or `None` if the key is unknown (or disabled).
    fn lookup(&self, access_key_id: &str) -> Option<SigningSecret<Self::Principal>>;
}

/// Closures work as lookups, which keeps tests and simple wiring short.
impl<P, F> SecretLookup for F
where
    F: Fn(&str) -> Option<SigningSecret<P>>,
{
    type Principal = P;

    fn lookup(&self, access_key_id: &str) -> Option<SigningSecret<P>> {
        self(access_key_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtoken";

    #[test]
    fn debug_redacts_secret_key() {
        let key = SecretKey::new(SECRET);
        let shown = format!("{key:?}");
        assert_eq!(shown, "SecretKey(***)");
        assert!(!shown.contains(SECRET));
        assert!(!format!("{key:#?}").contains(SECRET));
    }

    #[test]
    fn debug_redacts_signing_secret_and_token() {
        let s = SigningSecret::new(SecretKey::new(SECRET), "alice")
            .with_session_token(SecretKey::new(TOKEN));
        for shown in [format!("{s:?}"), format!("{s:#?}")] {
            assert!(!shown.contains(SECRET), "{shown}");
            assert!(!shown.contains(TOKEN), "{shown}");
            assert!(shown.contains("alice"), "principal is not secret: {shown}");
        }
    }

    #[test]
    fn constant_time_compare_is_exact() {
        let key = SecretKey::new("abc");
        assert!(key.ct_eq_bytes(b"abc"));
        assert!(!key.ct_eq_bytes(b"abd"));
        assert!(!key.ct_eq_bytes(b"ab"));
        assert!(!key.ct_eq_bytes(b"abcd"));
    }

    #[test]
    fn closure_is_a_lookup() {
        let lookup = |id: &str| (id == "AKID").then(|| SigningSecret::new(SecretKey::new("s"), 7));
        assert_eq!(lookup.lookup("AKID").map(|s| s.principal), Some(7));
        assert!(lookup.lookup("OTHER").is_none());
    }
}
