//! A hand-rolled requester for what SDKs refuse to send: unsigned, badly signed, skewed, junk
//! bodies, wrong types, unknown targets, oversized bodies. Requests are signed with the
//! `aws-sigv4` crate, then altered, and written to the socket as raw HTTP/1.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use common::ec2::Req;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TARGET: &str = "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey";

/// A request signed like an SDK would sign it (the shared signer, service `ec2-instance-connect`).
fn signed(
    host: &str,
    ak: &str,
    sk: &str,
    region: &str,
    time: SystemTime,
    target: &str,
    body: &[u8],
) -> Req {
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        ("x-amz-target".to_owned(), target.to_owned()),
    ];
    common::ec2::signed(
        host,
        ak,
        sk,
        region,
        "ec2-instance-connect",
        time,
        headers,
        body,
    )
}

fn body_for(id: &str, key: &str) -> Vec<u8> {
    serde_json::json!({"InstanceId": id, "SerialPort": 0, "SSHPublicKey": key})
        .to_string()
        .into_bytes()
}

struct Resp {
    status: u16,
    headers: String,
    json: serde_json::Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.json["__type"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.json["message"]
            .as_str()
            .or(self.json["Message"].as_str())
            .unwrap_or("")
    }
}

async fn send_raw(s: &Server, raw: &[u8]) -> Resp {
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(raw).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut buf))
        .await
        .expect("server hung")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Resp {
        status,
        headers: head.to_ascii_lowercase(),
        json: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    }
}

async fn send(s: &Server, req: &Req) -> Resp {
    let mut raw = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &req.headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        req.body.len()
    ));
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(&req.body);
    send_raw(s, &bytes).await
}

fn host(s: &Server) -> String {
    s.addr.to_string()
}

fn good(s: &Server, body: &[u8]) -> Req {
    signed(&host(s), AK, SK, REGION, SystemTime::now(), TARGET, body)
}

#[tokio::test]
async fn signed_request_succeeds_with_matching_request_id() {
    let s = start().await;
    let r = send(&s, &good(&s, &body_for(RUNNING, ED25519))).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["Success"], true);
    let id = r.json["RequestId"].as_str().unwrap();
    assert!(
        r.headers.contains(&format!("x-amzn-requestid: {id}")),
        "{}",
        r.headers
    );
    assert!(
        r.headers
            .contains("content-type: application/x-amz-json-1.1")
    );
}

#[tokio::test]
async fn unsigned_is_missing_authentication_token() {
    let s = start().await;
    let mut req = good(&s, &body_for(RUNNING, ED25519));
    req.headers.retain(|(k, _)| k != "authorization");
    let r = send(&s, &req).await;
    assert_eq!(
        (r.status, r.code()),
        (403, "MissingAuthenticationTokenException")
    );
    assert!(r.headers.contains("x-amzn-requestid: "), "{}", r.headers);
}

#[tokio::test]
async fn wrong_secret_is_invalid_signature() {
    let s = start().await;
    let req = signed(
        &host(&s),
        AK,
        "not-the-secret",
        REGION,
        SystemTime::now(),
        TARGET,
        &body_for(RUNNING, ED25519),
    );
    let r = send(&s, &req).await;
    assert_eq!((r.status, r.code()), (400, "InvalidSignatureException"));
}

#[tokio::test]
async fn unknown_key_is_unrecognized_client() {
    let s = start().await;
    let req = signed(
        &host(&s),
        "AKIDNOBODY",
        SK,
        REGION,
        SystemTime::now(),
        TARGET,
        &body_for(RUNNING, ED25519),
    );
    let r = send(&s, &req).await;
    assert_eq!((r.status, r.code()), (400, "UnrecognizedClientException"));
    assert_eq!(
        r.message(),
        "The security token included in the request is invalid."
    );
}

