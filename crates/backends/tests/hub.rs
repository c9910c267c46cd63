//! The console hub: history kept with nobody attached, one user at a time, reconnection.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backends::{ConsoleUri, Hub};
use bytes::Bytes;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

async fn wait_for<F: Fn() -> bool>(what: &str, f: F) {
    within(what, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn keeps_history_lends_the_line_and_reconnects() {
    let path = socket_path("hub.sock");
    let listener = UnixListener::bind(&*path).unwrap();
    let hub = Hub::start(ConsoleUri::Unix(path.to_path_buf()), opts(), 16);

    // Nobody attached: output still lands in the history, capped at its size.
    let (mut conn, _) = within("hub connects", listener.accept()).await.unwrap();
    conn.write_all(b"boot line 1\r\nboot line 2\r\n")
        .await
        .unwrap();
    wait_for("history", || hub.snapshot().bytes.ends_with(b"line 2\r\n")).await;
    assert_eq!(hub.snapshot().bytes.len(), 16);
    assert!(hub.snapshot().updated_ms > 0);
    assert!(hub.is_connected());

    // Attached: new output reaches the user, input reaches the console.
    let mut user = hub.attach().await.unwrap();
    conn.write_all(b"login: ").await.unwrap();
    read_until(&mut user.output, b"login: ").await;
    user.input
        .write(Bytes::from_static(b"root\r"))
        .await
        .unwrap();
    let mut buf = [0u8; 5];
    within("input", conn.read_exact(&mut buf)).await.unwrap();
    assert_eq!(&buf, b"root\r");

    // A second user takes over; the first one's output ends.
    let mut second = hub.attach().await.unwrap();
    assert!(within("first detached", user.output.recv()).await.is_none());
    conn.write_all(b"# ").await.unwrap();
    read_until(&mut second.output, b"# ").await;

    // The console goes away: the user's output ends, attaching fails until it is back.
    drop(conn);
    within("console lost", read_to_end(&mut second.output)).await;
    wait_for("disconnected", || !hub.is_connected()).await;
    drop(listener);
    std::fs::remove_file(&*path).unwrap();
    assert!(hub.attach().await.is_err());
    let listener = UnixListener::bind(&*path).unwrap();
    let (mut conn, _) = within("hub reconnects", listener.accept()).await.unwrap();
    wait_for("connected", || hub.is_connected()).await;
    // Output that arrived before the user reattached is not lost to it: it lost the console
    // mid-session, so the new attachment starts with what came since.
    conn.write_all(b"early boot ").await.unwrap();
    wait_for("early output in history", || {
        hub.snapshot().bytes.ends_with(b"boot ")
    })
    .await;
    let mut third = hub.attach().await.unwrap();
    conn.write_all(b"back").await.unwrap();
    let got = read_until(&mut third.output, b"back").await;
    assert!(contains(&got, b"early boot back"), "{got:?}");
    assert!(hub.snapshot().bytes.ends_with(b"back"));
}

/// On paused time: the sleep below returns only once no task can move (the clock advances only
/// then), i.e. once the console's writer is blocked or done.
#[tokio::test(start_paused = true)]
async fn a_slow_user_slows_the_console_instead_of_losing_bytes() {
    let path = socket_path("hub-slow.sock");
    let listener = UnixListener::bind(&*path).unwrap();
    let hub = Hub::start(ConsoleUri::Unix(path.to_path_buf()), opts(), 1024);
    let (mut conn, _) = within("hub connects", listener.accept()).await.unwrap();
    wait_for("connected", || hub.is_connected()).await;
    let mut user = hub.attach().await.unwrap();
    // 4 MiB while the user reads nothing for a while; then everything arrives in order.
    const TOTAL: usize = 4 * 1024 * 1024;
    let written = Arc::new(AtomicUsize::new(0));
    let progress = Arc::clone(&written);
    let writer = tokio::spawn(async move {
        let chunk: Vec<u8> = (0..=255u8).cycle().take(64 * 1024).collect();
        for _ in 0..64 {
            // Small writes, so the count says how far the console got.
            for piece in chunk.chunks(4096) {
                conn.write_all(piece).await.unwrap();
                progress.fetch_add(piece.len(), Ordering::SeqCst);
            }
        }
        conn
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stalled_at = written.load(Ordering::SeqCst);
    eprintln!("console stalled after {stalled_at} bytes");
    assert!(
        !writer.is_finished(),
        "the console wrote all {TOTAL} bytes to a user reading nothing"
    );
    // Stalled by the user's full channel, not by a writer that never got going.
    let channel = opts().output_buffer * opts().read_chunk;
    assert!(
        stalled_at >= channel,
        "the console wrote only {stalled_at} bytes, less than the user's channel holds"
    );
    assert_eq!(user.output.len(), opts().output_buffer);
    let mut got = 0usize;
    let mut expected = 0u8;
    within("drain", async {
        while got < TOTAL {
            let b = user.output.recv().await.unwrap();
            for &x in b.iter() {
                assert_eq!(x, expected);
                expected = expected.wrapping_add(1);
            }
            got += b.len();
        }
    })
    .await;
    let _conn = within("writer done", writer).await.unwrap();
}

#[tokio::test]
async fn the_simulator_behind_a_hub_keeps_running_between_users() {
    let hub = Hub::start(ConsoleUri::Sim, opts(), 64 * 1024);
    wait_for("boot text in history", || {
        contains(&hub.snapshot().bytes, b"login: ")
    })
    .await;
    let mut user = hub.attach().await.unwrap();
    user.input.write(Bytes::from_static(b"\r")).await.unwrap();
    read_until(&mut user.output, b"login: ").await;
}

#[tokio::test]
async fn stop_closes_the_connection_whoever_holds_the_hub() {
    let path = socket_path("hub-stop.sock");
    let listener = UnixListener::bind(&*path).unwrap();
    let hub = Hub::start(ConsoleUri::Unix(path.to_path_buf()), opts(), 64);
    let other = hub.clone();
    let (mut conn, _) = within("hub connects", listener.accept()).await.unwrap();
    wait_for("connected", || hub.is_connected()).await;
    let mut user = hub.attach().await.unwrap();
    // Stopped while another handle and an attached user remain: when stop returns, the
    // console side sees its connection closed and the user its output end.
    within("stop", hub.stop()).await;
    let mut buf = [0u8; 1];
    assert_eq!(
        within("console closed", conn.read(&mut buf)).await.unwrap(),
        0
    );
    assert!(within("user detached", user.output.recv()).await.is_none());
    // The connection task has ended (stop waited for it): nothing can attach or reconnect.
    assert!(other.attach().await.is_err());
}

#[tokio::test]
async fn stop_ends_a_hub_that_is_retrying() {
    let path = socket_path("hub-stop-retry.sock");
    let hub = Hub::start(ConsoleUri::Unix(path.to_path_buf()), opts(), 64);
    within("first attempt", hub.first_attempt(Duration::from_secs(5))).await;
    // Returns although the retry backoff has not run out: the task ended.
    within("stop while retrying", hub.stop()).await;
    assert!(hub.attach().await.is_err());
}
