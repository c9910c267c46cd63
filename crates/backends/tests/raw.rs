//! Raw `unix:` and `tcp:` consoles against local fake consoles: bytes both ways (0xFF untouched),
//! no BREAK, close and drop semantics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use backends::{BreakError, ConsoleUri};
use common::{opts, read_to_end, read_until, send, socket_path, within};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

/// Every byte value, so nothing is escaped or swallowed on a raw line.
fn all_bytes() -> Vec<u8> {
    (0..=255).collect()
}

/// Exercises a connected raw console whose server end is `server`.
async fn bytes_both_ways<S: AsyncRead + AsyncWrite + Unpin>(
    console: &mut backends::Console,
    server: &mut S,
) {
    // Console to user, including 0xFF.
    server.write_all(&all_bytes()).await.unwrap();
    let got = read_until(&mut console.output, &[0xfd, 0xfe, 0xff]).await;
    assert_eq!(got, all_bytes());
    // User to console, including 0xFF.
    send(console, &all_bytes()).await;
    let mut buf = vec![0; 256];
    within("server read", server.read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(buf, all_bytes());
}

#[tokio::test]
async fn unix_bytes_both_ways_and_no_break() {
    let path = socket_path("raw.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let uri: ConsoleUri = format!("unix:{}", path.display()).parse().unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();

    assert_eq!(console.capabilities.kind, "unix");
    assert!(!console.capabilities.can_break);
    assert_eq!(
        console.input.send_break().await,
        Err(BreakError::Unsupported)
    );
    bytes_both_ways(&mut console, &mut server).await;
}

#[tokio::test]
async fn tcp_bytes_both_ways_and_no_break() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri: ConsoleUri = format!("tcp:{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();

    assert_eq!(console.capabilities.kind, "tcp");
    assert_eq!(
        console.input.send_break().await,
        Err(BreakError::Unsupported)
    );
    bytes_both_ways(&mut console, &mut server).await;
}

#[tokio::test]
async fn everything_written_before_close_is_delivered_then_none() {
    let path = socket_path("close.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let uri = ConsoleUri::Unix(path.to_path_buf());
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();

    // More than the channel holds (8 x 4 KiB), so the close arrives while output is still
    // undelivered, yet little enough to fit the socket buffers so the server can finish.
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let writer = tokio::spawn(async move {
        server.write_all(&data).await.unwrap();
        // Dropping the stream closes it.
        data
    });
    // Let the server finish and close while nobody reads.
    let data = within("server write", writer).await.unwrap();
    let got = read_to_end(&mut console.output).await;
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes arrived out of order");
    // The handle now reports the end on the input side too.
    within("input closes", async {
        while !console.input.is_closed() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        console
            .input
            .write(bytes::Bytes::from_static(b"x"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn dropping_the_console_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = ConsoleUri::Tcp(listener.local_addr().unwrap().to_string());
    let console = backends::open(&uri, &opts()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    drop(console);
    let mut buf = [0u8; 16];
    let n = within("server sees EOF", server.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn open_fails_cleanly() {
    let absent = socket_path("absent.sock");
    let err = backends::open(&ConsoleUri::Unix(absent.to_path_buf()), &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("absent.sock"), "{err}");
}

#[tokio::test]
async fn from_stream_wraps_any_stream() {
    let (ours, mut theirs) = tokio::io::duplex(64);
    let mut console = backends::Console::from_stream(ours, &opts());
    assert_eq!(console.capabilities.kind, "stream");
    theirs.write_all(b"hello").await.unwrap();
    read_until(&mut console.output, b"hello").await;
    send(&console, b"world").await;
    let mut buf = [0u8; 5];
    within("duplex read", theirs.read_exact(&mut buf))
        .await
        .unwrap();
    assert_eq!(&buf, b"world");
    drop(theirs);
    assert!(read_to_end(&mut console.output).await.is_empty());
}
