//! The instance's proof, checked with the same work whatever is wrong with the request.
//!
//! An unknown instance, an instance without a key token, a malformed or missing header and an
//! invalid user name all take the same steps as a good request: one HMAC (under a dummy key
//! when there is no token), one constant-time comparison, one window check. Nothing a client
//! sends is read beyond its cap, and the work is linear in what is read.

use std::collections::HashMap;

use axum::http::HeaderMap;
use console::{InstanceId, OsUser};
use instance_keys::{
    INSTANCE_HEADER, PATH_PREFIX, PROOF_HEADER, PROOF_WINDOW_SECONDS, parse_proof, proof_tag,
};
use percent_encoding::percent_decode_str;
use subtle::ConstantTimeEq as _;

use super::KeyToken;

/// Longest header value read (`X-Serialgate-Instance`, `X-Serialgate-Proof`).
pub(crate) const MAX_HEADER_BYTES: usize = 256;

/// Longest user name read from the path: 32 characters, each possibly percent-encoded.
const MAX_USER_PATH_BYTES: usize = 3 * 32;

/// The HMAC key for requests that name no instance with a token. Its value does not matter:
/// such a request is refused whatever its tag; the HMAC is computed only so that it costs the
/// same as a good one.
const DUMMY_TOKEN: [u8; 32] = [0; 32];

/// Why a request was refused, for the operator's log only: every refusal gets the same answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A header missing, repeated, too long or malformed, or an invalid user name.
    Malformed,
    /// The instance is unknown or has no `key_token`.
    NoToken,
    /// The tag is not the HMAC of the request under the instance's token.
    BadProof,
    /// A good tag, but its time is more than the window away from the server's clock.
    OutsideWindow,
}

impl Reason {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Malformed => "malformed request",
            Reason::NoToken => "unknown instance or no key_token",
            Reason::BadProof => "wrong proof",
            Reason::OutsideWindow => "proof time outside the window (clock skew or replay)",
        }
    }
}

/// A refused request: why, and the instance it named when that was a valid id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) instance: Option<InstanceId>,
    pub(crate) reason: Reason,
}

/// Checks a request for `path` with `headers` against the configured `tokens` at `now_ms`.
/// `Ok` names the instance and user the proof is good for.
pub(crate) fn check(
    tokens: &HashMap<InstanceId, KeyToken>,
    path: &str,
    headers: &HeaderMap,
    now_ms: u64,
) -> Result<(InstanceId, OsUser), Refusal> {
    let user = os_user(path);
    let instance = single_header(headers, INSTANCE_HEADER).and_then(|v| InstanceId::parse(v).ok());
    let proof = single_header(headers, PROOF_HEADER).and_then(parse_proof);
    let token = instance.as_ref().and_then(|id| tokens.get(id));

    // Always one HMAC and one comparison, whatever was missing above.
    let key = token.map_or(&DUMMY_TOKEN[..], KeyToken::as_bytes);
    let tag = proof_tag(
        key,
        instance.as_ref().map_or("", InstanceId::as_str),
        user.as_ref().map_or("", OsUser::as_str),
        proof.map_or(0, |p| p.time),
    );
    let given = proof.map_or([0; 32], |p| p.tag);
    let tag_matches = bool::from(tag.ct_eq(&given));
    let in_window = proof.is_some_and(|p| {
        p.time.saturating_mul(1000).abs_diff(now_ms) <= PROOF_WINDOW_SECONDS * 1000
    });

    let reason = match (&user, &proof, token) {
        (None, _, _) | (_, None, _) => Some(Reason::Malformed),
        (_, _, None) if instance.is_none() => Some(Reason::Malformed),
        (_, _, None) => Some(Reason::NoToken),
        _ if !tag_matches => Some(Reason::BadProof),
        _ if !in_window => Some(Reason::OutsideWindow),
        _ => None,
    };
    match (reason, instance, user) {
        (None, Some(instance), Some(user)) => Ok((instance, user)),
        (reason, instance, _) => Err(Refusal {
            instance,
            reason: reason.unwrap_or(Reason::Malformed),
        }),
    }
}

/// The header's value when it is given exactly once, is at most [`MAX_HEADER_BYTES`] and is
/// visible ASCII.
fn single_header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    let value = values.next()?;
    if values.next().is_some() || value.len() > MAX_HEADER_BYTES {
        return None;
    }
    value.to_str().ok()
}

