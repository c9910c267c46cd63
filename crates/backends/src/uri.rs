//! Console addresses (`unix:`, `tcp:`, `telnet:`, `unix+telnet:`, `tty:`, `exec:`, `sim:`): parsing and display.
//!
//! Invariant: `uri.to_string().parse() == Ok(uri)` for every parsed value, and the displayed form
//! never contains a control character (control characters are rejected when parsing and escaped
//! when displaying a hand-built value), so it is safe to put in a log line.

use std::fmt::{self, Write as _};
use std::path::PathBuf;
use std::str::FromStr;

/// The baud rate used when a `tty:` URI does not name one.
pub const DEFAULT_BAUD: u32 = 115_200;

/// The accepted forms, quoted in every parse error so the operator sees the alternatives.
const ACCEPTED: &str = "unix:PATH, tcp:HOST:PORT, telnet:HOST:PORT, unix+telnet:PATH, \
                        tty:PATH[?baud=N], exec:COMMAND [ARGS...], sim: or sim:NAME";

/// Longest simulator name; it only appears in the banner.
const MAX_SIM_NAME: usize = 64;

/// Parsed console address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConsoleUri {
    /// `unix:PATH` — a raw byte stream on a unix socket (QEMU `-chardev socket` without telnet).
    Unix(PathBuf),
    /// `tcp:HOST:PORT` — a raw byte stream over TCP (ser2net `raw`/`tcp` accepters).
    Tcp(String),
    /// `telnet:HOST:PORT` — RFC 854 over TCP (ser2net `telnet`, QEMU `telnet=on`); carries BREAK.
    Telnet(String),
    /// `unix+telnet:PATH` — RFC 854 over a unix socket (QEMU `telnet=on`); carries BREAK.
    UnixTelnet(PathBuf),
    /// `tty:PATH?baud=N` — a local serial device; BREAK via the line.
    Tty { path: PathBuf, baud: u32 },
    /// `exec:COMMAND ARGS` — a command run under a pty, without a shell.
    Exec(Vec<String>),
    /// `sim:` — the built-in simulated machine.
    Sim,
    /// `sim:NAME` — the simulator, with NAME shown in its banner.
    SimNamed(String),
}

/// A console URI that could not be parsed; says what is wrong and lists the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid console URI {input:?}: {problem} (accepted: {ACCEPTED})")]
pub struct UriError {
    input: String,
    problem: String,
}

impl UriError {
    fn new(input: &str, problem: impl Into<String>) -> Self {
        // Bound what is echoed back: the input may come from a config file of any size.
        let input: String = input.chars().take(200).collect();
        Self {
            input,
            problem: problem.into(),
        }
    }

    /// What is wrong, without the input or the list of accepted forms.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl ConsoleUri {
    /// The scheme, as written in URIs (`"unix+telnet"`, `"sim"`, ...).
    pub fn scheme(&self) -> &'static str {
        match self {
            Self::Unix(_) => "unix",
            Self::Tcp(_) => "tcp",
            Self::Telnet(_) => "telnet",
            Self::UnixTelnet(_) => "unix+telnet",
            Self::Tty { .. } => "tty",
            Self::Exec(_) => "exec",
            Self::Sim | Self::SimNamed(_) => "sim",
        }
    }
}

impl FromStr for ConsoleUri {
    type Err = UriError;

    fn from_str(input: &str) -> Result<Self, UriError> {
        let err = |problem: &str| UriError::new(input, problem);
        if input.chars().any(char::is_control) {
            return Err(err("contains a control character"));
        }
        let Some((scheme, rest)) = input.split_once(':') else {
            return Err(err("missing scheme (expected SCHEME:ADDRESS)"));
        };
        // Schemes are case-insensitive (RFC 3986); the displayed form is lower case.
        match scheme.to_ascii_lowercase().as_str() {
            "unix" => parse_path(rest).map(Self::Unix).map_err(err),
            "unix+telnet" => parse_path(rest).map(Self::UnixTelnet).map_err(err),
            "tcp" => parse_host_port(rest).map(Self::Tcp).map_err(err),
            "telnet" => parse_host_port(rest).map(Self::Telnet).map_err(err),
            "tty" => parse_tty(rest).map_err(|p| UriError::new(input, p)),
            "exec" => parse_exec(rest).map(Self::Exec).map_err(err),
            "sim" => parse_sim(rest).map_err(err),
            "" => Err(err("missing scheme (expected SCHEME:ADDRESS)")),
            other => Err(UriError::new(input, format!("unknown scheme `{other}`"))),
        }
    }
}

