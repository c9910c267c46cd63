//! Parsing the `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…` header.

use crate::error::{SigError, echo};

pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The longest `Authorization` value accepted, bytes. A real one is about 300 bytes plus the
/// signed header names; anything longer is refused before it is parsed.
pub const MAX_AUTHORIZATION_BYTES: usize = 8192;

/// The most header names `SignedHeaders` may list. SDKs sign a handful.
pub const MAX_SIGNED_HEADERS: usize = 128;

/// The parsed header; every part borrows from the header value.
#[derive(Debug)]
pub(crate) struct Authorization<'a> {
    pub(crate) credential: Credential<'a>,
    /// `a;b;c` exactly as sent, already checked by [`check_signed_headers`].
    pub(crate) signed_headers: &'a str,
    pub(crate) signature: [u8; 32],
}

/// `AKID/20150830/us-east-1/service/aws4_request`, split.
#[derive(Debug)]
pub(crate) struct Credential<'a> {
    pub(crate) access_key_id: &'a str,
    pub(crate) date: &'a str,
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
    pub(crate) terminator: &'a str,
    /// `20150830/us-east-1/service/aws4_request`: the scope line of the string to sign.
    pub(crate) scope: &'a str,
}

/// Parses the header value. `date_present` says whether the request carries `X-Amz-Date` or
/// `Date`, so a missing date is reported in the same message as missing parameters, as AWS does.
pub(crate) fn parse(value: &str, date_present: bool) -> Result<Authorization<'_>, SigError> {
    let value = value.trim_start_matches([' ', '\t']);
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(SigError::incomplete(format!(
            "Unsupported Authorization type '{}'. This service accepts only '{ALGORITHM}'.",
            echo(algorithm)
        )));
    }

    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    // AWS accepts parameters separated by commas, spaces or both; none of the values can
    // contain either character, so splitting on both is unambiguous.
    for pair in rest.split([',', ' ', '\t']).filter(|p| !p.is_empty()) {
        let Some((name, val)) = pair.split_once('=') else {
            return Err(SigError::incomplete(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{}'",
                echo(pair)
            )));
        };
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(SigError::incomplete(format!(
                    "Authorization header has an unknown parameter '{}'.",
                    echo(name)
                )));
            }
        };
        if slot.replace(val).is_some() {
            return Err(SigError::incomplete(format!(
                "Authorization header has a duplicate '{name}' parameter."
            )));
        }
    }

    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, date_present)
    else {
        // AWS lists every missing part, in this order, in one message.
        let mut message = String::new();
        for (present, part) in [
            (
                credential.is_some(),
                "Authorization header requires 'Credential' parameter. ",
            ),
            (
                signature.is_some(),
                "Authorization header requires 'Signature' parameter. ",
            ),
            (
                signed_headers.is_some(),
                "Authorization header requires 'SignedHeaders' parameter. ",
            ),
            (
                date_present,
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
            ),
        ] {
            if !present {
                message.push_str(part);
            }
        }
        message.truncate(message.trim_end().len());
        return Err(SigError::incomplete(message));
    };

    Ok(Authorization {
        credential: parse_credential(credential)?,
        signed_headers: check_signed_headers(signed_headers)?,
        signature: parse_signature(signature)?,
    })
}

pub(crate) fn parse_credential(value: &str) -> Result<Credential<'_>, SigError> {
    let shape_error = || {
        SigError::incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{}'",
            echo(value)
        ))
    };
    let (access_key_id, scope) = value.split_once('/').ok_or_else(shape_error)?;
    let mut parts = scope.split('/');
    let (Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(shape_error());
    };
    Ok(Credential {
        access_key_id,
        date,
        region,
        service,
        terminator,
        scope,
    })
}

