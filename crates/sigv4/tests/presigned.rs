//! Presigned URLs made by AWS's own signer (`aws-sigv4`, query-string signing) verify here for
//! as long as they say and no longer, and each kind of tampering is reported as the right error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use sigv4::{SigErrorKind, Verifier};

const MINUTE: Duration = Duration::from_secs(60);

/// A browser-console link: `GET /console/i-…/0` signed for `host` only.
fn spec() -> Spec {
    Spec {
        method: "GET",
        path_and_query: "/console/i-0123456789abcdef0/0?Action=OpenSerialConsole".into(),
        headers: vec![("host".into(), HOST.into())],
        body: Vec::new(),
        presign_for: Some(MINUTE),
        ..Spec::default()
    }
}

fn check(req: &Request, offset_secs: i64, keys: &Keys) -> Result<(), SigErrorKind> {
    Verifier::new(SERVICE, REGION)
        .verify_presigned(&req.parts(), at(offset_secs), MINUTE, keys)
        .map(|_| ())
        .map_err(|e| {
            assert!(!e.to_string().contains(SECRET), "{e}");
            e.kind()
        })
}

#[test]
fn a_presigned_url_verifies_for_its_lifetime() {
    let req = signed(&spec());
    let q = req.query.as_deref().unwrap();
    assert!(q.contains("X-Amz-Expires=60"), "{q}");
    assert!(q.contains("X-Amz-SignedHeaders=host"), "{q}");
    assert!(req.headers.get("authorization").is_none());

    let keys = Keys::new();
    let ok = Verifier::new(SERVICE, REGION)
        .verify_presigned(&req.parts(), at(30), MINUTE, &keys)
        .unwrap();
    assert_eq!(ok.access_key_id(), AKID);
    assert_eq!(ok.request_time(), t0());
    assert_eq!(ok.expires_at(), Some(at(60)));
    assert_eq!(keys.calls.get(), 1);
    // The signature identifies the URL: the one in its query.
    assert!(q.contains(&hex::encode(ok.signature())));

    assert_eq!(check(&req, 0, &keys), Ok(()));
    assert_eq!(check(&req, 60, &keys), Ok(()));
    assert_eq!(check(&req, 61, &keys), Err(SigErrorKind::Expired));
    // Early by the clock skew at most, as a signed header's date may be.
    assert_eq!(check(&req, -15 * 60, &keys), Ok(()));
    assert_eq!(check(&req, -15 * 60 - 1, &keys), Err(SigErrorKind::Expired));
}

#[test]
fn expiry_says_when_the_url_was_valid() {
    let req = signed(&spec());
    let err = Verifier::new(SERVICE, REGION)
        .verify_presigned(&req.parts(), at(90), MINUTE, &Keys::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Request has expired: signed at 20150830T123600Z for 60 seconds, so valid until \
         20150830T123700Z; it is now 20150830T123730Z."
    );
}

#[test]
fn a_url_valid_longer_than_the_server_allows_is_refused() {
    let req = signed(&Spec {
        presign_for: Some(10 * MINUTE),
        ..spec()
    });
    let err = Verifier::new(SERVICE, REGION)
        .verify_presigned(&req.parts(), at(1), MINUTE, &Keys::new())
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::Incomplete);
    assert!(err.to_string().contains("at most 60 seconds"), "{err}");
    // Allowed when the server allows it.
    Verifier::new(SERVICE, REGION)
        .verify_presigned(&req.parts(), at(1), 10 * MINUTE, &Keys::new())
        .unwrap();
}

#[test]
fn temporary_credentials_carry_their_token_in_the_url() {
    let req = signed(&Spec {
        token: Some(TOKEN.into()),
        ..spec()
    });
    assert!(
        req.query
            .as_deref()
            .unwrap()
            .contains("X-Amz-Security-Token=")
    );
    assert_eq!(check(&req, 1, &Keys::with_token(TOKEN)), Ok(()));
    assert_eq!(
        check(&req, 1, &Keys::with_token("another")),
        Err(SigErrorKind::InvalidToken)
    );
    assert_eq!(
        check(&req, 1, &Keys::new()),
        Err(SigErrorKind::InvalidToken)
    );
    // A long-term key's URL presented for a temporary credential.
    let plain = signed(&spec());
    assert_eq!(
        check(&plain, 1, &Keys::with_token(TOKEN)),
        Err(SigErrorKind::InvalidToken)
    );
}

