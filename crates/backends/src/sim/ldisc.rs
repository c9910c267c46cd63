//! The simulated serial line's line discipline: canonical-mode editing and echo, the way Linux's
//! N_TTY treats a getty or shell on `ttyS0` (ICRNL, ONLCR, ECHOE, ECHOK, IUTF8).

use bytes::{BufMut, BytesMut};

/// The longest line kept; further characters are dropped with a bell, as N_TTY does at 4095.
pub(crate) const MAX_LINE: usize = 1024;

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;
const BELL: u8 = 0x07;

/// What a byte completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Nothing yet.
    None,
    /// Enter: the line as typed (the `\r\n` echo is already written).
    Line(String),
    /// Ctrl-C: the line was discarded and `^C\r\n` echoed.
    Interrupt,
    /// Ctrl-D on an empty line.
    EndOfFile,
}

/// Where we are within a terminal escape sequence (arrow keys and such), which is swallowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    /// After ESC.
    Started,
    /// After `ESC [` or `ESC O`, until a final byte.
    Sequence,
}

/// The line being typed and the state needed to edit it.
#[derive(Debug)]
pub(crate) struct LineDiscipline {
    line: Vec<u8>,
    /// The previous byte was CR, so a following LF or NUL belongs to it (CR LF from clients).
    after_cr: bool,
    escape: Escape,
}

impl Default for LineDiscipline {
    fn default() -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            escape: Escape::None,
        }
    }
}

impl LineDiscipline {
    /// Forgets the line being typed (logout, reboot).
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }

    /// Handles one typed byte; echo (when `echo`) goes to `out`.
    pub(crate) fn feed(&mut self, byte: u8, echo: bool, out: &mut BytesMut) -> Event {
        if std::mem::take(&mut self.after_cr) && matches!(byte, b'\n' | 0) {
            return Event::None;
        }
        match self.escape {
            Escape::Started => {
                self.escape = if matches!(byte, b'[' | b'O') {
                    Escape::Sequence
                } else {
                    Escape::None
                };
                return Event::None;
            }
            Escape::Sequence => {
                if (0x40..=0x7e).contains(&byte) {
                    self.escape = Escape::None;
                }
                return Event::None;
            }
            Escape::None => {}
        }
        match byte {
            b'\r' | b'\n' => {
                self.after_cr = byte == b'\r';
                // ICRNL + ONLCR: Enter echoes as CR LF, even with echo off (login prints it).
                out.put_slice(b"\r\n");
                let line = String::from_utf8_lossy(&self.line).into_owned();
                self.line.clear();
                Event::Line(line)
            }
            BACKSPACE | DEL => {
                if self.erase_char() && echo {
                    out.put_slice(b"\x08 \x08");
                }
                Event::None
            }
            CTRL_U => {
                while self.erase_char() {
                    if echo {
                        out.put_slice(b"\x08 \x08");
                    }
                }
                Event::None
            }
            CTRL_C => {
                self.line.clear();
                out.put_slice(b"^C\r\n");
                Event::Interrupt
            }
            CTRL_D if self.line.is_empty() => Event::EndOfFile,
            ESC => {
                self.escape = Escape::Started;
                Event::None
            }
            // Other control characters (tab, Ctrl-D mid-line, ...) have no meaning here.
            0..=0x1f => Event::None,
            _ => {
                if self.line.len() < MAX_LINE {
                    self.line.push(byte);
                    if echo {
                        out.put_u8(byte);
                    }
                } else {
                    out.put_u8(BELL);
                }
                Event::None
            }
        }
    }

    /// Removes the last character (all bytes of a UTF-8 sequence, like IUTF8); false if empty.
    fn erase_char(&mut self) -> bool {
        while let Some(byte) = self.line.pop() {
            // Continuation bytes are 0b10xx_xxxx; stop once the character's first byte is gone.
            if byte & 0xc0 != 0x80 {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn feed_all(ld: &mut LineDiscipline, input: &[u8], echo: bool) -> (Vec<Event>, Vec<u8>) {
        let mut out = BytesMut::new();
        let events = input
            .iter()
            .map(|&b| ld.feed(b, echo, &mut out))
            .filter(|e| *e != Event::None)
            .collect();
        (events, out.to_vec())
    }

    #[test]
    fn echoes_and_returns_the_line_on_cr() {
        let mut ld = LineDiscipline::default();
        let (events, out) = feed_all(&mut ld, b"ls\r", true);
        assert_eq!(events, [Event::Line("ls".into())]);
        assert_eq!(out, b"ls\r\n");
    }

    #[test]
    fn cr_lf_and_cr_nul_are_one_enter() {
        let mut ld = LineDiscipline::default();
        let (events, _) = feed_all(&mut ld, b"a\r\nb\r\0c\n", true);
        assert_eq!(
            events,
            [
                Event::Line("a".into()),
                Event::Line("b".into()),
                Event::Line("c".into())
            ]
        );
    }

    #[test]
    fn backspace_and_del_erase_whole_utf8_characters() {
        let mut ld = LineDiscipline::default();
        let (events, out) = feed_all(&mut ld, "ab\u{e9}\x7f\x08c\r".as_bytes(), true);
        assert_eq!(events, [Event::Line("ac".into())]);
        assert_eq!(out, "ab\u{e9}\x08 \x08\x08 \x08c\r\n".as_bytes());
        // Erasing an empty line echoes nothing.
        let (_, out) = feed_all(&mut ld, b"\x7f", true);
        assert!(out.is_empty());
    }

    #[test]
    fn ctrl_u_kills_the_line_and_ctrl_c_interrupts() {
        let mut ld = LineDiscipline::default();
        let (events, out) = feed_all(&mut ld, b"abc\x15d\r", true);
        assert_eq!(events, [Event::Line("d".into())]);
        assert_eq!(out, b"abc\x08 \x08\x08 \x08\x08 \x08d\r\n");
        let (events, out) = feed_all(&mut ld, b"xyz\x03\r", true);
        assert_eq!(events, [Event::Interrupt, Event::Line(String::new())]);
        assert_eq!(out, b"xyz^C\r\n\r\n");
    }

    #[test]
    fn no_echo_still_edits_and_ends_lines() {
        let mut ld = LineDiscipline::default();
        let (events, out) = feed_all(&mut ld, b"secreT\x7ft\r", false);
        assert_eq!(events, [Event::Line("secret".into())]);
        assert_eq!(out, b"\r\n");
    }

    #[test]
    fn escape_sequences_are_swallowed() {
        let mut ld = LineDiscipline::default();
        let (events, out) = feed_all(&mut ld, b"a\x1b[A\x1b[1;5Cb\x1bOPc\r", true);
        assert_eq!(events, [Event::Line("abc".into())]);
        assert_eq!(out, b"abc\r\n");
    }

    #[test]
    fn ctrl_d_only_on_an_empty_line() {
        let mut ld = LineDiscipline::default();
        let (events, _) = feed_all(&mut ld, b"a\x04\r\x04", true);
        assert_eq!(events, [Event::Line("a".into()), Event::EndOfFile]);
    }

    #[test]
    fn lines_are_bounded() {
        let mut ld = LineDiscipline::default();
        let long = vec![b'x'; MAX_LINE + 10];
        let (_, out) = feed_all(&mut ld, &long, true);
        assert_eq!(out.iter().filter(|&&b| b == BELL).count(), 10);
        let (events, _) = feed_all(&mut ld, b"\r", true);
        assert_eq!(events, [Event::Line("x".repeat(MAX_LINE))]);
    }
}
