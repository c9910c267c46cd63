//! Console bytes to text for asciicast events, which are JSON strings.
//!
//! A console writes bytes, and a multibyte character may be split across two reads; decoding
//! each chunk on its own would turn both halves into replacement characters. [`Utf8Stream`]
//! keeps an incomplete sequence at the end of a chunk (at most three bytes) and finishes it with
//! the next one. Bytes that can never be UTF-8 become U+FFFD, as a terminal shows them.

/// A UTF-8 decoder over a stream of chunks.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    /// The start of a character the last chunk ended inside (at most 3 bytes).
    carry: Vec<u8>,
}

impl Utf8Stream {
    /// Appends the text of `chunk` to `out`, keeping an incomplete character at its end for the
    /// next call.
    pub fn decode(&mut self, chunk: &[u8], out: &mut String) {
        let joined;
        let mut rest: &[u8] = if self.carry.is_empty() {
            chunk
        } else {
            // Only the carried bytes and the next few can make up the split character; the rest
            // of the chunk is decoded in place.
            let take = chunk.len().min(4 - self.carry.len());
            let (head, tail) = chunk.split_at(take);
            let mut start = std::mem::take(&mut self.carry);
            start.extend_from_slice(head);
            let used = Self::decode_some(&start, out, &mut self.carry, tail.is_empty());
            // Bytes of `head` not used by the split character go back in front of the tail.
            joined = [start.get(used..).unwrap_or_default(), tail].concat();
            if !self.carry.is_empty() {
                return;
            }
            &joined
        };
        while !rest.is_empty() {
            let used = Self::decode_some(rest, out, &mut self.carry, true);
            rest = rest.get(used..).unwrap_or_default();
        }
    }

    /// Decodes from the start of `bytes`; returns how many bytes it consumed. An incomplete
    /// character at the very end goes to `carry` (consumed) when `at_end`, else it is left.
    fn decode_some(bytes: &[u8], out: &mut String, carry: &mut Vec<u8>, at_end: bool) -> usize {
        match std::str::from_utf8(bytes) {
            Ok(text) => {
                out.push_str(text);
                bytes.len()
            }
            Err(e) => {
                let valid = e.valid_up_to();
                let (good, bad) = bytes.split_at(valid);
                // `good` is valid UTF-8 by the error's own account.
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                match e.error_len() {
                    Some(n) => {
                        out.push(char::REPLACEMENT_CHARACTER);
                        valid + n
                    }
                    // The input ends inside a character.
                    None if at_end => {
                        carry.extend_from_slice(bad);
                        bytes.len()
                    }
                    None => valid,
                }
            }
        }
    }

    /// Ends the stream: an incomplete character left over becomes U+FFFD.
    pub fn finish(&mut self, out: &mut String) {
        if !self.carry.is_empty() {
            self.carry.clear();
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_chunks(chunks: &[&[u8]]) -> String {
        let mut d = Utf8Stream::default();
        let mut out = String::new();
        for c in chunks {
            d.decode(c, &mut out);
        }
        d.finish(&mut out);
        out
    }

    #[test]
    fn a_character_split_across_chunks_is_whole() {
        let euro = "€".as_bytes(); // 3 bytes
        assert_eq!(
            decode_chunks(&[b"a", &euro[..1], &euro[1..2], &euro[2..], b"b"]),
            "a€b"
        );
        let emoji = "🦀".as_bytes(); // 4 bytes
        assert_eq!(decode_chunks(&[&emoji[..3], &emoji[3..]]), "🦀");
        assert_eq!(
            decode_chunks(&[b"x", &emoji[..1], &[emoji[1], emoji[2], emoji[3], b'y']]),
            "x🦀y"
        );
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(decode_chunks(&[b"a\xffb"]), "a\u{fffd}b");
        // A lead byte followed by something that cannot continue it, across chunks.
        assert_eq!(decode_chunks(&[b"a\xe2", b"zz"]), "a\u{fffd}zz");
        // A character the stream ends inside.
        assert_eq!(decode_chunks(&[b"a\xe2\x82"]), "a\u{fffd}");
    }

    proptest! {
        /// Any split of any byte string decodes as the whole string does at once.
        #[test]
        fn splits_do_not_change_the_text(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            text in ".{0,16}",
            cuts in proptest::collection::vec(0usize..96, 0..6),
        ) {
            let mut all = bytes;
            all.extend_from_slice(text.as_bytes());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(all.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for c in cuts {
                chunks.push(&all[from..c]);
                from = c;
            }
            chunks.push(&all[from..]);
            prop_assert_eq!(decode_chunks(&chunks), String::from_utf8_lossy(&all).into_owned());
        }
    }
}
