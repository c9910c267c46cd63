//! Every error kind, the checks that must happen before the secret lookup, the clock-skew
//! window and its AWS-format messages.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use http::HeaderName;
use sigv4::{SecretKey, SigErrorKind, SigningSecret, Verifier};

fn verifier() -> Verifier {
    Verifier::new(SERVICE, REGION).require_signed_header(HeaderName::from_static("x-amz-target"))
}

/// Applies `mutate` to a validly signed request and expects a rejection of `kind` without the
/// lookup ever being consulted.
fn rejected_cheaply(mutate: impl FnOnce(&mut Request), kind: SigErrorKind) -> String {
    let mut req = signed_default();
    mutate(&mut req);
    let err = verifier()
        .verify(&req.parts(), t0(), &NeverLookup)
        .unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    assert!(!err.to_string().contains(SECRET));
    err.to_string()
}

fn replace_in_auth(from: &'static str, to: &'static str) -> impl FnOnce(&mut Request) {
    move |r: &mut Request| {
        r.edit_authorization(|a| {
            assert!(a.contains(from), "{a} lacks {from}");
            a.replacen(from, to, 1)
        });
    }
}

#[test]
fn baseline_request_is_valid() {
    // Guards the tests below: each differs from this request only by its mutation.
    let keys = Keys::new();
    verifier()
        .verify(&signed_default().parts(), t0(), &keys)
        .unwrap();
    assert_eq!(keys.calls.get(), 1);
}

#[test]
fn missing_authentication() {
    let msg = rejected_cheaply(
        |r| {
            r.remove("authorization");
        },
        SigErrorKind::Missing,
    );
    assert_eq!(msg, "Missing Authentication Token");
    // A presigned-looking query is not "missing"; it is unsupported.
    let msg = rejected_cheaply(
        |r| {
            r.remove("authorization");
            r.query = Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00".into());
        },
        SigErrorKind::Incomplete,
    );
    assert!(msg.contains("presigned"), "{msg}");
}

