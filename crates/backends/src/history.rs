//! A hub's in-memory console history: the latest output, bounded, and the cuts taken from its
//! end (the backlog of a reattaching user, the last lines replayed to a new one).

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// The most lines a session may ask to have replayed.
pub const MAX_REPLAY_LINES: u32 = 10_000;

#[derive(Debug)]
pub(crate) struct History {
    buf: VecDeque<u8>,
    cap: usize,
    pub(crate) updated_ms: u64,
}

impl History {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            buf: VecDeque::with_capacity(cap.min(64 * 1024)),
            cap: cap.max(1),
            updated_ms: 0,
        }
    }

    /// Output from before this start, with the time its last byte arrived.
    pub(crate) fn seed(&mut self, bytes: &[u8], updated_ms: u64) {
        self.append(bytes);
        self.updated_ms = updated_ms;
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.append(data);
        self.updated_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    }

    fn append(&mut self, data: &[u8]) {
        let data = if data.len() > self.cap {
            &data[data.len() - self.cap..]
        } else {
            data
        };
        let overflow = (self.buf.len() + data.len()).saturating_sub(self.cap);
        self.buf.drain(..overflow);
        self.buf.extend(data);
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.buf.iter().copied().collect()
    }

    /// The last `n` bytes (all of them if fewer are kept).
    pub(crate) fn suffix(&self, n: usize) -> bytes::Bytes {
        let start = self.buf.len() - n.min(self.buf.len());
        bytes::Bytes::from(self.buf.range(start..).copied().collect::<Vec<u8>>())
    }

    /// How many bytes at the end hold the last `lines` lines: a line ends with its newline,
    /// and unfinished output after the last newline (a prompt) counts as a line of its own.
    /// All of the history if it holds fewer lines; 0 for 0 lines.
    pub(crate) fn lines_len(&self, lines: u32) -> usize {
        if lines == 0 {
            return 0;
        }
        let len = self.buf.len();
        // The last byte belongs to the last line whether or not it is a newline.
        let mut seen = 0u32;
        for i in (0..len.saturating_sub(1)).rev() {
            if self.buf.get(i) == Some(&b'\n') {
                seen += 1;
                if seen == lines {
                    return len - (i + 1);
                }
            }
        }
        len
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn history(bytes: &[u8]) -> History {
        let mut h = History::new(1024);
        h.push(bytes);
        h
    }

    fn last_lines(h: &History, n: u32) -> Vec<u8> {
        h.suffix(h.lines_len(n)).to_vec()
    }

    #[test]
    fn keeps_the_latest_bytes() {
        let mut h = History::new(8);
        h.push(b"abcdef");
        h.push(b"ghij");
        assert_eq!(h.bytes(), b"cdefghij");
        h.push(b"0123456789");
        assert_eq!(h.bytes(), b"23456789");
        assert!(h.updated_ms > 0);
    }

    #[test]
    fn seed_keeps_its_time() {
        let mut h = History::new(4);
        h.seed(b"abcdef", 42);
        assert_eq!(h.bytes(), b"cdef");
        assert_eq!(h.updated_ms, 42);
    }

    #[test]
    fn last_lines_of_finished_lines() {
        let h = history(b"one\ntwo\nthree\n");
        assert_eq!(last_lines(&h, 1), b"three\n");
        assert_eq!(last_lines(&h, 2), b"two\nthree\n");
        assert_eq!(last_lines(&h, 3), b"one\ntwo\nthree\n");
        assert_eq!(last_lines(&h, 50), b"one\ntwo\nthree\n");
        assert_eq!(last_lines(&h, 0), b"");
    }

    #[test]
    fn an_unfinished_line_counts_as_one() {
        let h = history(b"one\ntwo\nlogin: ");
        assert_eq!(last_lines(&h, 1), b"login: ");
        assert_eq!(last_lines(&h, 2), b"two\nlogin: ");
    }

    #[test]
    fn empty_history_and_empty_lines() {
        assert_eq!(last_lines(&History::new(16), 5), b"");
        let h = history(b"\n\n\n");
        assert_eq!(last_lines(&h, 2), b"\n\n");
    }
}
