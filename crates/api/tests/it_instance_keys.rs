//! `GET /instance-keys/v1/{os_user}` over a real listener, with raw HTTP: a served record
//! verifies with the signer's public key, and every refusal is byte for byte the answer for
//! "no keys".
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use api::{InstanceKeys, KeyToken};
use async_trait::async_trait;
use common::*;
use console::ops::PushOsUserKey;
use console::service::RequestContext;
use console::*;
use instance_keys::{format_proof, parse_records};
use ssh_key::PrivateKey;
use ssh_key::private::Ed25519Keypair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &[u8] = b"instance-token-0123456789";
/// An instance of the registry with no key token.
const NO_TOKEN: &str = XEN;
const NOW: u64 = 1_800_000_000;

#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<AuditEvent>>, AtomicBool);

#[async_trait]
impl AuditSink for Recorder {
    async fn record(&self, e: &AuditEvent) -> Result<(), StoreError> {
        if self.1.load(Ordering::SeqCst) {
            return Err(StoreError::new("disk full"));
        }
        self.0.lock().unwrap().push(e.clone());
        Ok(())
    }
}

fn signer() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[9; 32]))
}

struct Fixture {
    server: Server,
    clock: ManualClock,
    audit: Arc<Recorder>,
}

async fn fixture() -> Fixture {
    fixture_with(true).await
}

/// A server whose clock reads [`NOW`], with instance keys when `enabled`.
async fn fixture_with(enabled: bool) -> Fixture {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW));
    let audit = Arc::new(Recorder::default());
    let (c, a) = (clock.clone(), Arc::clone(&audit));
    let server = start_custom(
        ThrottleConfig {
            rate_per_second: 1000.0,
            burst: 1000,
        },
        move |s| s.with_clock(Arc::new(c)).with_audit(a),
        |state| {
            if enabled {
                let tokens = [(
                    InstanceId::parse(RUNNING).unwrap(),
                    KeyToken::new(TOKEN.to_vec()),
                )];
                state.instance_keys =
                    Some(InstanceKeys::new(signer(), tokens, state.service.registry()).unwrap());
            }
        },
    )
    .await;
    Fixture {
        server,
        clock,
        audit,
    }
}

async fn push(f: &Fixture, user: &str) -> console::ops::PushReceipt {
    let ctx = RequestContext {
        request_id: "push-req-1".into(),
        principal: Principal::account_root(AccountId::parse(ACCT).unwrap()),
        source_ip: None,
        secure_transport: false,
    };
    let req = PushOsUserKey {
        instance_id: InstanceId::parse(RUNNING).unwrap(),
        os_user: OsUser::parse(user).unwrap(),
        key: SshPublicKey::parse(ED25519).unwrap(),
        availability_zone: None,
    };
    f.server.service.push_os_user_key(&ctx, req).await.unwrap()
}

/// Sends `head` (request line and headers, without the final empty line) and returns the whole
/// answer without its `date` header, the only part that may differ between two answers.
async fn raw(f: &Fixture, head: &str) -> String {
    let mut sock = TcpStream::connect(f.server.addr).await.unwrap();
    let request = format!("{head}host: x\r\nconnection: close\r\n\r\n");
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut buf))
        .await
        .expect("server hung")
        .unwrap();
    String::from_utf8(buf)
        .unwrap()
        .split_inclusive("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("date:"))
        .collect()
}

/// A request for `user`, naming `instance`, with the proof header `proof` (none: no header).
/// The audit records of answers that served keys.
fn served_records(f: &Fixture) -> Vec<AuditEvent> {
    f.audit
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.operation == "GetInstanceKeys")
        .cloned()
        .collect()
}

fn get(user: &str, instance: Option<&str>, proof: Option<&str>) -> String {
    let mut head = format!("GET /instance-keys/v1/{user} HTTP/1.1\r\n");
    if let Some(i) = instance {
        head.push_str(&format!("x-serialgate-instance: {i}\r\n"));
    }
    if let Some(p) = proof {
        head.push_str(&format!("x-serialgate-proof: {p}\r\n"));
    }
    head
}

fn proof(token: &[u8], instance: &str, user: &str, t: u64) -> String {
    format_proof(token, instance, user, t)
}

fn good(user: &str) -> String {
    get(user, Some(RUNNING), Some(&proof(TOKEN, RUNNING, user, NOW)))
}