#[test]
fn incomplete_authorization_is_rejected_before_lookup() {
    use SigErrorKind::Incomplete;
    type Mutation = Box<dyn FnOnce(&mut Request)>;
    // (case, a fragment of the expected message, mutation)
    let cases: Vec<(&str, &str, Mutation)> = vec![
        (
            "header and query auth",
            "Only one auth mechanism",
            Box::new(|r: &mut Request| r.query = Some("X-Amz-Algorithm=AWS4-HMAC-SHA256".into())),
        ),
        (
            "algorithm",
            "Unsupported Authorization type 'AWS4-HMAC-SHA512'",
            Box::new(replace_in_auth("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")),
        ),
        (
            "sigv2",
            "Unsupported Authorization type 'AWS'",
            Box::new(|r: &mut Request| {
                r.set(
                    "authorization",
                    "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
                );
            }),
        ),
        (
            "unknown parameter",
            "unknown parameter 'Credentials'",
            Box::new(replace_in_auth("Credential=", "Credentials=")),
        ),
        (
            "no signature",
            "requires 'Signature' parameter",
            Box::new(|r: &mut Request| {
                r.edit_authorization(|a| a.split(", Signature=").next().unwrap().to_owned());
            }),
        ),
        (
            "duplicate",
            "duplicate 'SignedHeaders'",
            Box::new(|r: &mut Request| {
                r.edit_authorization(|a| format!("{a}, SignedHeaders=host"));
            }),
        ),
        (
            "credential shape",
            "exactly 5 slash-delimited",
            Box::new(replace_in_auth("/aws4_request", "")),
        ),
        (
            "non-hex signature",
            "Signature must be 64 hexadecimal",
            Box::new(|r: &mut Request| {
                r.edit_authorization(|a| format!("{}zz", &a[..a.len() - 2]));
            }),
        ),
        (
            "short signature",
            "Signature must be 64 hexadecimal",
            Box::new(|r: &mut Request| {
                r.edit_authorization(|a| a[..a.len() - 2].to_owned());
            }),
        ),
        (
            "host unsigned",
            "'Host' or ':authority' must be",
            Box::new(replace_in_auth("host;", "")),
        ),
        (
            "x-amz-date unsigned",
            "'X-Amz-Date' must be a 'SignedHeader'",
            Box::new(replace_in_auth("x-amz-date;", "")),
        ),
        (
            "required header unsigned",
            "'x-amz-target' must be a 'SignedHeader'",
            Box::new(replace_in_auth(";x-amz-target", "")),
        ),
        (
            "signed header absent",
            "signed header 'content-type'",
            Box::new(|r: &mut Request| {
                r.remove("content-type");
            }),
        ),
        (
            "no date",
            "either a 'X-Amz-Date' or a 'Date' header",
            Box::new(|r: &mut Request| {
                r.remove("x-amz-date");
            }),
        ),
        (
            "bad date",
            "ISO-8601 'basic format'",
            Box::new(|r: &mut Request| {
                r.set("x-amz-date", "2015-08-30T12:36:00Z");
            }),
        ),
        (
            "two dates",
            "Only one 'x-amz-date'",
            Box::new(|r: &mut Request| {
                r.headers
                    .append("x-amz-date", "20150830T123600Z".parse().unwrap());
            }),
        ),
        (
            "two authorizations",
            "Only one Authorization",
            Box::new(|r: &mut Request| {
                let a = r.headers["authorization"].clone();
                r.headers.append("authorization", a);
            }),
        ),
        (
            "non-ascii authorization",
            "non-ASCII",
            Box::new(|r: &mut Request| {
                r.headers.insert(
                    "authorization",
                    http::HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 Credential=\xff").unwrap(),
                );
            }),
        ),
    ];
    for (name, fragment, mutate) in cases {
        let mut req = signed_default();
        mutate(&mut req);
        let err = verifier()
            .verify(&req.parts(), t0(), &NeverLookup)
            .expect_err(name);
        assert_eq!(err.kind(), Incomplete, "{name}: {err}");
        assert!(err.to_string().contains(fragment), "{name}: {err}");
    }
}

#[test]
fn oversized_authorization_is_refused_before_parsing() {
    // About 300 KB of distinct signed header names used to cost tens of seconds of CPU.
    let names: Vec<String> = (0..30_000).map(|i| format!("x-h{i}")).collect();
    let list = names.join(";");
    let msg = rejected_cheaply(
        |r| {
            r.edit_authorization(|a| {
                a.replace("SignedHeaders=", &format!("SignedHeaders={list};"))
            });
        },
        SigErrorKind::Incomplete,
    );
    assert!(msg.contains("at most 8192"), "{msg}");
    // At the limit the header is parsed, and verified all the way to the signature.
    let mut req = signed_default();
    let pad = sigv4::MAX_AUTHORIZATION_BYTES - req.authorization().len() - 1;
    let name = format!("x-{}", "p".repeat(pad - 2));
    req.edit_authorization(|a| a.replace("SignedHeaders=", &format!("SignedHeaders={name};")));
    req.set(&name, "v");
    assert_eq!(req.authorization().len(), sigv4::MAX_AUTHORIZATION_BYTES);
    let err = verifier()
        .verify(&req.parts(), t0(), &Keys::new())
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::SignatureMismatch, "{err}");
}

#[test]
fn too_many_signed_headers_are_refused_before_lookup() {
    let msg = rejected_cheaply(
        |r| {
            let names: Vec<String> = (0..sigv4::MAX_SIGNED_HEADERS)
                .map(|i| format!("x-h{i}"))
                .collect();
            let list = names.join(";");
            r.edit_authorization(|a| {
                a.replace("SignedHeaders=", &format!("SignedHeaders={list};"))
            });
        },
        SigErrorKind::Incomplete,
    );
    assert!(msg.contains("at most 128"), "{msg}");
}

