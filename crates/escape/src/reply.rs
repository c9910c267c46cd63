//! Recognising what a terminal sends unasked-for-by-the-user: replies to the guest's queries and
//! mode markers. They arrive in the same stream as typed keys, but nobody typed them.
//!
//! Recognised (control sequences, `ESC [ params final`):
//! - cursor-position report `ESC [ row ; col R` (and `ESC [ ? row ; col ; page R`): busybox ash
//!   asks for it at every prompt, so it lands between the user's Enter and the escape;
//! - focus in and out, `ESC [ I` and `ESC [ O`;
//! - bracketed-paste markers, `ESC [ 200 ~` and `ESC [ 201 ~`;
//! - device-attribute replies, `ESC [ ? … c` and `ESC [ > … c`.
//!
//! Every other control sequence (arrow keys `ESC [ A`, `ESC [ 5 ~`, …) is a key. One ambiguity
//! is inherent to the protocol: xterm sends Shift-F3 as `ESC [ 1 ; 2 R`, which reads as a
//! cursor-position report. Other replies (`ESC [ 0 n`, window reports `ESC [ 8 ; … t`) are rare
//! enough to stay keys; the 8-bit CSI (0x9B) is not recognised, as terminals do not send it
//! unless asked to.

/// The longest sequence recognised, `ESC [` and the final byte included. Past it the sequence is
/// a key: the recogniser's memory is bounded whatever it is fed.
pub const MAX_SEQUENCE: usize = 32;

/// Room for the parameter and intermediate bytes (`MAX_SEQUENCE` less `ESC`, `[` and the final).
const PARAMS: usize = MAX_SEQUENCE - 3;

/// What the byte just pushed makes of the sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// The sequence goes on; the byte is part of it.
    More,
    /// The byte ends a terminal reply or marker.
    Reply,
    /// The byte ends a sequence that is a key (or too long to be a reply).
    Key,
    /// The sequence ended before this byte, which is not part of it: a lone `ESC`, `ESC x`
    /// (Alt-x), or a control sequence cut by a control byte.
    NotPart,
}

/// One sequence after its `ESC`. `Copy` and fixed-size: the parser's state stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sequence {
    /// Whether `[` followed the `ESC` (a control sequence).
    csi: bool,
    params: [u8; PARAMS],
    len: usize,
}

impl Sequence {
    /// A sequence whose `ESC` was just seen.
    pub(crate) fn new() -> Self {
        Self {
            csi: false,
            params: [0; PARAMS],
            len: 0,
        }
    }

    pub(crate) fn push(&mut self, b: u8) -> Step {
        if !self.csi {
            if b == b'[' {
                self.csi = true;
                return Step::More;
            }
            return Step::NotPart;
        }
        match b {
            // Parameter (0x30–0x3F) and intermediate (0x20–0x2F) bytes.
            0x20..=0x3f => match self.params.get_mut(self.len) {
                Some(slot) => {
                    *slot = b;
                    self.len += 1;
                    Step::More
                }
                None => Step::Key,
            },
            0x40..=0x7e => {
                if is_reply(&self.params[..self.len], b) {
                    Step::Reply
                } else {
                    Step::Key
                }
            }
            _ => Step::NotPart,
        }
    }
}

/// Whether `ESC [ params final` is one of the replies this module lists.
fn is_reply(params: &[u8], last: u8) -> bool {
    match last {
        b'R' => {
            let numbers = params.strip_prefix(b"?").unwrap_or(params);
            numeric(numbers).is_some_and(|n| n >= 2)
        }
        b'I' | b'O' => params.is_empty(),
        b'~' => params == b"200" || params == b"201",
        b'c' => match params.split_first() {
            Some((b'?' | b'>', rest)) => numeric(rest).is_some_and(|n| n >= 1),
            _ => false,
        },
        _ => false,
    }
}

/// How many numbers `params` holds if it is `N(;N)*` with decimal `N` (0 if empty).
fn numeric(params: &[u8]) -> Option<usize> {
    if params.is_empty() {
        return Some(0);
    }
    let mut count = 0;
    for number in params.split(|&b| b == b';') {
        if number.is_empty() || !number.iter().all(u8::is_ascii_digit) {
            return None;
        }
        count += 1;
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the bytes after `ESC` make of a sequence: the last step.
    fn run(after_esc: &[u8]) -> Step {
        let mut s = Sequence::new();
        let mut last = Step::More;
        for &b in after_esc {
            last = s.push(b);
            if last != Step::More {
                break;
            }
        }
        last
    }

    #[test]
    fn replies_and_markers() {
        for reply in [
            &b"[24;1R"[..],
            b"[1;80R",
            b"[?24;1;1R",
            b"[I",
            b"[O",
            b"[200~",
            b"[201~",
            b"[?62;22c",
            b"[?1;2c",
            b"[>0;276;0c",
        ] {
            assert_eq!(
                run(reply),
                Step::Reply,
                "{}",
                String::from_utf8_lossy(reply)
            );
        }
    }

    #[test]
    fn keys_and_other_sequences() {
        for key in [
            &b"[A"[..],
            b"[D",
            b"[5~",
            b"[202~",
            b"[1I",
            b"[24R",
            b"[;1R",
            b"[24;R",
            b"[24:1R",
            b"[c",
            b"[?c",
            b"[62c",
            b"[0n",
            b"[1 R",
        ] {
            assert_eq!(run(key), Step::Key, "{}", String::from_utf8_lossy(key));
        }
        assert_eq!(run(b"x"), Step::NotPart, "Alt-x");
        assert_eq!(
            run(b"O"),
            Step::NotPart,
            "SS3 keys are not control sequences"
        );
        assert_eq!(run(b"[24\r"), Step::NotPart);
        assert_eq!(run(b"[\x1b"), Step::NotPart);
    }

    #[test]
    fn a_sequence_longer_than_the_cap_is_a_key() {
        // `ESC [`, 29 parameter bytes and the final: exactly the cap.
        let mut fits = b"[".to_vec();
        fits.extend_from_slice(b"1;");
        fits.extend(std::iter::repeat_n(b'0', PARAMS - 2));
        fits.push(b'R');
        assert_eq!(fits.len() + 1, MAX_SEQUENCE);
        assert_eq!(run(&fits), Step::Reply);
        // One parameter byte more ends it as a key at that byte.
        let mut long = fits.clone();
        long.insert(3, b'0');
        let mut s = Sequence::new();
        let steps: Vec<Step> = long.iter().map(|&b| s.push(b)).collect();
        assert_eq!(steps[MAX_SEQUENCE - 2], Step::Key);
        assert!(steps[..MAX_SEQUENCE - 2].iter().all(|&s| s == Step::More));
    }
}
