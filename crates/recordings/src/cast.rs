//! The asciicast v2 format: a JSON header line, then one JSON array per event,
//! `[seconds, code, data]`, with codes `o` (output), `i` (input) and `r` (resize, `COLSxROWS`).
//! <https://docs.asciinema.org/manual/asciicast/v2/>
//!
//! The header carries serialgate's own description of the session in a `serialgate` object;
//! players ignore keys they do not know.

use serde::{Deserialize, Serialize};

/// The terminal size a session without a pty request is recorded at.
pub const DEFAULT_SIZE: (u32, u32) = (80, 24);

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub width: u32,
    pub height: u32,
    /// When the session started, seconds since the Unix epoch.
    pub timestamp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Env>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialgate: Option<SessionInfo>,
}

/// The terminal the client announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Env {
    #[serde(rename = "TERM", default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
}

/// Which session a recording is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The recording's id (its file name without `.cast`).
    pub id: String,
    pub instance: String,
    pub port: u32,
    /// The session's id in the audit trail (`node/connection`).
    pub session: String,
    pub principal: String,
    /// A spectator's view rather than the session holding the port.
    #[serde(default)]
    pub spectator: bool,
    /// Whether what the user typed is recorded (`i` events).
    #[serde(default)]
    pub input: bool,
    /// When the session started, ms since the Unix epoch.
    pub started_ms: u64,
}

/// What happened at one moment of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    Output,
    Input,
    Resize,
}

impl EventKind {
    pub fn code(&self) -> &'static str {
        match self {
            EventKind::Output => "o",
            EventKind::Input => "i",
            EventKind::Resize => "r",
        }
    }
}

/// Appends the event line `[seconds, code, data]` to `out`; `micros` is the time since the
/// recording started.
pub fn push_event(out: &mut Vec<u8>, micros: u64, kind: &EventKind, data: &str) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail, nor can serialising a str.
    let _ = write!(
        out,
        "[{}.{:06}, \"{}\", ",
        micros / 1_000_000,
        micros % 1_000_000,
        kind.code()
    );
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"]\n");
}

/// One event read back from a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub seconds: f64,
    pub code: String,
    pub data: String,
}

/// Parses an event line. `None` for anything that is not `[number, string, string]`.
pub fn parse_event(line: &str) -> Option<Event> {
    let (seconds, code, data): (f64, String, String) = serde_json::from_str(line).ok()?;
    (seconds.is_finite() && seconds >= 0.0).then_some(Event {
        seconds,
        code,
        data,
    })
}

/// Parses a header line. `None` unless it is an asciicast v2 header.
pub fn parse_header(line: &str) -> Option<Header> {
    let header: Header = serde_json::from_str(line).ok()?;
    (header.version == 2).then_some(header)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_are_json_arrays_and_read_back() {
        let mut out = Vec::new();
        push_event(
            &mut out,
            1_500_042,
            &EventKind::Output,
            "a\"b\\\u{1b}[0m\r\n€",
        );
        push_event(&mut out, 0, &EventKind::Resize, "120x40");
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.lines();
        let first = lines.next().unwrap();
        assert!(first.starts_with("[1.500042, \"o\", "), "{first}");
        let e = parse_event(first).unwrap();
        assert_eq!(
            (e.seconds, e.code.as_str(), e.data.as_str()),
            (1.500042, "o", "a\"b\\\u{1b}[0m\r\n€")
        );
        let r = parse_event(lines.next().unwrap()).unwrap();
        assert_eq!(
            (r.seconds, r.code.as_str(), r.data.as_str()),
            (0.0, "r", "120x40")
        );
        for bad in [
            "",
            "[]",
            "[1, \"o\"]",
            "[-1, \"o\", \"x\"]",
            "{\"a\": 1}",
            "[1, 2, 3]",
        ] {
            assert_eq!(parse_event(bad), None, "{bad}");
        }
    }

    #[test]
    fn headers_round_trip_and_other_versions_are_refused() {
        let h = Header {
            version: 2,
            width: 80,
            height: 24,
            timestamp: 1_764_646_254,
            title: Some("i-1 port0".into()),
            env: Some(Env {
                term: Some("xterm".into()),
            }),
            serialgate: None,
        };
        let line = serde_json::to_string(&h).unwrap();
        assert_eq!(parse_header(&line), Some(h));
        assert_eq!(
            parse_header(r#"{"version":1,"width":1,"height":1,"timestamp":0}"#),
            None
        );
        assert_eq!(parse_header("not json"), None);
    }
}
