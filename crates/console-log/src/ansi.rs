//! Strips terminal escape sequences (colours, cursor movement, titles) from console output,
//! so a log reads as text. Stateful: a sequence split across chunks is still removed.
//!
//! Handled: CSI (`ESC [` … final byte), OSC (`ESC ]` … BEL or `ESC \`), DCS/SOS/PM/APC
//! strings (`ESC P`, `ESC X`, `ESC ^`, `ESC _` … `ESC \`), and the other escapes (`ESC` with
//! intermediates and a final byte, e.g. `ESC ( B`, `ESC 7`). A sequence running past
//! [`MAX_SEQUENCE`] bytes is taken for garbage: dropping stops there and text resumes, so a
//! stray `ESC` cannot swallow the rest of a log.

/// The longest sequence removed, bytes.
pub const MAX_SEQUENCE: usize = 512;

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Text,
    Esc,
    /// `ESC` followed by intermediate bytes (0x20–0x2F).
    EscIntermediate,
    Csi,
    /// OSC, ended by BEL or ST.
    Osc,
    /// DCS, SOS, PM or APC, ended by ST.
    Str,
    /// `ESC` inside an OSC or string: `\` ends it.
    StrEsc,
}

/// The stripper's state between chunks.
#[derive(Debug, Default)]
pub struct Stripper {
    state: State,
    /// Bytes of the current sequence so far.
    len: usize,
}

impl Stripper {
    /// Appends `input` without escape sequences to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.state != State::Text {
            self.len += 1;
            if self.len > MAX_SEQUENCE {
                self.state = State::Text;
            }
        }
        self.state = match (self.state, b) {
            (State::Text, ESC) => {
                self.len = 1;
                State::Esc
            }
            (State::Text, _) => {
                out.push(b);
                State::Text
            }
            (State::Esc, b'[') => State::Csi,
            (State::Esc, b']') => State::Osc,
            (State::Esc, b'P' | b'X' | b'^' | b'_') => State::Str,
            (State::Esc, ESC) => State::Esc,
            (State::Esc | State::EscIntermediate, 0x20..=0x2f) => State::EscIntermediate,
            (State::Esc | State::EscIntermediate, 0x30..=0x7e) => State::Text,
            // A control byte inside a sequence still does its job (a newline stays).
            (State::Esc | State::EscIntermediate | State::Csi, b'\n' | b'\r' | b'\t') => {
                out.push(b);
                self.state
            }
            (State::Esc | State::EscIntermediate, _) => State::Text,
            (State::Csi, 0x40..=0x7e) => State::Text,
            (State::Csi, ESC) => {
                self.len = 1;
                State::Esc
            }
            (State::Csi, _) => State::Csi,
            (State::Osc, BEL) => State::Text,
            (State::Osc | State::Str, ESC) => State::StrEsc,
            (State::Osc, _) => State::Osc,
            (State::Str, _) => State::Str,
            (State::StrEsc, b'\\') => State::Text,
            (State::StrEsc, _) => State::Str,
        };
    }
}

/// `input` without escape sequences (one chunk on its own).
pub fn strip(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    Stripper::default().feed(input, &mut out);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn removes_colours_cursor_moves_and_titles() {
        assert_eq!(strip(b"\x1b[1;32mOK\x1b[0m done\r\n"), b"OK done\r\n");
        assert_eq!(strip(b"a\x1b[2J\x1b[Hb"), b"ab");
        assert_eq!(strip(b"\x1b[?25lx\x1b[?25h"), b"x");
        assert_eq!(strip(b"\x1b]0;title\x07text"), b"text");
        assert_eq!(strip(b"\x1b]0;title\x1b\\text"), b"text");
        assert_eq!(strip(b"\x1bPq#0;2;0;0;0\x1b\\after"), b"after");
        assert_eq!(strip(b"\x1b(Bplain\x1b7\x1b8"), b"plain");
        assert_eq!(strip(b"no escapes\n"), b"no escapes\n");
    }

    #[test]
    fn sequences_split_across_chunks() {
        let input = b"left \x1b[38;5;208mright\x1b]2;t\x07!";
        for split in 0..input.len() {
            let mut s = Stripper::default();
            let mut out = Vec::new();
            s.feed(&input[..split], &mut out);
            s.feed(&input[split..], &mut out);
            assert_eq!(out, b"left right!", "split at {split}");
        }
    }

    #[test]
    fn a_stray_escape_does_not_swallow_the_log() {
        let mut input = b"\x1b]".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_SEQUENCE * 2));
        let out = strip(&input);
        assert!(out.len() >= MAX_SEQUENCE, "{}", out.len());
        assert!(out.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn newlines_inside_a_broken_sequence_stay() {
        // As a terminal does: the newline acts, and the sequence goes on to its final byte.
        assert_eq!(strip(b"a\x1b[12\n;3mb"), b"a\nb");
    }
}