/// The user name the path names: the rest after the prefix, percent-decoded, valid by the
/// rules of `SendSSHPublicKey`'s `InstanceOSUser` (which exclude `/`).
pub(crate) fn os_user(path: &str) -> Option<OsUser> {
    let raw = path.strip_prefix(PATH_PREFIX)?;
    if raw.len() > MAX_USER_PATH_BYTES {
        return None;
    }
    let decoded = percent_decode_str(raw).decode_utf8().ok()?;
    OsUser::parse(&decoded).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use instance_keys::format_proof;

    const ID: &str = "i-0123456789abcdef0";
    const TOKEN: &[u8] = b"0123456789abcdef";
    const NOW: u64 = 1_800_000_000;

    fn tokens() -> HashMap<InstanceId, KeyToken> {
        HashMap::from([(
            InstanceId::parse(ID).unwrap(),
            KeyToken::new(TOKEN.to_vec()),
        )])
    }

    fn headers(instance: &str, proof: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(INSTANCE_HEADER, HeaderValue::from_str(instance).unwrap());
        h.insert(PROOF_HEADER, HeaderValue::from_str(proof).unwrap());
        h
    }

    fn reason(path: &str, h: &HeaderMap) -> Option<Reason> {
        check(&tokens(), path, h, NOW * 1000)
            .err()
            .map(|r| r.reason)
    }

    #[test]
    fn a_good_proof_names_its_instance_and_user() {
        let h = headers(ID, &format_proof(TOKEN, ID, "ec2-user", NOW));
        let (instance, user) =
            check(&tokens(), "/instance-keys/v1/ec2-user", &h, NOW * 1000).unwrap();
        assert_eq!((instance.as_str(), user.as_str()), (ID, "ec2-user"));
        // A percent-encoded name is the same name (the proof covers the decoded one).
        let h = headers(ID, &format_proof(TOKEN, ID, "svc$", NOW));
        assert_eq!(reason("/instance-keys/v1/svc%24", &h), None);
    }

    #[test]
    fn each_refusal_has_its_reason() {
        let good = format_proof(TOKEN, ID, "root", NOW);
        let path = "/instance-keys/v1/root";
        let other = "i-00000000000000009";
        for (p, h, expected) in [
            (
                path,
                headers(ID, &format_proof(b"wrong token 1234", ID, "root", NOW)),
                Reason::BadProof,
            ),
            (
                path,
                headers(ID, &format_proof(TOKEN, ID, "admin", NOW)),
                Reason::BadProof,
            ),
            (
                path,
                headers(other, &format_proof(TOKEN, other, "root", NOW)),
                Reason::NoToken,
            ),
            (path, headers("i-XYZ", &good), Reason::Malformed),
            (path, headers(ID, "t=1,sig=00"), Reason::Malformed),
            (
                "/instance-keys/v1/ro%2Fot",
                headers(ID, &good),
                Reason::Malformed,
            ),
            (
                "/instance-keys/v1/-root",
                headers(ID, &good),
                Reason::Malformed,
            ),
            ("/instance-keys/v1/", headers(ID, &good), Reason::Malformed),
            (
                "/instance-keys/v1/%ff",
                headers(ID, &good),
                Reason::Malformed,
            ),
        ] {
            assert_eq!(reason(p, &h), Some(expected), "{p} {h:?}");
        }
        let mut missing = headers(ID, &good);
        missing.remove(PROOF_HEADER);
        assert_eq!(reason(path, &missing), Some(Reason::Malformed));
        let mut twice = headers(ID, &good);
        twice.append(PROOF_HEADER, HeaderValue::from_str(&good).unwrap());
        assert_eq!(reason(path, &twice), Some(Reason::Malformed));
        let long = format!("{good}{}", " ".repeat(MAX_HEADER_BYTES));
        assert_eq!(reason(path, &headers(ID, &long)), Some(Reason::Malformed));
        let long_user = format!("/instance-keys/v1/{}", "a".repeat(MAX_USER_PATH_BYTES + 1));
        assert_eq!(
            reason(&long_user, &headers(ID, &good)),
            Some(Reason::Malformed)
        );
    }

    #[test]
    fn the_window_is_300_seconds_either_way_inclusive() {
        let path = "/instance-keys/v1/root";
        for (t, ok) in [
            (NOW - 300, true),
            (NOW + 300, true),
            (NOW - 301, false),
            (NOW + 301, false),
            (0, false),
            (u64::MAX, false),
        ] {
            let h = headers(ID, &format_proof(TOKEN, ID, "root", t));
            let expected = (!ok).then_some(Reason::OutsideWindow);
            assert_eq!(
                reason(path, &h),
                expected,
                "t = now {:+}",
                i128::from(t) - i128::from(NOW)
            );
        }
        // A millisecond past the edge is outside.
        let h = headers(ID, &format_proof(TOKEN, ID, "root", NOW - 300));
        let refused = check(&tokens(), path, &h, NOW * 1000 + 1).unwrap_err();
        assert_eq!(refused.reason, Reason::OutsideWindow);
    }
}
