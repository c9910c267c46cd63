//! Relayed console sessions over real TCP: bytes both ways, BREAK, both ends' endings,
//! backpressure, shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backends::{BreakError, Input};
use bytes::Bytes;
use common::{Harness, INSTANCE, Setup, pattern};

const BIG: usize = 8 << 20;

/// Splits `data` into chunks of varying size, some above the frame cap.
fn uneven_chunks(data: &[u8]) -> Vec<Bytes> {
    let sizes = [1, 4096, 70_000, 333, 65_536, 65_537, 12];
    let mut out = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at == data.len() {
            break;
        }
        let end = (at + size).min(data.len());
        out.push(Bytes::copy_from_slice(&data[at..end]));
        at = end;
    }
    out
}

#[tokio::test]
async fn large_transfers_arrive_intact_and_in_order_both_ways() {
    let mut h = Harness::start(Setup::default()).await;
    let console = h.client().attach(&h.address, INSTANCE).await.unwrap();
    assert_eq!(console.capabilities.kind, "relay");
    let mut owner = h.owner_console().await;

    let to_owner = pattern(BIG, 1);
    let to_user = pattern(BIG, 2);
    let backends::Console {
        mut output, input, ..
    } = console;
    let user_writes = async {
        for chunk in uneven_chunks(&to_owner) {
            input.write(chunk).await.unwrap();
        }
    };
    let owner_reads = async {
        let mut got = Vec::with_capacity(BIG);
        while got.len() < BIG {
            match owner.input.recv().await.unwrap() {
                Input::Data(d) => got.extend_from_slice(&d),
                Input::Break => panic!("no BREAK was sent"),
            }
        }
        got
    };
    let owner_writes = async {
        for chunk in uneven_chunks(&to_user) {
            owner.output.send(chunk).await.unwrap();
        }
    };
    let user_reads = async {
        let mut got = Vec::with_capacity(BIG);
        while got.len() < BIG {
            got.extend_from_slice(&output.recv().await.unwrap());
        }
        got
    };
    let ((), got_by_owner, (), got_by_user) =
        tokio::join!(user_writes, owner_reads, owner_writes, user_reads);
    assert!(got_by_owner == to_owner, "user to owner bytes differ");
    assert!(got_by_user == to_user, "owner to user bytes differ");
}

#[tokio::test]
async fn break_reaches_the_owner_between_the_bytes_around_it() {
    let mut h = Harness::start(Setup {
        can_break: true,
        ..Setup::default()
    })
    .await;
    let console = h.client().attach(&h.address, INSTANCE).await.unwrap();
    assert!(console.capabilities.can_break);
    let mut owner = h.owner_console().await;
    console.input.write(Bytes::from_static(b"a")).await.unwrap();
    console.input.send_break().await.unwrap();
    console.input.write(Bytes::from_static(b"b")).await.unwrap();
    assert!(matches!(owner.input.recv().await, Some(Input::Data(d)) if d == "a"));
    assert!(matches!(owner.input.recv().await, Some(Input::Break)));
    assert!(matches!(owner.input.recv().await, Some(Input::Data(d)) if d == "b"));
}

#[tokio::test]
async fn a_console_without_break_is_relayed_as_such() {
    let mut h = Harness::start(Setup::default()).await;
    let console = h.client().attach(&h.address, INSTANCE).await.unwrap();
    let _owner = h.owner_console().await;
    assert!(!console.capabilities.can_break);
    assert_eq!(
        console.input.send_break().await,
        Err(BreakError::Unsupported)
    );
}

#[tokio::test]
async fn the_owner_console_ending_ends_the_user_output_after_its_last_bytes() {
    let mut h = Harness::start(Setup::default()).await;
    let mut console = h.client().attach(&h.address, INSTANCE).await.unwrap();
    let owner = h.owner_console().await;
    owner.output.send(Bytes::from_static(b"bye")).await.unwrap();
    drop(owner);
    assert_eq!(console.output.recv().await.unwrap(), "bye");
    assert!(console.output.recv().await.is_none());
    // The relay is gone for input too.
    let closed = async {
        while console.input.write(Bytes::from_static(b"x")).await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), closed)
        .await
        .unwrap();
}