#[tokio::test]
async fn skewed_date_is_signature_expired() {
    let s = start().await;
    for skew in [-20 * 60i64, 20 * 60] {
        let t = if skew < 0 {
            SystemTime::now() - Duration::from_secs(skew.unsigned_abs())
        } else {
            SystemTime::now() + Duration::from_secs(skew as u64)
        };
        let req = signed(
            &host(&s),
            AK,
            SK,
            REGION,
            t,
            TARGET,
            &body_for(RUNNING, ED25519),
        );
        let r = send(&s, &req).await;
        assert_eq!((r.status, r.code()), (400, "InvalidSignatureException"));
        // AWS's two wordings, which SDKs parse to correct clock skew.
        let expected = if skew < 0 {
            "Signature expired:"
        } else {
            "Signature not yet current:"
        };
        assert!(r.message().starts_with(expected), "{}", r.message());
    }
    // 10 minutes of skew is within the 15-minute window.
    let req = signed(
        &host(&s),
        AK,
        SK,
        REGION,
        SystemTime::now() - Duration::from_secs(600),
        TARGET,
        &body_for(RUNNING, ED25519),
    );
    assert_eq!(send(&s, &req).await.status, 200);
}

#[tokio::test]
async fn wrong_region_is_refused() {
    let s = start().await;
    let req = signed(
        &host(&s),
        AK,
        SK,
        "eu-west-1",
        SystemTime::now(),
        TARGET,
        &body_for(RUNNING, ED25519),
    );
    let r = send(&s, &req).await;
    assert_eq!((r.status, r.code()), (400, "InvalidSignatureException"));
    assert!(r.message().contains("region"), "{}", r.message());
}

#[tokio::test]
async fn tampered_body_is_invalid_signature() {
    let s = start().await;
    let mut req = good(&s, &body_for(RUNNING, ED25519));
    req.body = body_for(STOPPED, ED25519);
    let r = send(&s, &req).await;
    assert_eq!(r.code(), "InvalidSignatureException");
}

