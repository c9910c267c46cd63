//! The relay's frames: a type byte, a big-endian u32 length and the payload, then, once the
//! handshake has given keys, the payload encrypted and followed by its tag; read and written
//! over any byte stream.
//!
//! Invariants: the length is checked against [`MAX_PAYLOAD`] before anything is allocated for
//! the payload, so a peer cannot make us buffer more than one capped frame; a sealed reader
//! returns no frame whose tag has not checked out, and no plaintext of one.

use std::io;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::seal::{FrameSeal, TAG};

/// The largest payload a frame may carry, in bytes.
pub const MAX_PAYLOAD: usize = 64 * 1024;

const HEADER: usize = 5;

/// What a frame is (see the table in the crate documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Hello = 0x01,
    Challenge = 0x02,
    Proof = 0x03,
    Attach = 0x10,
    History = 0x11,
    Ok = 0x12,
    Error = 0x13,
    None = 0x14,
    HistoryData = 0x15,
    HistoryEnd = 0x16,
    AttachReplay = 0x17,
    AttachSpectate = 0x18,
    Data = 0x20,
    Break = 0x21,
    Close = 0x22,
    Ping = 0x23,
}

impl Kind {
    fn from_u8(byte: u8) -> Option<Kind> {
        Some(match byte {
            0x01 => Kind::Hello,
            0x02 => Kind::Challenge,
            0x03 => Kind::Proof,
            0x10 => Kind::Attach,
            0x11 => Kind::History,
            0x12 => Kind::Ok,
            0x13 => Kind::Error,
            0x14 => Kind::None,
            0x15 => Kind::HistoryData,
            0x16 => Kind::HistoryEnd,
            0x17 => Kind::AttachReplay,
            0x18 => Kind::AttachSpectate,
            0x20 => Kind::Data,
            0x21 => Kind::Break,
            0x22 => Kind::Close,
            0x23 => Kind::Ping,
            _ => return None,
        })
    }
}

/// One frame as received.
#[derive(Debug)]
pub(crate) struct Frame {
    pub kind: Kind,
    pub payload: Bytes,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame of {0} bytes exceeds the {MAX_PAYLOAD}-byte cap")]
    TooLarge(u32),
    #[error("unknown frame type {0:#04x}")]
    UnknownKind(u8),
    #[error("a frame failed its authentication check")]
    BadTag,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Reads frames. Not cancel-safe: a frame abandoned halfway leaves the stream mid-frame, so a
/// read is only ever given up together with the connection.
#[derive(Debug)]
pub(crate) struct FrameReader<R> {
    inner: R,
    /// Set at the end of the handshake: from then on every frame is sealed.
    seal: Option<FrameSeal>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, seal: None }
    }

    /// Every frame read from now on must open with `seal`.
    pub fn seal(&mut self, seal: FrameSeal) {
        self.seal = Some(seal);
    }

    /// The next frame; `None` when the peer closed cleanly between frames.
    pub async fn read(&mut self) -> Result<Option<Frame>, FrameError> {
        let mut header = [0u8; HEADER];
        // The first byte apart, so a close between frames is told from one inside a frame.
        if self.inner.read(&mut header[..1]).await? == 0 {
            return Ok(None);
        }
        self.inner.read_exact(&mut header[1..]).await?;
        let [kind, l0, l1, l2, l3] = header;
        let len = u32::from_be_bytes([l0, l1, l2, l3]);
        let size = usize::try_from(len).unwrap_or(usize::MAX);
        if size > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(len));
        }
        let kind = Kind::from_u8(kind).ok_or(FrameError::UnknownKind(kind))?;
        // A sealed frame's tag is read with its payload, in one go.
        let tag = if self.seal.is_some() { TAG } else { 0 };
        let mut payload = BytesMut::zeroed(size + tag);
        self.inner.read_exact(&mut payload).await?;
        if let Some(seal) = &mut self.seal {
            let (body, tag) = payload.split_at_mut(size);
            if !seal.open(&header, body, tag) {
                return Err(FrameError::BadTag);
            }
            payload.truncate(size);
        }
        Ok(Some(Frame {
            kind,
            payload: payload.freeze(),
        }))
    }

    /// Reads and discards until the peer closes; for a side that has said CLOSE and waits for
    /// the peer to go, so that what it sent is not cut short by a reset.
    pub async fn drain(&mut self) {
        let mut sink = [0u8; 4096];
        while let Ok(n) = self.inner.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// Writes frames, each in one write of one buffer (header, payload, tag: no separate packet for
/// any of them). Not cancel-safe once sealed: a frame given up after it was sealed leaves a gap
/// in the sequence, so a send is only ever given up together with the connection.
#[derive(Debug)]
pub(crate) struct FrameWriter<W> {
    inner: W,
    /// Set at the end of the handshake: from then on every frame is sealed.
    seal: Option<FrameSeal>,
    /// Where a frame is put together and its payload sealed in place; kept between frames, so a
    /// frame costs no allocation (it grows to one frame of [`MAX_PAYLOAD`] at most).
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            seal: None,
            buf: Vec::new(),
        }
    }

    /// Every frame sent from now on is sealed with `seal`.
    pub fn seal(&mut self, seal: FrameSeal) {
        self.seal = Some(seal);
    }

    /// Sends one frame. The caller keeps payloads within [`MAX_PAYLOAD`] (see [`chunks`]).
    pub async fn send(&mut self, kind: Kind, payload: &[u8]) -> io::Result<()> {
        self.send_parts(kind, &[payload]).await
    }

    /// Sends one frame whose payload is `parts` end to end, so that output queued in several
    /// chunks costs one seal and one write. Together they stay within [`MAX_PAYLOAD`].
    pub async fn send_parts<B: AsRef<[u8]>>(&mut self, kind: Kind, parts: &[B]) -> io::Result<()> {
        let size: usize = parts.iter().map(|part| part.as_ref().len()).sum();
        let len = u32::try_from(size)
            .ok()
            .filter(|_| size <= MAX_PAYLOAD)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        let [l0, l1, l2, l3] = len.to_be_bytes();
        let header = [kind as u8, l0, l1, l2, l3];
        self.buf.clear();
        self.buf.extend_from_slice(&header);
        for part in parts {
            self.buf.extend_from_slice(part.as_ref());
        }
        if let Some(seal) = &mut self.seal {
            let tag = seal
                .seal(&header, &mut self.buf[HEADER..])
                .ok_or_else(|| io::Error::other("frame sequence numbers exhausted"))?;
            self.buf.extend_from_slice(&tag);
        }
        self.inner.write_all(&self.buf).await?;
        self.inner.flush().await
    }
}

