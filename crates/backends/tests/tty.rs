//! `tty:` on a pseudo-terminal pair: bytes both ways and a BREAK that the line accepts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use backends::ConsoleUri;
use common::{opts, read_until, send, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::{SerialPort, SerialStream};

#[tokio::test]
async fn pty_bytes_both_ways_and_break() {
    let (mut device, pts) = SerialStream::pair().unwrap();
    let path = pts.name().expect("pty pair has a name");
    // Our backend opens the slave by path, like a real /dev/ttyS*; the pair's own handle on it
    // is no longer needed.
    drop(pts);
    let uri: ConsoleUri = format!("tty:{path}?baud=9600").parse().unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    assert_eq!(console.capabilities.kind, "tty");
    assert!(console.capabilities.can_break);

    // Raw mode: every byte value passes untouched both ways.
    let all: Vec<u8> = (0..=255).collect();
    device.write_all(&all).await.unwrap();
    assert_eq!(read_until(&mut console.output, &[0xfe, 0xff]).await, all);
    send(&console, &all).await;
    let mut buf = vec![0; 256];
    within("device read", device.read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(buf, all);

    // A pty has no UART, so nothing can observe the break condition; what can be checked is
    // that TIOCSBRK/TIOCCBRK succeed and the line keeps working in order afterwards.
    console.input.send_break().await.unwrap();
    send(&console, b"after").await;
    let mut buf = [0u8; 5];
    within("device read after break", device.read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf, b"after");
    assert!(
        !console.input.is_closed(),
        "a break must not end the connection"
    );
}

#[tokio::test]
async fn missing_device_fails_to_open() {
    let uri: ConsoleUri = "tty:/dev/does-not-exist-serialgate".parse().unwrap();
    let err = backends::open(&uri, &opts()).await.unwrap_err();
    assert!(
        err.to_string().contains("does-not-exist-serialgate"),
        "{err}"
    );
}

#[tokio::test]
async fn a_second_opener_is_refused() {
    let (_device, pts) = SerialStream::pair().unwrap();
    let path = pts.name().expect("pty pair has a name");
    drop(pts);
    let uri: ConsoleUri = format!("tty:{path}").parse().unwrap();
    let _first = backends::open(&uri, &opts()).await.unwrap();
    // The port is held exclusively (flock), so a stray second session cannot steal bytes.
    assert!(backends::open(&uri, &opts()).await.is_err());
}
