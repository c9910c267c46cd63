//! The audit trail as the front door fills it: every authenticated call, allowed or refused, is
//! one record carrying the error code its caller received; requests whose signature did not
//! verify are counted per source and reason and written as one record each when the window
//! ends (here: when the server stops). A call the caller's policies refused is stored with the
//! action, the resource and the statement that decided it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use api::{CredentialEntry, Credentials};
use async_trait::async_trait;
use audit::{AuditLog, AuditQuery, AuditRecord, SqliteAudit};
use common::ec2::{Req, Resp, call, call_as, form, form_headers, send, signed};
use common::*;
use console::{
    AccountId, ActionSet, AuditEvent, AuditOutcome, AuditSink, Identity, InstanceId, Principal,
    RefusalEvent, SerialPort, SshPublicKey, StoreError, Throttle, ThrottleConfig,
};
use sigv4::SecretKey;

const SERIAL: &str = "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey";
const OS_USER: &str = "AWSEC2InstanceConnectService.SendSSHPublicKey";
const ABSENT: &str = "i-0123456789abcdef1";
const UNKNOWN_AK: &str = "AKIAUNKNOWNKEY000001";
const ROOT_ARN: &str = "arn:aws:iam::111122223333:root";

/// Keeps every record; fails every write while `fail` is set.
#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<AuditEvent>>,
    refusals: Mutex<Vec<RefusalEvent>>,
    fail: AtomicBool,
}

impl Recorder {
    fn calls_for(&self, request_id: &str) -> Vec<AuditEvent> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.request_id == request_id)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl AuditSink for Recorder {
    async fn record(&self, e: &AuditEvent) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::new("disk full"));
        }
        self.calls.lock().unwrap().push(e.clone());
        Ok(())
    }

    async fn record_refusals(&self, events: &[RefusalEvent]) -> Result<(), StoreError> {
        self.refusals.lock().unwrap().extend_from_slice(events);
        Ok(())
    }
}

/// A throttle store that does not answer: every call behind it fails as a service error.
#[derive(Debug)]
struct BrokenThrottle;

#[async_trait]
impl Throttle for BrokenThrottle {
    async fn try_acquire(&self, _: &AccountId, _: u64) -> Result<bool, StoreError> {
        Err(StoreError::new("throttle store timed out"))
    }
}

const ROOMY: ThrottleConfig = ThrottleConfig {
    rate_per_second: 1000.0,
    burst: 1000,
};

async fn recorded(throttle: ThrottleConfig) -> (Server, Arc<Recorder>) {
    recorded_with(throttle, |s| s).await
}

async fn recorded_with(
    throttle: ThrottleConfig,
    customize: impl FnOnce(console::ConsoleService) -> console::ConsoleService,
) -> (Server, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    let sink = Arc::clone(&rec) as Arc<dyn AuditSink>;
    let s = start_custom(throttle, |svc| customize(svc.with_audit(sink)), |_| {}).await;
    (s, rec)
}

fn json(s: &Server, ak: &str, sk: &str, target: &str, body: &str) -> Req {
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        ("x-amz-target".to_owned(), target.to_owned()),
    ];
    signed(
        &s.addr.to_string(),
        ak,
        sk,
        REGION,
        "ec2-instance-connect",
        SystemTime::now(),
        headers,
        body.as_bytes(),
    )
}

fn push_body(id: &str, port: i64, key: &str) -> String {
    serde_json::json!({"InstanceId": id, "SerialPort": port, "SSHPublicKey": key}).to_string()
}

/// The request id the response carries, and its error code (`success` for a 200).
fn answer(r: &Resp) -> (String, String) {
    let id = r
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("x-amzn-requestid: "))
        .unwrap_or_else(|| panic!("no request id in {}", r.headers))
        .trim()
        .to_owned();
    let code = if r.status == 200 {
        "success".to_owned()
    } else if r.body.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        v["__type"].as_str().unwrap().to_owned()
    } else {
        r.code()
    };
    (id, code)
}

