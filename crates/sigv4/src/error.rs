//! Verification failures: a small kind for the caller to map to AWS error codes, plus AWS's wording.

use std::borrow::Cow;

/// Why a request failed verification. The API layer maps each kind to an AWS front-door error;
/// the suggested code is given on each variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigErrorKind {
    /// No `Authorization` header and no `X-Amz-Algorithm` query parameter.
    /// AWS: `MissingAuthenticationTokenException` (403).
    Missing,
    /// Authentication present but malformed or unsupported.
    /// AWS: `IncompleteSignatureException` (400).
    Incomplete,
    /// The credential scope names another service or region, a bad terminator, or a date that
    /// differs from the request date. AWS (JSON services): `InvalidSignatureException` (400 on AWS JSON services).
    WrongScope,
    /// The request time is outside the allowed clock skew.
    /// AWS: `InvalidSignatureException` (400 on AWS JSON services); SDKs read the message to correct their clock.
    Expired,
    /// The secret lookup does not know the access key id.
    /// AWS: `UnrecognizedClientException` (400 on AWS JSON services).
    UnknownAccessKey,
    /// The session token is missing, wrong, or sent for a credential that has none.
    /// AWS: `UnrecognizedClientException` (400 on AWS JSON services).
    InvalidToken,
    /// The signature does not match. AWS: `InvalidSignatureException` (400 on AWS JSON services).
    SignatureMismatch,
    /// `x-amz-content-sha256` does not match the body, or is a value this service refuses
    /// (`UNSIGNED-PAYLOAD`, streaming). AWS: `InvalidSignatureException` (400 on AWS JSON services).
    PayloadHashMismatch,
}

/// A verification failure. The message is what AWS would say and is safe to send to the
/// client: it never contains secret material, only values the client itself sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SigError {
    kind: SigErrorKind,
    message: Cow<'static, str>,
}

pub(crate) const MISSING_TOKEN: &str = "Missing Authentication Token";
pub(crate) const INVALID_TOKEN: &str = "The security token included in the request is invalid.";
pub(crate) const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match \
    the signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
    service documentation for details.";

impl SigError {
    /// The category, for mapping to an AWS error code.
    pub fn kind(&self) -> SigErrorKind {
        self.kind
    }

    /// The human message (same as `Display`).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn new(kind: SigErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn missing() -> Self {
        Self::new(SigErrorKind::Missing, MISSING_TOKEN)
    }

    pub(crate) fn incomplete(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(SigErrorKind::Incomplete, message)
    }

    pub(crate) fn wrong_scope(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(SigErrorKind::WrongScope, message)
    }

    pub(crate) fn unknown_access_key() -> Self {
        Self::new(SigErrorKind::UnknownAccessKey, INVALID_TOKEN)
    }

    pub(crate) fn invalid_token() -> Self {
        Self::new(SigErrorKind::InvalidToken, INVALID_TOKEN)
    }

    pub(crate) fn signature_mismatch() -> Self {
        Self::new(SigErrorKind::SignatureMismatch, SIGNATURE_MISMATCH)
    }

    pub(crate) fn payload_hash(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(SigErrorKind::PayloadHashMismatch, message)
    }
}

/// Client-sent text echoed into a message is cut short so an error stays small even when the
/// client sends a huge header.
pub(crate) fn echo(text: &str) -> &str {
    const MAX: usize = 128;
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn echo_truncates_on_char_boundary() {
        assert_eq!(echo("short"), "short");
        let long = "é".repeat(100); // 200 bytes
        let cut = echo(&long);
        assert!(cut.len() <= 128);
        assert!(long.starts_with(cut));
    }

    #[test]
    fn display_is_the_message() {
        let e = SigError::signature_mismatch();
        assert_eq!(e.to_string(), SIGNATURE_MISMATCH);
        assert_eq!(e.message(), SIGNATURE_MISMATCH);
        assert_eq!(e.kind(), SigErrorKind::SignatureMismatch);
    }
}