#[test]
fn incomplete_messages_use_aws_wording() {
    let msg = rejected_cheaply(
        |r| {
            r.set("x-amz-date", "20150830 123600");
        },
        SigErrorKind::Incomplete,
    );
    assert_eq!(
        msg,
        "Date must be in ISO-8601 'basic format'. Got '20150830 123600'. See \
         http://en.wikipedia.org/wiki/ISO_8601"
    );
    let msg = rejected_cheaply(
        |r| {
            r.set("authorization", "AWS4-HMAC-SHA256 SignedHeaders=host");
            r.remove("x-amz-date");
        },
        SigErrorKind::Incomplete,
    );
    assert_eq!(
        msg,
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'Signature' parameter. Authorization header requires existence of either a \
         'X-Amz-Date' or a 'Date' header."
    );
    let msg = rejected_cheaply(replace_in_auth("host;", ""), SigErrorKind::Incomplete);
    assert_eq!(
        msg,
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn wrong_scope_is_rejected_before_lookup() {
    use SigErrorKind::WrongScope;
    let msg = rejected_cheaply(replace_in_auth("/us-east-1/", "/eu-west-1/"), WrongScope);
    assert_eq!(
        msg,
        "Credential should be scoped to a valid region, not 'eu-west-1'; expecting 'us-east-1'."
    );
    let msg = rejected_cheaply(
        replace_in_auth("/ec2-instance-connect/", "/ec2/"),
        WrongScope,
    );
    assert_eq!(
        msg,
        "Credential should be scoped to correct service: 'ec2-instance-connect'."
    );
    let msg = rejected_cheaply(
        replace_in_auth("/aws4_request", "/aws4_requests"),
        WrongScope,
    );
    assert_eq!(
        msg,
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws4_requests'."
    );
    let msg = rejected_cheaply(
        |r| {
            r.set("x-amz-date", "20150831T000500Z");
        },
        WrongScope,
    );
    assert_eq!(
        msg,
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
         HTTP: '20150830' != '20150831', from '20150831T000500Z'."
    );
}

#[test]
fn payload_problems_are_rejected_before_lookup() {
    use SigErrorKind::PayloadHashMismatch;
    let msg = rejected_cheaply(
        |r| {
            r.set("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
        },
        PayloadHashMismatch,
    );
    assert!(msg.contains("UNSIGNED-PAYLOAD"), "{msg}");
    rejected_cheaply(
        |r| {
            r.set("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD");
        },
        PayloadHashMismatch,
    );
    let msg = rejected_cheaply(
        |r| {
            r.set("x-amz-content-sha256", &"0".repeat(64));
        },
        PayloadHashMismatch,
    );
    assert_eq!(
        msg,
        "The provided 'x-amz-content-sha256' header does not match what was computed."
    );
}

#[test]
fn skew_window_is_inclusive_and_checked_before_lookup() {
    let req = signed_default();
    let fifteen = 15 * 60;
    for offset in [-fifteen, -1, 0, 1, fifteen] {
        let keys = Keys::new();
        verifier()
            .verify(&req.parts(), at(offset), &keys)
            .unwrap_or_else(|e| panic!("now = t0 {offset:+}s: {e}"));
    }
    for offset in [-fifteen - 1, fifteen + 1, 3600, -86_400 * 400] {
        let err = verifier()
            .verify(&req.parts(), at(offset), &NeverLookup)
            .unwrap_err();
        assert_eq!(err.kind(), SigErrorKind::Expired, "{offset}");
    }
    // Sub-second parts of "now" do not widen the window.
    let err = verifier()
        .verify(
            &req.parts(),
            at(fifteen + 1) + Duration::from_millis(999),
            &NeverLookup,
        )
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::Expired);
}

#[test]
fn expired_messages_match_aws_exactly() {
    // AWS's own example: signed 12:36, server clock 12:56.
    let req = signed_default();
    let err = verifier()
        .verify(&req.parts(), at(20 * 60), &NeverLookup)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z \
         (20150830T125600Z - 15 min.)"
    );
    // Signed in the future (client clock fast): AWS says "not yet current".
    let future = signed(&Spec {
        time: at(24 * 60),
        ..Spec::default()
    });
    let err = verifier()
        .verify(&future.parts(), t0(), &NeverLookup)
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::Expired);
    assert_eq!(
        err.to_string(),
        "Signature not yet current: 20150830T130000Z is still later than 20150830T125100Z \
         (20150830T123600Z + 15 min.)"
    );
    // A configured window shows in the message.
    let err = verifier()
        .with_max_skew(Duration::from_secs(300))
        .verify(&req.parts(), at(301), &NeverLookup)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T124101Z - 5 min.)"
    );
}

