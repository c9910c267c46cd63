//! A console that floods output while nobody reads: the backend stops reading (the fake server's
//! writes block after a bounded amount), memory stays bounded, and once reading resumes every
//! byte arrives in order.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backends::ConsoleUri;
use common::{opts, read_to_end, socket_path, within};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;

/// What the flood sends: a counting pattern, so order and loss are both visible.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Waits until nothing can move any more: on paused time the clock advances only once every
/// task is waiting, so this sleep returns when the writer is blocked (or done) and the backend
/// is waiting too. A backend that kept reading would keep the runtime busy until the writer
/// had written everything.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_stops_the_console_and_loses_nothing() {
    const TOTAL: usize = 16 << 20;
    let path = socket_path("flood.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let options = opts();
    let mut console = backends::open(&ConsoleUri::Unix(path.to_path_buf()), &options)
        .await
        .unwrap();
    let (mut server, _) = listener.accept().await.unwrap();

    let written = Arc::new(AtomicUsize::new(0));
    let progress = Arc::clone(&written);
    let flood = tokio::spawn(async move {
        let data = pattern(TOTAL);
        for chunk in data.chunks(8192) {
            server.write_all(chunk).await.unwrap();
            progress.fetch_add(chunk.len(), Ordering::SeqCst);
        }
    });

    // Nobody reads: the server must stall after the socket buffers plus our bounded buffers.
    settle().await;
    let stalled_at = written.load(Ordering::SeqCst);
    eprintln!("server stalled after {stalled_at} bytes");
    let channel = options.output_buffer * options.read_chunk;
    let ours = channel + options.read_chunk;
    assert!(
        !flood.is_finished(),
        "the server wrote all {TOTAL} bytes without a reader"
    );
    // What stalled it is our full channel, not a writer that never got going.
    assert_eq!(console.output.len(), options.output_buffer);
    assert!(
        stalled_at >= channel,
        "the server wrote only {stalled_at} bytes, less than the channel holds"
    );
    assert!(
        stalled_at < (1 << 20) + ours,
        "server wrote {stalled_at} bytes without a reader"
    );

    // Reading resumes: everything arrives, in order, then the end.
    let got = read_to_end(&mut console.output).await;
    within("flood", flood).await.unwrap();
    assert_eq!(got.len(), TOTAL);
    assert!(got == pattern(TOTAL), "bytes lost or reordered");
}

#[tokio::test(start_paused = true)]
async fn dropping_a_stalled_console_releases_the_connection() {
    let path = socket_path("stall.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let console = backends::open(&ConsoleUri::Unix(path.to_path_buf()), &opts())
        .await
        .unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let written = Arc::new(AtomicUsize::new(0));
    let progress = Arc::clone(&written);
    let writes = tokio::spawn(async move {
        let chunk = [0x55u8; 8192];
        // Runs until the console side goes away and the write fails.
        loop {
            if server.write_all(&chunk).await.is_err() {
                return;
            }
            progress.fetch_add(chunk.len(), Ordering::SeqCst);
        }
    });
    settle().await;
    let channel = opts().output_buffer * opts().read_chunk;
    assert!(
        written.load(Ordering::SeqCst) >= channel,
        "the writer wrote only {} bytes: it never got going",
        written.load(Ordering::SeqCst)
    );
    assert!(
        !writes.is_finished(),
        "the writer should be blocked, not failing"
    );
    drop(console);
    within("writer to see the close", writes).await.unwrap();
}
