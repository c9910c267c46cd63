//! IAM policies through the service's operations: every condition key the domain sets reaches
//! the evaluation, with the value the request, the caller or the instance gives it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use console::ops::{PushOsUserKey, PushSerialKey, Verdict};
use console::service::RequestContext;
use console::*;

const KEY: &str = include_str!("../../../testdata/keys/ed25519.pub");
const ACCT: &str = "111122223333";
const OTHER_ACCT: &str = "444455556666";
const DEV: &str = "i-0de0000000000000a";
const PROD: &str = "i-0e0d000000000000b";
/// Another account's instance, tagged like DEV: its tags must not reach a policy.
const FOREIGN: &str = "i-0f0000000000000cc";
/// 2026-06-01T00:00:00Z.
const NOW_S: u64 = 1_780_272_000;

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn service() -> ConsoleService {
    let mut r = Registry::new();
    r.add_account(Account::new(AccountId::parse(ACCT).unwrap(), true));
    r.add_account(Account::new(AccountId::parse(OTHER_ACCT).unwrap(), true));
    for (id, acct, instance_type, t) in [
        (
            DEV,
            ACCT,
            "t3.micro",
            tags(&[("env", "dev"), ("team", "db")]),
        ),
        (
            PROD,
            ACCT,
            "m5.large",
            tags(&[("env", "prod"), ("team", "web")]),
        ),
        (
            FOREIGN,
            OTHER_ACCT,
            "t3.micro",
            tags(&[("env", "dev"), ("team", "db")]),
        ),
    ] {
        r.add_instance(Instance::new(
            InstanceId::parse(id).unwrap(),
            AccountId::parse(acct).unwrap(),
            instance_type.into(),
            AvailabilityZone::parse("eu-west-3b").unwrap(),
            t,
            false,
            "sim:".into(),
            InstanceState::Running,
        ));
    }
    let settings = Settings {
        region: "eu-west-3".into(),
        ..Settings::default()
    };
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(NOW_S));
    ConsoleService::new(r, settings, ThrottleConfig::default()).with_clock(Arc::new(clock))
}

/// A caller `alice` of ACCT, tagged team=db, with one policy whose statements are `statements`.
fn caller(statements: &str, ip: &str, secure: bool) -> RequestContext {
    let document = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
    let policy = iam::Policy::parse("under-test", &document).unwrap();
    let t = [("team".to_owned(), "db".to_owned())];
    RequestContext {
        request_id: "req-policy".into(),
        principal: Principal::new(
            format!("arn:aws:iam::{ACCT}:user/alice"),
            AccountId::parse(ACCT).unwrap(),
            &Identity {
                user: Some("alice"),
                user_id: "AKIAALICE",
                tags: &t,
            },
            vec![Arc::new(policy)],
        ),
        source_ip: Some(ip.parse::<IpAddr>().unwrap()),
        secure_transport: secure,
    }
}

async fn push(s: &ConsoleService, c: &RequestContext, id: &str) -> &'static str {
    let r = s
        .push_serial_key(
            c,
            PushSerialKey {
                instance_id: InstanceId::parse(id).unwrap(),
                port: SerialPort::ZERO,
                key: SshPublicKey::parse(KEY).unwrap(),
            },
        )
        .await;
    r.map_or_else(|e| e.code(), |_| "ok")
}

async fn push_as(s: &ConsoleService, c: &RequestContext, user: &str) -> Result<(), ConsoleError> {
    s.push_os_user_key(
        c,
        PushOsUserKey {
            instance_id: InstanceId::parse(DEV).unwrap(),
            os_user: OsUser::parse(user).unwrap(),
            key: SshPublicKey::parse(KEY).unwrap(),
            availability_zone: None,
        },
    )
    .await
    .map(|_| ())
}

const PUSH: &str = "ec2-instance-connect:SendSerialConsoleSSHPublicKey";

/// An Allow of the serial push on every instance of ACCT under `condition`.
fn allow_push_if(condition: &str) -> String {
    format!(
        r#"{{"Effect": "Allow", "Action": "{PUSH}", "Resource": "arn:aws:ec2:*:{ACCT}:instance/*", "Condition": {condition}}}"#
    )
}

