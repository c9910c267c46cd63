//! A quiet session lives; a dead peer is noticed within three keepalive intervals.
//!
//! Paused time over real sockets: the clock jumps to the next timer whenever the runtime waits
//! for the network, so a deadline is never reached early, but may be reached a few timers late
//! (the bounds below allow for the 5 s setup timer).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use backends::Input;
use bytes::Bytes;
use common::{Harness, INSTANCE, SECRET, Setup};
use relay::{RelayClient, RelayLimits};
use tokio::time::Instant;

const KEEPALIVE: Duration = Duration::from_secs(10);

fn limits() -> RelayLimits {
    RelayLimits {
        keepalive: KEEPALIVE,
        ..RelayLimits::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_quiet_session_outlives_many_keepalive_intervals() {
    let mut h = Harness::start(Setup {
        limits: Some(limits()),
        ..Setup::default()
    })
    .await;
    let mut console = h.client().attach(&h.address, INSTANCE).await.unwrap();
    let mut owner = h.owner_console().await;
    tokio::time::sleep(KEEPALIVE * 20).await;
    owner
        .output
        .send(Bytes::from_static(b"still here"))
        .await
        .unwrap();
    assert_eq!(console.output.recv().await.unwrap(), "still here");
    console
        .input
        .write(Bytes::from_static(b"me too"))
        .await
        .unwrap();
    assert!(matches!(owner.input.recv().await, Some(Input::Data(d)) if d == "me too"));
}

#[tokio::test(start_paused = true)]
async fn the_owner_drops_a_client_that_went_silent() {
    let mut h = Harness::start(Setup {
        limits: Some(limits()),
        ..Setup::default()
    })
    .await;
    let (mut peer, proved) = common::raw_client(&h.address, SECRET).await;
    assert_eq!(proved, Some(true));
    // Before the session starts, so the idle deadline cannot have begun earlier.
    let start = Instant::now();
    peer.send(common::ATTACH, INSTANCE.as_bytes()).await;
    assert_eq!(peer.read().await.unwrap().0, common::OK);
    let mut owner = h.owner_console().await;
    // The hand-written peer neither reads nor writes from here on: a dead node.
    assert!(owner.input.recv().await.is_none());
    let waited = start.elapsed();
    assert!(
        waited >= KEEPALIVE * 3 && waited < KEEPALIVE * 4,
        "{waited:?}"
    );
    drop(peer);
}

#[tokio::test(start_paused = true)]
async fn the_client_ends_the_console_when_the_owner_went_silent() {
    let (listener, address) = common::local_listener().await;
    let address = address.to_string();
    let fake = async {
        let mut peer = common::raw_server(&listener, SECRET, false).await;
        let (kind, instance) = peer.read().await.unwrap();
        assert_eq!(
            (kind, instance.as_slice()),
            (common::ATTACH, INSTANCE.as_bytes())
        );
        peer.send(common::OK, &[1]).await;
        // Then nothing, ever: the owner's node froze.
        peer
    };
    let client = RelayClient::new(common::secret(), "node-b", limits());
    let start = Instant::now();
    let (_peer, console) = tokio::join!(fake, client.attach(&address, INSTANCE));
    let mut console = console.unwrap();
    assert!(console.capabilities.can_break);
    assert!(console.output.recv().await.is_none());
    let waited = start.elapsed();
    assert!(
        waited >= KEEPALIVE * 3 && waited < KEEPALIVE * 4,
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn pings_flow_while_nothing_else_does() {
    let (listener, address) = common::local_listener().await;
    let address = address.to_string();
    let fake = async {
        let mut peer = common::raw_server(&listener, SECRET, false).await;
        peer.read().await.unwrap();
        peer.send(common::OK, &[0]).await;
        peer
    };
    let client = RelayClient::new(common::secret(), "node-b", limits());
    let start = Instant::now();
    let (mut peer, console) = tokio::join!(fake, client.attach(&address, INSTANCE));
    let _console = console.unwrap();
    // Two, as the fake owner sends none and the client gives it up at the third interval.
    for _ in 0..2 {
        assert_eq!(peer.read().await, Some((common::PING, vec![])));
    }
    let waited = start.elapsed();
    assert!(
        waited >= KEEPALIVE * 2 && waited < KEEPALIVE * 3,
        "{waited:?}"
    );
}
