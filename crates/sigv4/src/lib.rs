//! Server-side AWS Signature Version 4 verification: requests signed in their `Authorization`
//! header ([`Verifier::verify`]) and presigned URLs ([`Verifier::verify_presigned`]).
//!
//! Invariant: this crate knows nothing of HTTP frameworks or of EC2. It takes borrowed request
//! parts ([`RequestParts`]), a clock reading and a [`SecretLookup`], and returns either a
//! [`Verified`] (which nothing else can construct) or a [`SigError`] whose [`SigErrorKind`]
//! the API layer maps to an AWS error code.
//!
//! Order of work, so junk is rejected before any secret is touched: authorization header size
//! ([`MAX_AUTHORIZATION_BYTES`]) and shape (at most [`MAX_SIGNED_HEADERS`] signed headers)
//! → request date → credential scope (terminator, service, region, date) → required signed
//! headers → clock skew → payload hash → **one** secret lookup → signature (constant time) →
//! session token (constant time).
//!
//! Paths are canonicalized the way non-S3 services do it: normalized (`.`, `..`, `//`) and
//! percent-encoded a second time. A presigned (query-string) request goes through the same
//! steps with its parameters taken from the query ([`MAX_PRESIGNED_QUERY_BYTES`] at most):
//! the canonical query leaves out `X-Amz-Signature`, the payload is the body's hash (the
//! empty body's, for a `GET`) as for every non-S3 service, and instead of the clock skew
//! the URL is valid from `X-Amz-Date` for `X-Amz-Expires` seconds, capped by the caller.
//!
//! ```
//! use std::time::SystemTime;
//! use http::{HeaderMap, HeaderName, Method};
//! use sigv4::{RequestParts, SecretKey, SigErrorKind, SigningSecret, Verifier};
//!
//! let verifier = Verifier::new("ec2-instance-connect", "us-east-1")
//!     .require_signed_header(HeaderName::from_static("x-amz-target"));
//! let lookup = |access_key_id: &str| {
//!     (access_key_id == "AKIAIOSFODNN7EXAMPLE").then(|| {
//!         SigningSecret::new(SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"), "111122223333")
//!     })
//! };
//! let headers = HeaderMap::new(); // no Authorization header
//! let req = RequestParts { method: &Method::POST, path: "/", query: None, headers: &headers, body: b"{}" };
//! match verifier.verify(&req, SystemTime::now(), &lookup) {
//!     Ok(verified) => println!("account {}", verified.principal()),
//!     Err(e) => assert_eq!(e.kind(), SigErrorKind::Missing),
//! }
//! ```

mod authorization;
mod canonical;
mod date;
mod error;
mod presigned;
mod secret;
mod signing;
mod uri;
mod verify;

#[cfg(test)]
mod tests;

pub use authorization::{MAX_AUTHORIZATION_BYTES, MAX_SIGNED_HEADERS};
pub use error::{SigError, SigErrorKind};
pub use presigned::{MAX_PRESIGNED_EXPIRES_SECS, MAX_PRESIGNED_QUERY_BYTES};
pub use secret::{SecretKey, SecretLookup, SigningSecret};
pub use verify::{Checked, RequestParts, Verified, Verifier};