/// Splits bytes into payloads a frame can carry.
pub(crate) fn chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.chunks(MAX_PAYLOAD)
}

/// Truncates text to at most `max` bytes, at a character boundary.
pub(crate) fn clip(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    async fn round_trip(kind: Kind, payload: &[u8]) -> Frame {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut writer = FrameWriter::new(a);
        writer.send(kind, payload).await.unwrap();
        drop(writer);
        let mut reader = FrameReader::new(b);
        let frame = reader.read().await.unwrap().unwrap();
        assert!(reader.read().await.unwrap().is_none(), "clean end after it");
        frame
    }

    #[tokio::test]
    async fn frames_round_trip_up_to_the_cap() {
        let frame = round_trip(Kind::Ping, b"").await;
        assert_eq!((frame.kind, frame.payload.len()), (Kind::Ping, 0));
        let big = vec![0xa5; MAX_PAYLOAD];
        let frame = round_trip(Kind::Data, &big).await;
        assert_eq!(frame.kind, Kind::Data);
        assert_eq!(frame.payload, big);
    }

    #[tokio::test]
    async fn a_frame_over_the_cap_is_neither_written_nor_read() {
        let (a, b) = tokio::io::duplex(64);
        let mut writer = FrameWriter::new(a);
        let err = writer
            .send(Kind::Data, &vec![0; MAX_PAYLOAD + 1])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);

        // A header announcing one byte too many is refused before the payload is awaited.
        let mut raw = writer.inner;
        let len = u32::try_from(MAX_PAYLOAD + 1).unwrap().to_be_bytes();
        raw.write_all(&[0x20, len[0], len[1], len[2], len[3]])
            .await
            .unwrap();
        let mut reader = FrameReader::new(b);
        assert!(matches!(
            reader.read().await,
            Err(FrameError::TooLarge(n)) if n as usize == MAX_PAYLOAD + 1
        ));
    }

    #[tokio::test]
    async fn unknown_types_and_cut_frames_are_errors() {
        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0x7f, 0, 0, 0, 0]).await.unwrap();
        let mut reader = FrameReader::new(b);
        assert!(matches!(
            reader.read().await,
            Err(FrameError::UnknownKind(0x7f))
        ));

        let (mut a, b) = tokio::io::duplex(64);
        a.write_all(&[0x20, 0, 0, 0, 4, b'a', b'b']).await.unwrap();
        drop(a);
        let mut reader = FrameReader::new(b);
        assert!(matches!(
            reader.read().await,
            Err(FrameError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof
        ));
    }

    fn keys() -> (FrameSeal, FrameSeal) {
        let secret = crate::secret::ClusterSecret::from_bytes(&[7; 32]).unwrap();
        let direction = crate::seal::Direction::ClientToServer;
        let seal = FrameSeal::derive(&secret, direction, &[1; 32], &[2; 32]).unwrap();
        (seal.clone(), seal)
    }

    #[tokio::test]
    async fn sealed_frames_are_encrypted_and_carry_a_tag_after_the_payload() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let (sealer, opener) = keys();
        let mut writer = FrameWriter::new(a);
        writer.seal(sealer);
        writer.send(Kind::Data, b"abc").await.unwrap();
        writer
            .send(Kind::Data, &vec![1; MAX_PAYLOAD])
            .await
            .unwrap();
        drop(writer);
        let mut raw = Vec::new();
        b.read_to_end(&mut raw).await.unwrap();
        // The header is in the clear, the length counts the payload alone, and the cap is the
        // payload's; the payload is not in the clear.
        assert_eq!(raw[..5], [0x20, 0, 0, 0, 3]);
        assert_ne!(raw[5..8], *b"abc");
        assert_eq!(raw.len(), 2 * (HEADER + TAG) + 3 + MAX_PAYLOAD);
        let second = &raw[2 * HEADER + TAG + 3..][..MAX_PAYLOAD];
        assert!(second.iter().any(|&byte| byte != 1));

        let mut reader = FrameReader::new(&raw[..]);
        reader.seal(opener.clone());
        assert_eq!(reader.read().await.unwrap().unwrap().payload, "abc");
        assert_eq!(
            reader.read().await.unwrap().unwrap().payload.len(),
            MAX_PAYLOAD
        );
        assert!(reader.read().await.unwrap().is_none());

        // One bit changed in the type, the length, the payload or the tag, and the frame is
        // not returned.
        for at in [0, 4, 6, HEADER + 3 + TAG - 1] {
            let mut altered = raw.clone();
            altered[at] ^= 1;
            let mut reader = FrameReader::new(&altered[..]);
            reader.seal(opener.clone());
            let read = reader.read().await;
            assert!(
                matches!(read, Err(FrameError::BadTag)),
                "bit at {at}: {read:?}"
            );
        }
        // Nor is the second frame first.
        let mut reader = FrameReader::new(&raw[HEADER + 3 + TAG..]);
        reader.seal(opener);
        assert!(matches!(reader.read().await, Err(FrameError::BadTag)));
    }

    #[tokio::test]
    async fn parts_go_out_as_the_one_frame_of_their_bytes_end_to_end() {
        let (sealer, opener) = keys();
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut writer = FrameWriter::new(a);
        writer.seal(sealer.clone());
        writer
            .send_parts(Kind::Data, &[&b"con"[..], b"", b"sole"])
            .await
            .unwrap();
        let half = vec![3; MAX_PAYLOAD / 2];
        writer
            .send_parts(Kind::Data, &[&half[..], &half[..], b"x"])
            .await
            .map(|()| panic!("a frame over the cap was sent"))
            .unwrap_or_else(|e| assert_eq!(e.kind(), io::ErrorKind::InvalidInput));
        drop(writer);
        let mut raw = Vec::new();
        b.read_to_end(&mut raw).await.unwrap();

        let (c, mut d) = tokio::io::duplex(1 << 20);
        let mut whole = FrameWriter::new(c);
        whole.seal(sealer);
        whole.send(Kind::Data, b"console").await.unwrap();
        drop(whole);
        let mut expected = Vec::new();
        d.read_to_end(&mut expected).await.unwrap();
        assert_eq!(raw, expected, "the refused frame left nothing behind");

        let mut reader = FrameReader::new(&raw[..]);
        reader.seal(opener);
        assert_eq!(reader.read().await.unwrap().unwrap().payload, "console");
    }

    #[test]
    fn clip_keeps_whole_characters() {
        let text = "é".repeat(MAX_PAYLOAD);
        assert_eq!(clip(&text, MAX_PAYLOAD).len(), MAX_PAYLOAD);
        assert_eq!(clip(&text, 5), "éé");
        assert_eq!(clip("short", 5), "short");
        assert_eq!(chunks(&vec![0; MAX_PAYLOAD * 2 + 1]).count(), 3);
    }
}
