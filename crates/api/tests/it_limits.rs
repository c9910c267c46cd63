//! What an unauthenticated client can hold of the API listener, driven with raw TCP clients:
//! slow and silent request heads, idle keep-alive connections, the per-address and global
//! connection caps (refused at once, while established connections keep working), header
//! count and size limits, the whole-request deadline, and deep JSON nesting.
//!
//! Timeouts are configured at one second. The tests wait for events (the server closing a
//! socket, an answer arriving), never for time; a generous guard turns a hang into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use api::ApiLimits;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Much longer than any configured timeout a test relies on, much shorter than those it must
/// not reach: a connection still open after this was not closed by the deadline under test.
const GUARD: Duration = Duration::from_secs(20);

/// Timeouts long enough never to fire during a test (well beyond [`GUARD`]).
const NEVER: Duration = Duration::from_secs(600);

const SHORT: Duration = Duration::from_secs(1);

fn limits() -> ApiLimits {
    ApiLimits {
        header_read_timeout: NEVER,
        idle_timeout: NEVER,
        request_timeout: NEVER,
        ..ApiLimits::default()
    }
}

/// Waits until the server closes `sock`; returns what it sent before closing.
async fn closed_by_server(sock: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let outcome = tokio::time::timeout(GUARD, async {
        let mut buf = [0u8; 4096];
        loop {
            match sock.read(&mut buf).await {
                Ok(0) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                // A reset is a close too (the server had unread bytes of ours).
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
                Err(e) => panic!("read failed: {e}"),
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "the server kept the connection open");
    got
}

/// One keep-alive `GET /health` on `sock`; returns the status.
async fn health(sock: &mut TcpStream) -> u16 {
    sock.write_all(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    read_response(sock).await.0
}

/// Reads one response (head and `content-length` body): status, head, body.
async fn read_response(sock: &mut TcpStream) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = async {
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len = head
                    .to_ascii_lowercase()
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:").map(str::trim))
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if body.len() >= len {
                    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                    return (status, head.to_owned(), body.to_owned());
                }
            }
            let n = sock.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed mid-response: {text:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(GUARD, read)
        .await
        .expect("no response")
}

#[tokio::test]
async fn slowloris_head_is_closed_after_the_header_timeout() {
    let s = start_limited(
        ApiLimits {
            header_read_timeout: SHORT,
            ..limits()
        },
        None,
    )
    .await;
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(b"POST / HTTP/1.1\r\nhost: test\r\n")
        .await
        .unwrap();
    let (mut reader, mut writer) = sock.into_split();
    // One more header line every 100 ms, as long as the server listens.
    let dribble = tokio::spawn(async move {
        for i in 0.. {
            let line = format!("x-slow-{i}: a\r\n");
            if writer.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let closed = tokio::time::timeout(GUARD, reader.read_to_end(&mut got)).await;
    dribble.abort();
    assert!(closed.is_ok(), "the server kept a dribbling head open");
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn silent_connection_is_closed_after_the_header_timeout() {
    let s = start_limited(
        ApiLimits {
            header_read_timeout: SHORT,
            ..limits()
        },
        None,
    )
    .await;
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    assert!(closed_by_server(&mut sock).await.is_empty());
}

#[tokio::test]
async fn idle_keep_alive_is_closed_after_the_idle_timeout() {
    let s = start_limited(
        ApiLimits {
            idle_timeout: SHORT,
            ..limits()
        },
        None,
    )
    .await;
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health(&mut sock).await, 200);
    // The header timeout is far away: only the idle timeout can close it.
    assert!(closed_by_server(&mut sock).await.is_empty());
}

#[tokio::test]
async fn idle_keep_alive_outlives_the_header_timeout() {
    let s = start_limited(
        ApiLimits {
            header_read_timeout: SHORT,
            ..limits()
        },
        None,
    )
    .await;
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health(&mut idle).await, 200);
    // A connection opened after `idle` went idle, closed by the header timeout: `idle` has
    // now been idle for longer than that timeout.
    let mut canary = TcpStream::connect(s.addr).await.unwrap();
    closed_by_server(&mut canary).await;
    assert_eq!(health(&mut idle).await, 200);
}

#[tokio::test]
async fn per_ip_cap_refuses_the_extra_connection_and_keeps_the_others() {
    let s = start_limited(
        ApiLimits {
            max_connections_per_ip: 2,
            ..limits()
        },
        None,
    )
    .await;
    let mut a = TcpStream::connect(s.addr).await.unwrap();
    let mut b = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health(&mut a).await, 200);
    assert_eq!(health(&mut b).await, 200);
    // Its head would be allowed ten minutes: closed now means refused at accept.
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    assert!(closed_by_server(&mut c).await.is_empty());
    assert_eq!(health(&mut a).await, 200);
    assert_eq!(health(&mut b).await, 200);
    // A place freed is a place for the next client.
    drop(b);
    let mut d = loop_until_accepted(&s).await;
    assert_eq!(health(&mut d).await, 200);
}

#[tokio::test]
async fn global_cap_refuses_the_extra_connection_and_keeps_the_others() {
    let s = start_limited(
        ApiLimits {
            max_connections: 2,
            ..limits()
        },
        None,
    )
    .await;
    let mut a = TcpStream::connect(s.addr).await.unwrap();
    let mut b = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health(&mut a).await, 200);
    assert_eq!(health(&mut b).await, 200);
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    assert!(closed_by_server(&mut c).await.is_empty());
    assert_eq!(health(&mut a).await, 200);
}

/// Connects until the server keeps a connection: a closed place is released when the server
/// notices the close, which is an event the client cannot observe directly.
async fn loop_until_accepted(s: &Server) -> TcpStream {
    tokio::time::timeout(GUARD, async {
        loop {
            let mut sock = TcpStream::connect(s.addr).await.unwrap();
            sock.write_all(b"GET /health HTTP/1.1\r\nhost: test\r\n\r\n")
                .await
                .unwrap();
            let mut first = [0u8; 1];
            if matches!(sock.peek(&mut first).await, Ok(1)) {
                // Answered: consume that response and hand the connection over.
                read_response(&mut sock).await;
                return sock;
            }
        }
    })
    .await
    .expect("the freed place never came back")
}

#[tokio::test]
async fn too_many_headers_are_refused_with_431() {
    let s = start_limited(
        ApiLimits {
            max_headers: 8,
            ..limits()
        },
        None,
    )
    .await;
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    let mut head = String::from("GET /health HTTP/1.1\r\nhost: test\r\n");
    for i in 0..20 {
        head.push_str(&format!("x-h{i}: v\r\n"));
    }
    head.push_str("\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    let got = String::from_utf8(closed_by_server(&mut sock).await).unwrap();
    assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
    // Up to the limit is fine.
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(b"GET /health HTTP/1.1\r\nhost: test\r\nx-a: 1\r\nx-b: 2\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut sock).await.0, 200);
}

#[tokio::test]
async fn oversized_head_is_refused_with_431() {
    let s = start_limited(
        ApiLimits {
            max_header_bytes: 2048,
            ..limits()
        },
        None,
    )
    .await;
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "GET /health HTTP/1.1\r\nhost: test\r\nx-big: {}\r\n\r\n",
        "a".repeat(4096)
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    let got = String::from_utf8(closed_by_server(&mut sock).await).unwrap();
    assert!(got.starts_with("HTTP/1.1 431 "), "{got}");
}

#[tokio::test]
async fn a_stalled_body_gets_the_request_timeout_error() {
    let s = start_limited(
        ApiLimits {
            request_timeout: SHORT,
            ..limits()
        },
        None,
    )
    .await;
    // AWS JSON: RequestTimeoutException, which SDKs retry.
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(
        b"POST / HTTP/1.1\r\nhost: test\r\ncontent-type: application/x-amz-json-1.1\r\n\
          x-amz-target: AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey\r\n\
          content-length: 100\r\n\r\n{\"Instan",
    )
    .await
    .unwrap();
    let (status, _, body) = read_response(&mut sock).await;
    assert_eq!(status, 408, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["__type"], "RequestTimeoutException");
    // EC2 Query: its own XML error.
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(
        format!(
            "POST / HTTP/1.1\r\nhost: test\r\ncontent-type: {}\r\ncontent-length: 100\r\n\r\nAction=",
            common::ec2::FORM
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let (status, _, body) = read_response(&mut sock).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("<Code>RequestTimeout</Code>"), "{body}");
}

#[tokio::test]
async fn deeply_nested_json_is_a_serialization_exception() {
    let s = start().await;
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let depth = 60_000 / (open.len() + close.len());
        let body = format!("{}0{}", open.repeat(depth), close.repeat(depth));
        let req = common::ec2::signed(
            &s.addr.to_string(),
            AK,
            SK,
            REGION,
            "ec2-instance-connect",
            SystemTime::now(),
            vec![
                (
                    "content-type".to_owned(),
                    "application/x-amz-json-1.1".to_owned(),
                ),
                (
                    "x-amz-target".to_owned(),
                    "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey".to_owned(),
                ),
            ],
            body.as_bytes(),
        );
        let r = common::ec2::send(&s, &req).await;
        assert_eq!(r.status, 400, "{}", r.body);
        let json: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(json["__type"], "SerializationException", "{}", r.body);
    }
    // And the server is still there.
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health(&mut sock).await, 200);
}

#[tokio::test]
async fn a_body_above_64_kib_is_verified_off_the_async_workers_and_served() {
    // An operator raised `max_body_bytes`: such bodies are hashed on the blocking pool.
    let s = start_with_state(|state| state.body_limit = 256 * 1024).await;
    let body = serde_json::json!({
        "InstanceId": RUNNING,
        "SerialPort": 0,
        "SSHPublicKey": ED25519,
        "Padding": "p".repeat(128 * 1024),
    })
    .to_string();
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        (
            "x-amz-target".to_owned(),
            "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey".to_owned(),
        ),
    ];
    let sign = |sk: &str| {
        common::ec2::signed(
            &s.addr.to_string(),
            AK,
            sk,
            REGION,
            "ec2-instance-connect",
            SystemTime::now(),
            headers.clone(),
            body.as_bytes(),
        )
    };
    let r = common::ec2::send(&s, &sign(SK)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = common::ec2::send(&s, &sign("not-the-secret")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("InvalidSignatureException"), "{}", r.body);
}

#[tokio::test]
async fn shutdown_answers_the_request_in_progress_and_closes_idle_connections() {
    let s = start_limited(limits(), None).await;
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    let mut busy = TcpStream::connect(s.addr).await.unwrap();
    assert_eq!(health(&mut idle).await, 200);
    // A request whose body is still on its way when shutdown begins. `100 Continue` says the
    // handler has started reading it.
    busy.write_all(
        b"POST / HTTP/1.1\r\nhost: test\r\ncontent-type: application/x-amz-json-1.1\r\n\
          x-amz-target: AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey\r\n\
          expect: 100-continue\r\ncontent-length: 2\r\n\r\n",
    )
    .await
    .unwrap();
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        busy.read_exact(&mut byte).await.unwrap();
        interim.push(byte[0]);
    }
    assert!(interim.starts_with(b"HTTP/1.1 100 "), "{interim:?}");
    let addr = s.addr;
    drop(s);
    // The idle connection goes at once: shutdown has reached the connections.
    assert!(closed_by_server(&mut idle).await.is_empty());
    busy.write_all(b"{}").await.unwrap();
    let (status, _, body) = read_response(&mut busy).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("MissingAuthenticationTokenException"),
        "{body}"
    );
    assert!(closed_by_server(&mut busy).await.is_empty());
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}
