//! The browser's secret: 32 random bytes in a cookie, from which the server derives the key
//! its grant names. Only the holder of the cookie can present that key; no SSH client can,
//! since the "public key" is a hash that no private key is known for.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use ssh_key::public::{Ed25519PublicKey, KeyData};

pub(super) const NAME: &str = "serialgate-console";

/// A fresh secret.
pub(super) fn new_secret() -> Result<[u8; 32], String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("no randomness: {e}"))?;
    Ok(secret)
}

/// What `secret` stands for: the bytes of the key a grant names for it.
pub(super) fn key_bytes(secret: &[u8; 32]) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"serialgate browser console key\0")
        .chain_update(secret)
        .finalize()
        .into()
}

/// The key a grant names for `key_bytes(secret)`.
pub(super) fn key_data(key: &[u8; 32]) -> KeyData {
    KeyData::Ed25519(Ed25519PublicKey(*key))
}

/// The key a grant names for `secret`.
pub(super) fn key_for(secret: &[u8; 32]) -> KeyData {
    key_data(&key_bytes(secret))
}

/// `Set-Cookie` for `secret`: only for this console's path, for as long as its grant lives,
/// never readable by scripts, never sent cross-site, only over TLS when the page is.
pub(super) fn set_cookie(secret: &[u8; 32], path: &str, max_age_secs: u64, secure: bool) -> String {
    let value = URL_SAFE_NO_PAD.encode(secret);
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{NAME}={value}; Path={path}; Max-Age={max_age_secs}; HttpOnly; SameSite=Strict{secure}"
    )
}

/// The secret from a request's cookies, if it carries a well-formed one.
pub(super) fn secret(headers: &HeaderMap) -> Option<[u8; 32]> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == NAME)
        .find_map(|(_, value)| {
            let bytes = URL_SAFE_NO_PAD.decode(value.as_bytes()).ok()?;
            <[u8; 32]>::try_from(bytes.as_slice()).ok()
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_carries_the_secret_back() {
        let made = new_secret().unwrap();
        let set = set_cookie(&made, "/console/i-0123456789abcdef0/0", 60, true);
        assert!(set.contains("HttpOnly; SameSite=Strict; Secure"), "{set}");
        let value = set.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, format!("other=1; {value}").parse().unwrap());
        assert_eq!(secret(&headers), Some(made));
        assert_ne!(key_for(&made), key_for(&[0; 32]));
    }

    #[test]
    fn junk_is_no_secret() {
        for junk in [
            "serialgate-console=",
            "serialgate-console=abc",
            "x=y",
            "serialgate-console",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(COOKIE, junk.parse().unwrap());
            assert_eq!(secret(&headers), None, "{junk}");
        }
    }
}