#[tokio::test]
async fn a_served_record_verifies_with_the_signers_public_key_and_is_audited() {
    let f = fixture().await;
    let receipt = push(&f, "ec2-user").await;
    let answer = raw(&f, &good("ec2-user")).await;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; charset=utf-8"),
        "{head}"
    );
    let records = parse_records(body);
    assert_eq!(records.len(), 1, "{body}");
    let record = &records[0];
    let key = record
        .check(signer().public_key(), RUNNING, NOW)
        .expect("the record verifies");
    assert_eq!(
        key.key_data(),
        SshPublicKey::parse(ED25519).unwrap().key_data()
    );
    assert_eq!(record.timestamp(), Some(receipt.expires_at_ms / 1000));
    assert_eq!(record.caller(), Some("arn:aws:iam::111122223333:root"));
    assert_eq!(record.request(), Some(receipt.request_id.as_str()));
    // Another signer's key does not verify it.
    let stranger = PrivateKey::from(Ed25519Keypair::from_seed(&[8; 32]));
    assert!(!record.verify(stranger.public_key()));

    let served = served_records(&f);
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].instance_id.as_deref(), Some(RUNNING));
    assert_eq!(served[0].target.as_deref(), Some("user:ec2-user"));
    assert_eq!(
        served[0].key_fingerprint.as_deref(),
        Some(SshPublicKey::parse(ED25519).unwrap().fingerprint())
    );
    assert_eq!(served[0].outcome, AuditOutcome::Success);
    assert_eq!(served[0].source_ip, Some("127.0.0.1".parse().unwrap()));
}

#[tokio::test]
async fn every_refusal_is_byte_identical_to_no_keys_and_not_audited() {
    let f = fixture().await;
    push(&f, "ec2-user").await;
    let records_before = f.audit.0.lock().unwrap().len();
    // The reference: a good proof for a user with no key.
    let no_keys = raw(&f, &good("root")).await;
    assert!(
        no_keys.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{no_keys}"
    );
    assert!(no_keys.ends_with("\r\n\r\n"), "an empty body: {no_keys:?}");

    let user = "ec2-user";
    let unknown = "i-0000000000000abcd";
    let long_header = format!("{}{}", proof(TOKEN, RUNNING, user, NOW), "0".repeat(300));
    let cases = [
        (
            "unknown instance",
            get(user, Some(unknown), Some(&proof(TOKEN, unknown, user, NOW))),
        ),
        (
            "instance without a key token",
            get(
                user,
                Some(NO_TOKEN),
                Some(&proof(TOKEN, NO_TOKEN, user, NOW)),
            ),
        ),
        (
            "no instance header",
            get(user, None, Some(&proof(TOKEN, RUNNING, user, NOW))),
        ),
        ("no proof header", get(user, Some(RUNNING), None)),
        (
            "malformed proof",
            get(user, Some(RUNNING), Some("t=1800000000,sig=zz")),
        ),
        (
            "malformed instance id",
            get(
                user,
                Some("i-NOPE"),
                Some(&proof(TOKEN, "i-NOPE", user, NOW)),
            ),
        ),
        (
            "wrong token",
            get(
                user,
                Some(RUNNING),
                Some(&proof(b"another-token-0123456", RUNNING, user, NOW)),
            ),
        ),
        (
            "proof for another user",
            get(
                user,
                Some(RUNNING),
                Some(&proof(TOKEN, RUNNING, "root", NOW)),
            ),
        ),
        (
            "proof for another instance",
            get(user, Some(RUNNING), Some(&proof(TOKEN, unknown, user, NOW))),
        ),
        (
            "stale proof",
            get(
                user,
                Some(RUNNING),
                Some(&proof(TOKEN, RUNNING, user, NOW - 301)),
            ),
        ),
        (
            "proof from the future",
            get(
                user,
                Some(RUNNING),
                Some(&proof(TOKEN, RUNNING, user, NOW + 301)),
            ),
        ),
        (
            "invalid user name",
            get(
                "-rf",
                Some(RUNNING),
                Some(&proof(TOKEN, RUNNING, "-rf", NOW)),
            ),
        ),
        (
            "user name with a slash",
            get(
                "ec2-user/x",
                Some(RUNNING),
                Some(&proof(TOKEN, RUNNING, "ec2-user/x", NOW)),
            ),
        ),
        (
            "no user name",
            get("", Some(RUNNING), Some(&proof(TOKEN, RUNNING, "", NOW))),
        ),
        (
            "oversized proof header",
            get(user, Some(RUNNING), Some(&long_header)),
        ),
        (
            "a second proof header",
            format!(
                "{}x-serialgate-proof: t=1,sig={}\r\n",
                good(user),
                "0".repeat(64)
            ),
        ),
        (
            "another method",
            good(user).replacen("GET ", "POST ", 1) + "content-length: 0\r\n",
        ),
    ];
    for (name, head) in &cases {
        assert_eq!(&raw(&f, head).await, &no_keys, "{name}");
    }
    assert_eq!(
        f.audit.0.lock().unwrap().len(),
        records_before,
        "refusals are not audited"
    );

    // Once the grant expired, a good proof gets the same answer too.
    assert!(raw(&f, &good(user)).await.starts_with("HTTP/1.1 200 "));
    f.clock.advance(Duration::from_secs(60));
    let expired = get(
        user,
        Some(RUNNING),
        Some(&proof(TOKEN, RUNNING, user, NOW + 60)),
    );
    assert_eq!(raw(&f, &expired).await, no_keys, "expired grant");

    // A server without instance keys answers every request the same way.
    let off = fixture_with(false).await;
    assert_eq!(raw(&off, &good("root")).await, no_keys);
}

