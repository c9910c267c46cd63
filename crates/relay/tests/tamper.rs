//! Someone in the middle of an authenticated connection: reads no console bytes, and a frame
//! altered, replayed or dropped on the way closes the session, the altered bytes never reaching
//! the console or the user.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backends::Input;
use bytes::Bytes;
use common::{DATA, Harness, INSTANCE, Setup, TAG};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// Real time a test waits for something that should happen at once.
const GUARD: Duration = Duration::from_secs(30);

/// Which way the attacked frames go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    ToOwner,
    ToUser,
}

/// What the man in the middle does to the second DATA frame going the attacked way.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// Flips the low bit of its first payload byte (encrypted).
    FlipBit,
    /// Flips the low bit of its type (in the clear: DATA becomes BREAK).
    FlipHeader,
    /// Sends the first DATA frame again before it.
    Replay,
    /// Does not forward it.
    Drop,
}

/// Everything the proxy forwarded, both ways.
type Wire = Arc<Mutex<Vec<u8>>>;

/// Listens for one connection, which it forwards to `upstream` frame by frame, attacking the
/// frames going `way`. Returns the address to connect to instead of `upstream`.
async fn proxy(upstream: String, way: Way, attack: Attack) -> String {
    tapped_proxy(upstream, way, attack, Wire::default()).await
}

/// [`proxy`], also recording what it forwards in `wire`.
async fn tapped_proxy(upstream: String, way: Way, attack: Attack, wire: Wire) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let server = TcpStream::connect(upstream).await.unwrap();
        let (from_client, to_client) = client.into_split();
        let (from_server, to_server) = server.into_split();
        let attacked = |w: Way| (w == way).then_some(attack);
        tokio::join!(
            pump(from_client, to_server, attacked(Way::ToOwner), &wire),
            pump(from_server, to_client, attacked(Way::ToUser), &wire),
        );
    });
    address
}

/// One frame as it was on the wire; `tagged` past the handshake.
async fn read_raw(from: &mut OwnedReadHalf, tagged: bool) -> Option<Vec<u8>> {
    let mut frame = vec![0u8; 5];
    from.read_exact(&mut frame).await.ok()?;
    let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize;
    let rest = len + if tagged { TAG } else { 0 };
    frame.resize(5 + rest, 0);
    from.read_exact(&mut frame[5..]).await.ok()?;
    Some(frame)
}

/// Forwards frames one way until either side closes, then closes that way (dropping `to`).
/// The first two frames each way (HELLO and PROOF, CHALLENGE and PROOF) are the handshake's.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    attack: Option<Attack>,
    wire: &Wire,
) {
    let mut frames = 0;
    let mut data_frames = 0;
    let mut first_data = None;
    while let Some(mut frame) = read_raw(&mut from, frames >= 2).await {
        frames += 1;
        if frame[0] == DATA {
            data_frames += 1;
            if data_frames == 1 {
                first_data = Some(frame.clone());
            }
            if data_frames == 2 {
                match attack {
                    Some(Attack::FlipBit) => frame[5] ^= 1,
                    Some(Attack::FlipHeader) => frame[0] ^= 1,
                    Some(Attack::Replay) => {
                        let again = first_data.clone().unwrap();
                        if to.write_all(&again).await.is_err() {
                            break;
                        }
                    }
                    Some(Attack::Drop) => continue,
                    None => {}
                }
            }
        }
        wire.lock().unwrap().extend_from_slice(&frame);
        if to.write_all(&frame).await.is_err() {
            break;
        }
    }
}

/// Three writes go `way` through an attacked connection: the first arrives; the second is
/// attacked, and the receiving side closes before anything else arrives; the other side ends
/// too.
async fn attacked(way: Way, attack: Attack) {
    tokio::time::timeout(GUARD, attacked_within(way, attack))
        .await
        .expect("the session ended");
}

