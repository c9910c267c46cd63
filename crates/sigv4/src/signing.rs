//! The SigV4 signing key chain and the final HMAC; the only code that touches the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::canonical::Sink;
use crate::error::SigError;
use crate::secret::SecretKey;

type HmacSha256 = Hmac<Sha256>;

/// A derived signing key; wiped on drop because it signs for the whole scope day.
pub(crate) type SigningKey = Zeroizing<[u8; 32]>;

/// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub(crate) fn signing_key(
    secret: &SecretKey,
    date: &str,
    region: &str,
    service: &str,
) -> Result<SigningKey, SigError> {
    let secret = secret.expose_secret().as_bytes();
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret);
    let k_date = hmac(&k_secret, date.as_bytes())?;
    let k_region = hmac(&k_date[..], region.as_bytes())?;
    let k_service = hmac(&k_region[..], service.as_bytes())?;
    hmac(&k_service[..], b"aws4_request")
}

/// A MAC keyed with the signing key, ready for the string to sign to be written into it.
pub(crate) fn signer(key: &SigningKey) -> Result<HmacSha256, SigError> {
    mac(&key[..])
}

/// Finishes a [`signer`]: the raw 32-byte signature.
pub(crate) fn finish(signer: HmacSha256) -> [u8; 32] {
    signer.finalize().into_bytes().into()
}

fn hmac(key: &[u8], data: &[u8]) -> Result<SigningKey, SigError> {
    let mut m = mac(key)?;
    m.put(data);
    Ok(Zeroizing::new(m.finalize().into_bytes().into()))
}

fn mac(key: &[u8]) -> Result<HmacSha256, SigError> {
    // HMAC accepts keys of any length, so this cannot fail; if it somehow did, failing closed
    // as a mismatch is the safe answer.
    HmacSha256::new_from_slice(key).map_err(|_| SigError::signature_mismatch())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_documented_example_key() {
        // AWS documentation example: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
        // 20150830/us-east-1/iam.
        let key = signing_key(
            &SecretKey::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            "20150830",
            "us-east-1",
            "iam",
        )
        .unwrap();
        assert_eq!(
            hex::encode(&key[..]),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }
}
