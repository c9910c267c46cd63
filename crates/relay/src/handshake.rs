//! Mutual authentication with the cluster secret: HMAC-SHA256 challenge-response both ways,
//! the client first (see the crate documentation for the exchange).
//!
//! Invariants: proofs are checked in constant time (`Mac::verify_slice`); a server sends
//! nothing computed with the secret before the client's proof has checked out; nonces come from
//! the system's generator, fresh for every connection; both sides leave the handshake with their
//! reader and writer keyed (see [`crate::seal`]), so every later frame is encrypted and
//! authenticated.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::RelayError;
use crate::frame::{Frame, FrameError, FrameReader, FrameWriter, Kind};
use crate::seal::{Direction, FrameSeal};
use crate::secret::ClusterSecret;

/// The protocol version HELLO carries. 2: frames after the handshake carry HMAC tags; 3: they
/// are sealed with AES-256-GCM instead.
pub(crate) const VERSION: u8 = 3;
const NONCE: usize = 32;
const MAC: usize = 32;
// The labels kept their names from version 2: the exchange is the same.
const CLIENT_LABEL: &[u8] = b"serialgate relay v2 client";
const SERVER_LABEL: &[u8] = b"serialgate relay v2 server";

type HmacSha256 = Hmac<Sha256>;

/// What both sides feed the MAC besides the label.
struct Transcript<'a> {
    client_nonce: &'a [u8],
    server_nonce: &'a [u8],
    client_name: &'a [u8],
}

impl Transcript<'_> {
    fn mac(&self, secret: &ClusterSecret, label: &[u8]) -> Option<HmacSha256> {
        // HMAC takes keys of any length; the error exists only for other MACs.
        let mut mac = HmacSha256::new_from_slice(secret.expose()).ok()?;
        mac.update(label);
        mac.update(self.client_nonce);
        mac.update(self.server_nonce);
        mac.update(self.client_name);
        Some(mac)
    }

    /// The keys of the frames that follow: (client to server, server to client).
    fn frame_keys(&self, secret: &ClusterSecret) -> Option<(FrameSeal, FrameSeal)> {
        let key =
            |direction| FrameSeal::derive(secret, direction, self.client_nonce, self.server_nonce);
        Some((
            key(Direction::ClientToServer)?,
            key(Direction::ServerToClient)?,
        ))
    }

    fn prove(&self, secret: &ClusterSecret, label: &[u8]) -> Option<[u8; MAC]> {
        Some(self.mac(secret, label)?.finalize().into_bytes().into())
    }

    fn check(&self, secret: &ClusterSecret, label: &[u8], proof: &[u8]) -> bool {
        self.mac(secret, label)
            .is_some_and(|mac| mac.verify_slice(proof).is_ok())
    }
}

fn nonce() -> Result<[u8; NONCE], getrandom::Error> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce)?;
    Ok(nonce)
}

/// Why a server dropped a peer during the handshake; for its log only, never sent.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    #[error("the peer closed the connection")]
    Closed,
    #[error("unexpected {0:?} frame")]
    Unexpected(Kind),
    #[error("malformed {0:?} frame")]
    Malformed(Kind),
    #[error("unsupported protocol version {0}")]
    Version(u8),
    #[error("wrong proof of the cluster secret")]
    WrongProof,
    #[error("no system randomness: {0}")]
    Random(getrandom::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Server side. Returns the client's node name once the client has proved itself and been
/// sent the server's proof.
pub(crate) async fn accept<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    secret: &ClusterSecret,
) -> Result<String, Refusal>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let hello = expect(reader, Kind::Hello).await?;
    let (version, rest) = hello
        .payload
        .split_first()
        .ok_or(Refusal::Malformed(Kind::Hello))?;
    if *version != VERSION {
        // Before authentication, but it tells a peer nothing but our version, and it turns a
        // rolling upgrade's failure into a clear message on the other node.
        let text =
            format!("unsupported relay protocol version {version} (this node speaks {VERSION})");
        let _ = writer.send(Kind::Error, text.as_bytes()).await;
        return Err(Refusal::Version(*version));
    }
    let (client_nonce, client_name) = rest
        .split_at_checked(NONCE)
        .ok_or(Refusal::Malformed(Kind::Hello))?;
    let server_nonce = nonce().map_err(Refusal::Random)?;
    writer
        .send(Kind::Challenge, &server_nonce)
        .await
        .map_err(FrameError::from)?;
    let proof = expect(reader, Kind::Proof).await?;
    let transcript = Transcript {
        client_nonce,
        server_nonce: &server_nonce,
        client_name,
    };
    if !transcript.check(secret, CLIENT_LABEL, &proof.payload) {
        return Err(Refusal::WrongProof);
    }
    let ours = transcript
        .prove(secret, SERVER_LABEL)
        .ok_or(Refusal::WrongProof)?;
    let (to_us, to_them) = transcript.frame_keys(secret).ok_or(Refusal::WrongProof)?;
    writer
        .send(Kind::Proof, &ours)
        .await
        .map_err(FrameError::from)?;
    reader.seal(to_us);
    writer.seal(to_them);
    Ok(String::from_utf8_lossy(client_name).into_owned())
}

async fn expect<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
    kind: Kind,
) -> Result<Frame, Refusal> {
    match reader.read().await? {
        None => Err(Refusal::Closed),
        Some(frame) if frame.kind == kind => Ok(frame),
        Some(frame) => Err(Refusal::Unexpected(frame.kind)),
    }
}

