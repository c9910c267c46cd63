//! Server-side AWS Signature Version 4 verification for `Authorization`-header requests.
//!
//! Invariant: this crate knows nothing of HTTP frameworks or of EC2. It takes borrowed request
//! parts ([`RequestParts`]), a clock reading and a [`SecretLookup`], and returns either a
//! [`Verified`] (which nothing else can construct) or a [`SigError`] whose [`SigErrorKind`]
//! the API layer maps to an AWS error code.
//!
//! Order of work, so junk is rejected before any secret is touched: authorization header shape
//! → request date → credential scope (terminator, service, region, date) → required signed
//! headers → clock skew → payload hash → **one** secret lookup → signature (constant time) →
//! session token (constant time).
//!
//! Paths are canonicalized the way non-S3 services do it: normalized (`.`, `..`, `//`) and
//! percent-encoded a second time. Presigned (query-string) requests are not supported.

mod authorization;
mod canonical;
mod date;
mod error;
mod secret;
mod signing;
mod uri;
mod verify;

#[cfg(test)]
mod tests;

pub use error::{SigError, SigErrorKind};
pub use secret::{SecretKey, SecretLookup, SigningSecret};
pub use verify::{RequestParts, Verified, Verifier};
