//! serialgate's client: push an ephemeral key with EC2 Instance Connect and open an instance's
//! serial console over SSH (`connect`), or just push a key (`push`, `push-os-user-key`).
//!
//! Invariants: the AWS SDK is used here only; the private key of `connect` never leaves memory;
//! the terminal is restored on every exit path; every failure is one [`errors::Failure`] with a
//! documented exit code and a message saying what to do next.

pub mod args;
pub mod aws;
pub mod connect;
pub mod console;
pub mod endpoints;
pub mod errors;
pub mod escape;
pub mod explain;
pub mod fingerprints;
pub mod host_key;
pub mod inband;
pub mod interactive;
pub mod known_hosts;
pub mod push;
pub mod script;
pub mod scripted;
pub mod send_text;
pub mod signals;
pub mod ssh;
pub mod target;
pub mod terminal;
pub mod transcript;
pub mod wait;

pub use args::{AwsArgs, ConnectArgs, PushArgs, PushOsUserKeyArgs};
pub use errors::{EXIT_CODES_HELP, PUSH_EXIT_CODES_HELP};

/// `serialgate connect`; returns the exit code.
pub async fn connect(args: ConnectArgs) -> i32 {
    connect::run(args).await
}

/// `serialgate push`; returns the exit code.
pub async fn push(args: PushArgs) -> i32 {
    push::run_push(args).await
}

/// `serialgate push-os-user-key`; returns the exit code.
pub async fn push_os_user_key(args: PushOsUserKeyArgs) -> i32 {
    push::run_push_os_user_key(args).await
}
