//! Parsing query-string authentication (a presigned URL): `X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders`, `X-Amz-Signature` and, for temporary
//! credentials, `X-Amz-Security-Token`.
//!
//! The query is bounded ([`MAX_PRESIGNED_QUERY_BYTES`]) before it is read, and read in one
//! pass; each parameter may appear once.

use crate::authorization::{
    ALGORITHM, Credential, check_signed_headers, parse_credential, parse_signature,
};
use crate::date::parse_basic;
use crate::error::{SigError, echo};
use crate::uri::decode;

/// The longest query string accepted on a presigned request, bytes. A presigned URL's own
/// parameters take about 400 bytes, a session token up to a few KiB.
pub const MAX_PRESIGNED_QUERY_BYTES: usize = 16 * 1024;

/// The longest validity SigV4 allows a presigned URL (`X-Amz-Expires`): seven days.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 7 * 24 * 60 * 60;

/// The name of the parameter that carries the signature, left out of the canonical query.
pub(crate) const SIGNATURE_PARAM: &str = "X-Amz-Signature";

const ALGORITHM_PARAM: &str = "X-Amz-Algorithm";
const CREDENTIAL_PARAM: &str = "X-Amz-Credential";
const DATE_PARAM: &str = "X-Amz-Date";
const EXPIRES_PARAM: &str = "X-Amz-Expires";
const SIGNED_HEADERS_PARAM: &str = "X-Amz-SignedHeaders";
const TOKEN_PARAM: &str = "X-Amz-Security-Token";

/// The authentication parameters of a presigned request, decoded.
#[derive(Debug)]
pub(crate) struct Presigned {
    /// `AKID/20150830/us-east-1/service/aws4_request`, checked by [`Presigned::credential`].
    credential: String,
    pub(crate) signed_headers: String,
    pub(crate) signature: [u8; 32],
    /// `X-Amz-Date`, Unix seconds.
    pub(crate) time: i64,
    /// `X-Amz-Expires`, seconds.
    pub(crate) expires: u64,
    pub(crate) token: Option<String>,
}

impl Presigned {
    pub(crate) fn credential(&self) -> Result<Credential<'_>, SigError> {
        parse_credential(&self.credential)
    }
}

/// Parses the query of a request that carries `X-Amz-Algorithm`.
pub(crate) fn parse(query: &str) -> Result<Presigned, SigError> {
    if query.len() > MAX_PRESIGNED_QUERY_BYTES {
        return Err(SigError::incomplete(format!(
            "The query string is {} bytes long; this service accepts at most \
             {MAX_PRESIGNED_QUERY_BYTES} on a presigned request.",
            query.len()
        )));
    }
    let mut algorithm = None;
    let mut credential = None;
    let mut date = None;
    let mut expires = None;
    let mut signed_headers = None;
    let mut signature = None;
    let mut token = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name);
        let slot = match name.as_str() {
            ALGORITHM_PARAM => &mut algorithm,
            CREDENTIAL_PARAM => &mut credential,
            DATE_PARAM => &mut date,
            EXPIRES_PARAM => &mut expires,
            SIGNED_HEADERS_PARAM => &mut signed_headers,
            SIGNATURE_PARAM => &mut signature,
            TOKEN_PARAM => &mut token,
            // Other parameters are the request's own; the signature covers them.
            _ => continue,
        };
        if slot.replace(decode(value)).is_some() {
            return Err(SigError::incomplete(format!(
                "Only one '{name}' query parameter is allowed."
            )));
        }
    }
    let (Some(algorithm), Some(credential), Some(date), Some(expires), Some(signed), Some(sig)) = (
        algorithm,
        credential,
        date,
        expires,
        signed_headers,
        signature,
    ) else {
        return Err(SigError::incomplete(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, \
             X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and \
             X-Amz-Expires parameters.",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(SigError::incomplete(format!(
            "X-Amz-Algorithm only supports \"{ALGORITHM}\", not '{}'.",
            echo(&algorithm)
        )));
    }
    parse_credential(&credential)?;
    check_signed_headers(&signed)?;
    let time = parse_basic(date.as_bytes()).ok_or_else(|| {
        SigError::incomplete(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", not '{}'.",
            echo(&date)
        ))
    })?;
    let expires = parse_expires(&expires)?;
    Ok(Presigned {
        signature: parse_signature(&sig)?,
        credential,
        signed_headers: signed,
        time,
        expires,
        token,
    })
}

