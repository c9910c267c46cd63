//! serialgate's HTTP service: AWS JSON 1.1 for EC2 Instance Connect, plus `/health`.
//!
//! The only crate that speaks AWS JSON. A request goes: body limit → SigV4 ([`sigv4`]) →
//! `X-Amz-Target` routing ([`router`]) → one operation file (parse → domain call → encode).
//! Errors of every stage become one [`error::ApiError`], which knows its wire code and status.

pub mod credentials;
pub mod error;
mod health;
mod json;
pub mod ops;
mod router;
mod server;

pub use credentials::{CredentialEntry, Credentials};
pub use error::{ApiError, ErrorCode};
pub use server::{ApiState, DEFAULT_BODY_LIMIT, router, serve};