#[tokio::test]
async fn garbage_authorization_is_incomplete_signature() {
    let s = start().await;
    let mut req = good(&s, &body_for(RUNNING, ED25519));
    for (k, v) in &mut req.headers {
        if k == "authorization" {
            *v = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE".into();
        }
    }
    let r = send(&s, &req).await;
    assert_eq!((r.status, r.code()), (400, "IncompleteSignatureException"));
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_serialization_errors() {
    let s = start().await;
    for body in [
        &b"{\"InstanceId\": "[..],
        b"not json",
        b"[1,2,3]",
        br#"{"InstanceId": 12, "SSHPublicKey": "x"}"#,
        br#"{"InstanceId": "i-0123456789abcdef0", "SerialPort": "0", "SSHPublicKey": "x"}"#,
        br#"{"InstanceId": "i-0123456789abcdef0", "SerialPort": 0.5, "SSHPublicKey": "x"}"#,
        br#"{"InstanceId": "i-0123456789abcdef0", "SSHPublicKey": ["x"]}"#,
    ] {
        let r = send(&s, &good(&s, body)).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "SerializationException"),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[tokio::test]
async fn missing_fields_are_invalid_args() {
    let s = start().await;
    for (body, field) in [
        (serde_json::json!({"SSHPublicKey": ED25519}), "InstanceId"),
        (serde_json::json!({"InstanceId": RUNNING}), "SSHPublicKey"),
        (serde_json::json!({}), "InstanceId"),
    ] {
        let r = send(&s, &good(&s, body.to_string().as_bytes())).await;
        assert_eq!((r.status, r.code()), (400, "InvalidArgsException"));
        assert!(r.message().contains(field), "{}", r.message());
    }
}

#[tokio::test]
async fn key_rules_on_the_wire() {
    let s = start().await;
    let b64 = ED25519.split(' ').nth(1).unwrap();
    let pad = "c".repeat(80);
    for (key, expect) in [
        ("ssh-ed25519 AAAA".to_owned(), "80 to 4096"),
        ("x".repeat(4097), "80 to 4096"),
        (format!("ssh-ed25519 ***notbase64*** {pad}"), "base64"),
        (format!("ssh-ed25519 {} {pad}", &b64[..40]), "truncated"),
        (
            format!("sk-ssh-ed25519@openssh.com {b64} {pad}"),
            "not supported",
        ),
    ] {
        let r = send(&s, &good(&s, &body_for(RUNNING, &key))).await;
        assert_eq!(r.code(), "InvalidArgsException", "{key}");
        assert!(r.message().contains(expect), "{}: {}", key, r.message());
    }
    let rfc4716 = include_str!("../../../testdata/keys/rsa2048.rfc4716.pub");
    assert_eq!(
        send(&s, &good(&s, &body_for(RUNNING, rfc4716)))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn unknown_target_is_unknown_operation() {
    let s = start().await;
    for target in [
        "AWSEC2InstanceConnectService.DeleteEverything",
        "Other.SendSerialConsoleSSHPublicKey",
    ] {
        let req = signed(&host(&s), AK, SK, REGION, SystemTime::now(), target, b"{}");
        let r = send(&s, &req).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "UnknownOperationException"),
            "{target}"
        );
    }
}

#[tokio::test]
async fn oversized_body_is_413_before_auth() {
    let s = start().await;
    let big = vec![b' '; 70 * 1024];
    let r = send(&s, &good(&s, &big)).await;
    assert_eq!(
        (r.status, r.code()),
        (413, "RequestEntityTooLargeException")
    );
    // Chunked bodies are counted too.
    let mut raw =
        b"POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..80 {
        raw.extend_from_slice(b"400\r\n");
        raw.extend_from_slice(&[b' '; 1024]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let r = send_raw(&s, &raw).await;
    assert_eq!(
        (r.status, r.code()),
        (413, "RequestEntityTooLargeException")
    );
}

#[tokio::test]
async fn health_and_other_paths() {
    let s = start().await;
    let r = send_raw(
        &s,
        b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["status"], "ok");
    // No dependency installed: ready whenever serving.
    let r = send_raw(
        &s,
        b"GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["status"], "ready");
    let r = send_raw(
        &s,
        b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 405);
    let r = send_raw(
        &s,
        b"GET /nope HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 404);
}

/// Malformed input of every kind must never produce a 5xx, a panic, or a hang.
#[tokio::test]
async fn junk_never_yields_5xx() {
    let s = start().await;
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..200 {
        let len = (next() % 300) as usize;
        let junk: Vec<u8> = (0..len).map(|_| (next() % 256) as u8).collect();
        let body = match i % 4 {
            0 => junk,
            1 => format!(
                "{{\"InstanceId\":\"{}\",\"SSHPublicKey\":{:?}}}",
                RUNNING,
                String::from_utf8_lossy(&junk)
            )
            .into_bytes(),
            2 => format!(
                "{{\"InstanceId\":{:?},\"SerialPort\":{}}}",
                String::from_utf8_lossy(&junk),
                next() as i64
            )
            .into_bytes(),
            _ => format!("{{\"SSHPublicKey\":\"ssh-ed25519 {}\"}}", "A".repeat(len)).into_bytes(),
        };
        let r = send(&s, &good(&s, &body)).await;
        assert!(
            (400..500).contains(&r.status),
            "status {} for {:?}",
            r.status,
            String::from_utf8_lossy(&body)
        );
    }
    // Junk headers and request lines.
    for raw in [
        &b"POST / HTTP/1.1\r\nauthorization: \xff\xfe\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nauthorization: AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=, Signature=zz\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        b"POST / HTTP/1.1\r\nx-amz-date: 99999999T999999Z\r\nauthorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/99999999/us-east-1/ec2-instance-connect/aws4_request, SignedHeaders=host;x-amz-date, Signature=00\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    ] {
        let r = send_raw(&s, raw).await;
        assert!((400..500).contains(&r.status), "status {}", r.status);
    }
}