#[tokio::test]
async fn the_proof_window_is_300_seconds_either_way() {
    let f = fixture().await;
    push(&f, "ec2-user").await;
    let at = |t: u64| {
        get(
            "ec2-user",
            Some(RUNNING),
            Some(&proof(TOKEN, RUNNING, "ec2-user", t)),
        )
    };
    for (t, served) in [
        (NOW - 300, true),
        (NOW + 300, true),
        (NOW - 301, false),
        (NOW + 301, false),
    ] {
        let answer = raw(&f, &at(t)).await;
        let status = if served { "200" } else { "404" };
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "t = now {:+}: {answer}",
            i128::from(t) - i128::from(NOW)
        );
    }
    // The window moves with the service's clock.
    f.clock.advance(Duration::from_secs(30));
    assert!(raw(&f, &at(NOW - 270)).await.starts_with("HTTP/1.1 200 "));
    assert!(raw(&f, &at(NOW - 271)).await.starts_with("HTTP/1.1 404 "));
}

#[tokio::test]
async fn a_percent_encoded_user_name_is_the_same_user() {
    let f = fixture().await;
    push(&f, "svc$").await;
    let head = get(
        "svc%24",
        Some(RUNNING),
        Some(&proof(TOKEN, RUNNING, "svc$", NOW)),
    );
    assert!(raw(&f, &head).await.starts_with("HTTP/1.1 200 "));
}

#[tokio::test]
async fn no_key_is_served_without_its_audit_record() {
    let f = fixture().await;
    push(&f, "ec2-user").await;
    f.audit.1.store(true, Ordering::SeqCst);
    let answer = raw(&f, &good("ec2-user")).await;
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.ends_with("content-length: 0\r\n\r\n"), "{answer}");
}

/// Sends `head` on the unix socket at `path` and returns the answer's status line and body.
async fn raw_local(path: &std::path::Path, head: &str) -> (String, String) {
    let mut sock = tokio::net::UnixStream::connect(path).await.unwrap();
    let request = format!("{head}host: x\r\nconnection: close\r\n\r\n");
    sock.write_all(request.as_bytes()).await.unwrap();
    // As the relay does when the guest has sent all: the answer still comes.
    sock.shutdown().await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut buf))
        .await
        .expect("server hung")
        .unwrap();
    let answer = String::from_utf8(buf).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.lines().next().unwrap().to_owned();
    (status, body.to_owned())
}

/// A VM's own socket serves its keys without a token or proof, audited like the route; another
/// VM's socket serves only that VM's (none here), and refusals are the same empty 404.
#[tokio::test]
async fn a_vm_socket_serves_only_its_own_instances_keys_without_a_proof() {
    let f = fixture().await;
    push(&f, "root").await;
    let mut state = api::ApiState::new(Arc::clone(&f.server.service), credentials());
    // No key tokens at all: the socket is the instance's proof.
    let no_tokens: [(InstanceId, KeyToken); 0] = [];
    state.instance_keys =
        Some(InstanceKeys::new(signer(), no_tokens, state.service.registry()).unwrap());
    let state = Arc::new(state);
    let dir = tempfile::tempdir().unwrap();
    let (own, other) = (dir.path().join("own.sock"), dir.path().join("other.sock"));
    for (path, id) in [(&own, RUNNING), (&other, NO_TOKEN)] {
        let listener = tokio::net::UnixListener::bind(path).unwrap();
        let id = InstanceId::parse(id).unwrap();
        let forever = std::future::pending();
        tokio::spawn(api::serve_local(listener, Arc::clone(&state), id, forever));
    }

    let (status, body) = raw_local(&own, "GET /instance-keys/v1/root HTTP/1.1\r\n").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let records = parse_records(&body);
    assert_eq!(records.len(), 1, "{body}");
    records[0]
        .check(signer().public_key(), RUNNING, NOW)
        .expect("the record verifies");
    let served = served_records(&f);
    assert_eq!(served.len(), 1);
    assert_eq!(served[0].instance_id.as_deref(), Some(RUNNING));
    assert_eq!(served[0].target.as_deref(), Some("user:root"));
    assert_eq!(served[0].source_ip, None);

    for (path, head) in [
        (&other, "GET /instance-keys/v1/root HTTP/1.1\r\n"),
        (&own, "GET /instance-keys/v1/ec2-user HTTP/1.1\r\n"),
        (&own, "GET /instance-keys/v1/-root HTTP/1.1\r\n"),
        (
            &own,
            "POST /instance-keys/v1/root HTTP/1.1\r\ncontent-length: 0\r\n",
        ),
        (&own, "GET /health HTTP/1.1\r\n"),
    ] {
        let (status, body) = raw_local(path, head).await;
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 404 Not Found", ""),
            "{head}"
        );
    }
}
