//! The push operations against the in-memory stores, with an injected clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use console::leases::Slot;
use console::ops::{PushOsUserKey, PushSerialKey};
use console::service::RequestContext;
use console::*;

const KEY: &str = include_str!("../../../testdata/keys/ed25519.pub");
const OTHER_KEY: &str = include_str!("../../../testdata/keys/rsa2048.pub");
const ACCT: &str = "111122223333";
const RUNNING: &str = "i-0123456789abcdef0";

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_account(Account::new(AccountId::parse(ACCT).unwrap(), true));
    r.add_account(Account::new(
        AccountId::parse("444455556666").unwrap(),
        false,
    ));
    let add = |r: &mut Registry, id: &str, acct: &str, ty: &str, state, bios| {
        r.add_instance(Instance::new(
            InstanceId::parse(id).unwrap(),
            AccountId::parse(acct).unwrap(),
            ty.into(),
            AvailabilityZone::parse("us-east-1a").unwrap(),
            BTreeMap::new(),
            bios,
            "sim:".into(),
            state,
        ));
    };
    add(
        &mut r,
        RUNNING,
        ACCT,
        "t3.micro",
        InstanceState::Running,
        false,
    );
    add(
        &mut r,
        "i-00000000000000001",
        ACCT,
        "t2.micro",
        InstanceState::Running,
        false,
    );
    add(
        &mut r,
        "i-00000000000000002",
        ACCT,
        "t3.micro",
        InstanceState::Stopped,
        false,
    );
    add(
        &mut r,
        "i-00000000000000003",
        ACCT,
        "t3.micro",
        InstanceState::Running,
        true,
    );
    add(
        &mut r,
        "i-00000000000000004",
        "444455556666",
        "t3.micro",
        InstanceState::Running,
        false,
    );
    add(
        &mut r,
        "i-00000000000000005",
        ACCT,
        "t3.micro",
        InstanceState::Running,
        false,
    );
    r
}

/// Fails for one instance, so unreachable consoles can be tested.
#[derive(Debug)]
struct ProbeFailsFor(&'static str);

#[async_trait]
impl ConsoleProbe for ProbeFailsFor {
    async fn probe(&self, instance: &Instance) -> Result<(), String> {
        if instance.id.as_str() == self.0 {
            Err("connection refused".into())
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, Default)]
struct FlakyAudit {
    fail: AtomicBool,
    records: std::sync::Mutex<Vec<AuditEvent>>,
}

#[async_trait]
impl AuditSink for FlakyAudit {
    async fn record(&self, e: &AuditEvent) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(StoreError::new("disk full"));
        }
        self.records.lock().unwrap().push(e.clone());
        Ok(())
    }
}

struct Fixture {
    service: ConsoleService,
    clock: ManualClock,
    audit: Arc<FlakyAudit>,
}

fn fixture(throttle: ThrottleConfig) -> Fixture {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let audit = Arc::new(FlakyAudit::default());
    let service = ConsoleService::new(registry(), Settings::default(), throttle)
        .with_clock(Arc::new(clock.clone()))
        .with_probe(Arc::new(ProbeFailsFor("i-00000000000000005")))
        .with_audit(audit.clone());
    Fixture {
        service,
        clock,
        audit,
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        request_id: "req-1".into(),
        principal: Principal::account_root(AccountId::parse(ACCT).unwrap()),
        source_ip: None,
        secure_transport: false,
    }
}

fn push(id: &str, key: &str) -> PushSerialKey {
    PushSerialKey {
        instance_id: InstanceId::parse(id).unwrap(),
        port: SerialPort::ZERO,
        key: SshPublicKey::parse(key).unwrap(),
    }
}

