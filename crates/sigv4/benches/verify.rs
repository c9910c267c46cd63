//! Micro benchmark: verifying a typical API call, against AWS's own signer doing the same
//! canonicalization and HMAC work on the same request (the baseline). Prints a ratio only;
//! run with `cargo bench -p sigv4`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::time::Instant;

use common::*;
use sigv4::Verifier;

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
}
