//! Spectators on a hub: they see a replay then live output, their keystrokes never reach the
//! console, the writer is told when they come and go, their number is capped, and one that
//! stops reading slows neither the console nor the writer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use backends::{ConsoleUri, Hub, SpectateError, SpectateRequest};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

fn watch(who: &str, replay_lines: u32, max: u32) -> SpectateRequest {
    SpectateRequest {
        replay_lines,
        who: who.to_owned(),
        max,
    }
}

async fn hub_on_socket(name: &str) -> (Hub, UnixStream, TempPath) {
    let path = socket_path(name);
    let listener = UnixListener::bind(&*path).unwrap();
    let hub = Hub::start(ConsoleUri::Unix(path.to_path_buf()), opts(), 64 * 1024);
    let (conn, _) = within("hub connects", listener.accept()).await.unwrap();
    (hub, conn, path)
}

#[tokio::test]
async fn a_spectator_sees_replay_and_live_output_and_cannot_type() {
    let (hub, mut conn, _path) = hub_on_socket("spectate.sock").await;
    conn.write_all(b"one\ntwo\nthree\n").await.unwrap();
    let mut activity = hub.activity();
    within("history", activity.wait_for(|&n| n >= 14))
        .await
        .unwrap();

    let mut writer = hub.attach().await.unwrap();
    let mut spectator = hub.spectate(watch("alice", 2, 8)).await.unwrap();
    assert_eq!(hub.spectators(), 1);
    assert!(!spectator.capabilities.can_break);
    // The replay: the last two lines, then what the console prints next, nothing twice.
    conn.write_all(b"four\n").await.unwrap();
    let seen = read_until(&mut spectator.output, b"four\n").await;
    assert_eq!(seen, b"two\nthree\nfour\n");
    // The writer is told, in its output, and sees the console's output too.
    let seen = read_until(&mut writer.output, b"four\n").await;
    let text = String::from_utf8_lossy(&seen);
    assert!(
        text.contains("alice is now watching this console, read-only (1 watching)"),
        "{text}"
    );

    // The spectator's keystrokes go nowhere; the writer's reach the console.
    send(&spectator, b"rm -rf /\n").await;
    send(&writer, b"ls\n").await;
    let mut got = [0u8; 3];
    within("writer input", conn.read_exact(&mut got))
        .await
        .unwrap();
    assert_eq!(&got, b"ls\n");

    // Leaving is announced; the count goes down.
    drop(spectator);
    let seen = read_until(&mut writer.output, b"stopped watching").await;
    assert!(
        String::from_utf8_lossy(&seen).contains("alice stopped watching"),
        "{seen:?}"
    );
    assert_eq!(hub.spectators(), 0);
    // Nothing the spectator typed arrives later either: the writer's next input, sent after
    // it, is the very next thing the console reads.
    send(&writer, b"end\n").await;
    let mut next = [0u8; 4];
    within("writer input", conn.read_exact(&mut next))
        .await
        .unwrap();
    assert_eq!(&next, b"end\n");
}

#[tokio::test]
async fn spectators_are_capped_and_do_not_take_the_line() {
    let (hub, mut conn, _path) = hub_on_socket("cap.sock").await;
    let mut a = hub.spectate(watch("a", 0, 2)).await.unwrap();
    let _b = hub.spectate(watch("b", 0, 2)).await.unwrap();
    assert_eq!(
        hub.spectate(watch("c", 0, 2)).await.unwrap_err(),
        SpectateError::Full { max: 2 }
    );
    // Spectators do not hold the line: a writer attaches while they watch.
    let mut writer = hub.attach().await.unwrap();
    conn.write_all(b"hello\n").await.unwrap();
    read_until(&mut writer.output, b"hello\n").await;
    read_until(&mut a.output, b"hello\n").await;
    // A seat frees when a spectator leaves.
    drop(a);
    let mut c = within("seat frees", async {
        loop {
            match hub.spectate(watch("c", 0, 2)).await {
                Ok(c) => return c,
                Err(SpectateError::Full { .. }) => tokio::task::yield_now().await,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await;
    conn.write_all(b"again\n").await.unwrap();
    read_until(&mut c.output, b"again\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_spectator_skips_ahead_and_slows_nobody() {
    let (hub, mut conn, _path) = hub_on_socket("stall.sock").await;
    let writer = hub.attach().await.unwrap();
    // Never read until the end: its queues fill, then the ring passes it by.
    let mut stalled = hub.spectate(watch("slow", 0, 8)).await.unwrap();
    let reader = hub.spectate(watch("fast", 0, 8)).await.unwrap();

    // Far more than the ring and the queues hold (a few hundred 4 KiB chunks), in numbered
    // lines.
    const LINES: u64 = 200_000;
    let console = tokio::spawn(async move {
        let mut all = Vec::new();
        for n in 0..LINES {
            all.extend_from_slice(format!("line {n:08}\n").as_bytes());
        }
        // Paced a little (a busy guest, not a memory copy), so the reading spectator is never
        // a whole ring behind only because this machine is busy; the stalled one, which reads
        // nothing, is far more than a ring behind all the same.
        for piece in all.chunks(64 * 1024) {
            conn.write_all(piece).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        conn
    });
    let last = format!("line {:08}\n", LINES - 1);
    // The writer and the reading spectator, both read as fast as they come, get every line in
    // order.
    let check = |who: &'static str, mut out: tokio::sync::mpsc::Receiver<bytes::Bytes>| {
        let last = last.clone();
        tokio::spawn(async move {
            let seen = read_until(&mut out, last.as_bytes()).await;
            let text = String::from_utf8_lossy(&seen);
            let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("line ")).collect();
            assert_eq!(lines.len() as u64, LINES, "{who} lost lines");
            for (n, l) in lines.iter().enumerate() {
                assert_eq!(*l, format!("line {n:08}"), "{who}");
            }
            out
        })
    };
    let writer_done = check("writer", writer.output);
    let reader_done = check("reader", reader.output);
    let _writer_out = writer_done.await.unwrap();
    let _reader_out = reader_done.await.unwrap();
    let _conn = within("console wrote everything", console).await.unwrap();
    // The stalled one, read now, says it skipped and then goes on with the latest output.
    let seen = read_until(&mut stalled.output, last.as_bytes()).await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("This view fell behind;"), "no skip notice");
    let lines = text.lines().filter(|l| l.starts_with("line ")).count() as u64;
    assert!(lines < LINES, "the stalled spectator got every line");
}
