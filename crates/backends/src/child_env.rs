//! The environment of every process serialgate starts (`exec:` console commands, QEMU), and
//! how such a process ended, in words for the log.
//!
//! Invariant: children never inherit serialgate's environment, which may hold secrets (a
//! `secret_access_key_env` variable, a database URL). They get `PATH` (serialgate's, or a
//! default), `LANG` and `TERM` when set, and nothing else.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

/// The `PATH` children get when serialgate runs without one.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The variables passed on to children, read from serialgate's own environment.
pub fn minimal() -> Vec<(&'static str, OsString)> {
    let mut env = vec![(
        "PATH",
        std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
    )];
    for name in ["LANG", "TERM"] {
        if let Some(value) = std::env::var_os(name) {
            env.push((name, value));
        }
    }
    env
}

/// [`minimal`], with `TERM` defaulting to `vt100` (what a serial line speaks): for commands on
/// a pty, which may draw on it.
pub fn for_terminal() -> Vec<(&'static str, OsString)> {
    let mut env = minimal();
    if !env.iter().any(|(name, _)| *name == "TERM") {
        env.push(("TERM", "vt100".into()));
    }
    env
}

/// How a child ended, for the log: `exit status 1`, `killed by signal 9`.
pub fn exit_text(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        // Stopped or continued: only a waitpid with WUNTRACED reports those.
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowed_names() {
        for (name, _) in for_terminal() {
            assert!(["PATH", "LANG", "TERM"].contains(&name), "{name}");
        }
        let env = for_terminal();
        assert!(env.iter().any(|(n, _)| *n == "PATH"));
        assert_eq!(env.iter().filter(|(n, _)| *n == "TERM").count(), 1);
    }

    #[test]
    fn exit_text_reads_as_words() {
        assert_eq!(exit_text(ExitStatus::from_raw(0)), "exit status 0");
        assert_eq!(exit_text(ExitStatus::from_raw(1 << 8)), "exit status 1");
        assert_eq!(exit_text(ExitStatus::from_raw(9)), "killed by signal 9");
    }
}
