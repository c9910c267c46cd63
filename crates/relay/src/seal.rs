//! The frames after the handshake are encrypted and authenticated with AES-256-GCM:
//! per-connection, per-direction keys derived from the cluster secret and both nonces, the
//! header (type, length) as associated data, and the direction's sequence number as the nonce
//! (see the crate documentation).
//!
//! Invariants: a (key, nonce) pair is never used twice: keys are per connection and per
//! direction, and a direction's sequence number only moves forward and is never reused (a
//! direction that would wrap refuses to seal, and its connection ends); the sequence number
//! moves only when a frame has been sealed or has opened, so a replayed, reordered or dropped
//! frame fails at the next check; the tag is checked (in constant time, by `aes-gcm`) before
//! any plaintext is handed out; a derived key's bytes are zeroized once the cipher is keyed.

use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::secret::ClusterSecret;

type HmacSha256 = Hmac<Sha256>;

/// The length of the GCM tag that follows each sealed frame's payload.
pub(crate) const TAG: usize = 16;

/// The KDF labels, one per direction. None of the handshake's labels is a prefix of another
/// (they part at "client"/"server"/"key"), so a proof sent in the clear can never equal a key.
/// They kept their names from version 2, whose keys were derived the same way.
const CLIENT_TO_SERVER: &[u8] = b"serialgate relay v2 key client to server";
const SERVER_TO_CLIENT: &[u8] = b"serialgate relay v2 key server to client";

/// Which way a key protects frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    ClientToServer,
    ServerToClient,
}

/// One direction's protection: its cipher and its next sequence number. The writer of that
/// direction seals frames with it, the reader opens them.
#[derive(Clone)]
pub(crate) struct FrameSeal {
    /// Keyed once: the key schedule is not redone per frame.
    cipher: Aes256Gcm,
    sequence: u64,
}

impl std::fmt::Debug for FrameSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameSeal")
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

impl FrameSeal {
    /// `key = HMAC-SHA256(secret, label || client nonce || server nonce)`; `None` only if HMAC
    /// or AES refused a key, which neither does for these lengths.
    pub fn derive(
        secret: &ClusterSecret,
        direction: Direction,
        client_nonce: &[u8],
        server_nonce: &[u8],
    ) -> Option<FrameSeal> {
        let label = match direction {
            Direction::ClientToServer => CLIENT_TO_SERVER,
            Direction::ServerToClient => SERVER_TO_CLIENT,
        };
        let mut kdf = HmacSha256::new_from_slice(secret.expose()).ok()?;
        kdf.update(label);
        kdf.update(client_nonce);
        kdf.update(server_nonce);
        let key = Zeroizing::new(<[u8; 32]>::from(kdf.finalize().into_bytes()));
        Some(FrameSeal {
            cipher: Aes256Gcm::new_from_slice(&key[..]).ok()?,
            sequence: 0,
        })
    }

