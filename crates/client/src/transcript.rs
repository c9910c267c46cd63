//! The console output a script matches against: decoded as UTF-8 across chunk boundaries
//! (invalid bytes become U+FFFD), without terminal control sequences, consumed up to the end
//! of each match, and bounded.
//!
//! Control sequences (colours in a prompt, a shell asking for the cursor position after its
//! prompt) are taken out so that patterns match the text as a terminal shows it: `# $` matches
//! a busybox prompt followed by `ESC [6n`, and `root@host` a coloured one.

use regex_lite::Regex;

/// Text kept for matching at most; older text is dropped (a script matches recent output).
const MAX_TEXT: usize = 1 << 20;

const ESC: char = '\x1b';
const BEL: char = '\x07';

/// Where the text is in a control sequence (which may be split across chunks).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Started,
    /// In a CSI sequence (ESC [ parameters … final byte).
    Csi,
    /// In an OSC or similar string (ESC ] … BEL or ESC \).
    Str,
    /// After ESC inside a string: `\` ends it.
    StrEsc,
}

#[derive(Debug, Default)]
pub struct Transcript {
    text: String,
    /// The start of a UTF-8 sequence split across chunks.
    partial: Vec<u8>,
    escape: Escape,
}

impl Transcript {
    pub fn push(&mut self, bytes: &[u8]) {
        let mut input = std::mem::take(&mut self.partial);
        input.extend_from_slice(bytes);
        let mut rest = &input[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.push_text(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    self.push_text(&String::from_utf8_lossy(good));
                    match e.error_len() {
                        Some(n) => {
                            self.push_text(&char::REPLACEMENT_CHARACTER.to_string());
                            rest = &bad[n..];
                        }
                        None => {
                            self.partial = bad.to_vec();
                            break;
                        }
                    }
                }
            }
        }
        if self.text.len() > MAX_TEXT {
            let mut cut = self.text.len() - MAX_TEXT / 2;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
    }

    /// Appends decoded text, leaving out control sequences (ECMA-48: CSI, and the string
    /// sequences OSC, DCS, APC, PM, SOS up to BEL or ST; other ESC sequences are two characters).
    fn push_text(&mut self, text: &str) {
        for c in text.chars() {
            self.escape = match (self.escape, c) {
                (Escape::None, ESC) => Escape::Started,
                (Escape::None, c) => {
                    self.text.push(c);
                    Escape::None
                }
                (Escape::Started, '[') => Escape::Csi,
                (Escape::Started, ']' | 'P' | '_' | '^' | 'X') => Escape::Str,
                // Intermediates (ESC ( B selects a character set) until the final character.
                (Escape::Started, ESC | ' '..='/') => Escape::Started,
                (Escape::Started, _) => Escape::None,
                // Parameters and intermediates until a final byte (@ to ~).
                (Escape::Csi, '@'..='~') => Escape::None,
                (Escape::Csi, _) => Escape::Csi,
                (Escape::Str, BEL) => Escape::None,
                // A string without its terminator (line noise) ends with the line, or it would
                // hide the rest of the output.
                (Escape::Str | Escape::StrEsc, '\n') => {
                    self.text.push('\n');
                    Escape::None
                }
                (Escape::Str, ESC) => Escape::StrEsc,
                (Escape::Str, _) => Escape::Str,
                (Escape::StrEsc, '\\') => Escape::None,
                (Escape::StrEsc, _) => Escape::Str,
            };
        }
    }

    /// If `regex` matches the text not yet consumed, consumes it through the match's end.
    pub fn take_match(&mut self, regex: &Regex) -> bool {
        self.take_first(&[regex]).is_some()
    }

    /// Of `regexes`, the one whose match starts first in the text not yet consumed (the first
    /// listed on a tie); consumes the text through that match's end and returns its index.
    pub fn take_first(&mut self, regexes: &[&Regex]) -> Option<usize> {
        let (index, m) = regexes
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.find(&self.text).map(|m| (i, m)))
            .min_by_key(|(i, m)| (m.start(), *i))?;
        let end = m.end();
        self.text.drain(..end);
        Some(index)
    }

    /// Consumes everything seen so far, so that only output from now on can match.
    pub fn skip_seen(&mut self) {
        self.text.clear();
    }

    /// The last `n` characters or so, for a timeout message.
    pub fn tail(&self, n: usize) -> &str {
        let mut start = self.text.len().saturating_sub(n);
        while !self.text.is_char_boundary(start) {
            start += 1;
        }
        &self.text[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_consume_through_their_end() {
        let mut t = Transcript::default();
        t.push(b"sim login: ");
        let login = Regex::new("login:").unwrap();
        assert!(t.take_match(&login));
        assert!(!t.take_match(&login), "consumed");
        t.push(b"root\r\nPassword: ");
        assert!(t.take_match(&Regex::new(r"Pass\w+:").unwrap()));
        assert_eq!(t.tail(100), " ");
    }

    #[test]
    fn utf8_split_across_chunks_and_invalid_bytes() {
        let mut t = Transcript::default();
        let e_acute = "\u{e9}".as_bytes();
        t.push(&[b'c', b'a', b'f', e_acute[0]]);
        t.push(&[e_acute[1], b' ', 0xff, b'!']);
        assert_eq!(t.tail(100), "caf\u{e9} \u{fffd}!");
        assert!(t.take_match(&Regex::new("caf\u{e9}").unwrap()));
    }

    #[test]
    fn bounded() {
        let mut t = Transcript::default();
        for _ in 0..3000 {
            t.push(&[b'x'; 1000]);
        }
        assert!(t.tail(usize::MAX).len() <= MAX_TEXT);
        t.push(b"END");
        assert!(t.take_match(&Regex::new("END$").unwrap()));
    }

    #[test]
    fn the_earliest_of_several_wins_and_skip_forgets() {
        let mut t = Transcript::default();
        let login = Regex::new("login: $").unwrap();
        let prompt = Regex::new("[#$] $").unwrap();
        t.push(b"Last login: today\r\nroot@sim:~# ");
        assert_eq!(t.take_first(&[&login, &prompt]), Some(1));
        assert_eq!(t.take_first(&[&login, &prompt]), None, "consumed");
        t.push(b"x login: ");
        let any = Regex::new("x").unwrap();
        assert_eq!(t.take_first(&[&login, &any]), Some(1), "starts first");
        t.push(b"old prompt # ");
        t.skip_seen();
        assert_eq!(t.take_first(&[&login, &prompt]), None);
        t.push(b"sim login: ");
        assert_eq!(t.take_first(&[&login, &prompt]), Some(0));
    }

    #[test]
    fn control_sequences_are_left_out_even_split_across_chunks() {
        let mut t = Transcript::default();
        // busybox ash asks for the cursor position after its prompt.
        t.push(b"serialgate-vm# \x1b[6n");
        assert!(t.take_match(&Regex::new("# $").unwrap()));
        // A coloured bash prompt, cut in the middle of its sequences.
        t.push(b"\x1b[01;3");
        t.push(b"2mroot@host\x1b");
        t.push(b"[00m:~# ");
        assert_eq!(t.tail(100), "root@host:~# ");
        t.skip_seen();
        // A window title (OSC … BEL and OSC … ST) and a two-character sequence.
        t.push(b"\x1b]0;root@host: ~\x07a\x1b]2;t\x1b\\b\x1b=c\x1b(Bd");
        assert_eq!(t.tail(100), "abcd");
        t.push(b"\x1b]noise\r\nlogin: ");
        assert_eq!(t.tail(100), "abcd\nlogin: ");
    }
}
