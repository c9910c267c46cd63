//! Micro benchmark: verifying a typical API call, against AWS's own signer doing the same
//! canonicalization and HMAC work on the same request (the baseline), then the worst cases an
//! unauthenticated client can send: inputs at every cap (largest `Authorization`, most signed
//! headers, largest body, long query and path) and inputs beyond them (which must be refused
//! cheaply). The budget for any single request is about a millisecond of an async worker.
//! Run with `cargo bench -p sigv4`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::*;
use http::{HeaderName, HeaderValue};
use sigv4::{SecretLookup, Verifier};

fn per_op(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
}

/// Worst single run of `f` over `iterations`, µs (the figure the per-request budget is about).
fn worst(iterations: u32, mut f: impl FnMut()) -> f64 {
    let mut worst = Duration::ZERO;
    for _ in 0..iterations {
        let start = Instant::now();
        f();
        worst = worst.max(start.elapsed());
    }
    worst.as_secs_f64() * 1e6
}

/// A bogus but well-formed signature: verification does all of its work, then mismatches.
const BOGUS_SIG: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn authorization(akid: &str, signed_headers: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={akid}/20150830/{REGION}/{SERVICE}/aws4_request, \
         SignedHeaders={signed_headers}, Signature={BOGUS_SIG}"
    )
}

/// `count` distinct lowercase header names of `len` bytes each.
fn names(count: usize, len: usize) -> Vec<String> {
    (0..count)
        .map(|i| {
            let stem = format!("x-h{i:05}-");
            format!("{stem}{}", "a".repeat(len.saturating_sub(stem.len())))
        })
        .collect()
}

/// The cheapest junk that was quadratic: ~300 KB of short distinct signed header names (four
/// letters each), an unknown access key, a valid date.
fn quadratic_names() -> Request {
    let mut req = signed_default();
    let list = (0..60_000u32)
        .map(|i| {
            let letter =
                |shift: u32| char::from(b'a' + u8::try_from(i / 26u32.pow(shift) % 26).unwrap());
            [letter(3), letter(2), letter(1), letter(0)]
                .iter()
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join(";");
    let value = authorization("AKIDNOBODY", &format!("host;x-amz-date;{list}"));
    req.set("authorization", &value);
    req
}

/// Everything at its cap, for a known key, so the verifier does all of its work: a
/// `max_auth`-byte `Authorization` naming `count` signed headers (all present, values full of
/// spaces to collapse), a `body_len`-byte body, a long query and a path to normalize.
fn at_caps(max_auth: usize, count: usize, body_len: usize) -> Request {
    let spec = Spec {
        body: vec![b'x'; body_len],
        path_and_query: format!(
            "/{}?{}",
            "a/./b/../c//".repeat(200),
            (0..1000)
                .map(|i| format!("p{:04}=v%20{i}", 999 - i))
                .collect::<Vec<_>>()
                .join("&")
        ),
        ..Spec::default()
    };
    let mut req = signed(&spec);
    let fixed = ["content-type", "host", "x-amz-date", "x-amz-target"];
    let skeleton = authorization(AKID, &fixed.join(";")).len();
    let custom = count - fixed.len();
    // Each custom name costs its length plus one ';'.
    let len = (max_auth - skeleton) / custom - 1;
    let mut all: Vec<String> = names(custom, len);
    for name in &all {
        req.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_static("  a   value  with    runs   of  spaces  "),
        );
    }
    all.extend(fixed.iter().map(|s| (*s).to_owned()));
    all.sort();
    let value = authorization(AKID, &all.join(";"));
    assert!(value.len() <= max_auth, "{} > {max_auth}", value.len());
    req.set("authorization", &value);
    req
}

fn report(label: &str, verifier: &Verifier, req: &Request, lookup: &impl SecretLookup) {
    let once = || {
        black_box(
            verifier
                .verify(black_box(&req.parts()), t0(), lookup)
                .map(|_| ())
                .map_err(|e| e.kind()),
        )
    };
    // A first run decides how many more are affordable (the quadratic input takes seconds).
    let start = Instant::now();
    let outcome = once();
    let first = start.elapsed();
    let runs = if first > Duration::from_millis(100) {
        0
    } else {
        200
    };
    let (mean, worst) = if runs == 0 {
        (first.as_secs_f64() * 1e6, first.as_secs_f64() * 1e6)
    } else {
        (
            per_op(runs, || {
                let _ = once();
            }),
            worst(runs, || {
                let _ = once();
            }),
        )
    };
    println!("{label:44} {mean:10.1} µs/op  worst {worst:10.1} µs  ({outcome:?})");
}

fn main() {
    let spec = Spec::default();
    let req = signed(&spec);
    let keys = Keys::new();
    let verifier = Verifier::new(SERVICE, REGION);
    verifier.verify(&req.parts(), t0(), &keys).unwrap();

    let n = 50_000;
    let verify = per_op(n, || {
        black_box(
            verifier
                .verify(black_box(&req.parts()), t0(), &keys)
                .unwrap(),
        );
    });
    let rejected = per_op(n, || {
        black_box(
            verifier
                .verify(black_box(&req.parts()), at(3600), &NeverLookup)
                .unwrap_err(),
        );
    });
    let baseline = per_op(n, || {
        black_box(signed(black_box(&spec)));
    });
    println!("verify (valid request)       {verify:8.2} µs/op");
    println!("verify (expired, no lookup)  {rejected:8.2} µs/op");
    println!("aws-sigv4 sign (baseline)    {baseline:8.2} µs/op");
    println!("ratio verify / baseline      {:8.2}", verify / baseline);
    println!();

    println!("worst cases (every one must stay well under 1000 µs):");
    report(
        "~300 KB of distinct signed header names",
        &verifier,
        &quadratic_names(),
        &keys,
    );
    let mut huge = signed_default();
    let value = authorization(AKID, &format!("host;x-amz-date;{}", "a".repeat(1 << 20)));
    huge.set("authorization", &value);
    report("1 MiB Authorization", &verifier, &huge, &keys);
    report(
        "at caps: 8 KiB auth, 128 headers, 64 KiB body",
        &verifier,
        &at_caps(8192, 128, 64 * 1024),
        &keys,
    );
    report(
        "at caps, 1 MiB body",
        &verifier,
        &at_caps(8192, 128, 1 << 20),
        &keys,
    );
    report(
        "129 signed headers (one over the cap)",
        &verifier,
        &at_caps(8192, 129, 64 * 1024),
        &keys,
    );
}