async fn code_of(f: &Fixture, c: &RequestContext, id: &str) -> &'static str {
    match f.service.push_serial_key(c, push(id, KEY)).await {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[tokio::test]
async fn grant_lives_exactly_ttl() {
    let f = fixture(ThrottleConfig::default());
    let receipt = f
        .service
        .push_serial_key(&ctx(), push(RUNNING, KEY))
        .await
        .unwrap();
    let start = f.clock.now_ms();
    assert_eq!(receipt.expires_at_ms, start + 60_000);
    let key = GrantKey::serial(InstanceId::parse(RUNNING).unwrap(), SerialPort::ZERO);
    let live = f
        .service
        .grants()
        .find(&key, start + 59_999)
        .await
        .unwrap()
        .unwrap();
    assert!(
        live.key
            .matches(SshPublicKey::parse(KEY).unwrap().key_data())
    );
    assert_eq!(live.principal_arn, "arn:aws:iam::111122223333:root");
    assert_eq!(live.request_id, "req-1");
    assert!(
        f.service
            .grants()
            .find(&key, start + 60_000)
            .await
            .unwrap()
            .is_none()
    );
    // A new push replaces the key.
    f.service
        .push_serial_key(&ctx(), push(RUNNING, OTHER_KEY))
        .await
        .unwrap();
    let g = f.service.grants().find(&key, start).await.unwrap().unwrap();
    assert!(
        g.key
            .matches(SshPublicKey::parse(OTHER_KEY).unwrap().key_data())
    );
}

#[tokio::test]
async fn background_purge_drops_expired_grants() {
    let f = fixture(ThrottleConfig::default());
    f.service
        .push_serial_key(&ctx(), push(RUNNING, KEY))
        .await
        .unwrap();
    assert_eq!(
        f.service
            .grants()
            .purge_expired(f.clock.now_ms())
            .await
            .unwrap(),
        0
    );
    f.clock.advance(Duration::from_secs(61));
    assert_eq!(
        f.service
            .grants()
            .purge_expired(f.clock.now_ms())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn every_refusal_in_order() {
    let f = fixture(ThrottleConfig::default());
    let c = ctx();
    assert_eq!(
        code_of(&f, &c, "i-0000000000000000f").await,
        "EC2InstanceNotFoundException"
    );
    assert_eq!(
        code_of(&f, &c, "i-00000000000000001").await,
        "EC2InstanceTypeInvalidException"
    );
    assert_eq!(
        code_of(&f, &c, "i-00000000000000002").await,
        "EC2InstanceStateInvalidException"
    );
    assert_eq!(
        code_of(&f, &c, "i-00000000000000003").await,
        "SerialConsoleSessionUnsupportedException"
    );
    // Another account's instance does not exist for the caller.
    assert_eq!(
        code_of(&f, &c, "i-00000000000000004").await,
        "EC2InstanceNotFoundException"
    );
    assert_eq!(
        code_of(&f, &c, "i-00000000000000005").await,
        "EC2InstanceUnavailableException"
    );

    let acct = AccountId::parse(ACCT).unwrap();
    let mut restricted = ctx();
    restricted.principal = Principal::with_allow_list(
        "restricted",
        acct.clone(),
        Some(&["i-fff*".into()]),
        ActionSet::all(),
    );
    assert_eq!(code_of(&f, &restricted, RUNNING).await, "AuthException");
    let mut wrong_action = ctx();
    wrong_action.principal = Principal::with_allow_list(
        "wrong-action",
        acct,
        None,
        [console::Action::SendSSHPublicKey].into_iter().collect(),
    );
    assert_eq!(code_of(&f, &wrong_action, RUNNING).await, "AuthException");

    let acct = f
        .service
        .registry()
        .account(&AccountId::parse(ACCT).unwrap())
        .unwrap();
    acct.set_serial_console_access(false);
    assert_eq!(
        code_of(&f, &c, RUNNING).await,
        "SerialConsoleAccessDisabledException"
    );
    acct.set_serial_console_access(true);
    assert_eq!(code_of(&f, &c, RUNNING).await, "ok");
}

#[tokio::test]
async fn session_slot_and_teardown_block_pushes() {
    let f = fixture(ThrottleConfig::default());
    let slot = Slot {
        instance: InstanceId::parse(RUNNING).unwrap(),
        port: SerialPort::ZERO,
    };
    let now = f.clock.now_ms();
    let lease = f
        .service
        .leases()
        .acquire(&slot, "test", 15_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        code_of(&f, &ctx(), RUNNING).await,
        "SerialConsoleSessionLimitExceededException"
    );
    f.service.leases().release(&lease, now).await.unwrap();
    f.clock.advance(Duration::from_millis(29_999));
    assert_eq!(
        code_of(&f, &ctx(), RUNNING).await,
        "SerialConsoleSessionLimitExceededException"
    );
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(code_of(&f, &ctx(), RUNNING).await, "ok");
}

#[tokio::test]
async fn throttle_per_account() {
    let f = fixture(ThrottleConfig {
        rate_per_second: 1.0,
        burst: 2,
    });
    assert_eq!(code_of(&f, &ctx(), RUNNING).await, "ok");
    assert_eq!(code_of(&f, &ctx(), RUNNING).await, "ok");
    assert_eq!(code_of(&f, &ctx(), RUNNING).await, "ThrottlingException");
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(code_of(&f, &ctx(), RUNNING).await, "ok");
}

#[tokio::test]
async fn audit_records_every_outcome() {
    let f = fixture(ThrottleConfig::default());
    f.service
        .push_serial_key(&ctx(), push(RUNNING, KEY))
        .await
        .unwrap();
    assert_eq!(
        code_of(&f, &ctx(), "i-00000000000000002").await,
        "EC2InstanceStateInvalidException"
    );
    let records = f.audit.records.lock().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].outcome, AuditOutcome::Success);
    assert_eq!(
        records[0].key_fingerprint.as_deref(),
        Some(SshPublicKey::parse(KEY).unwrap().fingerprint())
    );
    assert_eq!(
        records[1].outcome,
        AuditOutcome::Error("EC2InstanceStateInvalidException".into())
    );
}

fn ctx_with(request_id: &str) -> RequestContext {
    RequestContext {
        request_id: request_id.into(),
        ..ctx()
    }
}

/// Audit first: a push whose record cannot be written stores nothing. The previous caller's
/// grant is still the one found and still opens its session; on a port without a grant, the
/// refused push leaves none.
#[tokio::test]
async fn a_push_whose_audit_fails_leaves_the_previous_grant() {
    let f = fixture(ThrottleConfig::default());
    let id = InstanceId::parse(RUNNING).unwrap();
    let gk = GrantKey::serial(id.clone(), SerialPort::ZERO);
    f.service
        .push_serial_key(&ctx_with("req-1"), push(RUNNING, KEY))
        .await
        .unwrap();

    f.audit.fail.store(true, Ordering::SeqCst);
    let err = f
        .service
        .push_serial_key(&ctx_with("req-2"), push(RUNNING, OTHER_KEY))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ServiceException");
    let err = f
        .service
        .push_os_user_key(
            &ctx_with("req-3"),
            PushOsUserKey {
                instance_id: InstanceId::parse(RUNNING).unwrap(),
                os_user: OsUser::parse("ec2-user").unwrap(),
                key: SshPublicKey::parse(OTHER_KEY).unwrap(),
                availability_zone: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ServiceException");
    f.audit.fail.store(false, Ordering::SeqCst);

    let now = f.clock.now_ms();
    let found = f.service.grants().find(&gk, now).await.unwrap().unwrap();
    assert_eq!(found.request_id, "req-1");
    assert!(!found.used);
    let user = GrantKey {
        instance: id.clone(),
        target: GrantTarget::OsUser(OsUser::parse("ec2-user").unwrap()),
    };
    assert_eq!(f.service.grants().find(&user, now).await.unwrap(), None);
    // The refused key opens nothing; the previous one opens its session.
    let other = SshPublicKey::parse(OTHER_KEY).unwrap();
    assert_eq!(
        f.service
            .open_session(&id, SerialPort::ZERO, other.key_data(), "t")
            .await
            .err(),
        Some(console::ops::SessionDenied::NoGrant)
    );
    let key = SshPublicKey::parse(KEY).unwrap();
    let opened = f
        .service
        .open_session(&id, SerialPort::ZERO, key.key_data(), "t")
        .await
        .unwrap();
    assert_eq!(opened.grant.request_id, "req-1");
    // Only the acknowledged push is in the trail.
    let records = f.audit.records.lock().unwrap();
    let ids: Vec<_> = records.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids, ["req-1"]);
}

/// A refusal stays the refusal its caller gets when its record cannot be written (only a
/// success needs its record to stand).
#[tokio::test]
async fn a_refused_push_whose_audit_fails_keeps_its_error() {
    let f = fixture(ThrottleConfig::default());
    f.audit.fail.store(true, Ordering::SeqCst);
    assert_eq!(
        code_of(&f, &ctx(), "i-00000000000000002").await,
        "EC2InstanceStateInvalidException"
    );
    let c = ctx();
    f.service
        .record_refused(
            &c,
            "SendSerialConsoleSSHPublicKey",
            CallSubject::default(),
            "InvalidArgsException",
            None,
        )
        .await;
    let err = f
        .service
        .record_answered(&c, "GetSerialConsoleAccessStatus", CallSubject::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ServiceException");
    f.audit.fail.store(false, Ordering::SeqCst);
    f.service
        .record_refused(
            &c,
            "SendSerialConsoleSSHPublicKey",
            CallSubject {
                instance_id: Some(RUNNING.into()),
                ..CallSubject::default()
            },
            "InvalidArgsException",
            None,
        )
        .await;
    let records = f.audit.records.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].outcome,
        AuditOutcome::Error("InvalidArgsException".into())
    );
    assert_eq!(records[0].instance_id.as_deref(), Some(RUNNING));
    assert_eq!(
        records[0].principal_arn.as_deref(),
        Some(c.principal.arn.as_str())
    );
}

#[tokio::test]
async fn os_user_grants_are_separate_and_check_zone() {
    let f = fixture(ThrottleConfig::default());
    let req = |az: Option<&str>| PushOsUserKey {
        instance_id: InstanceId::parse(RUNNING).unwrap(),
        os_user: OsUser::parse("ec2-user").unwrap(),
        key: SshPublicKey::parse(KEY).unwrap(),
        availability_zone: az.map(|a| AvailabilityZone::parse(a).unwrap()),
    };
    f.service
        .push_os_user_key(&ctx(), req(Some("us-east-1a")))
        .await
        .unwrap();
    f.service.push_os_user_key(&ctx(), req(None)).await.unwrap();
    let err = f
        .service
        .push_os_user_key(&ctx(), req(Some("us-east-1b")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "EC2InstanceNotFoundException");
    // The OS-user grant does not open the serial port.
    let serial = GrantKey::serial(InstanceId::parse(RUNNING).unwrap(), SerialPort::ZERO);
    assert!(
        f.service
            .grants()
            .find(&serial, f.clock.now_ms())
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_grant_opens_exactly_one_session_within_its_window() {
    let f = fixture(ThrottleConfig::default());
    let id = InstanceId::parse(RUNNING).unwrap();
    let gk = GrantKey::serial(id.clone(), SerialPort::ZERO);
    let key = SshPublicKey::parse(KEY).unwrap();
    let other = SshPublicKey::parse(OTHER_KEY).unwrap();
    let deny = |r: Result<console::ops::OpenedSession, console::ops::SessionDenied>| r.err();

    // No push yet.
    assert_eq!(
        deny(
            f.service
                .open_session(&id, SerialPort::ZERO, key.key_data(), "t")
                .await
        ),
        Some(console::ops::SessionDenied::NoGrant)
    );
    f.service
        .push_serial_key(&ctx(), push(RUNNING, KEY))
        .await
        .unwrap();
    // Wrong key, wrong port.
    assert!(
        f.service
            .open_session(&id, SerialPort::ZERO, other.key_data(), "t")
            .await
            .is_err()
    );
    assert!(
        f.service
            .open_session(&id, SerialPort::new(1), key.key_data(), "t")
            .await
            .is_err()
    );
    f.clock.advance(Duration::from_secs(1));
    let opened = f
        .service
        .open_session(&id, SerialPort::ZERO, key.key_data(), "t")
        .await
        .unwrap();
    assert_eq!(opened.grant.request_id, "req-1");
    // A second client with the same key is told the slot is busy, not refused as a stranger.
    assert!(matches!(
        deny(
            f.service
                .open_session(&id, SerialPort::ZERO, key.key_data(), "t2")
                .await
        ),
        Some(console::ops::SessionDenied::LimitExceeded(_))
    ));
    // After the session and its teardown, well inside the grant's 60 s: the grant is still
    // live, and spent, so it opens nothing.
    f.service.end_session(&opened.lease).await.unwrap();
    f.clock.advance(Duration::from_secs(30));
    let live = f
        .service
        .grants()
        .find(&gk, f.clock.now_ms())
        .await
        .unwrap()
        .expect("the grant is still live");
    assert!(live.used);
    assert!(f.clock.now_ms() < live.expires_at_ms);
    assert!(
        f.service
            .leases()
            .state(
                &Slot {
                    instance: id.clone(),
                    port: SerialPort::ZERO
                },
                f.clock.now_ms()
            )
            .await
            .unwrap()
            .is_free()
    );
    assert_eq!(
        deny(
            f.service
                .open_session(&id, SerialPort::ZERO, key.key_data(), "t")
                .await
        ),
        Some(console::ops::SessionDenied::NoGrant)
    );
}

#[tokio::test]
async fn a_grant_opens_in_its_last_millisecond() {
    let f = fixture(ThrottleConfig::default());
    let id = InstanceId::parse(RUNNING).unwrap();
    let key = SshPublicKey::parse(KEY).unwrap();
    f.service
        .push_serial_key(&ctx(), push(RUNNING, KEY))
        .await
        .unwrap();
    f.clock.advance(Duration::from_millis(59_999));
    f.service
        .open_session(&id, SerialPort::ZERO, key.key_data(), "t")
        .await
        .unwrap();
}

#[tokio::test]
async fn grant_expires_at_the_window_edge() {
    let f = fixture(ThrottleConfig::default());
    let id = InstanceId::parse(RUNNING).unwrap();
    let key = SshPublicKey::parse(KEY).unwrap();
    f.service
        .push_serial_key(&ctx(), push(RUNNING, KEY))
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(60));
    assert_eq!(
        f.service
            .open_session(&id, SerialPort::ZERO, key.key_data(), "t")
            .await
            .err(),
        Some(console::ops::SessionDenied::NoGrant)
    );
}

fn instance_keys_request(user: &str) -> console::ops::InstanceKeysRequest {
    console::ops::InstanceKeysRequest {
        request_id: "fetch-1".into(),
        source_ip: Some("10.0.0.7".parse().unwrap()),
        instance_id: InstanceId::parse(RUNNING).unwrap(),
        os_user: OsUser::parse(user).unwrap(),
    }
}

fn os_user_push(user: &str) -> PushOsUserKey {
    PushOsUserKey {
        instance_id: InstanceId::parse(RUNNING).unwrap(),
        os_user: OsUser::parse(user).unwrap(),
        key: SshPublicKey::parse(KEY).unwrap(),
        availability_zone: None,
    }
}

#[tokio::test]
async fn an_instance_gets_its_users_live_grant_and_each_answer_is_recorded() {
    let f = fixture(ThrottleConfig::default());
    let receipt = f
        .service
        .push_os_user_key(&ctx(), os_user_push("ec2-user"))
        .await
        .unwrap();
    let pushed_records = f.audit.records.lock().unwrap().len();

    let grants = f
        .service
        .instance_keys(&instance_keys_request("ec2-user"))
        .await
        .unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].principal_arn, "arn:aws:iam::111122223333:root");
    assert_eq!(grants[0].request_id, "req-1");
    assert_eq!(grants[0].expires_at_ms, receipt.expires_at_ms);
    let records = f.audit.records.lock().unwrap().clone();
    assert_eq!(records.len(), pushed_records + 1);
    let served = records.last().unwrap();
    assert_eq!(served.operation, "GetInstanceKeys");
    assert_eq!(served.request_id, "fetch-1");
    assert_eq!(
        served.principal_arn.as_deref(),
        Some("arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0")
    );
    assert_eq!(served.instance_id.as_deref(), Some(RUNNING));
    assert_eq!(served.target.as_deref(), Some("user:ec2-user"));
    assert_eq!(
        served.key_fingerprint.as_deref(),
        Some(SshPublicKey::parse(KEY).unwrap().fingerprint())
    );
    assert_eq!(served.outcome, AuditOutcome::Success);

    // Another user has none, and an empty answer is not recorded.
    let none = f
        .service
        .instance_keys(&instance_keys_request("root"))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(f.audit.records.lock().unwrap().len(), pushed_records + 1);

    // Nothing once the grant expired.
    f.clock.advance(Duration::from_secs(60));
    let expired = f
        .service
        .instance_keys(&instance_keys_request("ec2-user"))
        .await
        .unwrap();
    assert!(expired.is_empty());
}

#[tokio::test]
async fn no_key_reaches_an_instance_without_its_record() {
    let f = fixture(ThrottleConfig::default());
    f.service
        .push_os_user_key(&ctx(), os_user_push("ec2-user"))
        .await
        .unwrap();
    f.audit.fail.store(true, Ordering::SeqCst);
    let err = f
        .service
        .instance_keys(&instance_keys_request("ec2-user"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ServiceException");
}

#[tokio::test]
async fn a_spectator_grant_ignores_the_slot_and_opens_one_view() {
    let f = fixture(ThrottleConfig::default());
    let id = InstanceId::parse(RUNNING).unwrap();
    let key = SshPublicKey::parse(KEY).unwrap();
    let other = SshPublicKey::parse(OTHER_KEY).unwrap();
    let watch = |k: &SshPublicKey| {
        let data = k.key_data().clone();
        let service = &f.service;
        let id = id.clone();
        async move { service.open_spectator(&id, SerialPort::ZERO, &data).await }
    };
    // A session holds the port: the serial push is refused, the spectator's is not.
    let slot = Slot {
        instance: id.clone(),
        port: SerialPort::ZERO,
    };
    let now = f.clock.now_ms();
    f.service
        .leases()
        .acquire(&slot, "writer", 15_000, now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        code_of(&f, &ctx(), RUNNING).await,
        "SerialConsoleSessionLimitExceededException"
    );
    assert_eq!(
        watch(&key).await.unwrap_err(),
        console::ops::SessionDenied::NoGrant
    );
    f.service
        .push_spectator_key(&ctx(), push(RUNNING, KEY))
        .await
        .unwrap();
    // Another key, or the port's own grant, does not watch; the pushed key does, once.
    assert!(watch(&other).await.is_err());
    let spectator = watch(&key).await.unwrap();
    assert_eq!(spectator.instance.id, id);
    assert_eq!(spectator.grant.key, key);
    assert_eq!(
        watch(&key).await.unwrap_err(),
        console::ops::SessionDenied::NoGrant
    );
    // The same rules as a serial push otherwise: a stopped instance, an unreachable console.
    for (instance, code) in [
        ("i-00000000000000002", "EC2InstanceStateInvalidException"),
        ("i-00000000000000005", "EC2InstanceUnavailableException"),
    ] {
        let refused = f
            .service
            .push_spectator_key(&ctx(), push(instance, KEY))
            .await
            .unwrap_err();
        assert_eq!(refused.code(), code, "{instance}");
    }
    // Every call is audited under its own operation name.
    let records = f.audit.records.lock().unwrap();
    let spectate: Vec<_> = records
        .iter()
        .filter(|r| r.operation == "SpectateSerialConsole")
        .collect();
    assert_eq!(spectate.len(), 3, "{spectate:?}");
}
