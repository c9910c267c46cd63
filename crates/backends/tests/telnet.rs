//! `telnet:` and `unix+telnet:` against a fake telnet server that greets like QEMU's
//! `telnet=on` socket, adds odd options and a subnegotiation, and records what we send.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use backends::{Console, ConsoleUri};
use common::{opts, read_until, send, socket_path, within};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener};

const IAC: u8 = 0xff;
const DONT: u8 = 0xfe;
const DO: u8 = 0xfd;
const WONT: u8 = 0xfc;
const WILL: u8 = 0xfb;
const SB: u8 = 0xfa;
const SE: u8 = 0xf0;

/// QEMU's greeting (WILL ECHO, WILL SGA, WILL BINARY, DO BINARY), then DO TTYPE, WILL STATUS,
/// DO NAWS, a TTYPE subnegotiation holding an escaped 0xFF, and text with an escaped 0xFF.
fn greeting() -> Vec<u8> {
    let mut g = vec![
        0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00,
    ];
    g.extend_from_slice(&[IAC, DO, 24, IAC, WILL, 5, IAC, DO, 31]);
    g.extend_from_slice(&[IAC, SB, 24, 1, IAC, IAC, IAC, SE]);
    g.extend_from_slice(b"ok");
    g.extend_from_slice(&[IAC, IAC]);
    g.extend_from_slice(b"\r\n");
    g
}

/// What a correct client answers: agree to QEMU's offers, refuse the rest, nothing else.
fn expected_replies() -> Vec<u8> {
    vec![
        IAC, DO, 1, IAC, DO, 3, IAC, DO, 0, IAC, WILL, 0, // QEMU's four
        IAC, WONT, 24, IAC, DONT, 5, IAC, WONT, 31, // refused
    ]
}

async fn read_exactly<S: AsyncRead + Unpin>(server: &mut S, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    within("server read", server.read_exact(&mut buf))
        .await
        .unwrap();
    buf
}

async fn converse<S: AsyncRead + AsyncWrite + Unpin>(console: &mut Console, server: &mut S) {
    assert!(console.capabilities.can_break);
    server.write_all(&greeting()).await.unwrap();

    let replies = read_exactly(server, expected_replies().len()).await;
    assert_eq!(replies, expected_replies());
    let text = read_until(&mut console.output, b"\r\n").await;
    assert_eq!(text, b"ok\xff\r\n", "commands stripped, IAC IAC un-doubled");

    // The same offers again must not be answered (no negotiation loop): the next bytes the server
    // sees are the user's, with 0xFF doubled.
    server.write_all(&greeting()[..12]).await.unwrap();
    send(console, &[b'A', 0xff, b'B', b'\r']).await;
    assert_eq!(read_exactly(server, 5).await, [b'A', IAC, IAC, b'B', b'\r']);

    // BREAK is exactly IAC BRK on the wire, in order with the data around it.
    console.input.send_break().await.unwrap();
    send(console, b"z").await;
    assert_eq!(read_exactly(server, 3).await, [0xff, 0xf3, b'z']);
}

#[tokio::test]
async fn tcp_telnet_negotiates_escapes_and_breaks() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri: ConsoleUri = format!("telnet:{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    assert_eq!(console.capabilities.kind, "telnet");
    let (mut server, _) = listener.accept().await.unwrap();
    converse(&mut console, &mut server).await;
}

#[tokio::test]
async fn unix_telnet_negotiates_escapes_and_breaks() {
    let path = socket_path("telnet.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let uri: ConsoleUri = format!("unix+telnet:{}", path.display()).parse().unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    assert_eq!(console.capabilities.kind, "unix+telnet");
    let (mut server, _) = listener.accept().await.unwrap();
    converse(&mut console, &mut server).await;
}

#[tokio::test]
async fn sequences_split_across_reads() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = ConsoleUri::Telnet(listener.local_addr().unwrap().to_string());
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    server.set_nodelay(true).unwrap();
    // One byte per write, with a pause, so the client sees every sequence split.
    for byte in greeting() {
        server.write_all(&[byte]).await.unwrap();
        server.flush().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(
        read_exactly(&mut server, expected_replies().len()).await,
        expected_replies()
    );
    assert_eq!(
        read_until(&mut console.output, b"\r\n").await,
        b"ok\xff\r\n"
    );
}

#[tokio::test]
async fn cr_is_sent_as_cr_nul_before_binary_is_agreed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = ConsoleUri::Telnet(listener.local_addr().unwrap().to_string());
    let console = backends::open(&uri, &opts()).await.unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    send(&console, b"ls\r").await;
    assert_eq!(read_exactly(&mut server, 4).await, b"ls\r\0");
}