/// Client side: proves itself as `name`, then checks the server's proof.
pub(crate) async fn connect<R, W>(
    reader: &mut FrameReader<R>,
    writer: &mut FrameWriter<W>,
    secret: &ClusterSecret,
    name: &str,
) -> Result<(), RelayError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let client_nonce = nonce().map_err(|e| RelayError::Random(e.to_string()))?;
    let mut hello = Vec::with_capacity(1 + NONCE + name.len());
    hello.push(VERSION);
    hello.extend_from_slice(&client_nonce);
    hello.extend_from_slice(name.as_bytes());
    writer.send(Kind::Hello, &hello).await?;
    let challenge = match reader.read().await? {
        Some(f) if f.kind == Kind::Challenge && f.payload.len() == NONCE => f,
        Some(f) if f.kind == Kind::Error => return Err(RelayError::Refused(text(&f.payload))),
        Some(f) => {
            return Err(RelayError::Protocol(format!(
                "unexpected {:?} frame in the handshake",
                f.kind
            )));
        }
        None => return Err(RelayError::Closed),
    };
    let transcript = Transcript {
        client_nonce: &client_nonce,
        server_nonce: &challenge.payload,
        client_name: name.as_bytes(),
    };
    let ours = transcript
        .prove(secret, CLIENT_LABEL)
        .ok_or(RelayError::Auth)?;
    writer.send(Kind::Proof, &ours).await?;
    match reader.read().await {
        Ok(Some(f))
            if f.kind == Kind::Proof && transcript.check(secret, SERVER_LABEL, &f.payload) => {}
        // A server refuses a wrong proof by closing (a reset counts the same); a server that
        // answers anything but the right proof does not know the secret either.
        _ => return Err(RelayError::Auth),
    }
    let (to_them, to_us) = transcript.frame_keys(secret).ok_or(RelayError::Auth)?;
    writer.seal(to_them);
    reader.seal(to_us);
    Ok(())
}

/// Text from the peer, for a log line.
pub(crate) fn text(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> ClusterSecret {
        ClusterSecret::from_bytes(&[byte; 32]).unwrap()
    }

    async fn run(
        client_secret: ClusterSecret,
        server_secret: ClusterSecret,
    ) -> (Result<(), RelayError>, Result<String, Refusal>) {
        let (c, s) = tokio::io::duplex(4096);
        let (cr, cw) = tokio::io::split(c);
        let (sr, sw) = tokio::io::split(s);
        let client = async move {
            let (mut r, mut w) = (FrameReader::new(cr), FrameWriter::new(cw));
            connect(&mut r, &mut w, &client_secret, "node-a").await
        };
        let server = async move {
            let (mut r, mut w) = (FrameReader::new(sr), FrameWriter::new(sw));
            // Dropping the streams on refusal is the server's "close".
            accept(&mut r, &mut w, &server_secret).await
        };
        tokio::join!(client, server)
    }

    #[tokio::test]
    async fn the_same_secret_authenticates_both_sides() {
        let (client, server) = run(secret(1), secret(1)).await;
        client.unwrap();
        assert_eq!(server.unwrap(), "node-a");
    }

    #[tokio::test]
    async fn both_sides_leave_with_each_others_frame_keys() {
        let (c, s) = tokio::io::duplex(4096);
        let (cr, cw) = tokio::io::split(c);
        let (sr, sw) = tokio::io::split(s);
        let client = async move {
            let (mut r, mut w) = (FrameReader::new(cr), FrameWriter::new(cw));
            connect(&mut r, &mut w, &secret(1), "node-a").await.unwrap();
            w.send(Kind::Attach, b"i-1").await.unwrap();
            r.read().await.unwrap().unwrap()
        };
        let server = async move {
            let (mut r, mut w) = (FrameReader::new(sr), FrameWriter::new(sw));
            accept(&mut r, &mut w, &secret(1)).await.unwrap();
            let request = r.read().await.unwrap().unwrap();
            w.send(Kind::Ok, &[1]).await.unwrap();
            request
        };
        let (reply, request) = tokio::join!(client, server);
        assert_eq!(
            (request.kind, &request.payload[..]),
            (Kind::Attach, &b"i-1"[..])
        );
        assert_eq!((reply.kind, &reply.payload[..]), (Kind::Ok, &[1][..]));
    }

    #[tokio::test]
    async fn a_different_secret_is_refused_by_the_server_first() {
        let (client, server) = run(secret(1), secret(2)).await;
        assert!(matches!(client, Err(RelayError::Auth)), "{client:?}");
        assert!(matches!(server, Err(Refusal::WrongProof)), "{server:?}");
    }

    #[test]
    fn proofs_differ_per_direction_and_per_nonce() {
        let s = secret(3);
        let t = Transcript {
            client_nonce: &[1; NONCE],
            server_nonce: &[2; NONCE],
            client_name: b"n",
        };
        let client = t.prove(&s, CLIENT_LABEL).unwrap();
        assert!(t.check(&s, CLIENT_LABEL, &client));
        assert!(!t.check(&s, SERVER_LABEL, &client), "no reflection");
        let other = Transcript {
            server_nonce: &[9; NONCE],
            ..t
        };
        assert!(!other.check(&s, CLIENT_LABEL, &client), "no replay");
        assert!(!t.check(&s, CLIENT_LABEL, &client[..31]), "no truncation");
    }
}
