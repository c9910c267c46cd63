//! Carrying typed bytes and BREAKs through a serialgate server's own in-band escape.
//!
//! serialgate (like OpenSSH, but on the server) reads `~B` after a newline as a BREAK and `~~`
//! as one `~`, because its SSH library cannot receive the RFC 4335 `break` request. So this
//! client models the server's parser on everything it sends: a literal `~` that would land at
//! the start of the server's line goes as `~~`, and a BREAK goes as `~B` there.

/// Why a BREAK cannot be sent in-band.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBreak {
    /// The server has no in-band escape (AWS, or a serialgate with `escape = "none"`).
    NoEscape,
    /// The server is not at the start of a line (a BREAK only follows a newline).
    MidLine,
}

/// The encoder for one session; `escape` is the server's escape character, if any.
#[derive(Debug)]
pub struct InBand {
    escape: Option<u8>,
    /// Whether the server's parser is at the start of a line (it starts there).
    line_start: bool,
}

impl InBand {
    pub fn new(escape: Option<u8>) -> Self {
        Self {
            escape,
            line_start: true,
        }
    }

    /// The wire bytes that deliver `data` to the console unchanged.
    pub fn data(&mut self, data: &[u8]) -> Vec<u8> {
        let Some(esc) = self.escape else {
            return data.to_vec();
        };
        let mut wire = Vec::with_capacity(data.len() + 2);
        for &b in data {
            if self.line_start && b == esc {
                wire.push(esc);
            }
            wire.push(b);
            self.line_start = b == b'\r' || b == b'\n';
        }
        wire
    }

    /// The wire bytes for a BREAK; the server's parser is at a line start after it.
    pub fn brk(&mut self) -> Result<Vec<u8>, NoBreak> {
        let esc = self.escape.ok_or(NoBreak::NoEscape)?;
        if !self.line_start {
            return Err(NoBreak::MidLine);
        }
        Ok(vec![esc, b'B'])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escape::{EscapeParser, Key};

    /// A model of serialgate's server-side parser (crates/gateway/src/escape.rs): what the
    /// console gets (`B` marks a BREAK as `<BRK>`).
    fn server_sees(wire: &[u8]) -> Vec<u8> {
        let (mut out, mut line_start, mut escape) = (Vec::new(), true, false);
        for &b in wire {
            if escape {
                escape = false;
                match b {
                    b'B' => {
                        out.extend_from_slice(b"<BRK>");
                        line_start = true;
                        continue;
                    }
                    b'~' => out.push(b'~'),
                    _ => out.extend_from_slice(&[b'~', b]),
                }
                line_start = b == b'\r' || b == b'\n';
            } else if line_start && b == b'~' {
                escape = true;
            } else {
                out.push(b);
                line_start = b == b'\r' || b == b'\n';
            }
        }
        out
    }

    /// Typed keys → client escape → in-band encoding → server parser.
    fn typed(keys: &[u8]) -> Vec<u8> {
        let mut parser = EscapeParser::new(Some(b'~'));
        let mut inband = InBand::new(Some(b'~'));
        let mut wire = Vec::new();
        for key in parser.feed(keys) {
            match key {
                Key::Data(d) => wire.extend(inband.data(&d)),
                Key::Break => wire.extend(inband.brk().unwrap()),
                Key::Help | Key::Disconnect => {}
            }
        }
        server_sees(&wire)
    }

    #[test]
    fn literal_tilde_at_line_start_is_doubled() {
        let mut e = InBand::new(Some(b'~'));
        assert_eq!(e.data(b"~x"), b"~~x");
        assert_eq!(e.data(b"a~b\r~"), b"a~b\r~~");
        assert_eq!(e.data(b"~"), b"~");
    }

    #[test]
    fn break_only_at_line_start() {
        let mut e = InBand::new(Some(b'~'));
        assert_eq!(e.brk(), Ok(b"~B".to_vec()));
        assert_eq!(e.brk(), Ok(b"~B".to_vec()));
        e.data(b"x");
        assert_eq!(e.brk(), Err(NoBreak::MidLine));
        e.data(b"\n");
        assert_eq!(e.brk(), Ok(b"~B".to_vec()));
        assert_eq!(InBand::new(None).brk(), Err(NoBreak::NoEscape));
        assert_eq!(InBand::new(None).data(b"~~"), b"~~");
    }

    #[test]
    fn what_the_console_receives() {
        assert_eq!(typed(b"\r~Bh"), b"\r<BRK>h");
        assert_eq!(typed(b"~~x"), b"~x");
        assert_eq!(typed(b"~~~B"), b"~~B", "mid-line after a literal ~");
        assert_eq!(typed(b"echo ~/x\r~/y"), b"echo ~/x\r~/y");
        assert_eq!(typed(b"~B~~\r"), b"<BRK>~\r");
        assert_eq!(typed(b"~?~."), b"");
    }
}
