//! Carrying typed bytes and BREAKs through a serialgate server's own in-band escape.
//!
//! serialgate (like OpenSSH, but on the server) reads `~B` after a newline as a BREAK and `~~`
//! as one `~`, because its SSH library cannot receive the RFC 4335 `break` request. So this
//! client runs the server's parser (the shared `escape` state machine, with the server's rule
//! for a doubled escape) on everything it sends: a literal `~` that would land at the start of
//! the server's line goes as `~~`, and a BREAK goes as `~B` there. The model also knows that a
//! terminal's reply (a cursor-position report after Enter) leaves the server's line start as it
//! was.

use ::escape::{Doubled, Parser};

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
    /// The server's parser, fed exactly what is sent.
    server: Parser,
    /// What the model delivers, discarded (the real server delivers it); kept to reuse.
    scratch: Vec<u8>,
}

impl InBand {
    pub fn new(escape: Option<u8>) -> Self {
        Self {
            server: Parser::new(escape, Doubled::Literal),
            scratch: Vec::with_capacity(2),
        }
    }

    /// The wire bytes that deliver `data` to the console unchanged.
    pub fn data(&mut self, data: &[u8]) -> Vec<u8> {
        let Some(esc) = self.server.escape() else {
            return data.to_vec();
        };
        let mut wire = Vec::with_capacity(data.len() + 2);
        for &b in data {
            if b == esc && self.server.at_line_start() {
                self.send(esc, &mut wire);
            }
            self.send(b, &mut wire);
        }
        wire
    }

    /// The wire bytes for a BREAK; the server's parser is at a line start after it.
    pub fn brk(&mut self) -> Result<Vec<u8>, NoBreak> {
        let esc = self.server.escape().ok_or(NoBreak::NoEscape)?;
        if !self.server.at_line_start() {
            return Err(NoBreak::MidLine);
        }
        let mut wire = Vec::with_capacity(2);
        self.send(esc, &mut wire);
        self.send(b'B', &mut wire);
        Ok(wire)
    }

    fn send(&mut self, b: u8, wire: &mut Vec<u8>) {
        wire.push(b);
        // Only the model's state matters here: what it delivers (and the BREAK it reads from
        // `brk`'s bytes) is what the real server will deliver.
        let _ = self.server.step(b, &mut self.scratch);
        self.scratch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escape::{EscapeParser, Key};

    /// What the console gets from serialgate's server-side parser (the gateway's, the shared
    /// state machine with its rule for a doubled escape), a BREAK written as `<BRK>`.
    fn server_sees(wire: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for event in Parser::new(Some(b'~'), Doubled::Literal).feed(wire) {
            match event {
                ::escape::Event::Data(d) => out.extend(d),
                ::escape::Event::Command(::escape::Command::Break) => {
                    out.extend_from_slice(b"<BRK>")
                }
                other => panic!("the server read {other:?}"),
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

    /// A terminal's reply after Enter (busybox asks for the cursor position at every prompt)
    /// leaves the server at the start of its line.
    #[test]
    fn a_terminal_reply_keeps_the_server_line_start() {
        let mut e = InBand::new(Some(b'~'));
        assert_eq!(e.data(b"ls\r\x1b[24;1R~x"), b"ls\r\x1b[24;1R~~x");
        e.data(b"\r\x1b[24;1R");
        assert_eq!(e.brk(), Ok(b"~B".to_vec()));
        // A key (an arrow) is typed text: the line start is gone.
        e.data(b"\x1b[A");
        assert_eq!(e.brk(), Err(NoBreak::MidLine));
        assert_eq!(e.data(b"~"), b"~");
    }

    #[test]
    fn what_the_console_receives() {
        assert_eq!(typed(b"\r~Bh"), b"\r<BRK>h");
        assert_eq!(typed(b"~~x"), b"~x");
        assert_eq!(typed(b"~~~B"), b"~~B", "mid-line after a literal ~");
        assert_eq!(typed(b"echo ~/x\r~/y"), b"echo ~/x\r~/y");
        assert_eq!(typed(b"~B~~\r"), b"<BRK>~\r");
        assert_eq!(typed(b"~?~."), b"");
        assert_eq!(typed(b"\r\x1b[24;1R~Bh"), b"\r\x1b[24;1R<BRK>h");
        assert_eq!(typed(b"\r\x1b[24;1R~~B"), b"\r\x1b[24;1R~B");
    }
}
