//! The console output a script matches against: decoded as UTF-8 across chunk boundaries
//! (invalid bytes become U+FFFD), consumed up to the end of each match, and bounded.

use regex_lite::Regex;

/// Text kept for matching at most; older text is dropped (a script matches recent output).
const MAX_TEXT: usize = 1 << 20;

#[derive(Debug, Default)]
pub struct Transcript {
    text: String,
    /// The start of a UTF-8 sequence split across chunks.
    partial: Vec<u8>,
}

impl Transcript {
    pub fn push(&mut self, bytes: &[u8]) {
        let mut input = std::mem::take(&mut self.partial);
        input.extend_from_slice(bytes);
        let mut rest = &input[..];
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.text.push_str(s);
                    break;
                }
                Err(e) => {
                    let (good, bad) = rest.split_at(e.valid_up_to());
                    self.text.push_str(&String::from_utf8_lossy(good));
                    match e.error_len() {
                        Some(n) => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
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

    /// If `regex` matches the text not yet consumed, consumes it through the match's end.
    pub fn take_match(&mut self, regex: &Regex) -> bool {
        match regex.find(&self.text) {
            Some(m) => {
                self.text.drain(..m.end());
                true
            }
            None => false,
        }
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
}