fn parse_expires(value: &str) -> Result<u64, SigError> {
    // Digits only (no sign, no spaces), and few enough of them that parsing cannot overflow.
    let number =
        (!value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit()))
            .then(|| value.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| {
                SigError::incomplete(format!(
                    "X-Amz-Expires should be a number of seconds, not '{}'.",
                    echo(value)
                ))
            })?;
    if number == 0 {
        return Err(SigError::incomplete(
            "X-Amz-Expires must be non-negative and not zero.",
        ));
    }
    if number > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(SigError::incomplete(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is \
             {MAX_PRESIGNED_EXPIRES_SECS}."
        )));
    }
    Ok(number)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::SigErrorKind;

    const SIG: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    fn query(extra: &str) -> String {
        format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request\
             &X-Amz-Date=20150830T123600Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host{extra}&X-Amz-Signature={SIG}"
        )
    }

    fn message(q: &str) -> String {
        let e = parse(q).unwrap_err();
        assert_eq!(e.kind(), SigErrorKind::Incomplete, "{e}");
        e.to_string()
    }

    #[test]
    fn parses_a_presigned_query() {
        let p = parse(&query("&X-Amz-Security-Token=a%2Bb%3D&Action=x")).unwrap();
        let c = p.credential().unwrap();
        assert_eq!(c.access_key_id, "AKIDEXAMPLE");
        assert_eq!(c.scope, "20150830/us-east-1/service/aws4_request");
        assert_eq!(p.signed_headers, "host");
        assert_eq!(hex::encode(p.signature), SIG);
        assert_eq!(p.time, 1_440_938_160);
        assert_eq!(p.expires, 60);
        assert_eq!(p.token.as_deref(), Some("a+b="));
    }

    #[test]
    fn every_parameter_is_required_once() {
        for name in [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        ] {
            let full = query("");
            let without: Vec<&str> = full
                .split('&')
                .filter(|p| !p.starts_with(name))
                .map(|p| p.trim())
                .collect();
            let msg = message(&without.join("&"));
            assert!(
                msg.contains("requires the X-Amz-Algorithm"),
                "{name}: {msg}"
            );
        }
        let msg = message(&query("&X-Amz-Date=20150830T123600Z"));
        assert!(msg.contains("Only one 'X-Amz-Date'"), "{msg}");
        // An encoded name is the same parameter.
        let msg = message(&query("&X-Amz-%53ignature=00"));
        assert!(msg.contains("Only one 'X-Amz-Signature'"), "{msg}");
    }

    #[test]
    fn rejects_bad_values() {
        let q = query("").replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1");
        assert!(message(&q).contains("only supports"));
        for (bad, says) in [
            ("-1", "should be a number"),
            ("1e3", "should be a number"),
            ("", "should be a number"),
            ("99999999999999999999", "should be a number"),
            ("0", "not zero"),
            ("604801", "less than a week"),
        ] {
            let q = query("").replace("X-Amz-Expires=60", &format!("X-Amz-Expires={bad}"));
            assert!(message(&q).contains(says), "{bad}");
        }
        let q = query("").replace("20150830T123600Z", "2015-08-30");
        assert!(message(&q).contains("ISO8601"));
        let q = query("").replace("%2Faws4_request", "");
        assert!(message(&q).contains("5 slash-delimited"));
        let q = query("").replace(SIG, "zz");
        parse(&q).unwrap_err();
        let q = query("").replace("SignedHeaders=host", "SignedHeaders=Host");
        parse(&q).unwrap_err();
    }

    #[test]
    fn refuses_a_huge_query_before_reading_it() {
        let q = format!(
            "{}&pad={}",
            query(""),
            "a".repeat(MAX_PRESIGNED_QUERY_BYTES)
        );
        assert!(message(&q).contains("at most"));
    }
}