#[tokio::test]
async fn every_condition_key_reaches_the_decision() {
    // (condition, instance, expected) — each key once with a value that allows on DEV, and
    // the same condition refused on PROD or for this caller.
    let cases = [
        (
            r#"{"StringEquals": {"aws:ResourceTag/env": "dev"}}"#,
            DEV,
            "ok",
        ),
        (
            r#"{"StringEquals": {"aws:ResourceTag/env": "dev"}}"#,
            PROD,
            "AuthException",
        ),
        (
            r#"{"StringEquals": {"ec2:ResourceTag/team": "${aws:PrincipalTag/team}"}}"#,
            DEV,
            "ok",
        ),
        (
            r#"{"StringEquals": {"ec2:ResourceTag/team": "${aws:PrincipalTag/team}"}}"#,
            PROD,
            "AuthException",
        ),
        (
            r#"{"StringEquals": {"ec2:InstanceType": "t3.micro"}}"#,
            DEV,
            "ok",
        ),
        (
            r#"{"StringEquals": {"ec2:InstanceType": "t3.micro"}}"#,
            PROD,
            "AuthException",
        ),
        (
            r#"{"StringEquals": {"ec2:AvailabilityZone": "eu-west-3b", "ec2:Region": "eu-west-3", "aws:RequestedRegion": "eu-west-3"}}"#,
            DEV,
            "ok",
        ),
        (
            r#"{"StringEquals": {"ec2:Region": "us-east-1"}}"#,
            DEV,
            "AuthException",
        ),
        (
            r#"{"StringEquals": {"aws:username": "alice", "aws:userid": "AKIAALICE", "aws:PrincipalAccount": "111122223333", "aws:PrincipalType": "User"}}"#,
            DEV,
            "ok",
        ),
        (
            r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/bob"}}"#,
            DEV,
            "AuthException",
        ),
        (
            r#"{"IpAddress": {"aws:SourceIp": "192.0.2.0/24"}}"#,
            DEV,
            "ok",
        ),
        (
            r#"{"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}"#,
            DEV,
            "AuthException",
        ),
        (
            r#"{"DateGreaterThan": {"aws:CurrentTime": "2026-05-31T23:59:59Z"}}"#,
            DEV,
            "ok",
        ),
        (
            r#"{"DateGreaterThan": {"aws:CurrentTime": "2026-06-01T00:00:01Z"}}"#,
            DEV,
            "AuthException",
        ),
        (
            r#"{"NumericEquals": {"aws:EpochTime": "1780272000"}}"#,
            DEV,
            "ok",
        ),
        (r#"{"Bool": {"aws:SecureTransport": "false"}}"#, DEV, "ok"),
        (
            r#"{"Bool": {"aws:SecureTransport": "true"}}"#,
            DEV,
            "AuthException",
        ),
        // No osuser on a serial push: a Null test sees it absent.
        (r#"{"Null": {"ec2:osuser": "true"}}"#, DEV, "ok"),
    ];
    let s = service();
    for (condition, id, expected) in cases {
        let c = caller(&allow_push_if(condition), "192.0.2.10", false);
        assert_eq!(push(&s, &c, id).await, expected, "{condition} on {id}");
    }
    // Over TLS, aws:SecureTransport is true.
    let c = caller(
        &allow_push_if(r#"{"Bool": {"aws:SecureTransport": "true"}}"#),
        "192.0.2.10",
        true,
    );
    assert_eq!(push(&s, &c, DEV).await, "ok");
}

#[tokio::test]
async fn another_accounts_instance_brings_no_keys_and_is_not_found() {
    let s = service();
    // Allowed by tag on its own instance; on the foreign one, tagged alike, the tags are not
    // seen, so the caller is refused on the ARN it named, in its own account.
    let c = caller(
        &allow_push_if(r#"{"StringEquals": {"aws:ResourceTag/env": "dev"}}"#),
        "192.0.2.10",
        false,
    );
    let err = s
        .push_serial_key(
            &c,
            PushSerialKey {
                instance_id: InstanceId::parse(FOREIGN).unwrap(),
                port: SerialPort::ZERO,
                key: SshPublicKey::parse(KEY).unwrap(),
            },
        )
        .await
        .unwrap_err();
    let ConsoleError::Auth(denial) = err else {
        panic!("{err}")
    };
    assert_eq!(
        denial.resource,
        format!("arn:aws:ec2:eu-west-3:{ACCT}:instance/{FOREIGN}")
    );
    // Allowed on any instance, the foreign one does not exist for the caller.
    let c = caller(
        &format!(r#"{{"Effect": "Allow", "Action": "{PUSH}", "Resource": "*"}}"#),
        "192.0.2.10",
        false,
    );
    assert_eq!(push(&s, &c, FOREIGN).await, "EC2InstanceNotFoundException");
}

#[tokio::test]
async fn an_explicit_deny_by_os_user_names_its_statement() {
    let s = service();
    let c = caller(
        r#"{"Effect": "Allow", "Action": "ec2-instance-connect:*", "Resource": "*"},
           {"Sid": "NoRoot", "Effect": "Deny", "Action": "ec2-instance-connect:SendSSHPublicKey",
            "Resource": "*", "Condition": {"StringEquals": {"ec2:osuser": "root"}}}"#,
        "192.0.2.10",
        false,
    );
    push_as(&s, &c, "ec2-user").await.unwrap();
    let err = push_as(&s, &c, "root").await.unwrap_err();
    let ConsoleError::Auth(denial) = err else {
        panic!("{err}")
    };
    assert_eq!(
        *denial,
        Denial {
            principal_arn: format!("arn:aws:iam::{ACCT}:user/alice"),
            action: Action::SendSSHPublicKey,
            resource: format!("arn:aws:ec2:eu-west-3:{ACCT}:instance/{DEV}"),
            denied_by: Some(r#"policy "under-test" Statement[1] (Sid "NoRoot")"#.into()),
        }
    );
}

#[tokio::test]
async fn ec2_calls_are_decided_per_instance_and_account_level_ones_on_star() {
    let s = service();
    let c = caller(
        r#"{"Sid": "Dev", "Effect": "Allow", "Action": "ec2:*Instances", "Resource": "*",
            "Condition": {"StringEquals": {"aws:ResourceTag/env": "dev"}}},
           {"Sid": "Describe", "Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"}"#,
        "192.0.2.10",
        false,
    );
    let id = |s: &str| InstanceId::parse(s).unwrap();
    s.stop_instances(&c, &[id(DEV)], false).await.unwrap();
    // One refused instance refuses the call, on that instance's ARN.
    let err = s
        .start_instances(&c, &[id(DEV), id(PROD)])
        .await
        .unwrap_err();
    let ConsoleError::Auth(denial) = err else {
        panic!("{err}")
    };
    assert!(denial.resource.ends_with(PROD), "{}", denial.resource);
    // DescribeInstances has no resource-level permissions: decided on `*`, tags unseen, so
    // the Dev statement (a tag condition) does not apply but Describe does.
    assert_eq!(s.describe_instances(&c, &[]).await.unwrap().len(), 2);
    let verdict = s.simulate(&c, Action::DescribeInstances, Some(&id(PROD)), None, &[]);
    assert_eq!(
        verdict,
        Verdict::Allowed {
            statement: r#"policy "under-test" Statement[1] (Sid "Describe")"#.into(),
            resource: "*".into(),
        }
    );
    // The serial console switch: nothing allows it.
    let err = s.switch_serial_console_access(&c, false).await.unwrap_err();
    assert_eq!(err.code(), "AuthException");
}

#[test]
fn simulate_overrides_the_request_keys() {
    let s = service();
    let c = caller(
        &allow_push_if(r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#),
        "192.0.2.10",
        false,
    );
    let dev = InstanceId::parse(DEV).unwrap();
    let push = Action::SendSerialConsoleSSHPublicKey;
    assert!(matches!(
        s.simulate(&c, push, Some(&dev), None, &[]),
        Verdict::Denied(Denial {
            denied_by: None,
            ..
        })
    ));
    let from_office = [("aws:SourceIp".to_owned(), vec!["10.1.2.3".to_owned()])];
    assert!(matches!(
        s.simulate(&c, push, Some(&dev), None, &from_office),
        Verdict::Allowed { .. }
    ));
}
