//! The client's escape, as OpenSSH does it: after a newline (or at the start), the escape
//! character (default `~`) then `.` disconnects, `B` asks for a BREAK, `?` lists the escapes, and
//! the escape character again sends it once. Anything else passes with the escape in front.

/// What the typed bytes ask for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Bytes for the console, as typed.
    Data(Vec<u8>),
    Break,
    Disconnect,
    Help,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    LineStart,
    Normal,
    /// Saw the escape character at the start of a line.
    Escape,
}

/// A streaming parser; an escape sequence may be split across `feed` calls.
#[derive(Debug)]
pub struct EscapeParser {
    escape: Option<u8>,
    state: State,
}

fn is_newline(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

impl EscapeParser {
    /// `None` turns escapes off: every byte passes.
    pub fn new(escape: Option<u8>) -> Self {
        Self {
            escape,
            state: State::LineStart,
        }
    }

    pub fn escape(&self) -> Option<u8> {
        self.escape
    }

    pub fn feed(&mut self, input: &[u8]) -> Vec<Key> {
        let Some(esc) = self.escape else {
            return if input.is_empty() {
                Vec::new()
            } else {
                vec![Key::Data(input.to_vec())]
            };
        };
        let mut keys = Vec::new();
        let mut data = Vec::with_capacity(input.len());
        for &b in input {
            self.state = match self.state {
                State::Escape => {
                    let command = match b {
                        b'.' => Some(Key::Disconnect),
                        b'B' => Some(Key::Break),
                        b'?' => Some(Key::Help),
                        _ => None,
                    };
                    match command {
                        Some(key) => {
                            if !data.is_empty() {
                                keys.push(Key::Data(std::mem::take(&mut data)));
                            }
                            keys.push(key);
                            State::LineStart
                        }
                        None if b == esc => {
                            data.push(esc);
                            State::Normal
                        }
                        None => {
                            data.extend_from_slice(&[esc, b]);
                            if is_newline(b) {
                                State::LineStart
                            } else {
                                State::Normal
                            }
                        }
                    }
                }
                State::LineStart if b == esc => State::Escape,
                _ => {
                    data.push(b);
                    if is_newline(b) {
                        State::LineStart
                    } else {
                        State::Normal
                    }
                }
            };
        }
        if !data.is_empty() {
            keys.push(Key::Data(data));
        }
        keys
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
