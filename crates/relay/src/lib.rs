//! The internal node-to-node console relay: a node that does not own an instance's console
//! reaches it through the node that does.
//!
//! The owner runs a [`RelayServer`] on its cluster listener and lends its consoles through a
//! [`ConsoleProvider`]; any other node uses a [`RelayClient`], which hands out an ordinary
//! [`backends::Console`] (output from the owner's console, input and BREAK to it) or the owner's
//! console history. The accepting node keeps the SSH session and everything around it; the relay
//! only carries bytes.
//!
//! Invariants: no I/O besides the TCP streams it is given, and no knowledge of the shared store
//! or of ownership (the caller says which address owns what); nothing but the handshake is read
//! from a peer that has not proved it knows the cluster secret, and the provider is never
//! consulted for one; no payload after the handshake is sent in the clear, and no frame after
//! it is delivered or acted on unless its tag checks out; a peer that is not authenticated
//! within [`RelayLimits::handshake_timeout`] is dropped; no unbounded buffering (bounded
//! channels both ways, frames capped at [`MAX_PAYLOAD`]), so a slow reader slows the console as
//! with a local [`backends::Hub`].
//!
//! # Wire protocol (version 3)
//!
//! TCP, one request per connection. Everything is a frame:
//!
//! ```text
//! handshake:  type: u8 | length: u32, big-endian | payload: `length` bytes
//! after it:   type: u8 | length: u32, big-endian | ciphertext: `length` bytes | tag: 16 bytes
//! ```
//!
//! `length` counts the payload only, at most 65536 bytes; the tag is not counted (see
//! **Frame protection** below). A frame announcing more than 65536 bytes, an unknown type,
//! or a frame the other side may not send at that point is a protocol error: the receiver closes
//! the connection without a reply.
//!
//! | type | name           | payload                                                     |
//! |------|----------------|-------------------------------------------------------------|
//! | 0x01 | HELLO          | version (u8, 3), client nonce (32 bytes), client node name (UTF-8) |
//! | 0x02 | CHALLENGE      | server nonce (32 bytes)                                     |
//! | 0x03 | PROOF          | HMAC-SHA256 (32 bytes)                                      |
//! | 0x10 | ATTACH         | instance id (UTF-8)                                         |
//! | 0x11 | HISTORY        | instance id (UTF-8)                                         |
//! | 0x12 | OK             | flags (u8; bit 0: the console can carry a BREAK)            |
//! | 0x13 | ERROR          | the reason, UTF-8, for the operator's log                   |
//! | 0x14 | NONE           | empty: the owner keeps no history for that instance         |
//! | 0x15 | HISTORY_DATA   | the next bytes of the history                               |
//! | 0x16 | HISTORY_END    | time of the last byte, ms since the Unix epoch (u64, big-endian) |
//! | 0x17 | ATTACH_REPLAY  | lines to replay (u32, big-endian), instance id (UTF-8)      |
//! | 0x18 | ATTACH_SPECTATE| lines to replay (u32), most spectators (u32), label length (u16), label (UTF-8), instance id (UTF-8); all big-endian |
//! | 0x20 | DATA           | console bytes (1 to 65536)                                  |
//! | 0x21 | BREAK          | empty; client to server only                                |
//! | 0x22 | CLOSE          | empty: the sender ends the session                          |
//! | 0x23 | PING           | empty: the sender is alive                                  |
//!
//! **Authentication**, mutual, before anything else (the handshake: these four frames carry no
//! tag):
//!
//! 1. client → HELLO (version, `Nc`, name); a server that does not speak the version answers
//!    ERROR (saying which version it speaks) and closes, and so nodes of different versions
//!    refuse each other with that message;
//! 2. server → CHALLENGE (`Ns`);
//! 3. client → PROOF: `HMAC-SHA256(secret, "serialgate relay v2 client" || Nc || Ns || name)`;
//! 4. the server checks it in constant time and, if it is wrong, closes the connection with no
//!    reply; else server → PROOF: the same with the label `"serialgate relay v2 server"`;
//! 5. the client checks it the same way and closes if it is wrong.
//!
//! The client proves itself first, so a peer without the secret never gets anything computed
//! with it. The nonces are 32 bytes from the system's generator, one pair per connection, so a
//! recorded proof is worth nothing on another connection; the labels differ per direction, so a
//! proof cannot be reflected back. The server gives the whole setup (handshake, request, reply)
//! [`RelayLimits::handshake_timeout`]. (The labels, here and below, still say "v2": the
//! handshake and the key derivation did not change in version 3.)
//!
//! **Frame protection.** Every frame after the handshake (the server's from the one after its
//! PROOF, the client's from its request on) is encrypted and authenticated with AES-256-GCM.
//! Each direction has its own key:
//!
//! ```text
//! Kcs   = HMAC-SHA256(secret, "serialgate relay v2 key client to server" || Nc || Ns)
//! Ksc   = HMAC-SHA256(secret, "serialgate relay v2 key server to client" || Nc || Ns)
//! iv    = seq: u64, big-endian || 4 zero bytes        (the 96-bit GCM nonce)
//! ciphertext || tag = AES-256-GCM-encrypt(K, iv, associated data: type || length, payload)
//! ```
//!
//! `seq` counts the frames of that direction, from 0. The header (type, length) stays in the
//! clear, so a frame can be read off the stream, but it is authenticated; the payload is
//! encrypted (the same length); the 16-byte GCM tag follows it. An `iv` is never used twice
//! with a key: keys are per connection and per direction, and a side closes the connection
//! rather than let `seq` wrap. The receiver checks the tag before it decrypts anything; at the
//! first bad tag it closes the connection without a reply, and the frame is neither delivered
//! nor acted on. Frames are thus bound to their connection (the nonces), their
//! direction (the key) and their place (`seq`): an altered, injected, replayed or reordered
//! frame fails its own check, a dropped one the check of the next frame that arrives (PING keeps
//! them coming; a connection cut short is the idle timeout's).
//!
//! **Requests** (client → server, once, after authentication):
//!
//! - ATTACH: the server answers OK and the session starts, or ERROR and closes. In the session,
//!   DATA flows both ways in order, BREAK goes from client to server, and either side sends PING
//!   after [`RelayLimits::keepalive`] without sending anything else. A side that receives nothing
//!   (not even PING) for three keepalive intervals while it is waiting to read considers the
//!   peer dead and closes. The side that ends the session (its console or its user went away,
//!   or the server shuts down) sends CLOSE, then reads and discards until the peer closes (at
//!   most a second), so nothing it sent is lost to a reset; the receiver of CLOSE closes.
//! - ATTACH_REPLAY: as ATTACH, and the session's DATA starts with the last lines of the
//!   console's history, as many as asked (the owner's hub cuts history and live output as one
//!   sequence). Added within version 3: a client sends it only for a session that asked for a
//!   replay, so an owner from before it (which closes the connection on a frame type it does
//!   not know) still serves every other session.
//! - ATTACH_SPECTATE: a read-only view for a spectator: as ATTACH_REPLAY, but the owner's hub
//!   lets it watch instead of lending it the line; the owner drops whatever DATA or BREAK the
//!   client sends. The label (who watches, at most 256 bytes) is for the writer's notice. When
//!   `most spectators` are watching already, the server answers ERROR
//!   `spectator limit reached (N watching)`. Added within version 3, like ATTACH_REPLAY: only a
//!   spectator's session sends it.
//! - HISTORY: the server answers NONE, or HISTORY_DATA frames followed by HISTORY_END, then
//!   closes.
//!
//! The relay authenticates peers, and encrypts and authenticates every frame after the
//! handshake: whoever can read the cluster network sees the node names, the frames' types and
//! lengths and their timing, not the consoles' bytes. Someone in the middle can still cut a
//! connection, never read or change what it carries.

mod client;
mod error;
mod frame;
mod gather;
mod handshake;
mod limits;
mod provider;
mod sampled;
mod seal;
mod secret;
mod server;
mod session;
mod spectate;

pub use client::RelayClient;
pub use error::RelayError;
pub use frame::MAX_PAYLOAD;
pub use limits::RelayLimits;
pub use provider::ConsoleProvider;
pub use secret::{ClusterSecret, MIN_SECRET_BYTES, SecretTooShort};
pub use server::RelayServer;
