//! The frames after the handshake are authenticated: per-connection, per-direction keys derived
//! from the cluster secret and both nonces, and a truncated HMAC-SHA256 tag over a sequence
//! number, the frame type and the payload (see the crate documentation).
//!
//! Invariants: tags are checked in constant time (`Mac::verify_truncated_left`); a direction's
//! sequence number moves only when a tag has been made or has checked out, so a replayed,
//! reordered or dropped frame fails at the next check; a derived key's bytes are zeroized once
//! the MAC is keyed with them (the keyed state itself is the hmac crate's, as in the handshake).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::secret::ClusterSecret;

type HmacSha256 = Hmac<Sha256>;

/// The length of the tag that follows each authenticated frame's payload: the first 16 bytes of
/// the HMAC-SHA256, 128 bits, enough against forgery online (each guess costs a connection).
pub(crate) const TAG: usize = 16;

/// The KDF labels, one per direction. None of the handshake's labels is a prefix of another
/// (they part at "client"/"server"/"key"), so a proof sent in the clear can never equal a key.
const CLIENT_TO_SERVER: &[u8] = b"serialgate relay v2 key client to server";
const SERVER_TO_CLIENT: &[u8] = b"serialgate relay v2 key server to client";

/// Which way a key authenticates frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    ClientToServer,
    ServerToClient,
}

/// One direction's authentication: its key and its next sequence number. The writer of that
/// direction makes tags with it, the reader checks them.
#[derive(Clone)]
pub(crate) struct FrameMac {
    /// Keyed once; cloned for each frame, so a frame costs no re-keying.
    keyed: HmacSha256,
    sequence: u64,
}

impl std::fmt::Debug for FrameMac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameMac")
            .field("sequence", &self.sequence)
            .finish_non_exhaustive()
    }
}

impl FrameMac {
    /// `key = HMAC-SHA256(secret, label || client nonce || server nonce)`; `None` only if HMAC
    /// refused a key, which it does not.
    pub fn derive(
        secret: &ClusterSecret,
        direction: Direction,
        client_nonce: &[u8],
        server_nonce: &[u8],
    ) -> Option<FrameMac> {
        let label = match direction {
            Direction::ClientToServer => CLIENT_TO_SERVER,
            Direction::ServerToClient => SERVER_TO_CLIENT,
        };
        let mut kdf = HmacSha256::new_from_slice(secret.expose()).ok()?;
        kdf.update(label);
        kdf.update(client_nonce);
        kdf.update(server_nonce);
        let key = Zeroizing::new(<[u8; 32]>::from(kdf.finalize().into_bytes()));
        Some(FrameMac {
            keyed: HmacSha256::new_from_slice(&key[..]).ok()?,
            sequence: 0,
        })
    }

    fn mac(&self, kind: u8, payload: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(&self.sequence.to_be_bytes());
        mac.update(&[kind]);
        mac.update(payload);
        mac
    }

    /// The tag of the next frame sent; `None` once the sequence numbers are spent (2^64 frames).
    pub fn sign(&mut self, kind: u8, payload: &[u8]) -> Option<[u8; TAG]> {
        let next = self.sequence.checked_add(1)?;
        let full = self.mac(kind, payload).finalize().into_bytes();
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(full.get(..TAG)?);
        self.sequence = next;
        Some(tag)
    }

    /// Whether `tag` is that of the next frame expected; the sequence moves on only if it is.
    pub fn verify(&mut self, kind: u8, payload: &[u8], tag: &[u8]) -> bool {
        let Some(next) = self.sequence.checked_add(1) else {
            return false;
        };
        // A tag of any other length is refused by the length check, not compared.
        let good = tag.len() == TAG && self.mac(kind, payload).verify_truncated_left(tag).is_ok();
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

    fn pair(direction: Direction) -> (FrameMac, FrameMac) {
        let secret = ClusterSecret::from_bytes(&[5; 32]).unwrap();
        let mac = FrameMac::derive(&secret, direction, &[1; 32], &[2; 32]).unwrap();
        (mac.clone(), mac)
    }

    #[test]
    fn a_tag_checks_out_once_and_in_order() {
        let (mut sender, mut receiver) = pair(Direction::ClientToServer);
        let first = sender.sign(0x20, b"one").unwrap();
        let second = sender.sign(0x20, b"two").unwrap();
        assert!(!receiver.verify(0x20, b"two", &second), "reordered");
        assert!(receiver.verify(0x20, b"one", &first));
        assert!(!receiver.verify(0x20, b"one", &first), "replayed");
        assert!(receiver.verify(0x20, b"two", &second));
    }

    #[test]
    fn anything_changed_fails() {
        let (mut sender, receiver) = pair(Direction::ServerToClient);
        let tag = sender.sign(0x20, b"payload").unwrap();
        let check =
            |kind: u8, payload: &[u8], tag: &[u8]| receiver.clone().verify(kind, payload, tag);
        assert!(check(0x20, b"payload", &tag));
        assert!(!check(0x21, b"payload", &tag), "type");
        assert!(!check(0x20, b"paylOad", &tag), "payload");
        assert!(!check(0x20, b"payloa", &tag), "length");
        let mut flipped = tag;
        flipped[15] ^= 1;
        assert!(!check(0x20, b"payload", &flipped), "tag");
        assert!(!check(0x20, b"payload", &tag[..8]), "shorter tag");
    }

    #[test]
    fn keys_differ_per_direction_and_per_nonce() {
        let secret = ClusterSecret::from_bytes(&[5; 32]).unwrap();
        let mut c2s =
            FrameMac::derive(&secret, Direction::ClientToServer, &[1; 32], &[2; 32]).unwrap();
        let tag = c2s.sign(0x20, b"x").unwrap();
        let mut s2c =
            FrameMac::derive(&secret, Direction::ServerToClient, &[1; 32], &[2; 32]).unwrap();
        assert!(!s2c.verify(0x20, b"x", &tag), "reflected");
        let mut other =
            FrameMac::derive(&secret, Direction::ClientToServer, &[1; 32], &[3; 32]).unwrap();
        assert!(!other.verify(0x20, b"x", &tag), "another connection");
        let wrong = ClusterSecret::from_bytes(&[6; 32]).unwrap();
        let mut other =
            FrameMac::derive(&wrong, Direction::ClientToServer, &[1; 32], &[2; 32]).unwrap();
        assert!(!other.verify(0x20, b"x", &tag), "another secret");
    }
}
