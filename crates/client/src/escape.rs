//! The client's escape, as OpenSSH does it: after a newline (or at the start), the escape
//! character (default `~`) then `.` disconnects, `B` asks for a BREAK, `?` lists the escapes, and
//! the escape character again sends it once. Anything else passes with the escape in front. The
//! state machine is the `escape` crate's, shared with the gateway: the terminal's replies to the
//! guest (the cursor position a busybox prompt asks for) do not end the start of a line.

/// What the typed bytes ask for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Bytes for the console, as typed.
    Data(Vec<u8>),
    Break,
    Disconnect,
    Help,
}

/// A streaming parser; an escape sequence may be split across `feed` calls.
#[derive(Debug)]
pub struct EscapeParser(::escape::Parser);

impl EscapeParser {
    /// `None` turns escapes off: every byte passes.
    pub fn new(escape: Option<u8>) -> Self {
        // OpenSSH's rule: an escape character that is a command letter, typed twice, is that
        // command (so `--escape .` can still disconnect).
        Self(::escape::Parser::new(
            escape,
            ::escape::Doubled::CommandFirst,
        ))
    }

    pub fn escape(&self) -> Option<u8> {
        self.0.escape()
    }

    pub fn feed(&mut self, input: &[u8]) -> Vec<Key> {
        use ::escape::{Command, Event};
        self.0
            .feed(input)
            .into_iter()
            .map(|event| match event {
                Event::Data(d) => Key::Data(d),
                Event::Command(Command::Break) => Key::Break,
                Event::Command(Command::Disconnect) => Key::Disconnect,
                Event::Command(Command::Help) => Key::Help,
            })
            .collect()
    }
}

/// Parses `--escape`: one character, `^X` for a control character, or `none`.
pub fn parse_escape(text: &str) -> Result<Option<u8>, String> {
    match text.as_bytes() {
        b"none" => Ok(None),
        [c] if c.is_ascii() && !c.is_ascii_control() => Ok(Some(*c)),
        [b'^', c] if (b'@'..=b'_').contains(&c.to_ascii_uppercase()) => {
            Ok(Some(c.to_ascii_uppercase() - b'@'))
        }
        _ => Err(format!(
            "invalid escape character `{text}`: use one character, ^X, or none"
        )),
    }
}

/// Shows an escape character the way it is typed (`~`, `^]`).
pub fn show(escape: u8) -> String {
    if escape < 0x20 {
        format!("^{}", char::from(escape + b'@'))
    } else {
        char::from(escape).to_string()
    }
}

/// The `~?` text (raw-mode line endings).
pub fn help_text(escape: u8) -> String {
    let e = show(escape);
    format!(
        "\r\nSupported escape sequences:\r\n {e}.   - terminate connection\r\n \
         {e}B   - send a BREAK to the remote system\r\n {e}?   - this message\r\n \
         {e}{e}   - send the escape character by typing it twice\r\n\
         (Note that escapes are only recognized immediately after newline.)\r\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut EscapeParser, chunks: &[&[u8]]) -> Vec<Key> {
        let mut merged: Vec<Key> = Vec::new();
        for key in chunks.iter().flat_map(|c| p.feed(c)) {
            match (merged.last_mut(), key) {
                (Some(Key::Data(prev)), Key::Data(d)) => prev.extend_from_slice(&d),
                (_, k) => merged.push(k),
            }
        }
        merged
    }

    fn d(s: &[u8]) -> Key {
        Key::Data(s.to_vec())
    }

    #[test]
    fn commands_after_newline_and_at_start() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"~?"]), vec![Key::Help]);
        assert_eq!(
            run(&mut p, &[b"ls\r~Bh"]),
            vec![d(b"ls\r"), Key::Break, d(b"h")]
        );
        assert_eq!(run(&mut p, &[b"\n~."]), vec![d(b"\n"), Key::Disconnect]);
    }

    #[test]
    fn after_a_command_the_line_start_remains() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"~B~B"]), vec![Key::Break, Key::Break]);
    }

    #[test]
    fn mid_line_tilde_is_data() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"a~B~."]), vec![d(b"a~B~.")]);
    }

    #[test]
    fn doubled_escape_sends_one_and_other_bytes_pass_with_it() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"~~B"]), vec![d(b"~B")]);
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"~x"]), vec![d(b"~x")]);
        // An escape then a newline: both pass, and the next line starts fresh.
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(run(&mut p, &[b"~\r~."]), vec![d(b"~\r"), Key::Disconnect]);
    }

    #[test]
    fn split_across_reads() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(
            run(&mut p, &[b"x\r", b"~", b"B"]),
            vec![d(b"x\r"), Key::Break]
        );
    }

    /// busybox ash asks for the cursor position at every prompt: the terminal's reply arrives
    /// between the user's Enter and the escape.
    #[test]
    fn a_terminal_reply_after_enter_keeps_the_escape() {
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(
            run(&mut p, &[b"\r\x1b[24;1R~."]),
            vec![d(b"\r\x1b[24;1R"), Key::Disconnect]
        );
        let mut p = EscapeParser::new(Some(b'~'));
        assert_eq!(
            run(&mut p, &[b"\r\x1b[2", b"4;1R\x1b[I~", b"?"]),
            vec![d(b"\r\x1b[24;1R\x1b[I"), Key::Help]
        );
    }

    #[test]
    fn an_escape_that_is_a_command_letter_typed_twice_is_the_command() {
        let mut p = EscapeParser::new(Some(b'.'));
        assert_eq!(
            run(&mut p, &[b"..", b"x\r.", b"."]),
            vec![Key::Disconnect, d(b"x\r"), Key::Disconnect]
        );
    }

    #[test]
    fn other_escape_characters_and_none() {
        let mut p = EscapeParser::new(Some(0x1d)); // ^]
        assert_eq!(
            run(&mut p, &[b"~.\r\x1d."]),
            vec![d(b"~.\r"), Key::Disconnect]
        );
        let mut p = EscapeParser::new(None);
        assert_eq!(run(&mut p, &[b"~.~B"]), vec![d(b"~.~B")]);
        assert!(p.feed(b"").is_empty());
    }

    #[test]
    fn escape_flag_values() {
        assert_eq!(parse_escape("~"), Ok(Some(b'~')));
        assert_eq!(parse_escape("%"), Ok(Some(b'%')));
        assert_eq!(parse_escape("^"), Ok(Some(b'^')));
        assert_eq!(parse_escape("^]"), Ok(Some(0x1d)));
        assert_eq!(parse_escape("^a"), Ok(Some(0x01)));
        assert_eq!(parse_escape("none"), Ok(None));
        for bad in ["", "ab", "^1", "\u{e9}", "\t"] {
            assert!(parse_escape(bad).is_err(), "{bad:?}");
        }
        assert_eq!(show(0x1d), "^]");
        assert_eq!(show(b'~'), "~");
        assert!(help_text(b'~').contains(" ~B   - send a BREAK"));
    }
}
