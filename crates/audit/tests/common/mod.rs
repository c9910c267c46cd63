//! What every audit store must do, written once (`sqlite.rs` and `postgres.rs` run it).
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;

use audit::{AuditLog, AuditQuery, AuditRecord};
use console::{Action, AuditEvent, AuditOutcome, Denial, RefusalEvent, SessionEvent, SessionPhase};

pub const T0: u64 = 1_800_000_000_000;

pub fn api(n: u64, instance: &str, outcome: AuditOutcome) -> AuditEvent {
    AuditEvent {
        time_ms: T0 + n,
        request_id: format!("req-{n}"),
        operation: "SendSerialConsoleSSHPublicKey".into(),
        principal_arn: Some("arn:aws:iam::111122223333:user/alice".to_owned()),
        source_ip: Some("127.0.0.1".parse::<IpAddr>().unwrap()),
        instance_id: Some(instance.to_owned()),
        target: Some("port0".to_owned()),
        key_fingerprint: Some("SHA256:abc".to_owned()),
        outcome,
        denial: None,
    }
}

pub fn session(n: u64, phase: SessionPhase) -> SessionEvent {
    SessionEvent {
        time_ms: T0 + n,
        session_id: "node-a:1/7".to_owned(),
        request_id: "req-1".to_owned(),
        principal_arn: "arn:aws:iam::111122223333:user/alice".to_owned(),
        source_ip: Some("::1".parse().unwrap()),
        instance_id: "i-0123456789abcdef0".to_owned(),
        target: "port0".to_owned(),
        key_fingerprint: "SHA256:abc".to_owned(),
        console_node: Some("node-b".to_owned()),
        recording: Some("20261127T210000Z-i-0123456789abcdef0-port0-0a1b2c3d".to_owned()),
        phase,
    }
}