async fn attacked_within(way: Way, attack: Attack) {
    let mut h = Harness::start(Setup::default()).await;
    let address = proxy(h.address.clone(), way, attack).await;
    let mut console = h.client().attach(&address, INSTANCE).await.unwrap();
    let mut owner = h.owner_console().await;
    let words = [&b"one"[..], b"two", b"three"].map(Bytes::from_static);
    match way {
        Way::ToOwner => {
            console.input.write(words[0].clone()).await.unwrap();
            assert!(matches!(owner.input.recv().await, Some(Input::Data(d)) if d == words[0]));
            for word in &words[1..] {
                // The relay may already be gone by the third.
                let _ = console.input.write(word.clone()).await;
            }
            let next = owner.input.recv().await;
            assert!(next.is_none(), "{attack:?}: the owner got {next:?}");
            assert!(console.output.recv().await.is_none());
        }
        Way::ToUser => {
            owner.output.send(words[0].clone()).await.unwrap();
            assert_eq!(console.output.recv().await.unwrap(), words[0]);
            for word in &words[1..] {
                let _ = owner.output.send(word.clone()).await;
            }
            let next = console.output.recv().await;
            assert!(next.is_none(), "{attack:?}: the user got {next:?}");
            assert!(owner.input.recv().await.is_none());
        }
    }
}

#[tokio::test]
async fn a_flipped_bit_from_the_user_never_reaches_the_console() {
    attacked(Way::ToOwner, Attack::FlipBit).await;
}

#[tokio::test]
async fn a_flipped_bit_from_the_console_never_reaches_the_user() {
    attacked(Way::ToUser, Attack::FlipBit).await;
}

#[tokio::test]
async fn a_flipped_header_bit_from_the_user_never_reaches_the_console() {
    attacked(Way::ToOwner, Attack::FlipHeader).await;
}

#[tokio::test]
async fn a_flipped_header_bit_from_the_console_never_reaches_the_user() {
    attacked(Way::ToUser, Attack::FlipHeader).await;
}

#[tokio::test]
async fn a_replayed_frame_from_the_user_closes_the_session() {
    attacked(Way::ToOwner, Attack::Replay).await;
}

#[tokio::test]
async fn a_replayed_frame_from_the_console_closes_the_session() {
    attacked(Way::ToUser, Attack::Replay).await;
}

#[tokio::test]
async fn a_dropped_frame_from_the_user_closes_the_session() {
    attacked(Way::ToOwner, Attack::Drop).await;
}

#[tokio::test]
async fn a_dropped_frame_from_the_console_closes_the_session() {
    attacked(Way::ToUser, Attack::Drop).await;
}

#[tokio::test]
async fn an_untouched_connection_through_the_proxy_works() {
    let mut h = Harness::start(Setup::default()).await;
    let address = proxy(h.address.clone(), Way::ToOwner, Attack::FlipBit).await;
    let mut console = h.client().attach(&address, INSTANCE).await.unwrap();
    let mut owner = h.owner_console().await;
    // Only DATA to the owner is attacked: many frames the other way pass through.
    for i in 0..5u8 {
        owner.output.send(Bytes::from(vec![i; 3])).await.unwrap();
        assert_eq!(console.output.recv().await.unwrap(), vec![i; 3]);
    }
    console
        .input
        .write(Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert!(matches!(owner.input.recv().await, Some(Input::Data(d)) if d == "one"));
}

#[tokio::test]
async fn console_bytes_are_not_in_the_clear_on_the_wire() {
    let mut h = Harness::start(Setup::default()).await;
    let wire = Wire::default();
    let address = tapped_proxy(h.address.clone(), Way::ToOwner, Attack::Drop, wire.clone()).await;
    let mut console = h.client().attach(&address, INSTANCE).await.unwrap();
    let mut owner = h.owner_console().await;
    // Only the second DATA to the owner is attacked: one each way passes.
    let typed = Bytes::from_static(b"typed: the root password is hunter2");
    let shown = Bytes::from_static(b"shown: -----BEGIN OPENSSH PRIVATE KEY-----");
    console.input.write(typed.clone()).await.unwrap();
    assert!(matches!(owner.input.recv().await, Some(Input::Data(d)) if d == typed));
    owner.output.send(shown.clone()).await.unwrap();
    assert_eq!(console.output.recv().await.unwrap(), shown);

    let wire = wire.lock().unwrap().clone();
    let seen = |text: &[u8]| wire.windows(text.len()).any(|window| window == text);
    // The tap does see the handshake, which is in the clear (the client's name in HELLO).
    assert!(seen(b"node-b"), "the tap recorded the connection");
    assert!(
        !seen(&typed),
        "the user's input crossed the wire in the clear"
    );
    assert!(
        !seen(&shown),
        "the console's output crossed the wire in the clear"
    );
}