    /// The GCM nonce of the current frame: the sequence number, big-endian, then four zero
    /// bytes.
    fn nonce(&self) -> aes_gcm::Nonce<aes_gcm::aead::consts::U12> {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.sequence.to_be_bytes());
        nonce.into()
    }

    /// Encrypts the next frame's payload in place and returns its tag, which also covers
    /// `header`; `None` once the sequence numbers are spent (2^64 - 1 frames), so a nonce is
    /// never used twice.
    pub fn seal(&mut self, header: &[u8], payload: &mut [u8]) -> Option<[u8; TAG]> {
        let next = self.sequence.checked_add(1)?;
        let tag = self
            .cipher
            .encrypt_inout_detached(&self.nonce(), header, payload.into())
            .ok()?;
        self.sequence = next;
        Some(tag.into())
    }

    /// Whether `payload` and `header` are the next frame expected under `tag`; if they are, the
    /// payload is decrypted in place and the sequence moves on. If not, the payload's bytes are
    /// not to be used.
    pub fn open(&mut self, header: &[u8], payload: &mut [u8], tag: &[u8]) -> bool {
        let Some(next) = self.sequence.checked_add(1) else {
            return false;
        };
        // A tag of any other length is refused here, not compared.
        let Ok(tag) = Tag::try_from(tag) else {
            return false;
        };
        let good = self
            .cipher
            .decrypt_inout_detached(&self.nonce(), header, payload.into(), &tag)
            .is_ok();
        if good {
            self.sequence = next;
        }
        good
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn pair(direction: Direction) -> (FrameSeal, FrameSeal) {
        let secret = ClusterSecret::from_bytes(&[5; 32]).unwrap();
        let seal = FrameSeal::derive(&secret, direction, &[1; 32], &[2; 32]).unwrap();
        (seal.clone(), seal)
    }

    fn sealed(sender: &mut FrameSeal, header: &[u8], payload: &[u8]) -> (Vec<u8>, [u8; TAG]) {
        let mut bytes = payload.to_vec();
        let tag = sender.seal(header, &mut bytes).unwrap();
        (bytes, tag)
    }

    fn opened(
        receiver: &mut FrameSeal,
        header: &[u8],
        sealed: &[u8],
        tag: &[u8],
    ) -> Option<Vec<u8>> {
        let mut bytes = sealed.to_vec();
        receiver.open(header, &mut bytes, tag).then_some(bytes)
    }

    #[test]
    fn a_frame_opens_once_and_in_order() {
        let (mut sender, mut receiver) = pair(Direction::ClientToServer);
        let header = [0x20, 0, 0, 0, 3];
        let first = sealed(&mut sender, &header, b"one");
        let second = sealed(&mut sender, &header, b"two");
        assert_ne!(first.0, b"one", "encrypted");
        assert_ne!(first.0, second.0, "a nonce per frame");
        assert!(
            opened(&mut receiver, &header, &second.0, &second.1).is_none(),
            "reordered"
        );
        assert_eq!(
            opened(&mut receiver, &header, &first.0, &first.1).unwrap(),
            b"one"
        );
        assert!(
            opened(&mut receiver, &header, &first.0, &first.1).is_none(),
            "replayed"
        );
        assert_eq!(
            opened(&mut receiver, &header, &second.0, &second.1).unwrap(),
            b"two"
        );
    }

    #[test]
    fn anything_changed_fails() {
        let (mut sender, receiver) = pair(Direction::ServerToClient);
        let header = [0x20, 0, 0, 0, 7];
        let (bytes, tag) = sealed(&mut sender, &header, b"payload");
        let check = |header: &[u8], bytes: &[u8], tag: &[u8]| {
            opened(&mut receiver.clone(), header, bytes, tag).is_some()
        };
        assert!(check(&header, &bytes, &tag));
        assert!(!check(&[0x21, 0, 0, 0, 7], &bytes, &tag), "type");
        assert!(!check(&[0x20, 0, 0, 1, 7], &bytes, &tag), "length");
        let mut flipped = bytes.clone();
        flipped[2] ^= 1;
        assert!(!check(&header, &flipped, &tag), "payload");
        assert!(!check(&header, &bytes[..6], &tag), "cut");
        let mut flipped = tag;
        flipped[15] ^= 1;
        assert!(!check(&header, &bytes, &flipped), "tag");
        assert!(!check(&header, &bytes, &tag[..8]), "shorter tag");
    }

    #[test]
    fn keys_differ_per_direction_and_per_nonce() {
        let secret = ClusterSecret::from_bytes(&[5; 32]).unwrap();
        let derive = |secret: &ClusterSecret, direction, server_nonce: &[u8]| {
            FrameSeal::derive(secret, direction, &[1; 32], server_nonce).unwrap()
        };
        let mut c2s = derive(&secret, Direction::ClientToServer, &[2; 32]);
        let (bytes, tag) = sealed(&mut c2s, b"h", b"x");
        let mut s2c = derive(&secret, Direction::ServerToClient, &[2; 32]);
        assert!(opened(&mut s2c, b"h", &bytes, &tag).is_none(), "reflected");
        let mut other = derive(&secret, Direction::ClientToServer, &[3; 32]);
        assert!(
            opened(&mut other, b"h", &bytes, &tag).is_none(),
            "another connection"
        );
        let wrong = ClusterSecret::from_bytes(&[6; 32]).unwrap();
        let mut other = derive(&wrong, Direction::ClientToServer, &[2; 32]);
        assert!(
            opened(&mut other, b"h", &bytes, &tag).is_none(),
            "another secret"
        );
    }

    #[test]
    fn the_last_sequence_number_is_never_used() {
        let (mut sender, _) = pair(Direction::ClientToServer);
        sender.sequence = u64::MAX - 1;
        assert!(sender.seal(b"h", &mut [1]).is_some());
        assert!(
            sender.seal(b"h", &mut [1]).is_none(),
            "would reuse a nonce after wrapping"
        );
    }
}
