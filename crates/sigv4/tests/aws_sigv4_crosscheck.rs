//! Requests signed by AWS's own signer (`aws-sigv4`) verify here, and each kind of tampering
//! is reported as the right error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::UNIX_EPOCH;

use common::*;
use http::HeaderName;
use sigv4::{SigErrorKind, Verifier};

fn verifier() -> Verifier {
    Verifier::new(SERVICE, REGION)
        .require_signed_header(HeaderName::from_static("x-amz-target"))
        .require_signed_header(HeaderName::from_static("content-type"))
}

fn kind_of(req: &Request, keys: &Keys) -> SigErrorKind {
    let err = verifier().verify(&req.parts(), t0(), keys).unwrap_err();
    assert!(!err.to_string().contains(SECRET), "{err}");
    err.kind()
}

#[test]
fn json_api_call_verifies() {
    let req = signed_default();
    let keys = Keys::new();
    let ok = verifier().verify(&req.parts(), t0(), &keys).unwrap();
    assert_eq!(ok.access_key_id(), AKID);
    assert_eq!(*ok.principal(), "arn:aws:iam::111122223333:user/alice");
    assert_eq!(ok.request_time(), t0());
    assert_eq!(ok.scope_date(), "20150830");
    assert_eq!(ok.region(), REGION);
    assert!(!ok.used_session_token());
    assert_eq!(keys.calls.get(), 1);
    assert_eq!(ok.into_principal(), "arn:aws:iam::111122223333:user/alice");
}

#[test]
fn signs_what_the_sdk_signs() {
    // aws-sigv4 signs every header it is given except a few; check the verifier sees the same.
    let auth = signed_default().authorization();
    assert!(
        auth.contains("SignedHeaders=content-length;content-type;host;x-amz-date;x-amz-target,"),
        "{auth}"
    );
}

#[test]
fn session_token_signed_or_added_after() {
    for sign_token in [true, false] {
        let req = signed(&Spec {
            token: Some(TOKEN.into()),
            sign_token,
            ..Spec::default()
        });
        let keys = Keys::with_token(TOKEN);
        let ok = verifier().verify(&req.parts(), t0(), &keys).unwrap();
        assert!(ok.used_session_token());

        // A different token, or none, for a temporary credential.
        let other = Keys::with_token("another-token");
        assert_eq!(kind_of(&req, &other), SigErrorKind::InvalidToken);
        // The same request against a long-term key: a token it does not have.
        assert_eq!(kind_of(&req, &Keys::new()), SigErrorKind::InvalidToken);
    }
    // Token added after signing, then stripped: the credential needs it.
    let mut req = signed(&Spec {
        token: Some(TOKEN.into()),
        sign_token: false,
        ..Spec::default()
    });
    req.remove("x-amz-security-token");
    assert_eq!(
        kind_of(&req, &Keys::with_token(TOKEN)),
        SigErrorKind::InvalidToken
    );
}

#[test]
fn payload_hash_header_verifies_and_is_checked() {
    let spec = Spec {
        content_sha256_header: true,
        ..Spec::default()
    };
    let req = signed(&spec);
    assert!(req.headers.contains_key("x-amz-content-sha256"));
    verifier().verify(&req.parts(), t0(), &Keys::new()).unwrap();

    let mut tampered = req.clone();
    tampered.body = br#"{"InstanceId":"i-0fffffffffffffff0","SerialPort":0}"#.to_vec();
    assert_eq!(
        kind_of(&tampered, &Keys::new()),
        SigErrorKind::PayloadHashMismatch
    );
}

#[test]
fn tampering_is_a_signature_mismatch() {
    let base = signed_default();

    let mut body = base.clone();
    body.body[16] ^= 1;
    assert_eq!(
        kind_of(&body, &Keys::new()),
        SigErrorKind::SignatureMismatch
    );

    let mut target = base.clone();
    target.set(
        "x-amz-target",
        "AWSEC2InstanceConnectService.SendSSHPublicKey",
    );
    assert_eq!(
        kind_of(&target, &Keys::new()),
        SigErrorKind::SignatureMismatch
    );

    let mut method = base.clone();
    method.method = http::Method::PUT;
    assert_eq!(
        kind_of(&method, &Keys::new()),
        SigErrorKind::SignatureMismatch
    );

    let mut path = base.clone();
    path.path = "/x".into();
    assert_eq!(
        kind_of(&path, &Keys::new()),
        SigErrorKind::SignatureMismatch
    );

    let mut query = base.clone();
    query.query = Some("a=b".into());
    assert_eq!(
        kind_of(&query, &Keys::new()),
        SigErrorKind::SignatureMismatch
    );

    let mut wrong_secret = Keys::new();
    wrong_secret.secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ".into();
    assert_eq!(
        kind_of(&base, &wrong_secret),
        SigErrorKind::SignatureMismatch
    );
}

