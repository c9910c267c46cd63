//! The environment of every process serialgate starts (`exec:` console commands, QEMU).
//!
//! Invariant: children never inherit serialgate's environment, which may hold secrets (a
//! `secret_access_key_env` variable, a database URL). They get `PATH` (serialgate's, or a
//! default), `LANG` and `TERM` when set, and nothing else.

use std::ffi::OsString;

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
}
