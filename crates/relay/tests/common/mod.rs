//! Test doubles for the relay: a provider serving in-process fake consoles, a server on
//! 127.0.0.1, and a hand-written peer speaking the documented wire format (so the format in the
//! crate documentation is checked by a second implementation).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use async_trait::async_trait;
use backends::{Capabilities, Console, ConsoleOptions, TaskEnds};
use hmac::{Hmac, Mac};
use relay::{ClusterSecret, ConsoleProvider, RelayClient, RelayLimits, RelayServer};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub const SECRET: &[u8] = b"the cluster secret, 32 bytes ok!";
pub const INSTANCE: &str = "i-0123456789abcdef0";

pub fn secret() -> ClusterSecret {
    ClusterSecret::from_bytes(SECRET).unwrap()
}

/// A provider whose consoles are served by the test through the `TaskEnds` it hands over.
pub struct FakeProvider {
    pub attaches: AtomicUsize,
    pub histories: AtomicUsize,
    pub attach_error: Option<String>,
    pub history: Option<(Vec<u8>, u64)>,
    pub can_break: bool,
    /// The replay each attachment asked for, in order.
    pub replays: std::sync::Mutex<Vec<u32>>,
    ends: mpsc::UnboundedSender<TaskEnds>,
}

#[async_trait]
impl ConsoleProvider for FakeProvider {
    async fn attach(&self, instance: &str, replay_lines: u32) -> Result<Console, String> {
        self.attaches.fetch_add(1, Ordering::SeqCst);
        self.replays.lock().unwrap().push(replay_lines);
        assert_eq!(instance, INSTANCE);
        if let Some(e) = &self.attach_error {
            return Err(e.clone());
        }
        let caps = Capabilities {
            can_break: self.can_break,
            kind: "fake",
        };
        let (console, ends) = Console::pair(caps, &ConsoleOptions::default());
        self.ends.send(ends).unwrap();
        Ok(console)
    }

    fn history(&self, instance: &str) -> Option<(Vec<u8>, u64)> {
        self.histories.fetch_add(1, Ordering::SeqCst);
        assert_eq!(instance, INSTANCE);
        self.history.clone()
    }
}

/// A relay server on 127.0.0.1 with a [`FakeProvider`].
pub struct Harness {
    pub address: String,
    pub provider: Arc<FakeProvider>,
    /// The fake consoles' ends, one per successful ATTACH.
    pub consoles: mpsc::UnboundedReceiver<TaskEnds>,
    pub shutdown: Option<oneshot::Sender<()>>,
    pub server: JoinHandle<()>,
    pub limits: RelayLimits,
}

#[derive(Default)]
pub struct Setup {
    pub attach_error: Option<String>,
    pub history: Option<(Vec<u8>, u64)>,
    pub can_break: bool,
    pub limits: Option<RelayLimits>,
}

impl Harness {
    pub async fn start(setup: Setup) -> Harness {
        let (tx, consoles) = mpsc::unbounded_channel();
        let provider = Arc::new(FakeProvider {
            attaches: AtomicUsize::new(0),
            histories: AtomicUsize::new(0),
            attach_error: setup.attach_error,
            history: setup.history,
            can_break: setup.can_break,
            replays: std::sync::Mutex::default(),
            ends: tx,
        });
        let limits = setup.limits.unwrap_or_default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = RelayServer::new(secret(), provider.clone(), limits.clone());
        let (shutdown, stop) = oneshot::channel::<()>();
        let server = tokio::spawn(server.serve(listener, async {
            let _ = stop.await;
        }));
        Harness {
            address,
            provider,
            consoles,
            shutdown: Some(shutdown),
            server,
            limits,
        }
    }

    pub fn client(&self) -> RelayClient {
        RelayClient::new(secret(), "node-b", self.limits.clone())
    }

    pub fn provider_calls(&self) -> usize {
        self.provider.attaches.load(Ordering::SeqCst)
            + self.provider.histories.load(Ordering::SeqCst)
    }

    /// The owner's ends of the console the last ATTACH got.
    pub async fn owner_console(&mut self) -> TaskEnds {
        self.consoles.recv().await.unwrap()
    }
}

/// Deterministic, non-repeating test bytes: a misplaced or lost chunk changes what follows.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

// --- The wire format, written again from the crate documentation. ---

pub const HELLO: u8 = 0x01;
pub const CHALLENGE: u8 = 0x02;
pub const PROOF: u8 = 0x03;
pub const ATTACH: u8 = 0x10;
pub const HISTORY: u8 = 0x11;
pub const OK: u8 = 0x12;
pub const ERROR: u8 = 0x13;
pub const DATA: u8 = 0x20;
pub const CLOSE: u8 = 0x22;
pub const PING: u8 = 0x23;

/// The version HELLO carries.
pub const VERSION: u8 = 3;
/// The length of the GCM tag after each payload once the handshake is done.
pub const TAG: usize = 16;

/// Sends a frame without a tag (the handshake's).
pub async fn send_frame(stream: &mut TcpStream, kind: u8, payload: &[u8]) {
    stream.write_all(&encode(kind, payload)).await.unwrap();
}

fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![kind];
    frame.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The next frame without a tag (the handshake's), or `None` when the peer closed (or reset)
/// the connection.
pub async fn read_frame(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await.ok()?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let mut payload = vec![0; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some((header[0], payload))
}

/// Whether the peer closes the connection, reading and discarding bytes until it does.
pub async fn closed(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    true
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn proof(secret: &[u8], label: &str, nc: &[u8], ns: &[u8], name: &[u8]) -> Vec<u8> {
    hmac(secret, &[label.as_bytes(), nc, ns, name])
}

/// One direction of the frames after the handshake: its AES-256-GCM key and next sequence
/// number.
pub struct Direction {
    cipher: Aes256Gcm,
    seq: u64,
}

impl Direction {
    pub fn new(secret: &[u8], label: &str, nc: &[u8], ns: &[u8]) -> Self {
        let key = hmac(secret, &[label.as_bytes(), nc, ns]);
        Self {
            cipher: Aes256Gcm::new_from_slice(&key).unwrap(),
            seq: 0,
        }
    }

    /// The nonce of the next frame: `seq`, big-endian, then four zero bytes.
    fn nonce(&self) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.seq.to_be_bytes());
        nonce
    }

    /// The next frame of this direction as it goes on the wire: the header in the clear, the
    /// payload encrypted, then the tag over both.
    pub fn seal(&mut self, kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut frame = encode(kind, payload);
        let (header, body) = frame.split_at_mut(5);
        let tag = self
            .cipher
            .encrypt_inout_detached(&self.nonce().into(), header, body.into())
            .unwrap();
        frame.extend_from_slice(&tag);
        self.seq += 1;
        frame
    }

    /// Decrypts the payload of the next frame of this direction; `None` if its tag is wrong.
    pub fn open(&mut self, header: &[u8], mut body: Vec<u8>, tag: &[u8]) -> Option<Vec<u8>> {
        let tag = tag.try_into().unwrap();
        self.cipher
            .decrypt_inout_detached(
                &self.nonce().into(),
                header,
                body.as_mut_slice().into(),
                &tag,
            )
            .ok()?;
        self.seq += 1;
        Some(body)
    }
}

pub const CLIENT_TO_SERVER: &str = "serialgate relay v2 key client to server";
pub const SERVER_TO_CLIENT: &str = "serialgate relay v2 key server to client";

/// A hand-written peer past the handshake: it seals its frames, and opens the frames it reads
/// (a wrong tag fails the test: the implementation must seal as documented).
pub struct Peer {
    pub stream: TcpStream,
    sending: Direction,
    receiving: Direction,
}

impl Peer {
    pub async fn send(&mut self, kind: u8, payload: &[u8]) {
        let frame = self.sending.seal(kind, payload);
        self.stream.write_all(&frame).await.unwrap();
    }

    /// The next frame, opened; `None` when the peer closed (or reset) the connection.
    pub async fn read(&mut self) -> Option<(u8, Vec<u8>)> {
        let (kind, body) = read_frame(&mut self.stream).await?;
        let mut tag = [0u8; TAG];
        self.stream.read_exact(&mut tag).await.ok()?;
        let header = encode(kind, &body)[..5].to_vec();
        let payload = self
            .receiving
            .open(&header, body, &tag)
            .unwrap_or_else(|| panic!("tag of a {kind:#04x} frame"));
        Some((kind, payload))
    }

    /// Whether the peer closes the connection, reading and discarding frames until it does.
    pub async fn closed(&mut self) -> bool {
        while self.read().await.is_some() {}
        true
    }
}

/// Connects and authenticates as a client with `secret`; returns whether the server proved
/// itself (`None` if it closed instead).
pub async fn raw_client(address: &str, secret: &[u8]) -> (Peer, Option<bool>) {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let nc = [0x11u8; 32];
    let mut hello = vec![VERSION];
    hello.extend_from_slice(&nc);
    hello.extend_from_slice(b"raw");
    send_frame(&mut stream, HELLO, &hello).await;
    let (kind, ns) = read_frame(&mut stream).await.unwrap();
    assert_eq!((kind, ns.len()), (CHALLENGE, 32));
    let ours = proof(secret, "serialgate relay v2 client", &nc, &ns, b"raw");
    send_frame(&mut stream, PROOF, &ours).await;
    let answer = read_frame(&mut stream).await;
    let proved = answer.map(|(kind, theirs)| {
        kind == PROOF && theirs == proof(secret, "serialgate relay v2 server", &nc, &ns, b"raw")
    });
    let peer = Peer {
        stream,
        sending: Direction::new(secret, CLIENT_TO_SERVER, &nc, &ns),
        receiving: Direction::new(secret, SERVER_TO_CLIENT, &nc, &ns),
    };
    (peer, proved)
}

/// Accepts one connection as a server with `secret`, sending a wrong proof if asked to.
pub async fn raw_server(listener: &TcpListener, secret: &[u8], wrong_proof: bool) -> Peer {
    let (mut stream, _) = listener.accept().await.unwrap();
    let (kind, hello) = read_frame(&mut stream).await.unwrap();
    assert_eq!((kind, hello[0]), (HELLO, VERSION));
    let (nc, name) = hello[1..].split_at(32);
    let ns = [0x22u8; 32];
    send_frame(&mut stream, CHALLENGE, &ns).await;
    let (kind, theirs) = read_frame(&mut stream).await.unwrap();
    assert_eq!(kind, PROOF);
    assert_eq!(
        theirs,
        proof(secret, "serialgate relay v2 client", nc, &ns, name)
    );
    let ours = if wrong_proof {
        vec![0; 32]
    } else {
        proof(secret, "serialgate relay v2 server", nc, &ns, name)
    };
    send_frame(&mut stream, PROOF, &ours).await;
    Peer {
        stream,
        sending: Direction::new(secret, SERVER_TO_CLIENT, nc, &ns),
        receiving: Direction::new(secret, CLIENT_TO_SERVER, nc, &ns),
    }
}

pub async fn local_listener() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    (listener, address)
}