#[tokio::test]
async fn dropping_the_user_console_closes_the_owner_side() {
    let mut h = Harness::start(Setup::default()).await;
    let console = h.client().attach(&h.address, INSTANCE).await.unwrap();
    let mut owner = h.owner_console().await;
    console
        .input
        .write(Bytes::from_static(b"hi"))
        .await
        .unwrap();
    assert!(matches!(owner.input.recv().await, Some(Input::Data(d)) if d == "hi"));
    drop(console);
    assert!(owner.input.recv().await.is_none());
    owner.output.closed().await;
}

#[tokio::test]
async fn a_slow_reader_holds_the_owner_console_back() {
    const TOTAL: usize = 128 << 20;
    const CHUNK: usize = 64 << 10;
    let mut h = Harness::start(Setup::default()).await;
    let mut console = h.client().attach(&h.address, INSTANCE).await.unwrap();
    let owner = h.owner_console().await;
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&sent);
    let producer = tokio::spawn(async move {
        let chunk = Bytes::from(vec![7u8; CHUNK]);
        while counter.load(Ordering::SeqCst) < TOTAL {
            owner.output.send(chunk.clone()).await.unwrap();
            counter.fetch_add(CHUNK, Ordering::SeqCst);
        }
        owner
    });
    // The user takes a chunk only every few scheduler turns, so the console would run far
    // ahead of it if anything on the way buffered without bound. What may be in flight is the
    // channels plus the sockets' buffers (which the kernel grows to a few tens of MiB on
    // loopback), never the stream.
    let mut received = 0;
    let mut lead = 0;
    while received < TOTAL {
        received += console.output.recv().await.unwrap().len();
        lead = lead.max(sent.load(Ordering::SeqCst).saturating_sub(received));
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(received, TOTAL);
    assert!(lead > 0);
    assert!(
        lead < TOTAL / 2,
        "the console ran {lead} bytes ahead of its reader"
    );
    let _owner = producer.await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_sessions_and_the_server_returns() {
    let mut h = Harness::start(Setup::default()).await;
    let mut console = h.client().attach(&h.address, INSTANCE).await.unwrap();
    let mut owner = h.owner_console().await;
    h.shutdown.take().unwrap().send(()).unwrap();
    assert!(console.output.recv().await.is_none());
    assert!(owner.input.recv().await.is_none());
    h.server.await.unwrap();
    assert!(
        tokio::net::TcpStream::connect(&h.address).await.is_err(),
        "the listener is closed"
    );
}

#[tokio::test]
async fn the_last_output_arrives_even_while_the_user_is_still_typing() {
    let mut h = Harness::start(Setup::default()).await;
    // Whether the owner's node closes before or after reading what was typed is a race; a few
    // rounds make sure both orders are seen.
    for _ in 0..8 {
        let console = h.client().attach(&h.address, INSTANCE).await.unwrap();
        let mut owner = h.owner_console().await;
        let backends::Console {
            mut output, input, ..
        } = console;
        // The user types without pause; the owner's console reads a little, says goodbye and
        // goes, leaving typed bytes unread on its node.
        let typing = tokio::spawn(async move {
            let chunk = Bytes::from(vec![b'k'; 16 << 10]);
            while input.write(chunk.clone()).await.is_ok() {}
        });
        assert!(matches!(owner.input.recv().await, Some(Input::Data(_))));
        owner
            .output
            .send(Bytes::from_static(b"goodbye"))
            .await
            .unwrap();
        drop(owner);
        assert_eq!(output.recv().await.unwrap(), "goodbye");
        assert!(output.recv().await.is_none());
        typing.await.unwrap();
    }
}