/// The one record of the call `r` answered, after checking it carries `code` and who called.
fn the_record(rec: &Recorder, r: &Resp, code: &str, operation: &str) -> AuditEvent {
    let (id, got) = answer(r);
    assert_eq!(got, code, "{}", r.body);
    let records = rec.calls_for(&id);
    assert_eq!(records.len(), 1, "one record per call: {records:#?}");
    let e = records.into_iter().next().unwrap();
    let outcome = match &e.outcome {
        AuditOutcome::Success => "success".to_owned(),
        AuditOutcome::Error(c) => c.clone(),
    };
    assert_eq!(outcome, code, "{e:?}");
    assert_eq!(e.operation, operation, "{e:?}");
    assert_eq!(e.source_ip, Some(IpAddr::from([127, 0, 0, 1])), "{e:?}");
    e
}

fn fingerprint(key: &str) -> Option<String> {
    Some(SshPublicKey::parse(key).unwrap().fingerprint().to_owned())
}

#[tokio::test]
async fn every_aws_json_call_is_recorded_once_with_its_code() {
    let (s, rec) = recorded(ROOMY).await;
    let op = "SendSerialConsoleSSHPublicKey";

    // Refused by the parse: what the body said validly is kept, junk is not.
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body("i-nope", 0, ED25519)),
    )
    .await;
    let e = the_record(&rec, &r, "InvalidArgsException", op);
    assert_eq!(e.principal_arn.as_deref(), Some(ROOT_ARN));
    assert_eq!(e.instance_id, None);
    assert_eq!(e.key_fingerprint, fingerprint(ED25519));
    assert_eq!(e.target.as_deref(), Some("port0"));

    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(RUNNING, 0, "ssh-rsa AAAA")),
    )
    .await;
    let e = the_record(&rec, &r, "InvalidArgsException", op);
    assert_eq!(e.instance_id.as_deref(), Some(RUNNING));
    assert_eq!(e.key_fingerprint, None);

    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(RUNNING, 7, ED25519)),
    )
    .await;
    let e = the_record(&rec, &r, "InvalidArgsException", op);
    assert_eq!(
        (e.instance_id.as_deref(), e.target.as_deref()),
        (Some(RUNNING), None)
    );

    let r = send(&s, &json(&s, AK, SK, SERIAL, r#"{"InstanceId":"#)).await;
    the_record(&rec, &r, "SerializationException", op);

    let body = serde_json::json!({"InstanceId": RUNNING, "InstanceOSUser": "-bad", "SSHPublicKey": ED25519}).to_string();
    let r = send(&s, &json(&s, AK, SK, OS_USER, &body)).await;
    let e = the_record(&rec, &r, "InvalidArgsException", "SendSSHPublicKey");
    assert_eq!(e.target, None);

    // An operation this service does not have is recorded under the name asked for.
    let target = "AWSEC2InstanceConnectService.RunInstances";
    let r = send(&s, &json(&s, AK, SK, target, "{}")).await;
    the_record(&rec, &r, "UnknownOperationException", "RunInstances");

    // Refused by the domain: recorded there, once.
    let r = send(
        &s,
        &json(&s, AK_LIMITED, SK, SERIAL, &push_body(RUNNING, 0, ED25519)),
    )
    .await;
    let e = the_record(&rec, &r, "AuthException", op);
    assert_eq!(
        e.principal_arn.as_deref(),
        Some("arn:aws:iam::111122223333:user/limited")
    );
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(ABSENT, 0, ED25519)),
    )
    .await;
    assert_eq!(
        the_record(&rec, &r, "EC2InstanceNotFoundException", op)
            .instance_id
            .as_deref(),
        Some(ABSENT)
    );
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(STOPPED, 0, ED25519)),
    )
    .await;
    the_record(&rec, &r, "EC2InstanceStateInvalidException", op);

    // A success, then the same port while a session holds it.
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(RUNNING, 0, ED25519)),
    )
    .await;
    let e = the_record(&rec, &r, "success", op);
    assert_eq!(e.key_fingerprint, fingerprint(ED25519));
    let key = SshPublicKey::parse(ED25519).unwrap();
    let id = InstanceId::parse(RUNNING).unwrap();
    s.service
        .open_session(&id, SerialPort::ZERO, key.key_data(), "test/1")
        .await
        .unwrap();
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(RUNNING, 0, ED25519)),
    )
    .await;
    the_record(&rec, &r, "SerialConsoleSessionLimitExceededException", op);

    // Nothing unauthenticated so far, so nothing counted.
    s.stop().await;
    assert!(rec.refusals.lock().unwrap().is_empty());
}

