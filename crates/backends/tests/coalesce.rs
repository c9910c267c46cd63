//! Read pacing (`ConsoleOptions::coalesce`): a console that prints a few bytes at a time, the
//! way an emulated UART does, is read in one chunk per window instead of once per write, while
//! the first output after a quiet spell goes out at once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backends::{Console, ConsoleOptions};
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_millis(2);

fn opts(coalesce: Duration) -> ConsoleOptions {
    ConsoleOptions {
        coalesce,
        ..ConsoleOptions::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_trickle_is_read_once_per_window_and_a_quiet_console_at_once() {
    let (far, near) = tokio::io::duplex(64 * 1024);
    let mut console = Console::from_stream(near, &opts(WINDOW));
    let mut far = far;

    // After a quiet spell, the first byte is read at once.
    let t0 = Instant::now();
    far.write_all(b"a").await.unwrap();
    assert_eq!(&console.output.recv().await.unwrap()[..], b"a");
    assert_eq!(t0.elapsed(), Duration::ZERO);

    // Writes inside the window that follows are read together when it ends.
    for b in [b"b", b"c", b"d"] {
        far.write_all(b).await.unwrap();
    }
    assert_eq!(&console.output.recv().await.unwrap()[..], b"bcd");
    assert_eq!(t0.elapsed(), WINDOW);

    // Quiet again: no delay.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t1 = Instant::now();
    far.write_all(b"e").await.unwrap();
    assert_eq!(&console.output.recv().await.unwrap()[..], b"e");
    assert_eq!(t1.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn without_a_window_every_write_is_its_own_chunk() {
    let (mut far, near) = tokio::io::duplex(64 * 1024);
    let mut console = Console::from_stream(near, &opts(Duration::ZERO));
    far.write_all(b"a").await.unwrap();
    assert_eq!(&console.output.recv().await.unwrap()[..], b"a");
    far.write_all(b"b").await.unwrap();
    assert_eq!(&console.output.recv().await.unwrap()[..], b"b");
}

#[tokio::test(start_paused = true)]
async fn a_flood_that_fills_the_buffer_is_not_paced() {
    let read_chunk = 16;
    let (mut far, near) = tokio::io::duplex(64 * 1024);
    let options = ConsoleOptions {
        read_chunk,
        ..opts(WINDOW)
    };
    let mut console = Console::from_stream(near, &options);
    far.write_all(&[b'x'; 64]).await.unwrap();
    let t0 = Instant::now();
    let mut got = 0;
    while got < 64 {
        got += console.output.recv().await.unwrap().len();
    }
    // Four full reads back to back: no window between them.
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn the_read_that_drains_a_flood_does_not_pace_the_next() {
    // A flood is read in full buffers and then one short read that empties the line. Pausing
    // after that short read would cap a flood at one line buffer per window (on a socket, about
    // 90 MB/s); only a second short read in a row means the console is trickling.
    let read_chunk = 16;
    let (mut far, near) = tokio::io::duplex(64 * 1024);
    let options = ConsoleOptions {
        read_chunk,
        ..opts(WINDOW)
    };
    let mut console = Console::from_stream(near, &options);
    far.write_all(&[b'x'; 72]).await.unwrap();
    let t0 = Instant::now();
    let mut got = 0;
    while got < 72 {
        got += console.output.recv().await.unwrap().len();
    }
    far.write_all(b"y").await.unwrap();
    assert_eq!(&console.output.recv().await.unwrap()[..], b"y");
    assert_eq!(t0.elapsed(), Duration::ZERO);

    // The trickle that follows is paced again.
    far.write_all(b"z").await.unwrap();
    assert_eq!(&console.output.recv().await.unwrap()[..], b"z");
    assert_eq!(t0.elapsed(), WINDOW);
}
