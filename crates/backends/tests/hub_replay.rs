//! The hub's output side: a replay on attach cut from the history with no gap and no
//! duplicate at the seam, a history seeded from before a restart, and taps that see every
//! chunk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use backends::{ConsoleUri, Hub, HubSetup, HubSnapshot, OutputTap};
use bytes::Bytes;
use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::mpsc;

/// The numbers of the complete lines `line N\n` in `bytes`, and whether they start on a line.
fn numbers(bytes: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(bytes);
    text.split_inclusive('\n')
        .filter(|l| l.ends_with('\n'))
        .map(|l| {
            l.trim_end()
                .strip_prefix("line ")
                .unwrap_or_else(|| panic!("not a whole line: {l:?}"))
                .parse()
                .unwrap()
        })
        .collect()
}

/// Lines in a replay: each newline ends one, and output after the last one is one more.
fn lines_in(bytes: &[u8]) -> usize {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    newlines + usize::from(!bytes.ends_with(b"\n") && !bytes.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_joins_live_output_without_gap_or_duplicate() {
    let path = socket_path("hub-replay.sock");
    let listener = UnixListener::bind(&*path).unwrap();
    let hub = Hub::start(ConsoleUri::Unix(path.to_path_buf()), opts(), 64 * 1024);
    let (mut conn, _) = within("hub connects", listener.accept()).await.unwrap();
    // The console prints numbered lines without pause, in pieces that split lines, until the
    // test is done.
    let (stop_tx, mut stop) = mpsc::channel::<()>(1);
    let console = tokio::spawn(async move {
        let mut n = 0u64;
        let mut pending = Vec::new();
        loop {
            while pending.len() < 64 {
                pending.extend_from_slice(format!("line {n}\n").as_bytes());
                n += 1;
            }
            // 7 bytes at a time: line ends land anywhere in a chunk.
            let piece: Vec<u8> = pending.drain(..7).collect();
            tokio::select! {
                _ = stop.recv() => return,
                r = conn.write_all(&piece) => if r.is_err() { return },
            }
            tokio::task::yield_now().await;
        }
    });
    // Some history first, so a replay has lines to give.
    let mut activity = hub.activity();
    within("history", activity.wait_for(|&n| n > 2000))
        .await
        .unwrap();

    for round in 0..20 {
        let mut user = hub.attach_replaying(5).await.unwrap();
        let first = within("replay", user.output.recv()).await.unwrap();
        assert_eq!(lines_in(&first), 5, "round {round}: {first:?}");
        // The replay starts on a line and, with what follows, reads as consecutive lines.
        let mut got = first.to_vec();
        while numbers(&got).len() < 200 {
            got.extend_from_slice(&within("live output", user.output.recv()).await.unwrap());
        }
        let seen = numbers(&got);
        for pair in seen.windows(2) {
            assert_eq!(
                pair[1],
                pair[0] + 1,
                "round {round}: gap or duplicate at {pair:?}"
            );
        }
    }
    drop(stop_tx);
    console.await.unwrap();
}

#[tokio::test]
async fn no_replay_by_default_and_a_seeded_history_is_replayed() {
    let path = socket_path("hub-seed.sock");
    let listener = UnixListener::bind(&*path).unwrap();
    let setup = HubSetup {
        seed: Some(HubSnapshot {
            bytes: b"before restart 1\nbefore restart 2\n".to_vec(),
            updated_ms: 1234,
        }),
        ..HubSetup::new(1024)
    };
    let hub = Hub::start_with(ConsoleUri::Unix(path.to_path_buf()), opts(), setup);
    assert_eq!(hub.snapshot().updated_ms, 1234);
    let (mut conn, _) = within("hub connects", listener.accept()).await.unwrap();
    let mut activity = hub.activity();
    conn.write_all(b"after 1\n").await.unwrap();
    within("output", activity.wait_for(|&n| n == 8))
        .await
        .unwrap();

    // AWS's behaviour: an attachment gets live output only.
    let mut plain = hub.attach().await.unwrap();
    conn.write_all(b"live\n").await.unwrap();
    assert_eq!(read_until(&mut plain.output, b"live\n").await, b"live\n");

    let mut replaying = hub.attach_replaying(3).await.unwrap();
    conn.write_all(b"more\n").await.unwrap();
    let got = read_until(&mut replaying.output, b"more\n").await;
    assert_eq!(got, b"before restart 2\nafter 1\nlive\nmore\n");
    assert_eq!(
        hub.snapshot().bytes,
        b"before restart 1\nbefore restart 2\nafter 1\nlive\nmore\n"
    );
}

/// Records what it is offered.
struct Recorder(Arc<Mutex<Vec<u8>>>);

impl OutputTap for Recorder {
    fn offer(&mut self, bytes: &Bytes) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
}

#[tokio::test]
async fn taps_see_every_chunk_attached_or_not_but_not_the_seed() {
    let path = socket_path("hub-tap.sock");
    let listener = UnixListener::bind(&*path).unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let setup = HubSetup {
        seed: Some(HubSnapshot {
            bytes: b"old\n".to_vec(),
            updated_ms: 1,
        }),
        taps: vec![Box::new(Recorder(Arc::clone(&seen)))],
        ..HubSetup::new(1024)
    };
    let hub = Hub::start_with(ConsoleUri::Unix(path.to_path_buf()), opts(), setup);
    let (mut conn, _) = within("hub connects", listener.accept()).await.unwrap();
    let mut activity = hub.activity();
    conn.write_all(b"nobody attached\n").await.unwrap();
    within("output", activity.wait_for(|&n| n == 16))
        .await
        .unwrap();
    let mut user = hub.attach().await.unwrap();
    conn.write_all(b"attached\n").await.unwrap();
    read_until(&mut user.output, b"attached\n").await;
    assert_eq!(&*seen.lock().unwrap(), b"nobody attached\nattached\n");
}