#[tokio::test]
async fn every_ec2_call_is_recorded_once_with_the_ec2_code() {
    let (s, rec) = recorded(ROOMY).await;

    let r = call(&s, "GetSerialConsoleAccessStatus", &[]).await;
    the_record(&rec, &r, "success", "GetSerialConsoleAccessStatus");

    let r = call(&s, "GetConsoleOutput", &[("InstanceId", RUNNING)]).await;
    let e = the_record(&rec, &r, "success", "GetConsoleOutput");
    assert_eq!(e.instance_id.as_deref(), Some(RUNNING));

    let r = call(&s, "DescribeInstances", &[("InstanceId.1", "nope")]).await;
    let e = the_record(&rec, &r, "InvalidInstanceID.Malformed", "DescribeInstances");
    assert_eq!(e.instance_id, None);

    let r = call(
        &s,
        "DescribeInstances",
        &[("InstanceId.1", RUNNING), ("InstanceId.2", ABSENT)],
    )
    .await;
    let e = the_record(&rec, &r, "InvalidInstanceID.NotFound", "DescribeInstances");
    assert_eq!(
        e.instance_id.as_deref(),
        Some(format!("{RUNNING},{ABSENT}").as_str())
    );

    let r = call(&s, "RebootInstances", &[("InstanceId.1", STOPPED)]).await;
    the_record(&rec, &r, "IncorrectInstanceState", "RebootInstances");

    let r = call(
        &s,
        "StopInstances",
        &[("InstanceId.1", RUNNING), ("DryRun", "true")],
    )
    .await;
    the_record(&rec, &r, "DryRunOperation", "StopInstances");

    let r = call_as(
        &s,
        AK_LIMITED,
        "GetConsoleOutput",
        &[("InstanceId", RUNNING)],
    )
    .await;
    the_record(&rec, &r, "UnauthorizedOperation", "GetConsoleOutput");

    let r = call(&s, "RunInstances", &[]).await;
    the_record(&rec, &r, "InvalidAction", "RunInstances");

    let r = call(&s, "DescribeInstances", &[("DryRun", "maybe")]).await;
    the_record(&rec, &r, "InvalidParameterValue", "DescribeInstances");
}

#[tokio::test]
async fn throttled_and_failed_calls_are_recorded() {
    let tight = ThrottleConfig {
        rate_per_second: 0.001,
        burst: 1,
    };
    let (s, rec) = recorded(tight).await;
    let op = "SendSerialConsoleSSHPublicKey";
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(RUNNING, 0, ED25519)),
    )
    .await;
    the_record(&rec, &r, "success", op);
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(RUNNING, 0, ED25519)),
    )
    .await;
    the_record(&rec, &r, "ThrottlingException", op);
    let r = call(&s, "GetSerialConsoleAccessStatus", &[]).await;
    the_record(
        &rec,
        &r,
        "RequestLimitExceeded",
        "GetSerialConsoleAccessStatus",
    );

    let (s, rec) = recorded_with(ROOMY, |svc| svc.with_throttle(Arc::new(BrokenThrottle))).await;
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(RUNNING, 0, ED25519)),
    )
    .await;
    the_record(&rec, &r, "ServiceException", op);
    let r = call(&s, "DescribeInstances", &[]).await;
    the_record(&rec, &r, "InternalError", "DescribeInstances");
}

/// A refusal stays the refusal its caller gets when its record cannot be written; a success
/// whose record cannot be written is not acknowledged.
#[tokio::test]
async fn a_failed_record_changes_no_refusal_and_fails_a_success() {
    let (s, rec) = recorded(ROOMY).await;
    rec.fail.store(true, Ordering::SeqCst);

    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body("i-nope", 0, ED25519)),
    )
    .await;
    assert_eq!(answer(&r).1, "InvalidArgsException");
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(ABSENT, 0, ED25519)),
    )
    .await;
    assert_eq!(answer(&r).1, "EC2InstanceNotFoundException");
    let r = call(&s, "DescribeInstances", &[("InstanceId.1", "nope")]).await;
    r.assert_ec2_error(400, "InvalidInstanceID.Malformed");

    let r = call(&s, "GetSerialConsoleAccessStatus", &[]).await;
    r.assert_ec2_error(500, "InternalError");
    let r = send(
        &s,
        &json(&s, AK, SK, SERIAL, &push_body(RUNNING, 0, ED25519)),
    )
    .await;
    assert_eq!(answer(&r).1, "ServiceException");
    assert!(rec.calls.lock().unwrap().is_empty());
}

