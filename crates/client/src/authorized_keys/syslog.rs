//! One log line to stderr and to the local syslog (`/dev/log`, facility authpriv), as sshd's
//! own messages about logins go there. Without a syslog socket the line goes to stderr only.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";
/// Facility authpriv (RFC 5424: 10), where authentication messages belong.
const AUTHPRIV: u8 = 10;

/// RFC 5424 severities used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error = 3,
    Warning = 4,
    Info = 6,
}

/// Where lines go.
#[derive(Debug, Clone)]
pub struct Log {
    socket: Option<PathBuf>,
}

impl Log {
    /// Stderr and `/dev/log`.
    pub fn system() -> Self {
        Self {
            socket: Some(PathBuf::from(DEV_LOG)),
        }
    }

    /// Stderr and the datagram socket at `path`.
    pub fn to_socket(path: &Path) -> Self {
        Self {
            socket: Some(path.to_path_buf()),
        }
    }

    /// Writes the line; says whether syslog took it. A missing or full syslog must never cost
    /// a login: the line then goes to stderr only.
    pub fn line(&self, severity: Severity, message: &str) -> bool {
        eprintln!("serialgate authorized-keys: {message}");
        let Some(path) = &self.socket else {
            return false;
        };
        UnixDatagram::unbound()
            .and_then(|s| s.send_to(datagram(severity, message).as_bytes(), path))
            .is_ok()
    }
}

/// The datagram the local syslog daemons (journald, rsyslog, syslog-ng) read: priority, the
/// identifier with its process id, the message. Without a timestamp they stamp the arrival.
fn datagram(severity: Severity, message: &str) -> String {
    let priority = AUTHPRIV * 8 + severity as u8;
    // One line per message: a newline inside would read as a second, forged entry.
    let message = message.replace(['\n', '\r'], " ");
    format!("<{priority}>serialgate[{}]: {message}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_is_authpriv_with_the_severity() {
        let line = datagram(Severity::Info, "hello");
        assert_eq!(
            line,
            format!("<86>serialgate[{}]: hello", std::process::id())
        );
        assert!(datagram(Severity::Warning, "x").starts_with("<84>"));
        assert!(datagram(Severity::Error, "x").starts_with("<83>"));
        assert!(datagram(Severity::Info, "a\nb").ends_with(": a b"));
    }

    #[test]
    fn lines_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let receiver = UnixDatagram::bind(&path).unwrap();
        assert!(Log::to_socket(&path).line(Severity::Info, "Providing ssh key"));
        let mut buf = [0u8; 256];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            datagram(Severity::Info, "Providing ssh key").as_bytes()
        );
    }

    #[test]
    fn a_missing_socket_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!Log::to_socket(&dir.path().join("absent")).line(Severity::Error, "x"));
    }
}
