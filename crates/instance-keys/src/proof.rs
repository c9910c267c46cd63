//! The instance's proof: an HMAC-SHA256 under its key token over the request, so the token
//! itself never crosses the wire.
//!
//! `X-Serialgate-Proof: t=<unix seconds>,sig=<64 lowercase hex digits>`, the tag over
//! `serialgate-instance-keys-v1\n<instance>\n<os_user>\n<t>`. The time is written in canonical
//! decimal (no sign, no leading zero), so both sides sign exactly the same bytes.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The first line of every signed message: the tag is good for nothing else.
pub const PROOF_CONTEXT: &str = "serialgate-instance-keys-v1";

/// Longest `t` accepted: every `u64` fits.
const MAX_TIME_DIGITS: usize = 20;

/// A parsed proof header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// The instance's clock when it signed, Unix seconds.
    pub time: u64,
    /// The HMAC-SHA256 tag.
    pub tag: [u8; 32],
}

/// The bytes the tag covers.
pub fn proof_message(instance: &str, os_user: &str, time: u64) -> String {
    format!("{PROOF_CONTEXT}\n{instance}\n{os_user}\n{time}")
}

/// HMAC-SHA256 under `token` over [`proof_message`].
pub fn proof_tag(token: &[u8], instance: &str, os_user: &str, time: u64) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(token) {
        Ok(mac) => mac,
        Err(_) => return [0; 32],
    };
    mac.update(proof_message(instance, os_user, time).as_bytes());
    mac.finalize().into_bytes().into()
}

/// The header value an instance sends: `t=<time>,sig=<hex tag>`.
pub fn format_proof(token: &[u8], instance: &str, os_user: &str, time: u64) -> String {
    let tag = proof_tag(token, instance, os_user, time);
    let mut out = format!("t={time},sig=");
    for b in tag {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Parses a header value of exactly the form [`format_proof`] writes; anything else is `None`.
/// Linear in the input (callers cap its length anyway).
pub fn parse_proof(value: &str) -> Option<Proof> {
    let rest = value.strip_prefix("t=")?;
    let (time, sig) = rest.split_once(",sig=")?;
    let canonical = !time.is_empty()
        && time.len() <= MAX_TIME_DIGITS
        && time.bytes().all(|b| b.is_ascii_digit())
        && (time == "0" || !time.starts_with('0'));
    if !canonical || sig.len() != 64 {
        return None;
    }
    let time = time.parse::<u64>().ok()?;
    let mut tag = [0u8; 32];
    for (out, pair) in tag.iter_mut().zip(sig.as_bytes().chunks_exact(2)) {
        *out = (lower_hex(pair[0])? << 4) | lower_hex(pair[1])?;
    }
    Some(Proof { time, tag })
}

fn lower_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"0123456789abcdef-token";

    #[test]
    fn a_formatted_proof_parses_back_with_its_tag() {
        let header = format_proof(TOKEN, "i-0123456789abcdef0", "ec2-user", 1_700_000_000);
        assert!(header.starts_with("t=1700000000,sig="), "{header}");
        assert_eq!(header.len(), "t=1700000000,sig=".len() + 64);
        let proof = parse_proof(&header).unwrap();
        assert_eq!(proof.time, 1_700_000_000);
        assert_eq!(
            proof.tag,
            proof_tag(TOKEN, "i-0123456789abcdef0", "ec2-user", 1_700_000_000)
        );
    }

    #[test]
    fn the_tag_is_hmac_sha256_over_the_documented_message() {
        // Independent of this module: the same HMAC computed from its definition.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"k").unwrap();
        mac.update(b"serialgate-instance-keys-v1\ni-0123456789abcdef0\nroot\n42");
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(proof_tag(b"k", "i-0123456789abcdef0", "root", 42), expected);
        // Every input is covered.
        let base = proof_tag(b"k", "i-0123456789abcdef0", "root", 42);
        assert_ne!(base, proof_tag(b"K", "i-0123456789abcdef0", "root", 42));
        assert_ne!(base, proof_tag(b"k", "i-0123456789abcdef1", "root", 42));
        assert_ne!(base, proof_tag(b"k", "i-0123456789abcdef0", "roo", 42));
        assert_ne!(base, proof_tag(b"k", "i-0123456789abcdef0", "root", 43));
    }

    #[test]
    fn only_the_exact_form_parses() {
        let sig = "ab".repeat(32);
        assert!(parse_proof(&format!("t=0,sig={sig}")).is_some());
        assert!(parse_proof(&format!("t={},sig={sig}", u64::MAX)).is_some());
        for bad in [
            String::new(),
            format!("t=,sig={sig}"),
            format!("t=01,sig={sig}"),
            format!("t=+1,sig={sig}"),
            format!("t=-1,sig={sig}"),
            format!("t=18446744073709551616,sig={sig}"),
            format!("t=1,sig={}", "AB".repeat(32)),
            format!("t=1,sig={}", "ab".repeat(31)),
            format!("t=1,sig={sig}0"),
            format!("t=1, sig={sig}"),
            format!("sig={sig},t=1"),
            format!("t=1,sig={sig},x=1"),
            format!(" t=1,sig={sig}"),
            format!("t=1,sig={}é", "ab".repeat(31)),
        ] {
            assert!(parse_proof(&bad).is_none(), "{bad:?} should not parse");
        }
    }
}
