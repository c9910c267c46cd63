//! serialgate's HTTP service: AWS JSON 1.1 for EC2 Instance Connect, the EC2 Query subset
//! around the serial console, plus `/health`.
//!
//! The only crate that speaks AWS JSON or EC2 XML. A JSON request goes: body limit → SigV4
//! ([`sigv4`]) → `X-Amz-Target` routing ([`router`]) → one operation file (parse → domain call
//! → encode). Errors of every stage become one [`error::ApiError`], which knows its wire code
//! and status. A form-encoded request without `X-Amz-Target` is EC2 Query instead and takes the
//! same steps in `ec2` (SigV4 for service `ec2`, routing by `Action`, XML errors).

pub mod credentials;
mod ec2;
pub mod error;
mod health;
mod json;
pub mod ops;
mod router;
mod server;

pub use credentials::{CredentialEntry, Credentials};
pub use error::{ApiError, ErrorCode};
pub use server::{ApiState, DEFAULT_BODY_LIMIT, router, serve};