/// Header names must be lowercase tokens, each listed once, at most [`MAX_SIGNED_HEADERS`] of
/// them. They are used in the order sent: a conforming client sends them sorted, and the
/// signature covers the list either way (AWS accepts any order).
///
/// Linear in the length of the list: one pass checks the bytes and stops at the cap, and the
/// duplicate check sorts a copy of at most the capped number of names.
pub(crate) fn check_signed_headers(value: &str) -> Result<&str, SigError> {
    // RFC 9110 token characters, lowercase only.
    let is_name_byte = |b: u8| {
        matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#'..=b'\'' | b'*' | b'+' | b'-' | b'.'
            | b'^' | b'_' | b'`' | b'|' | b'~')
    };
    let mut names = Vec::new();
    for name in value.split(';') {
        if names.len() == MAX_SIGNED_HEADERS {
            return Err(SigError::incomplete(format!(
                "SignedHeaders lists more than {MAX_SIGNED_HEADERS} headers; this service \
                 accepts at most {MAX_SIGNED_HEADERS}."
            )));
        }
        if name.is_empty() || !name.bytes().all(is_name_byte) {
            return Err(SigError::incomplete(format!(
                "SignedHeaders must be a ';'-separated list of lowercase header names, got '{}'",
                echo(value)
            )));
        }
        names.push(name);
    }
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(SigError::incomplete(format!(
            "SignedHeaders lists '{}' more than once.",
            echo(pair[0])
        )));
    }
    Ok(value)
}

