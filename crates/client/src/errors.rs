//! Exit codes and [`Failure`], the one error every command returns: a message a person can act on.

use std::fmt;

/// Process exit codes of `connect`, `push` and `push-os-user-key` (documented in `--help`).
pub mod exit {
    /// The session ended normally (Enter `~.`, the server closed it, or the script finished).
    pub const OK: i32 = 0;
    /// Anything not listed below (e.g. an unexpected response, a local I/O error).
    pub const OTHER: i32 = 1;
    /// A usage error: bad flags or values, no region configured (clap also exits 2).
    pub const USAGE: i32 = 2;
    /// The EC2 Instance Connect API refused the key push (the message explains the exception).
    pub const API_REFUSED: i32 = 3;
    /// No usable credentials, or the service did not accept them (unknown key, bad signature, expired).
    pub const CREDENTIALS: i32 = 4;
    /// The API or the SSH endpoint could not be reached (DNS, refused, timed out, handshake).
    pub const NETWORK: i32 = 5;
    /// The SSH server's host key could not be verified (changed, unknown, revoked).
    pub const HOST_KEY: i32 = 6;
    /// The SSH server did not accept the pushed key.
    pub const AUTH: i32 = 7;
    /// The SSH server refused or ended the session with an error (e.g. another session is open).
    pub const SESSION: i32 = 8;
    /// Scripting: an `--expect` or `--login` did not match within `--timeout`, or the console
    /// refused the login.
    pub const TIMEOUT: i32 = 124;
    /// Scripting: the session ended before every step ran.
    pub const SCRIPT_CUT: i32 = 125;
    /// Ended by a signal: 128 + its number (SIGHUP 129, SIGINT 130, SIGTERM 143).
    pub const SIGNAL_BASE: i32 = 128;
}

/// The `--help` text that lists the exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
    0    the session ended normally (Enter ~., closed by the server, or the script ran to its end)
    1    other errors (unexpected responses, local I/O)
    2    usage: bad flags or values, no region configured
    3    the API refused the key push (the message names the exception and the next step),
         e.g. the port is busy (with --wait: still busy when the wait ran out)
    4    credentials: none found, or not accepted (unknown key, bad signature, expired token)
    5    network: the API or the SSH endpoint could not be resolved, reached or handshaken with
    6    host key verification failed (changed, unknown, revoked)
    7    the SSH server did not accept the pushed key
    8    the SSH server refused or ended the session with an error
  124    scripting: an --expect or --login did not match within --timeout, or the login was refused
  125    scripting: the session ended before every step ran
  128+N  ended by signal N (SIGHUP 129, SIGINT 130, SIGTERM 143), also while --wait waits;
         the terminal is restored";

/// The `--help` text that lists the exit codes of `push` and `push-os-user-key`.
pub const PUSH_EXIT_CODES_HELP: &str = "\
Exit codes:
    0    the key was pushed; the RequestId is on stdout
    1    other errors (unexpected responses, local I/O)
    2    usage: bad flags or values, unreadable key file, no region configured
    3    the API refused the key push (the message names the exception and the next step)
    4    credentials: none found, or not accepted (unknown key, bad signature, expired token)
    5    network: the API could not be resolved or reached";

/// The `--help` text that lists the exit codes of `sessions`.
pub const SESSIONS_EXIT_CODES_HELP: &str = "\
Exit codes:
    0    done: the sessions are listed, or the session's holder was told to end it
    1    other errors (unexpected responses, local I/O)
    2    usage: bad flags or values, no region configured
    3    the API refused the call (the message names the exception), e.g. no session on the
         port (ResourceNotFoundException) or no permission (AccessDeniedException)
    4    credentials: none found, or not accepted (unknown key, bad signature, expired token)
    5    network: the API could not be resolved or reached";

/// A failed command: its exit code and what to tell the user (first line: what happened;
/// further lines: what to do next).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    pub fn network(message: impl Into<String>) -> Self {
        Self::new(exit::NETWORK, message)
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::new(exit::OTHER, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Prints a failure on stderr (prefixed `serialgate: `) and turns the outcome into an exit code.
pub fn report(outcome: Result<i32, Failure>) -> i32 {
    match outcome {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("serialgate: {}", failure.message);
            failure.code
        }
    }
}

/// The innermost cause of an error, which is usually the one that says what went wrong
/// ("Connection refused", "failed to lookup address information"), without Debug dumps.
pub fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("dispatch failure")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn root_cause_is_the_innermost_message() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(root_cause(&e), "Connection refused");
    }

    #[test]
    fn report_maps_failures_to_their_code() {
        assert_eq!(report(Ok(0)), 0);
        assert_eq!(report(Err(Failure::network("x"))), exit::NETWORK);
    }

    #[test]
    fn help_lists_every_code() {
        for code in [
            exit::OK,
            exit::OTHER,
            exit::USAGE,
            exit::API_REFUSED,
            exit::CREDENTIALS,
            exit::NETWORK,
            exit::HOST_KEY,
            exit::AUTH,
            exit::SESSION,
            exit::TIMEOUT,
            exit::SCRIPT_CUT,
        ] {
            assert!(
                EXIT_CODES_HELP
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} "))),
                "{code} missing"
            );
        }
    }
}
