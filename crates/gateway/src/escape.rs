//! The in-band escape, done server-side the way OpenSSH does it client-side.
//!
//! After a newline (or at the very start), the escape character (default `~`) followed by:
//! `B` sends a BREAK, `.` ends the session, `?` shows help, and the escape character itself
//! sends one literal escape character. Anything else is passed through with the escape
//! character in front of it. OpenSSH users type Enter `~~B` (their client turns `~~` into
//! `~`), or use `ssh -e none` and type Enter `~B`. The state machine is the `escape` crate's,
//! shared with `serialgate connect`: a terminal's replies to the guest (the cursor position a
//! busybox prompt asks for) do not end the start of a line.

use bytes::Bytes;

/// What the input stream asks for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Data(Bytes),
    Break,
    Disconnect,
    Help,
}

/// A streaming escape parser; sequences may be split across `feed` calls.
#[derive(Debug)]
pub struct EscapeParser(::escape::Parser);

impl EscapeParser {
    /// `escape = None` passes everything through.
    pub fn new(escape: Option<u8>) -> Self {
        // The escape typed twice is a literal escape before anything else, so an escape
        // character that is also a command letter (`.`, `B`, `?`) can still be sent as data:
        // that is what a client's in-band encoder emits.
        Self(::escape::Parser::new(escape, ::escape::Doubled::Literal))
    }

    /// Splits `input` into data and commands.
    pub fn feed(&mut self, input: &[u8]) -> Vec<Action> {
        use ::escape::{Command, Event};
        self.0
            .feed(input)
            .into_iter()
            .map(|event| match event {
                Event::Data(d) => Action::Data(Bytes::from(d)),
                Event::Command(Command::Break) => Action::Break,
                Event::Command(Command::Disconnect) => Action::Disconnect,
                Event::Command(Command::Help) => Action::Help,
            })
            .collect()
    }
}

/// The text `~?` prints.
pub fn help_text(escape: u8) -> String {
    let e = char::from(escape);
    format!(
        "\r\nSupported escape sequences (after a newline):\r\n {e}B  - send a BREAK (then a SysRq letter, e.g. h)\r\n {e}.  - disconnect\r\n {e}?  - this message\r\n {e}{e}  - send the escape character\r\n(OpenSSH handles {e} itself: type {e}{e}B, or connect with ssh -e none.)\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn run(p: &mut EscapeParser, chunks: &[&[u8]]) -> Vec<Action> {
        let mut all = Vec::new();
        for c in chunks {
            all.extend(p.feed(c));
        }
        // Merge adjacent data for easy comparison.
        let mut merged: Vec<Action> = Vec::new();
        for a in all {
            match (merged.last_mut(), a) {
                (Some(Action::Data(prev)), Action::Data(d)) => {
                    let mut m = BytesMut::from(&prev[..]);
                    m.extend_from_slice(&d);
                    *prev = m.freeze();
                }
                (_, a) => merged.push(a),
            }
        }
        merged
    }

    fn d(s: &[u8]) -> Action {
        Action::Data(Bytes::copy_from_slice(s))
    }

    #[test]
    fn an_escape_that_is_a_command_letter_doubles_to_itself() {
        for esc in [b'.', b'B', b'?'] {
            let mut p = EscapeParser::new(Some(esc));
            assert_eq!(run(&mut p, &[&[esc, esc]]), vec![d(&[esc])], "escape {esc}");
            let mut p = EscapeParser::new(Some(esc));
            assert_eq!(run(&mut p, &[&[esc], b"?"]).len(), 1, "escape {esc}");
        }
        let mut p = EscapeParser::new(Some(b'.'));
        assert_eq!(run(&mut p, &[b".B"]), vec![Action::Break]);
    }

    #[test]
    fn break_after_newline_and_at_start() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"~B"]), vec![Action::Break]);
        assert_eq!(run(&mut p, &[b"h"]), vec![d(b"h")]);
        assert_eq!(
            run(&mut p, &[b"ls\r~Bh"]),
            vec![d(b"ls\r"), Action::Break, d(b"h")]
        );
        assert_eq!(
            run(&mut p, &[b"\n~.x"]),
            vec![d(b"\n"), Action::Disconnect, d(b"x")]
        );
    }

    #[test]
    fn not_after_newline_is_literal() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"a~B"]), vec![d(b"a~B")]);
    }

    #[test]
    fn double_escape_and_unknown() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"~~B"]), vec![d(b"~B")]);
        assert_eq!(run(&mut p, &[b"\r~x"]), vec![d(b"\r~x")]);
        assert_eq!(run(&mut p, &[b"\r~\r~B"]), vec![d(b"\r~\r"), Action::Break]);
    }

    #[test]
    fn split_across_feeds() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(
            run(&mut p, &[b"x\r", b"~", b"B", b"h"]),
            vec![d(b"x\r"), Action::Break, d(b"h")]
        );
        assert_eq!(run(&mut p, &[b"\r~", b"?"]), vec![d(b"\r"), Action::Help]);
    }

    /// busybox ash asks for the cursor position at every prompt: the terminal's reply arrives
    /// between the user's Enter and the escape.
    #[test]
    fn a_terminal_reply_after_enter_keeps_the_escape() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(
            run(&mut p, &[b"\r\x1b[24;1R~."]),
            vec![d(b"\r\x1b[24;1R"), Action::Disconnect]
        );
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(
            run(&mut p, &[b"ls\r\x1b[24", b";1R~", b"Bh"]),
            vec![d(b"ls\r\x1b[24;1R"), Action::Break, d(b"h")]
        );
    }

    #[test]
    fn other_escape_char_and_none() {
        let mut p = EscapeParser::new(Some(b'%'));
        assert_eq!(run(&mut p, &[b"~B\r%B"]), vec![d(b"~B\r"), Action::Break]);
        let mut p = EscapeParser::new(None);
        assert_eq!(run(&mut p, &[b"~B"]), vec![d(b"~B")]);
    }
}