/// API calls and sessions are stored whole and read back by instance and time.
pub async fn records_round_trip(store: &dyn AuditLog) {
    let a = "i-0123456789abcdef0";
    let b = "i-0fedcba987654321";
    store
        .record(&api(1, a, AuditOutcome::Success))
        .await
        .unwrap();
    store
        .record(&api(
            2,
            b,
            AuditOutcome::Error("ThrottlingException".to_owned()),
        ))
        .await
        .unwrap();
    store
        .record_session(&session(3, SessionPhase::Started))
        .await
        .unwrap();
    store
        .record_session(&session(
            4,
            SessionPhase::Ended {
                reason: "client-closed",
                duration_ms: 1234,
                bytes_in: 5,
                bytes_out: 678,
            },
        ))
        .await
        .unwrap();

    let all = store.query(&AuditQuery::default()).await.unwrap();
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_eq!(
        all[0],
        AuditRecord {
            time_ms: T0 + 1,
            kind: "api".into(),
            request_id: Some("req-1".into()),
            operation: Some("SendSerialConsoleSSHPublicKey".into()),
            session_id: None,
            principal_arn: Some("arn:aws:iam::111122223333:user/alice".into()),
            source_ip: Some("127.0.0.1".into()),
            instance_id: Some(a.into()),
            target: Some("port0".into()),
            key_fingerprint: Some("SHA256:abc".into()),
            outcome: "success".into(),
            duration_ms: None,
            bytes_in: None,
            bytes_out: None,
            node: "node-a".into(),
            count: None,
            last_time_ms: None,
            reason: None,
            access_key_id: None,
            action: None,
            resource: None,
            statement: None,
            console_node: None,
            recording: None,
        }
    );
    assert_eq!(all[1].outcome, "ThrottlingException");
    assert_eq!(all[2].kind, "session-start");
    // A session names the node that owned the console, kept apart from the writer.
    assert_eq!(all[2].console_node.as_deref(), Some("node-b"));
    // And its recording.
    assert_eq!(
        all[2].recording.as_deref(),
        Some("20261127T210000Z-i-0123456789abcdef0-port0-0a1b2c3d")
    );
    assert_eq!(all[2].source_ip.as_deref(), Some("::1"));
    let end = &all[3];
    assert_eq!(
        (
            end.kind.as_str(),
            end.outcome.as_str(),
            end.duration_ms,
            end.bytes_in,
            end.bytes_out
        ),
        (
            "session-end",
            "client-closed",
            Some(1234),
            Some(5),
            Some(678)
        )
    );
    assert_eq!(end.session_id.as_deref(), Some("node-a:1/7"));

    let only_a = store
        .query(&AuditQuery {
            instance_id: Some(a.into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(only_a.len(), 3);
    let window = store
        .query(&AuditQuery {
            since_ms: T0 + 2,
            until_ms: T0 + 4,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        window.iter().map(|r| r.time_ms - T0).collect::<Vec<_>>(),
        vec![2, 3]
    );
}

pub fn refusal(n: u64, source: Option<&str>, count: u64) -> RefusalEvent {
    RefusalEvent {
        first_ms: T0 + n,
        last_ms: T0 + n + 59_000,
        source_ip: source.map(|s| s.parse().unwrap()),
        reason: "signature-mismatch",
        code: "InvalidSignatureException",
        count,
        access_key_id: Some("AKIAIOSFODNN7EXAMPLE".to_owned()),
    }
}

/// Counted refusals are stored in one go and read back with their count, window and key id.
pub async fn refusals_round_trip(store: &dyn AuditLog) {
    let events = [
        refusal(1, Some("192.0.2.7"), 12),
        RefusalEvent {
            access_key_id: None,
            ..refusal(2, None, 3)
        },
    ];
    store.record_refusals(&events).await.unwrap();
    store.record_refusals(&[]).await.unwrap();
    let got = store
        .query(&AuditQuery {
            since_ms: T0 + 1,
            until_ms: T0 + 3,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let got: Vec<_> = got.iter().filter(|r| r.kind == "api-refused").collect();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(
        *got[0],
        AuditRecord {
            time_ms: T0 + 1,
            kind: "api-refused".into(),
            request_id: None,
            operation: None,
            session_id: None,
            principal_arn: None,
            source_ip: Some("192.0.2.7".into()),
            instance_id: None,
            target: None,
            key_fingerprint: None,
            outcome: "InvalidSignatureException".into(),
            duration_ms: None,
            bytes_in: None,
            bytes_out: None,
            node: got[0].node.clone(),
            count: Some(12),
            last_time_ms: Some(T0 + 1 + 59_000),
            reason: Some("signature-mismatch".into()),
            access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
            action: None,
            resource: None,
            statement: None,
            console_node: None,
            recording: None,
        }
    );
    assert_eq!(
        (
            got[1].source_ip.as_deref(),
            got[1].count,
            got[1].access_key_id.as_deref()
        ),
        (None, Some(3), None)
    );
}

pub const DENY_STATEMENT: &str = r#"policy "no-console" Statement[1] (Sid "NoConsole")"#;

/// A push the caller's policies refused: by `statement`, or implicitly when `None`.
pub fn denied(n: u64, instance: &str, statement: Option<&str>) -> AuditEvent {
    let principal_arn = "arn:aws:iam::111122223333:user/alice".to_owned();
    AuditEvent {
        denial: Some(Denial {
            principal_arn: principal_arn.clone(),
            action: Action::SendSerialConsoleSSHPublicKey,
            resource: format!("arn:aws:ec2:us-east-1:111122223333:instance/{instance}"),
            denied_by: statement.map(str::to_owned),
        }),
        principal_arn: Some(principal_arn),
        ..api(n, instance, AuditOutcome::Error("AuthException".to_owned()))
    }
}

/// Calls the caller's policies refused are read back with the action, the resource and the
/// deciding statement (none for an implicit deny); other calls carry none of the three.
pub async fn denials_round_trip(store: &dyn AuditLog) {
    let a = "i-0123456789abcdef0";
    store
        .record(&denied(21, a, Some(DENY_STATEMENT)))
        .await
        .unwrap();
    store.record(&denied(22, a, None)).await.unwrap();
    store
        .record(&api(23, a, AuditOutcome::Success))
        .await
        .unwrap();
    let got = store
        .query(&AuditQuery {
            since_ms: T0 + 21,
            until_ms: T0 + 24,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let denial = |r: &AuditRecord| {
        (
            r.action.clone(),
            r.resource.clone(),
            r.statement.clone(),
            r.outcome.clone(),
        )
    };
    let action = Some("ec2-instance-connect:SendSerialConsoleSSHPublicKey".to_owned());
    let resource = Some(format!("arn:aws:ec2:us-east-1:111122223333:instance/{a}"));
    let refused = "AuthException".to_owned();
    assert_eq!(
        got.iter().map(denial).collect::<Vec<_>>(),
        vec![
            (
                action.clone(),
                resource.clone(),
                Some(DENY_STATEMENT.to_owned()),
                refused.clone()
            ),
            (action, resource, None, refused),
            (None, None, None, "success".to_owned()),
        ],
        "{got:#?}"
    );
}

/// Many writers at once: every acknowledged record is there.
pub async fn concurrent_writes_are_all_kept(store: Arc<dyn AuditLog>) {
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .record(&api(1000 + n, "i-0aaaaaaaaaaaaaaa1", AuditOutcome::Success))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = store
        .query(&AuditQuery {
            instance_id: Some("i-0aaaaaaaaaaaaaaa1".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(got.len(), 200);
}