#[test]
fn unknown_access_key() {
    let keys = Keys::new();
    let req = signed(&Spec {
        access_key_id: "AKIAOTHER".into(),
        ..Spec::default()
    });
    let err = verifier().verify(&req.parts(), t0(), &keys).unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::UnknownAccessKey);
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
    assert_eq!(keys.calls.get(), 1);
}

#[test]
fn invalid_token() {
    // Temporary credential, token missing.
    let keys = Keys::with_token(TOKEN);
    let err = verifier()
        .verify(&signed_default().parts(), t0(), &keys)
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::InvalidToken);
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );

    // Token sent twice.
    let mut req = signed(&Spec {
        token: Some(TOKEN.into()),
        sign_token: false,
        ..Spec::default()
    });
    req.headers
        .append("x-amz-security-token", TOKEN.parse().unwrap());
    let err = verifier()
        .verify(&req.parts(), t0(), &Keys::with_token(TOKEN))
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::InvalidToken);

    // A token that differs only in its last byte.
    let mut almost = TOKEN.to_owned();
    almost.pop();
    almost.push('X');
    let req = signed(&Spec {
        token: Some(almost),
        ..Spec::default()
    });
    let err = verifier()
        .verify(&req.parts(), t0(), &Keys::with_token(TOKEN))
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::InvalidToken);
}

#[test]
fn signature_mismatch_message_is_aws_wording() {
    let mut req = signed_default();
    req.body.push(b' ');
    let keys = Keys::new();
    let err = verifier().verify(&req.parts(), t0(), &keys).unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::SignatureMismatch);
    assert_eq!(
        err.to_string(),
        "The request signature we calculated does not match the signature you provided. Check \
         your AWS Secret Access Key and signing method. Consult the service documentation for \
         details."
    );
    assert_eq!(keys.calls.get(), 1);
}

#[test]
fn closures_are_lookups_and_principals_are_generic() {
    #[derive(Debug, PartialEq)]
    struct Account(u64);
    let lookup = |id: &str| {
        (id == AKID).then(|| SigningSecret::new(SecretKey::new(SECRET), Account(111_122_223_333)))
    };
    let ok = verifier()
        .verify(&signed_default().parts(), t0(), &lookup)
        .unwrap();
    assert_eq!(ok.into_principal(), Account(111_122_223_333));
}

#[test]
fn nothing_secret_in_debug_output() {
    let secret =
        SigningSecret::new(SecretKey::new(SECRET), "p").with_session_token(SecretKey::new(TOKEN));
    for shown in [
        format!("{secret:?}"),
        format!("{:?}", secret.secret),
        format!("{secret:#?}"),
    ] {
        assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    }
    assert_eq!(format!("{:?}", SecretKey::new(SECRET)), "SecretKey(***)");

    let req = signed(&Spec {
        token: Some(TOKEN.into()),
        ..Spec::default()
    });
    let ok = verifier()
        .verify(&req.parts(), t0(), &Keys::with_token(TOKEN))
        .unwrap();
    let shown = format!("{ok:?} {:?}", verifier());
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
}
