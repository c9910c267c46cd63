//! The real AWS SDK for Rust against a running serialgate API: success and every exception.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_ec2instanceconnect::Client;
use aws_sdk_ec2instanceconnect::config::retry::RetryConfig;
use aws_sdk_ec2instanceconnect::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2instanceconnect::error::ProvideErrorMetadata;
use aws_sdk_ec2instanceconnect::operation::send_serial_console_ssh_public_key::SendSerialConsoleSSHPublicKeyError as SerialErr;
use common::*;
use console::leases::{Lease, Slot, SlotState};
use console::{
    Grant, GrantKey, GrantStore, OpenOutcome, PushOutcome, SessionLeases, SlotStore, StoreError,
    ThrottleConfig,
};

fn client_with(url: &str, ak: &str, token: Option<&str>) -> Client {
    let conf = aws_sdk_ec2instanceconnect::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(url)
        .credentials_provider(Credentials::new(
            ak,
            SK,
            token.map(str::to_owned),
            None,
            "test",
        ))
        // Retries would hide which error the first answer carried.
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

fn client(s: &Server) -> Client {
    client_with(&s.url(), AK, None)
}

/// Pushes a serial key and returns the error code and message, or "ok".
async fn serial(c: &Client, id: &str, port: Option<i32>, key: &str) -> (String, String) {
    let mut req = c
        .send_serial_console_ssh_public_key()
        .instance_id(id)
        .ssh_public_key(key);
    if let Some(p) = port {
        req = req.serial_port(p);
    }
    match req.send().await {
        Ok(out) => {
            assert!(out.success());
            assert!(out.request_id().is_some_and(|r| r.len() == 36));
            ("ok".into(), String::new())
        }
        Err(e) => {
            let se = e.into_service_error();
            (
                se.code().unwrap_or("?").to_owned(),
                se.message().unwrap_or("").to_owned(),
            )
        }
    }
}

#[tokio::test]
async fn serial_push_succeeds_with_ed25519_and_rsa() {
    let s = start().await;
    let c = client(&s);
    assert_eq!(serial(&c, RUNNING, Some(0), ED25519).await.0, "ok");
    assert_eq!(serial(&c, RUNNING, None, RSA2048).await.0, "ok");
}

#[tokio::test]
async fn request_id_matches_header() {
    let s = start().await;
    let out = client(&s)
        .send_serial_console_ssh_public_key()
        .instance_id(RUNNING)
        .ssh_public_key(ED25519)
        .send()
        .await
        .unwrap();
    // The body's RequestId and the x-amzn-RequestId header the SDK reads must agree.
    let from_header = aws_sdk_ec2instanceconnect::operation::RequestId::request_id(&out);
    assert!(from_header.is_some());
    assert_eq!(from_header, out.request_id.as_deref());
}

#[tokio::test]
async fn ssh_public_key_push_succeeds() {
    let s = start().await;
    let out = client(&s)
        .send_ssh_public_key()
        .instance_id(RUNNING)
        .instance_os_user("ec2-user")
        .ssh_public_key(ED25519)
        .availability_zone("us-east-1a")
        .send()
        .await
        .unwrap();
    assert!(out.success());
    let err = client(&s)
        .send_ssh_public_key()
        .instance_id(RUNNING)
        .instance_os_user("-bad")
        .ssh_public_key(ED25519)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_invalid_args_exception(), "{err:?}");
    assert!(err.message().unwrap().contains("InstanceOSUser"));
}

