//! Requests dated by the HTTP `Date` header instead of `X-Amz-Date`, which no AWS SDK signer
//! produces, so they are signed here with the crate's own (vector-checked) pieces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue, Method};
use sha2::{Digest, Sha256};

use crate::canonical::{CanonicalRequest, Sink, hex_digest, write_string_to_sign};
use crate::date::format_basic;
use crate::signing::{finish, signer, signing_key};
use crate::{RequestParts, SecretKey, SigErrorKind, SigningSecret, Verifier};

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const T0: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(T0 as u64)
}

/// Signs `headers` (all of them, sorted) for GET / at `time`.
fn sign(headers: &mut HeaderMap, time: i64) {
    let mut names: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
    names.sort_unstable();
    let signed_headers = names.join(";");
    let body_hash = hex_digest(&Sha256::digest(b"").into());
    let creq = CanonicalRequest {
        method: "GET",
        path: "/",
        query: None,
        skip_query: None,
        headers,
        signed_headers: &signed_headers,
        payload_hash: std::str::from_utf8(&body_hash).unwrap(),
        normalize_path: true,
    };
    let date = format_basic(time);
    let day = std::str::from_utf8(&date[..8]).unwrap();
    let scope = format!("{day}/us-east-1/service/aws4_request");
    let key = signing_key(&SecretKey::new(SECRET), day, "us-east-1", "service").unwrap();
    let mut mac = signer(&key).unwrap();
    let mut sts = Vec::new();
    write_string_to_sign(&mut sts, &date, &scope, &creq.hash_hex());
    mac.put(&sts);
    let auth = format!(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/{scope}, SignedHeaders={signed_headers}, Signature={}",
        hex::encode(finish(mac))
    );
    headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
}

fn verify(headers: &HeaderMap) -> Result<SystemTime, SigErrorKind> {
    let lookup = |_: &str| Some(SigningSecret::new(SecretKey::new(SECRET), ()));
    let parts = RequestParts {
        method: &Method::GET,
        path: "/",
        query: None,
        headers,
        body: b"",
    };
    Verifier::new("service", "us-east-1")
        .verify(&parts, now(), &lookup)
        .map(|v| v.request_time())
        .map_err(|e| e.kind())
}

#[test]
fn date_header_dates_the_request() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    headers.insert(
        "date",
        HeaderValue::from_static("Sun, 30 Aug 2015 12:36:00 GMT"),
    );
    sign(&mut headers, T0);
    assert_eq!(verify(&headers), Ok(now()));

    // The Date header must be signed when it is the request's date.
    let mut unsigned = HeaderMap::new();
    unsigned.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    sign(&mut unsigned, T0);
    unsigned.insert(
        "date",
        HeaderValue::from_static("Sun, 30 Aug 2015 12:36:00 GMT"),
    );
    assert_eq!(verify(&unsigned), Err(SigErrorKind::Incomplete));

    // A malformed Date is incomplete, a stale one expired.
    let mut bad = headers.clone();
    bad.insert("date", HeaderValue::from_static("30 Aug 2015 12:36:00"));
    assert_eq!(verify(&bad), Err(SigErrorKind::Incomplete));
    let mut stale = HeaderMap::new();
    stale.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    stale.insert(
        "date",
        HeaderValue::from_static("Sun, 30 Aug 2015 11:36:00 GMT"),
    );
    sign(&mut stale, T0 - 3600);
    assert_eq!(verify(&stale), Err(SigErrorKind::Expired));
}

#[test]
fn x_amz_date_wins_over_date() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    // A proxy's Date, unsigned and far off, must not matter.
    sign(&mut headers, T0);
    headers.insert(
        "date",
        HeaderValue::from_static("Mon, 01 Jan 2001 00:00:00 GMT"),
    );
    assert_eq!(verify(&headers), Ok(now()));
}