fn parse_path(rest: &str) -> Result<PathBuf, &'static str> {
    if rest.is_empty() {
        return Err("missing path");
    }
    Ok(PathBuf::from(rest))
}

/// Checks `HOST:PORT` (IPv6 hosts in brackets) and keeps it as written, so DNS names resolve at
/// connect time rather than once at startup.
fn parse_host_port(rest: &str) -> Result<String, &'static str> {
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err("expected HOST:PORT");
    };
    if host.is_empty() {
        return Err("missing host before `:PORT`");
    }
    if host.chars().any(char::is_whitespace) || host.contains('/') {
        return Err("host contains whitespace or `/`");
    }
    if let Some(inner) = host.strip_prefix('[') {
        if !inner.ends_with(']') || inner.len() < 2 {
            return Err("unbalanced `[` in host");
        }
    } else if host.contains(':') {
        return Err("IPv6 addresses need brackets, e.g. [::1]:23");
    }
    match port.parse::<u16>() {
        Ok(0) => Err("port 0 is not connectable"),
        Ok(_) => Ok(rest.to_owned()),
        Err(_) => Err("port is not a number from 1 to 65535"),
    }
}

fn parse_tty(rest: &str) -> Result<ConsoleUri, String> {
    // The last `?` starts the options, so the displayed form (which always carries `?baud=`)
    // round-trips even for a path containing `?`.
    let (path, query) = match rest.rsplit_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let path = parse_path(path)?;
    let mut baud = DEFAULT_BAUD;
    for option in query.into_iter().flat_map(|q| q.split('&')) {
        match option.split_once('=') {
            Some(("baud", value)) => {
                baud = match value.parse::<u32>() {
                    Ok(b) if b > 0 => b,
                    _ => return Err(format!("baud `{value}` is not a positive number")),
                };
            }
            _ => return Err(format!("unknown tty option `{option}` (only baud=N)")),
        }
    }
    Ok(ConsoleUri::Tty { path, baud })
}

fn parse_exec(rest: &str) -> Result<Vec<String>, &'static str> {
    let argv = shell_words::split(rest).map_err(|_| "unbalanced quotes in the command")?;
    if argv.is_empty() {
        return Err("missing command after `exec:`");
    }
    Ok(argv)
}

fn parse_sim(rest: &str) -> Result<ConsoleUri, &'static str> {
    if rest.is_empty() {
        return Ok(ConsoleUri::Sim);
    }
    let valid = rest.len() <= MAX_SIM_NAME
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err("simulator name must be 1-64 letters, digits, `-`, `_` or `.`");
    }
    Ok(ConsoleUri::SimNamed(rest.to_owned()))
}

impl fmt::Display for ConsoleUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = match self {
            Self::Unix(path) | Self::UnixTelnet(path) => path.display().to_string(),
            Self::Tcp(addr) | Self::Telnet(addr) => addr.clone(),
            Self::Tty { path, baud } => format!("{}?baud={baud}", path.display()),
            Self::Exec(argv) => shell_words::join(argv),
            Self::Sim => String::new(),
            Self::SimNamed(name) => name.clone(),
        };
        write!(f, "{}:", self.scheme())?;
        write_escaped(f, &body)
    }
}

/// Writes `s` with control characters escaped, so a hand-built value cannot forge log lines.
fn write_escaped(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        if c.is_control() {
            write!(f, "{}", c.escape_default())?;
        } else {
            f.write_char(c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_characters_of_hand_built_values() {
        let uri = ConsoleUri::Unix(PathBuf::from("/tmp/a\nb"));
        assert_eq!(uri.to_string(), "unix:/tmp/a\\nb");
    }

    #[test]
    fn long_input_is_truncated_in_errors() {
        let input = format!("bogus:{}", "x".repeat(1000));
        let e = input.parse::<ConsoleUri>().unwrap_err();
        assert!(e.to_string().len() < 600, "{e}");
    }
}