#[tokio::test]
async fn typed_exceptions_reach_the_sdk() {
    let s = start().await;
    let c = client(&s);
    let err = c
        .send_serial_console_ssh_public_key()
        .instance_id("i-0000000000000000f")
        .ssh_public_key(ED25519)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, SerialErr::Ec2InstanceNotFoundException(_)),
        "{err:?}"
    );
    let err = c
        .send_serial_console_ssh_public_key()
        .instance_id(STOPPED)
        .ssh_public_key(ED25519)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(
        matches!(err, SerialErr::Ec2InstanceStateInvalidException(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn every_modelled_exception() {
    let s = start().await;
    let c = client(&s);
    let cases: &[(&str, Option<i32>, &str, &str, &str)] = &[
        (
            "i-0000000000000000f",
            None,
            ED25519,
            "EC2InstanceNotFoundException",
            "The specified instance was not found.",
        ),
        (
            XEN,
            None,
            ED25519,
            "EC2InstanceTypeInvalidException",
            "The instance type is not supported",
        ),
        (
            STOPPED,
            None,
            ED25519,
            "EC2InstanceStateInvalidException",
            "Unable to connect because the instance is not in a valid state.",
        ),
        (
            OLD_BIOS,
            None,
            ED25519,
            "SerialConsoleSessionUnsupportedException",
            "Your instance's BIOS version is unsupported",
        ),
        // Another account's instance does not exist for the caller.
        (
            OTHER_ACCOUNT,
            None,
            ED25519,
            "EC2InstanceNotFoundException",
            "The specified instance was not found.",
        ),
        (
            UNREACHABLE,
            None,
            ED25519,
            "EC2InstanceUnavailableException",
            "The instance is currently unavailable.",
        ),
        (
            DISABLED_ACCOUNT,
            None,
            ED25519,
            "EC2InstanceNotFoundException",
            "The specified instance was not found.",
        ),
        (
            RUNNING,
            Some(1),
            ED25519,
            "InvalidArgsException",
            "One of the parameters is not valid. SerialPort must be 0",
        ),
        (
            "i-XYZ0000000",
            None,
            ED25519,
            "InvalidArgsException",
            "One of the parameters is not valid. InstanceId must match",
        ),
        (
            RUNNING,
            None,
            include_str!("../../../testdata/keys/ecdsa256.pub"),
            "InvalidArgsException",
            "SSHPublicKey type ecdsa-sha2-nistp256 is not supported",
        ),
        (
            RUNNING,
            None,
            include_str!("../../../testdata/keys/dsa.pub"),
            "InvalidArgsException",
            "ssh-dss",
        ),
        (
            RUNNING,
            None,
            include_str!("../../../testdata/keys/rsa1024.pub"),
            "InvalidArgsException",
            "1024 bits",
        ),
    ];
    for (id, port, key, code, msg) in cases {
        let (got, message) = serial(&c, id, *port, key).await;
        assert_eq!(got, *code, "{id} {port:?}: {message}");
        assert!(
            message.starts_with(msg) || message.contains(msg),
            "{id}: {message:?} should contain {msg:?}"
        );
    }
}

/// Pushes an OS-user key and returns the error code and message, or "ok".
async fn os_user(c: &Client, id: &str) -> (String, String) {
    match c
        .send_ssh_public_key()
        .instance_id(id)
        .instance_os_user("ec2-user")
        .ssh_public_key(ED25519)
        .send()
        .await
    {
        Ok(_) => ("ok".into(), String::new()),
        Err(e) => {
            let se = e.into_service_error();
            (
                se.code().unwrap_or("?").to_owned(),
                se.message().unwrap_or("").to_owned(),
            )
        }
    }
}

#[tokio::test]
async fn another_accounts_instance_reads_like_an_unknown_id() {
    let s = start().await;
    let c = client(&s);
    const UNKNOWN: &str = "i-0000000000000000f";
    let unknown = serial(&c, UNKNOWN, None, ED25519).await;
    assert_eq!(unknown.0, "EC2InstanceNotFoundException");
    for foreign in [OTHER_ACCOUNT, DISABLED_ACCOUNT] {
        let (code, message) = serial(&c, foreign, None, ED25519).await;
        assert_eq!(
            (code, message.replace(foreign, UNKNOWN)),
            unknown.clone(),
            "{foreign}"
        );
        assert!(!message.contains("444455556666") && !message.contains("777788889999"));
        let (code, message) = os_user(&c, foreign).await;
        assert_eq!(
            (code, message.replace(foreign, UNKNOWN)),
            os_user(&c, UNKNOWN).await,
            "{foreign}"
        );
    }
}

#[tokio::test]
async fn access_disabled_for_own_account() {
    let s = start().await;
    let acct = s
        .service
        .registry()
        .account(&console::AccountId::parse(ACCT).unwrap())
        .unwrap()
        .clone();
    acct.set_serial_console_access(false);
    let err = client(&s)
        .send_serial_console_ssh_public_key()
        .instance_id(RUNNING)
        .ssh_public_key(ED25519)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_serial_console_access_disabled_exception(), "{err:?}");
    assert!(
        err.message()
            .unwrap()
            .starts_with("Your account is not authorized to use the EC2 Serial Console.")
    );
    acct.set_serial_console_access(true);
    assert_eq!(serial(&client(&s), RUNNING, None, ED25519).await.0, "ok");
}

#[tokio::test]
async fn policy_restricts_instances() {
    let s = start().await;
    let c = client_with(&s.url(), AK_LIMITED, None);
    let (code, msg) = serial(&c, RUNNING, None, ED25519).await;
    assert_eq!(code, "AuthException");
    assert!(
        msg.contains("arn:aws:iam::111122223333:user/limited"),
        "{msg}"
    );
}

#[tokio::test]
async fn session_limit_while_connected_and_during_teardown() {
    let s = start().await;
    let slot = Slot {
        instance: console::InstanceId::parse(RUNNING).unwrap(),
        port: console::SerialPort::ZERO,
    };
    let now = s.service.clock().now_ms();
    let lease = s
        .service
        .leases()
        .acquire(&slot, "test", 60_000, now)
        .await
        .unwrap()
        .unwrap();
    let c = client(&s);
    let (code, msg) = serial(&c, RUNNING, None, ED25519).await;
    assert_eq!(code, "SerialConsoleSessionLimitExceededException");
    assert!(
        msg.starts_with("The instance currently has 1 active serial console session."),
        "{msg}"
    );
    s.service.leases().release(&lease, now).await.unwrap();
    let (code, msg) = serial(&c, RUNNING, None, ED25519).await;
    assert_eq!(code, "SerialConsoleSessionLimitExceededException");
    assert!(msg.contains("torn down"), "{msg}");
}

/// A grant and slot store that never answers in time.
#[derive(Debug)]
struct BrokenStore;

fn timed_out<T>() -> Result<T, StoreError> {
    Err(StoreError::new("store timed out"))
}

#[async_trait]
impl GrantStore for BrokenStore {
    async fn find(&self, _: &GrantKey, _: u64) -> Result<Option<Grant>, StoreError> {
        timed_out()
    }
    async fn take(&self, _: &GrantKey, _: &str) -> Result<bool, StoreError> {
        timed_out()
    }
    async fn purge_expired(&self, _: u64) -> Result<usize, StoreError> {
        timed_out()
    }
}

#[async_trait]
impl SessionLeases for BrokenStore {
    async fn state(&self, _: &Slot, _: u64) -> Result<SlotState, StoreError> {
        timed_out()
    }
    async fn acquire(
        &self,
        _: &Slot,
        _: &str,
        _: u64,
        _: u64,
    ) -> Result<Option<Lease>, StoreError> {
        timed_out()
    }
    async fn renew(&self, _: &Lease, _: u64, _: u64) -> Result<Option<Lease>, StoreError> {
        timed_out()
    }
    async fn release(&self, _: &Lease, _: u64) -> Result<(), StoreError> {
        timed_out()
    }
    async fn release_now(&self, _: &Lease, _: u64) -> Result<(), StoreError> {
        timed_out()
    }
}

#[async_trait]
impl SlotStore for BrokenStore {
    async fn push_grant(&self, _: &GrantKey, _: Grant, _: u64) -> Result<PushOutcome, StoreError> {
        timed_out()
    }
    async fn open_with_grant(
        &self,
        _: &Slot,
        _: &str,
        _: &str,
        _: u64,
        _: u64,
    ) -> Result<OpenOutcome, StoreError> {
        timed_out()
    }
}

#[derive(Debug)]
struct BrokenAudit;

#[async_trait]
impl console::AuditSink for BrokenAudit {
    async fn record(&self, _: &console::AuditEvent) -> Result<(), StoreError> {
        Err(StoreError::new("disk full"))
    }
}

#[tokio::test]
async fn store_failures_are_5xx_codes_without_internals() {
    let roomy = ThrottleConfig {
        rate_per_second: 100.0,
        burst: 100,
    };
    let s = start_with(roomy, |svc| svc.with_slots(Arc::new(BrokenStore))).await;
    let (code, msg) = serial(&client(&s), RUNNING, None, ED25519).await;
    assert_eq!(code, "SerialConsoleSessionUnavailableException");
    assert!(!msg.contains("timed out"), "cause leaked: {msg}");

    let s = start_with(roomy, |svc| svc.with_audit(Arc::new(BrokenAudit))).await;
    let (code, msg) = serial(&client(&s), RUNNING, None, ED25519).await;
    assert_eq!(code, "ServiceException");
    assert!(!msg.contains("disk"), "cause leaked: {msg}");
}

#[tokio::test]
async fn throttling_after_burst() {
    let s = start_with(
        ThrottleConfig {
            rate_per_second: 0.001,
            burst: 3,
        },
        |s| s,
    )
    .await;
    let c = client(&s);
    for _ in 0..3 {
        assert_eq!(serial(&c, RUNNING, None, ED25519).await.0, "ok");
    }
    let (code, msg) = serial(&c, RUNNING, None, ED25519).await;
    assert_eq!(code, "ThrottlingException");
    assert!(
        msg.starts_with("The requests were made too frequently"),
        "{msg}"
    );
}

#[tokio::test]
async fn session_token_credentials() {
    let s = start().await;
    let good = client_with(&s.url(), AK_TOKEN, Some(TOKEN));
    assert_eq!(serial(&good, RUNNING, None, ED25519).await.0, "ok");
    let wrong = client_with(&s.url(), AK_TOKEN, Some("other-token"));
    assert_eq!(
        serial(&wrong, RUNNING, None, ED25519).await.0,
        "UnrecognizedClientException"
    );
    let missing = client_with(&s.url(), AK_TOKEN, None);
    assert_eq!(
        serial(&missing, RUNNING, None, ED25519).await.0,
        "UnrecognizedClientException"
    );
}

#[tokio::test]
async fn front_door_errors_through_the_sdk() {
    let s = start().await;
    let unknown = client_with(&s.url(), "AKIDUNKNOWN", None);
    assert_eq!(
        serial(&unknown, RUNNING, None, ED25519).await.0,
        "UnrecognizedClientException"
    );
    let conf = aws_sdk_ec2instanceconnect::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(s.url())
        .credentials_provider(Credentials::new(AK, "wrong-secret", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .build();
    let (code, msg) = serial(&Client::from_conf(conf), RUNNING, None, ED25519).await;
    assert_eq!(code, "InvalidSignatureException");
    assert!(
        msg.starts_with("The request signature we calculated does not match"),
        "{msg}"
    );
    let conf = aws_sdk_ec2instanceconnect::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(s.url())
        .credentials_provider(Credentials::new(AK, SK, None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .build();
    assert_eq!(
        serial(&Client::from_conf(conf), RUNNING, None, ED25519)
            .await
            .0,
        "InvalidSignatureException"
    );
}