#[test]
fn tampering_is_caught() {
    let keys = Keys::new();
    let req = signed(&spec());

    // Another instance, port or action: the path and query are signed.
    let mut other = req.clone();
    other.path = "/console/i-0123456789abcdef1/0".into();
    assert_eq!(
        check(&other, 1, &keys),
        Err(SigErrorKind::SignatureMismatch)
    );
    let mut other = req.clone();
    other.query = Some(other.query.unwrap().replace("Action=Open", "Action=Spy"));
    assert_eq!(
        check(&other, 1, &keys),
        Err(SigErrorKind::SignatureMismatch)
    );
    // A longer lifetime than signed.
    let mut other = req.clone();
    other.query = Some(
        other
            .query
            .unwrap()
            .replace("X-Amz-Expires=60", "X-Amz-Expires=59"),
    );
    assert_eq!(
        check(&other, 1, &keys),
        Err(SigErrorKind::SignatureMismatch)
    );
    // Another host.
    let mut other = req.clone();
    other.set("host", "evil.example");
    assert_eq!(
        check(&other, 1, &keys),
        Err(SigErrorKind::SignatureMismatch)
    );
    // A parameter added after signing.
    let mut other = req.clone();
    other.query = Some(format!("{}&extra=1", other.query.unwrap()));
    assert_eq!(
        check(&other, 1, &keys),
        Err(SigErrorKind::SignatureMismatch)
    );
    // A body: the URL signed the empty one.
    let mut other = req.clone();
    other.body = b"x".to_vec();
    assert_eq!(
        check(&other, 1, &keys),
        Err(SigErrorKind::SignatureMismatch)
    );
    // Unknown key: one lookup, then refused.
    let mut other = req.clone();
    other.query = Some(other.query.unwrap().replace(AKID, "AKIAOTHER"));
    assert_eq!(check(&other, 1, &keys), Err(SigErrorKind::UnknownAccessKey));
}

#[test]
fn scope_and_mechanism_errors() {
    let keys = Keys::new();
    let wrong_region = signed(&Spec {
        region: "eu-west-1".into(),
        ..spec()
    });
    assert_eq!(
        check(&wrong_region, 1, &keys),
        Err(SigErrorKind::WrongScope)
    );
    let wrong_service = signed(&Spec {
        service: "s3".into(),
        ..spec()
    });
    assert_eq!(
        check(&wrong_service, 1, &keys),
        Err(SigErrorKind::WrongScope)
    );

    // Both mechanisms at once.
    let mut both = signed(&spec());
    both.set("authorization", &signed_default().authorization());
    assert_eq!(check(&both, 1, &keys), Err(SigErrorKind::Incomplete));
    // Neither.
    let mut none = signed(&spec());
    none.query = Some("Action=OpenSerialConsole".into());
    assert_eq!(check(&none, 1, &keys), Err(SigErrorKind::Missing));
    // A header-signed request is not a presigned one, and the other way round.
    assert_eq!(
        check(&signed_default(), 1, &keys),
        Err(SigErrorKind::Incomplete)
    );
    let presigned = signed(&spec());
    let err = Verifier::new(SERVICE, REGION)
        .verify(&presigned.parts(), at(1), &keys)
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::Incomplete);
    // No lookup for any of these.
    assert_eq!(keys.calls.get(), 0);
}

#[test]
fn a_required_signed_header_must_be_signed_in_the_url_too() {
    let req = signed(&spec());
    let err = Verifier::new(SERVICE, REGION)
        .require_signed_header(http::HeaderName::from_static("x-amz-target"))
        .verify_presigned(&req.parts(), at(1), MINUTE, &Keys::new())
        .unwrap_err();
    assert_eq!(err.kind(), SigErrorKind::Incomplete);
}