/// Junk is counted, not recorded: per source, reason and code, with the access key id only
/// when it is well formed, written as one record each when the server stops.
#[tokio::test]
async fn unauthenticated_refusals_are_counted_per_source_and_reason() {
    let rec = Arc::new(Recorder::default());
    let sink = Arc::clone(&rec) as Arc<dyn AuditSink>;
    let s = start_custom(
        ROOMY,
        |svc| svc.with_audit(sink),
        // No window ends during the test: only the stop writes.
        |state| state.refusal_window = Duration::from_secs(3600),
    )
    .await;

    const N: u64 = 20;
    for _ in 0..N {
        let r = send(
            &s,
            &json(&s, UNKNOWN_AK, SK, SERIAL, &push_body(RUNNING, 0, ED25519)),
        )
        .await;
        assert_eq!(answer(&r).1, "UnrecognizedClientException");
    }
    for _ in 0..3 {
        let r = send(&s, &json(&s, AK, "not-the-secret", SERIAL, "{}")).await;
        assert_eq!(answer(&r).1, "InvalidSignatureException");
    }
    let ec2 = signed(
        &s.addr.to_string(),
        AK,
        "not-the-secret",
        REGION,
        "ec2",
        SystemTime::now(),
        form_headers(),
        &form("DescribeInstances", &[]),
    );
    for _ in 0..2 {
        send(&s, &ec2).await.assert_ec2_error(401, "AuthFailure");
    }
    let mut unsigned = json(&s, AK, SK, SERIAL, "{}");
    unsigned.headers.retain(|(k, _)| k != "authorization");
    let r = send(&s, &unsigned).await;
    assert_eq!(answer(&r).1, "MissingAuthenticationTokenException");

    // None of them is an authenticated call.
    assert!(rec.calls.lock().unwrap().is_empty());
    assert!(
        rec.refusals.lock().unwrap().is_empty(),
        "the window has not ended"
    );

    s.stop().await;
    let mut got: Vec<_> = rec
        .refusals
        .lock()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e.source_ip, Some(IpAddr::from([127, 0, 0, 1])));
            assert!(e.first_ms <= e.last_ms);
            (e.reason, e.code, e.count, e.access_key_id.clone())
        })
        .collect();
    got.sort();
    let ak = Some(AK.to_owned());
    assert_eq!(
        got,
        vec![
            (
                "missing-authentication",
                "MissingAuthenticationTokenException",
                1,
                None
            ),
            ("signature-mismatch", "AuthFailure", 2, ak.clone()),
            ("signature-mismatch", "InvalidSignatureException", 3, ak),
            (
                "unknown-access-key",
                "UnrecognizedClientException",
                N,
                Some(UNKNOWN_AK.to_owned())
            ),
        ]
    );
}

/// Allowed everything but the console of [`RUNNING`] and its console output, which an explicit
/// `Deny` refuses.
const AK_DENIED: &str = "AKIDDENIED";
const NO_CONSOLE: &str = r#"{"Version": "2012-10-17", "Statement": [
    {"Sid": "Everything", "Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Sid": "NoConsole", "Effect": "Deny",
     "Action": ["ec2-instance-connect:SendSerialConsoleSSHPublicKey", "ec2:GetConsoleOutput"],
     "Resource": "arn:aws:ec2:*:111122223333:instance/i-0123456789abcdef0"}]}"#;
const NO_CONSOLE_STATEMENT: &str = r#"policy "no-console" Statement[1] (Sid "NoConsole")"#;

