//! serialgate's HTTP service: AWS JSON 1.1 for EC2 Instance Connect, the EC2 Query subset
//! around the serial console, plus `/health`, `/ready`, and `/instance-keys/v1/{os_user}`
//! where instances fetch the keys pushed for their users (proved by an HMAC, not SigV4), and
//! the browser console under `/console/` (presigned links, the page, its WebSocket:
//! [`browser`]).
//!
//! The only crate that speaks AWS JSON or EC2 XML. A JSON request goes: body limit → SigV4
//! ([`sigv4`]) → `X-Amz-Target` routing ([`router`]) → one operation file (parse → domain call
//! → encode). Errors of every stage become one [`error::ApiError`], which knows its wire code
//! and status. A form-encoded request without `X-Amz-Target` is EC2 Query instead and takes the
//! same steps in `ec2` (SigV4 for service `ec2`, routing by `Action`, XML errors).
//!
//! Every call whose signature verified is recorded once in the audit trail, allowed or refused,
//! with the code its caller received (`audit`); requests the verifier refused are counted per
//! source and reason, one record per window (`refusals`).
//!
//! The listener ([`serve`], [`serve_tls`]) bounds what a client can hold before it is
//! authenticated ([`ApiLimits`]): connections in total and per source address (refused at once
//! at a cap), the time a request head may take (a TLS handshake included), idle keep-alive time,
//! the time a whole request may take, and the size and count of request headers.

mod audit;
pub mod browser;
mod connection;
pub mod credentials;
mod ec2;
pub mod error;
mod health;
mod instance_keys;
mod json;
mod limits;
mod listener;
pub mod ops;
#[cfg(test)]
mod prop_tests;
pub mod ready;
mod refusals;
mod router;
mod server;
pub mod tls;

pub use credentials::{CredentialEntry, Credentials};
pub use error::{ApiError, ErrorCode};
pub use instance_keys::{InstanceKeys, KeyToken, serve_local};
pub use limits::ApiLimits;
pub use listener::{serve, serve_tls};
pub use server::{ApiState, DEFAULT_BODY_LIMIT, router};
