//! Gathers the data a session's source has already queued into DATA frames as large as a frame
//! may be. A console's output arrives in chunks of a few KiB (one read each); sent one frame per
//! chunk, a burst costs a seal, a write and a wakeup on each node per chunk, which is most of
//! what relaying it costs. Only what is queued already is taken, so a lone keystroke or line
//! still goes out at once, alone.
//!
//! Invariants: bytes go out in the order the source gave them, and nothing that is not data
//! (BREAK, the source's end) is passed over: it ends the gathering and comes next; a frame's
//! parts add up to at most [`MAX_PAYLOAD`] (a longer chunk is split, its rest comes next).

use bytes::Bytes;

use crate::frame::MAX_PAYLOAD;
use crate::session::{Next, Outgoing, Source};

/// The most chunks one frame gathers: bounds the work of one gathering even for a source that
/// keeps giving empty chunks as fast as they are taken.
const MAX_PARTS: usize = 256;

/// A [`Source`] and what was taken from it but not sent yet.
pub(crate) struct Gathered<S> {
    source: S,
    /// Taken while gathering and not part of the frame: the next thing to send.
    held: Option<Next>,
}

impl<S: Source> Gathered<S> {
    pub fn new(source: S) -> Self {
        Self { source, held: None }
    }

    /// The next thing to send; cancel-safe, as the source's `next` is.
    pub async fn next(&mut self) -> Next {
        match self.held.take() {
            Some(next) => next,
            None => self.source.next().await,
        }
    }

    /// Fills `parts` with `first` and the data queued behind it, up to one frame's payload,
    /// without waiting; what ends the gathering (data that did not fit, a BREAK, the end) is
    /// kept for [`Gathered::next`]. Empty chunks are left out, so `parts` may be empty.
    pub fn gather(&mut self, first: Bytes, parts: &mut Vec<Bytes>) {
        parts.clear();
        let mut room = MAX_PAYLOAD;
        let mut bytes = first;
        for _ in 0..MAX_PARTS {
            if bytes.len() > room {
                let rest = bytes.split_off(room);
                self.held = Some(Next::Send(Outgoing::Data(rest)));
            }
            room -= bytes.len();
            if !bytes.is_empty() {
                parts.push(bytes);
            }
            if room == 0 || self.held.is_some() {
                return;
            }
            match self.source.ready() {
                Some(Next::Send(Outgoing::Data(more))) => bytes = more,
                Some(other) => {
                    self.held = Some(other);
                    return;
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use backends::Input;
    use tokio::sync::mpsc;

    use super::*;

    fn sizes(parts: &[Bytes]) -> Vec<usize> {
        parts.iter().map(Bytes::len).collect()
    }

    async fn first_data(gathered: &mut Gathered<impl Source>) -> Bytes {
        match gathered.next().await {
            Next::Send(Outgoing::Data(bytes)) => bytes,
            _ => panic!("expected data"),
        }
    }

    #[tokio::test]
    async fn queued_chunks_share_a_frame_and_a_lone_one_goes_alone() {
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let mut gathered = Gathered::new(rx);
        let mut parts = Vec::new();

        tx.send(Bytes::from_static(b"a")).await.unwrap();
        let first = first_data(&mut gathered).await;
        gathered.gather(first, &mut parts);
        assert_eq!(parts, [Bytes::from_static(b"a")]);

        for chunk in [&b"one"[..], b"", b"two", b"three"] {
            tx.send(Bytes::from_static(chunk)).await.unwrap();
        }
        let first = first_data(&mut gathered).await;
        gathered.gather(first, &mut parts);
        assert_eq!(parts.concat(), b"onetwothree");
        drop(tx);
        assert!(matches!(gathered.next().await, Next::End));
    }

    #[tokio::test]
    async fn a_frame_is_filled_to_the_cap_and_the_rest_comes_next_in_order() {
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        let mut gathered = Gathered::new(rx);
        let mut parts = Vec::new();
        let data: Vec<u8> = (0..MAX_PAYLOAD * 3).map(|i| (i % 251) as u8).collect();
        let data = Bytes::from(data);
        // Chunks of 40 KiB: the second is split across the first two frames.
        for chunk in data.chunks(40 << 10) {
            tx.send(data.slice_ref(chunk)).await.unwrap();
        }
        drop(tx);
        let mut frames = Vec::new();
        loop {
            match gathered.next().await {
                Next::Send(Outgoing::Data(first)) => {
                    gathered.gather(first, &mut parts);
                    frames.push(parts.concat());
                }
                Next::End => break,
                _ => panic!("unexpected"),
            }
        }
        assert_eq!(
            frames.iter().map(Vec::len).collect::<Vec<_>>(),
            [MAX_PAYLOAD; 3]
        );
        assert_eq!(frames.concat(), data);
    }

    #[tokio::test]
    async fn a_break_ends_the_gathering_and_keeps_its_place() {
        let (tx, rx) = mpsc::channel::<Input>(8);
        let mut gathered = Gathered::new(rx);
        let mut parts = Vec::new();
        tx.send(Input::Data(Bytes::from_static(b"ab")))
            .await
            .unwrap();
        tx.send(Input::Data(Bytes::from_static(b"cd")))
            .await
            .unwrap();
        tx.send(Input::Break).await.unwrap();
        tx.send(Input::Data(Bytes::from_static(b"ef")))
            .await
            .unwrap();
        drop(tx);

        let first = first_data(&mut gathered).await;
        gathered.gather(first, &mut parts);
        assert_eq!(sizes(&parts), [2, 2]);
        assert!(matches!(gathered.next().await, Next::Send(Outgoing::Break)));
        let first = first_data(&mut gathered).await;
        gathered.gather(first, &mut parts);
        assert_eq!(parts.concat(), b"ef");
        // The user's input ended: the session goes on, quiet.
        assert!(matches!(gathered.next().await, Next::Quiet));
    }
}