/// [`AK_DENIED`], and [`AK_LIMITED`] (allowed on `i-fff*` only: any other instance is an
/// implicit deny).
fn policy_credentials() -> Credentials {
    let acct = AccountId::parse(ACCT).unwrap();
    let policy = iam::Policy::parse("no-console", NO_CONSOLE).unwrap();
    let denied = Principal::new(
        format!("arn:aws:iam::{ACCT}:user/denied"),
        acct.clone(),
        &Identity {
            user: Some("denied"),
            user_id: AK_DENIED,
            tags: &[],
        },
        vec![Arc::new(policy)],
    );
    let limited =
        Principal::with_allow_list("limited", acct, Some(&["i-fff*".into()]), ActionSet::all());
    Credentials::new(
        [(AK_DENIED, denied), (AK_LIMITED, limited)].map(|(ak, principal)| CredentialEntry {
            access_key_id: ak.into(),
            secret_access_key: SecretKey::new(SK),
            session_token: None,
            principal,
        }),
    )
}

/// The stored record of the call `r` answered with `code`.
async fn stored(store: &SqliteAudit, r: &Resp, code: &str) -> AuditRecord {
    let (id, got) = answer(r);
    assert_eq!(got, code, "{}", r.body);
    let mut records: Vec<_> = store
        .query(&AuditQuery::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|rec| rec.request_id.as_deref() == Some(id.as_str()))
        .collect();
    assert_eq!(records.len(), 1, "one record per call: {records:#?}");
    records.remove(0)
}

/// What the audit store keeps of a refusal by policy: the action and resource the caller asked
/// for, and the `Deny` statement that refused it or none for an implicit deny.
fn denial(r: &AuditRecord) -> (Option<&str>, Option<&str>, Option<&str>) {
    (
        r.action.as_deref(),
        r.resource.as_deref(),
        r.statement.as_deref(),
    )
}

/// A call the caller's policies refused leaves, in the durable store, the action, the resource
/// and the deciding statement (none for an implicit deny), for a push and for an EC2 call; an
/// allowed call leaves none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_denials_are_stored_with_action_resource_and_statement() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteAudit::open(&dir.path().join("audit.db"), "node-a").unwrap());
    let sink = Arc::clone(&store) as Arc<dyn AuditSink>;
    let s = start_custom(
        ROOMY,
        |svc| svc.with_audit(sink),
        |state| state.credentials = policy_credentials(),
    )
    .await;
    let running_arn = format!("arn:aws:ec2:{REGION}:{ACCT}:instance/{RUNNING}");

    // An explicit Deny refuses the push.
    let push = push_body(RUNNING, 0, ED25519);
    let r = send(&s, &json(&s, AK_DENIED, SK, SERIAL, &push)).await;
    let rec = stored(&store, &r, "AuthException").await;
    assert_eq!(
        denial(&rec),
        (
            Some("ec2-instance-connect:SendSerialConsoleSSHPublicKey"),
            Some(running_arn.as_str()),
            Some(NO_CONSOLE_STATEMENT)
        )
    );
    assert_eq!(
        rec.principal_arn.as_deref(),
        Some("arn:aws:iam::111122223333:user/denied")
    );

    // And an EC2 call.
    let r = call_as(
        &s,
        AK_DENIED,
        "GetConsoleOutput",
        &[("InstanceId", RUNNING)],
    )
    .await;
    let rec = stored(&store, &r, "UnauthorizedOperation").await;
    assert_eq!(
        denial(&rec),
        (
            Some("ec2:GetConsoleOutput"),
            Some(running_arn.as_str()),
            Some(NO_CONSOLE_STATEMENT)
        )
    );

    // No statement allows it: an implicit deny, recorded with no statement.
    let r = send(&s, &json(&s, AK_LIMITED, SK, SERIAL, &push)).await;
    let rec = stored(&store, &r, "AuthException").await;
    assert_eq!(
        denial(&rec),
        (
            Some("ec2-instance-connect:SendSerialConsoleSSHPublicKey"),
            Some(running_arn.as_str()),
            None
        )
    );

    // Allowed, or refused for another reason: nothing of the kind.
    let r = call_as(&s, AK_DENIED, "GetSerialConsoleAccessStatus", &[]).await;
    assert_eq!(
        denial(&stored(&store, &r, "success").await),
        (None, None, None)
    );
    let r = send(
        &s,
        &json(&s, AK_DENIED, SK, SERIAL, &push_body(ABSENT, 0, ED25519)),
    )
    .await;
    let rec = stored(&store, &r, "EC2InstanceNotFoundException").await;
    assert_eq!(denial(&rec), (None, None, None));
}
