//! What a peer without the secret, or without manners, gets: nothing, promptly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{Harness, INSTANCE, SECRET, Setup};
use relay::{ClusterSecret, MAX_PAYLOAD, RelayClient, RelayError, RelayLimits};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(5);

fn limits() -> RelayLimits {
    RelayLimits {
        handshake_timeout: DEADLINE,
        ..RelayLimits::default()
    }
}

#[tokio::test]
async fn a_wrong_secret_is_refused_before_the_provider_is_asked() {
    let h = Harness::start(Setup {
        history: Some((b"secret output".to_vec(), 1)),
        ..Setup::default()
    })
    .await;
    let other = ClusterSecret::from_bytes(b"another secret of 32 bytes, too!").unwrap();
    let client = RelayClient::new(other, "intruder", RelayLimits::default());
    let err = client.attach(&h.address, INSTANCE).await.unwrap_err();
    assert!(matches!(err, RelayError::Auth), "{err:?}");
    let err = client.history(&h.address, INSTANCE).await.unwrap_err();
    assert!(matches!(err, RelayError::Auth), "{err:?}");
    assert_eq!(h.provider_calls(), 0);

    // The hand-written peer sees the connection closed instead of the server's proof.
    let (_stream, proved) =
        common::raw_client(&h.address, b"yet another wrong secret........").await;
    assert_eq!(proved, None);
    assert_eq!(h.provider_calls(), 0);

    // While the right secret, spoken by the hand-written peer, is answered with a valid proof.
    let (_stream, proved) = common::raw_client(&h.address, SECRET).await;
    assert_eq!(proved, Some(true));
}

#[tokio::test]
async fn a_server_that_cannot_prove_itself_learns_nothing_of_the_request() {
    let (listener, address) = common::local_listener().await;
    let address = address.to_string();
    let fake = async {
        let mut peer = common::raw_server(&listener, SECRET, true).await;
        // The client hangs up instead of sending ATTACH.
        peer.read().await
    };
    let client = RelayClient::new(common::secret(), "node-b", RelayLimits::default());
    let (next, result) = tokio::join!(fake, client.attach(&address, INSTANCE));
    assert!(matches!(result, Err(RelayError::Auth)), "{result:?}");
    assert_eq!(next, None);
}

async fn closed_after(mut stream: TcpStream, start: Instant) -> Duration {
    assert!(common::closed(&mut stream).await);
    start.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_says_nothing_is_dropped_at_the_deadline() {
    let h = Harness::start(Setup {
        limits: Some(limits()),
        ..Setup::default()
    })
    .await;
    let start = Instant::now();
    let stream = TcpStream::connect(&h.address).await.unwrap();
    let waited = closed_after(stream, start).await;
    assert!(waited >= DEADLINE && waited < DEADLINE * 2, "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn an_authenticated_peer_that_asks_nothing_is_dropped_at_the_deadline() {
    let h = Harness::start(Setup {
        limits: Some(limits()),
        ..Setup::default()
    })
    .await;
    let start = Instant::now();
    let (peer, proved) = common::raw_client(&h.address, SECRET).await;
    assert_eq!(proved, Some(true));
    let waited = closed_after(peer.stream, start).await;
    assert!(waited >= DEADLINE && waited < DEADLINE * 2, "{waited:?}");
    assert_eq!(h.provider_calls(), 0);
}

fn oversized_header(kind: u8) -> [u8; 5] {
    let len = u32::try_from(MAX_PAYLOAD + 1).unwrap().to_be_bytes();
    [kind, len[0], len[1], len[2], len[3]]
}

/// Limits under which only the behaviour under test can end a connection within [`GUARD`].
fn patient() -> RelayLimits {
    RelayLimits {
        handshake_timeout: Duration::from_secs(3600),
        keepalive: Duration::from_secs(3600),
        ..RelayLimits::default()
    }
}

/// Real time a test waits for something that should happen at once.
const GUARD: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_oversized_frame_closes_the_connection_at_once() {
    let h = Harness::start(Setup {
        limits: Some(patient()),
        ..Setup::default()
    })
    .await;
    let mut stream = TcpStream::connect(&h.address).await.unwrap();
    stream
        .write_all(&oversized_header(common::HELLO))
        .await
        .unwrap();
    tokio::time::timeout(GUARD, common::closed(&mut stream))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_oversized_frame_in_a_session_ends_it_and_releases_the_console() {
    let mut h = Harness::start(Setup {
        limits: Some(patient()),
        ..Setup::default()
    })
    .await;
    let (mut peer, proved) = common::raw_client(&h.address, SECRET).await;
    assert_eq!(proved, Some(true));
    peer.send(common::ATTACH, INSTANCE.as_bytes()).await;
    assert_eq!(peer.read().await, Some((common::OK, vec![0])));
    let mut owner = h.owner_console().await;
    peer.send(common::DATA, b"fine").await;
    assert!(matches!(owner.input.recv().await, Some(backends::Input::Data(d)) if d == "fine"));
    peer.stream
        .write_all(&oversized_header(common::DATA))
        .await
        .unwrap();
    let released = tokio::time::timeout(GUARD, owner.input.recv())
        .await
        .unwrap();
    assert!(released.is_none());
    tokio::time::timeout(GUARD, common::closed(&mut peer.stream))
        .await
        .unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let h = Harness::start(Setup {
        limits: Some(RelayLimits {
            max_connections: 1,
            ..patient()
        }),
        ..Setup::default()
    })
    .await;
    // The first connection holds the only slot (the accept queue is first come, first served).
    let _held = TcpStream::connect(&h.address).await.unwrap();
    let mut second = TcpStream::connect(&h.address).await.unwrap();
    tokio::time::timeout(GUARD, common::closed(&mut second))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_node_of_the_previous_version_is_told_so() {
    let h = Harness::start(Setup::default()).await;
    let mut stream = TcpStream::connect(&h.address).await.unwrap();
    let mut hello = vec![2u8];
    hello.extend_from_slice(&[0; 32]);
    common::send_frame(&mut stream, common::HELLO, &hello).await;
    let (kind, text) = common::read_frame(&mut stream).await.unwrap();
    assert_eq!(kind, common::ERROR);
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "unsupported relay protocol version 2 (this node speaks 3)"
    );
    assert!(common::closed(&mut stream).await);
    assert_eq!(h.provider_calls(), 0);
}

#[tokio::test]
async fn an_owner_of_the_previous_version_refuses_clearly() {
    let (listener, address) = common::local_listener().await;
    let address = address.to_string();
    // What a node of version 2 answers to a HELLO of another version.
    let old_owner = async {
        let (mut stream, _) = listener.accept().await.unwrap();
        let (kind, hello) = common::read_frame(&mut stream).await.unwrap();
        assert_eq!((kind, hello[0]), (common::HELLO, common::VERSION));
        let text = "unsupported relay protocol version 3 (this node speaks 2)";
        common::send_frame(&mut stream, common::ERROR, text.as_bytes()).await;
    };
    let client = RelayClient::new(common::secret(), "node-b", RelayLimits::default());
    let ((), result) = tokio::join!(old_owner, client.attach(&address, INSTANCE));
    assert!(
        matches!(&result, Err(RelayError::Refused(text)) if text.contains("speaks 2")),
        "{result:?}"
    );
}