#[test]
fn unsigned_headers_may_change() {
    // aws-sigv4 leaves user-agent unsigned; proxies may add or rewrite such headers.
    let mut req = signed(&Spec {
        headers: [
            Spec::default().headers,
            vec![("user-agent".into(), "aws-sdk-rust/1.0".into())],
        ]
        .concat(),
        ..Spec::default()
    });
    assert!(!req.authorization().contains("user-agent"));
    req.set("user-agent", "something else");
    req.set("x-forwarded-for", "10.0.0.1");
    verifier().verify(&req.parts(), t0(), &Keys::new()).unwrap();
}

#[test]
fn wrong_region_or_service_is_wrong_scope() {
    let req = signed(&Spec {
        region: "us-west-2".into(),
        ..Spec::default()
    });
    let err = verifier()
        .verify(&req.parts(), t0(), &NeverLookup)
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::WrongScope);
    assert_eq!(
        err.to_string(),
        "Credential should be scoped to a valid region, not 'us-west-2'; expecting 'us-east-1'."
    );

    let req = signed(&Spec {
        service: "ec2".into(),
        ..Spec::default()
    });
    let err = verifier()
        .verify(&req.parts(), t0(), &NeverLookup)
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::WrongScope);
    assert_eq!(
        err.to_string(),
        "Credential should be scoped to correct service: 'ec2-instance-connect'."
    );
}

#[test]
fn unknown_key_is_reported_after_one_lookup() {
    let req = signed(&Spec {
        access_key_id: "AKIAUNKNOWN000000000".into(),
        ..Spec::default()
    });
    let keys = Keys::new();
    let err = verifier().verify(&req.parts(), t0(), &keys).unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::UnknownAccessKey);
    assert_eq!(
        err.to_string(),
        "The security token included in the request is invalid."
    );
    assert_eq!(keys.calls.get(), 1);
}

/// Paths, queries and header values that exercise canonicalization, signed by aws-sigv4
/// (which normalizes paths and double-encodes them by default, as non-S3 services expect).
#[test]
fn agrees_with_aws_sigv4_on_awkward_requests() {
    let cases = [
        ("GET", "/"),
        ("GET", "/a%3Ab/%40c/d%20e"),
        ("GET", "/./a//b/../c/"),
        ("GET", "/-._~azAZ09/%E1%88%B4"),
        ("GET", "/?b=2&a=1&a=0&c"),
        ("GET", "/path?x=%2F%2B%20&y=a+b&%E1%88%B4=bar&empty="),
        ("DELETE", "/items/i-0123456789abcdef0?force=true"),
    ];
    for (method, pq) in cases {
        let spec = Spec {
            method,
            path_and_query: pq.into(),
            headers: vec![
                ("host".into(), HOST.into()),
                ("x-amz-target".into(), TARGET.into()),
                (
                    "content-type".into(),
                    "  text/plain;   charset=utf-8 ".into(),
                ),
                ("x-custom".into(), "one".into()),
                ("x-custom".into(), "two   three".into()),
            ],
            body: Vec::new(),
            ..Spec::default()
        };
        let req = signed(&spec);
        verifier()
            .verify(&req.parts(), t0(), &Keys::new())
            .unwrap_or_else(|e| panic!("{method} {pq}: {e}"));
    }
}

#[test]
fn real_clock_request_verifies_now() {
    let now = std::time::SystemTime::now();
    let req = signed(&Spec {
        time: now,
        ..Spec::default()
    });
    let ok = verifier().verify(&req.parts(), now, &Keys::new()).unwrap();
    let secs = |t: std::time::SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(secs(ok.request_time()), secs(now));
}

/// The two-step form for async secret stores gives the same answers as `verify`.
#[test]
fn check_then_finish() {
    let req = signed_default();
    let v = verifier();
    let checked = v.check(&req.parts(), t0()).unwrap();
    assert_eq!(checked.access_key_id(), AKID);
    let secret = sigv4::SigningSecret::new(sigv4::SecretKey::new(SECRET), 42u32);
    assert_eq!(checked.finish(Some(secret)).unwrap().into_principal(), 42);

    let checked = v.check(&req.parts(), t0()).unwrap();
    let err = checked.finish::<()>(None).unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::UnknownAccessKey);

    let stale = v.check(&req.parts(), t0() + std::time::Duration::from_secs(3600));
    assert_eq!(stale.unwrap_err().kind(), SigErrorKind::Expired);
}
