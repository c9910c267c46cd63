//! serialgate's client: push an ephemeral key with EC2 Instance Connect and open an instance's
//! serial console over SSH (`connect`), or just push a key (`push`, `push-os-user-key`), or log
//! in to an instance with the system `ssh` (`ssh`); and the instance's side of that last one,
//! sshd's `AuthorizedKeysCommand` (`authorized-keys`).
//!
//! Invariants: the AWS SDK is used here only; the private key of `connect` never leaves memory,
//! that of `ssh` only to a tmpfs file while `ssh` runs;
//! the terminal is restored on every exit path; every failure is one [`errors::Failure`] with a
//! documented exit code and a message saying what to do next.

pub mod args;
pub mod authorized_keys;
pub mod aws;
pub mod connect;
pub mod console;
pub mod console_url;
pub mod endpoints;
pub mod errors;
pub mod escape;
pub mod explain;
pub mod fingerprints;
pub mod host_key;
pub mod inband;
pub mod instance_ssh;
pub mod interactive;
pub mod known_hosts;
pub mod push;
pub mod script;
pub mod scripted;
pub mod send_text;
pub mod sessions;
pub mod signals;
pub mod signed;
pub mod ssh;
pub mod target;
pub mod terminal;
pub mod transcript;
pub mod wait;

pub use args::{
    AuthorizedKeysArgs, AwsArgs, ConnectArgs, ConsoleUrlArgs, InstanceSshArgs, PushArgs,
    PushOsUserKeyArgs, SessionsArgs,
};
pub use errors::{EXIT_CODES_HELP, PUSH_EXIT_CODES_HELP, SESSIONS_EXIT_CODES_HELP};
pub use instance_ssh::EXIT_CODES_HELP as SSH_EXIT_CODES_HELP;

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

/// `serialgate sessions list|end`; returns the exit code.
pub async fn sessions(args: SessionsArgs) -> i32 {
    sessions::run(args).await
}

/// `serialgate ssh`; returns the exit code.
pub async fn instance_ssh(args: InstanceSshArgs) -> i32 {
    instance_ssh::run(args).await
}

/// `serialgate authorized-keys`; returns the exit code. Synchronous: it starts its own small
/// runtime, as it runs on every SSH login and must start fast.
pub fn authorized_keys(args: &AuthorizedKeysArgs) -> i32 {
    authorized_keys::run(args)
}