pub(crate) fn parse_signature(value: &str) -> Result<[u8; 32], SigError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(value, &mut out).map_err(|_| {
        SigError::incomplete("Signature must be 64 hexadecimal characters (a SHA-256 HMAC).")
    })?;
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::SigErrorKind;

    const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    fn header(params: &str) -> String {
        format!("AWS4-HMAC-SHA256 {params}")
    }

    fn incomplete(value: &str) -> String {
        let err = parse(value, true).expect_err("should fail");
        assert_eq!(err.kind(), SigErrorKind::Incomplete, "{err}");
        err.to_string()
    }

    #[test]
    fn parses_canonical_form() {
        let h = header(&format!(
            "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature={SIG}"
        ));
        let a = parse(&h, true).unwrap();
        assert_eq!(a.credential.access_key_id, "AKIDEXAMPLE");
        assert_eq!(a.credential.date, "20150830");
        assert_eq!(a.credential.region, "us-east-1");
        assert_eq!(a.credential.service, "service");
        assert_eq!(a.credential.terminator, "aws4_request");
        assert_eq!(
            a.credential.scope,
            "20150830/us-east-1/service/aws4_request"
        );
        assert_eq!(a.signed_headers, "host;x-amz-date");
        assert_eq!(hex::encode(a.signature), SIG);
    }

    #[test]
    fn tolerates_separators_and_order() {
        for params in [
            format!("Credential=A/20150830/r/s/aws4_request,SignedHeaders=host,Signature={SIG}"),
            format!(
                "Signature={SIG}  ,  SignedHeaders=host ,Credential=A/20150830/r/s/aws4_request"
            ),
            format!("Credential=A/20150830/r/s/aws4_request SignedHeaders=host Signature={SIG}"),
            format!(
                "Credential=A/20150830/r/s/aws4_request,\tSignedHeaders=host, Signature={SIG},"
            ),
        ] {
            let value = header(&params);
            let a = parse(&value, true).unwrap();
            assert_eq!(a.signed_headers, "host", "{params}");
        }
        // Leading whitespace and uppercase hex in the signature are accepted too.
        let upper = SIG.to_ascii_uppercase();
        let h = format!(
            "  AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature={upper}"
        );
        assert_eq!(hex::encode(parse(&h, true).unwrap().signature), SIG);
    }

    #[test]
    fn reports_every_missing_part_like_aws() {
        let msg = incomplete("AWS4-HMAC-SHA256 SignedHeaders=host");
        assert_eq!(
            msg,
            "Authorization header requires 'Credential' parameter. \
             Authorization header requires 'Signature' parameter."
        );
        let err = parse(
            &header(&format!(
                "Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature={SIG}"
            )),
            false,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        );
        let msg = incomplete("AWS4-HMAC-SHA256");
        assert!(msg.contains("'SignedHeaders'"), "{msg}");
    }

    #[test]
    fn rejects_other_algorithms() {
        for value in [
            "AWS AKID:c2ln",
            "AWS4-HMAC-SHA1 Credential=x",
            "AWS4-ECDSA-P256-SHA256 Credential=x",
            "Bearer abc",
            "aws4-hmac-sha256 Credential=x",
            "AWS4-HMAC-SHA256Credential=x",
            "",
        ] {
            let msg = incomplete(value);
            assert!(msg.starts_with("Unsupported Authorization type"), "{msg}");
        }
    }

    #[test]
    fn rejects_duplicates_unknowns_and_junk() {
        let cred = "Credential=A/20150830/r/s/aws4_request";
        let msg = incomplete(&header(&format!(
            "{cred}, {cred}, SignedHeaders=host, Signature={SIG}"
        )));
        assert!(msg.contains("duplicate 'Credential'"), "{msg}");
        let msg = incomplete(&header(&format!(
            "{cred}, SignedHeaders=host, Signature={SIG}, Foo=1"
        )));
        assert!(msg.contains("unknown parameter 'Foo'"), "{msg}");
        let msg = incomplete(&header(&format!(
            "{cred}, SignedHeaders=host, Signature={SIG}, junk"
        )));
        assert!(msg.contains("missing equal-sign"), "{msg}");
    }

    #[test]
    fn rejects_bad_credential_shape() {
        for cred in [
            "A/20150830/r/s",
            "A/20150830/r/s/aws4_request/extra",
            "A",
            "",
        ] {
            let msg = incomplete(&header(&format!(
                "Credential={cred}, SignedHeaders=host, Signature={SIG}"
            )));
            assert!(msg.starts_with("Credential must have exactly 5"), "{msg}");
        }
    }

    #[test]
    fn rejects_bad_signed_headers() {
        for sh in [
            "",
            "host;",
            ";host",
            "Host;x-amz-date",
            "host;host",
            "ho st",
            "host;x:y",
        ] {
            let h = header(&format!(
                "Credential=A/20150830/r/s/aws4_request, SignedHeaders={sh}, Signature={SIG}"
            ));
            let err = parse(&h, true).expect_err(sh);
            assert_eq!(err.kind(), SigErrorKind::Incomplete, "{sh}: {err}");
        }
    }

    fn signed_headers_list(count: usize) -> String {
        (0..count)
            .map(|i| format!("x-h{i}"))
            .collect::<Vec<_>>()
            .join(";")
    }

    #[test]
    fn accepts_up_to_max_signed_headers_in_any_order() {
        let mut names: Vec<String> = (0..MAX_SIGNED_HEADERS).map(|i| format!("x-h{i}")).collect();
        names.reverse();
        let list = names.join(";");
        assert_eq!(check_signed_headers(&list).unwrap(), list);
    }

    #[test]
    fn refuses_more_than_max_signed_headers() {
        let err = check_signed_headers(&signed_headers_list(MAX_SIGNED_HEADERS + 1)).unwrap_err();
        assert_eq!(err.kind(), SigErrorKind::Incomplete);
        assert!(err.message().contains("at most 128"), "{err}");
    }

    #[test]
    fn huge_list_of_distinct_names_is_refused_at_the_cap() {
        // About 300 KB of distinct names: the check used to compare every pair of them.
        let list = signed_headers_list(30_000);
        assert!(list.len() > 200_000);
        let err = check_signed_headers(&list).unwrap_err();
        assert_eq!(err.kind(), SigErrorKind::Incomplete);
        assert!(err.message().contains("at most 128"), "{err}");
    }

    #[test]
    fn finds_duplicates_wherever_they_are() {
        for list in ["a;b;c;a", "c;b;b", "b;a;c;d;e;f;a", "a;a"] {
            let err = check_signed_headers(list).unwrap_err();
            assert!(err.message().contains("more than once"), "{list}: {err}");
        }
        let err = check_signed_headers("z;y;x;y").unwrap_err();
        assert_eq!(err.message(), "SignedHeaders lists 'y' more than once.");
    }

    #[test]
    fn rejects_bad_signature() {
        for sig in [
            "",
            "abc",
            &SIG[1..],
            &format!("{SIG}00"),
            &SIG.replace('f', "g"),
        ] {
            let msg = incomplete(&header(&format!(
                "Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature={sig}"
            )));
            // An empty value is still a present parameter, so it is the hex check that fails.
            assert!(msg.starts_with("Signature must be 64"), "{sig}: {msg}");
        }
    }
}
