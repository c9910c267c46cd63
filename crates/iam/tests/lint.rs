//! `lint`: statements that load but cannot match as written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use iam::{Finding, FindingKind, Known, Policy, lint};

const ACTIONS: &[&str] = &[
    "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    "ec2-instance-connect:SendSSHPublicKey",
    "ec2:DescribeInstances",
];
const KEYS: &[&str] = &["aws:SourceIp", "aws:ResourceTag/*", "ec2:osuser"];

fn known() -> Known<'static> {
    Known {
        actions: Some(ACTIONS),
        condition_keys: Some(KEYS),
    }
}

#[test]
fn findings() {
    let policy = Policy::parse(
        "p",
        r#"{"Version": "2012-10-17", "Statement": [
          {"Sid": "Fine", "Effect": "Allow", "Action": ["ec2-instance-connect:Send*", "EC2:describeinstances"],
           "Resource": "arn:aws:ec2:*:*:instance/*",
           "Condition": {"IpAddress": {"AWS:SOURCEIP": "10.0.0.0/8"}, "StringEquals": {"aws:ResourceTag/Team": "x"}}},
          {"Sid": "Typos", "Effect": "Allow", "Action": ["ec2-instance-connect:SendSerialConsoleSshKey", "ec2:*"],
           "Resource": ["arn:aws:ec2:*", "instance/i-1"],
           "Condition": {"StringEquals": {"ec2:OsUsr": "root"}, "ArnLike": {"aws:ResourceTag/Arn": "arn:aws"}}},
          {"Effect": "Deny", "NotAction": "ssm:*", "Resource": "*"}
        ]}"#,
    )
    .unwrap();
    let findings = lint(&policy, &known());
    let kinds: Vec<_> = findings
        .iter()
        .map(|f| (f.statement_index, f.kind.clone()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (
                1,
                FindingKind::UnknownAction("ec2-instance-connect:SendSerialConsoleSshKey".into())
            ),
            (1, FindingKind::MalformedArn("arn:aws:ec2:*".into())),
            (1, FindingKind::MalformedArn("instance/i-1".into())),
            (1, FindingKind::UnknownConditionKey("ec2:OsUsr".into())),
            (1, FindingKind::MalformedArn("arn:aws".into())),
            (2, FindingKind::UnknownAction("ssm:*".into())),
        ]
    );
    assert_eq!(
        findings[0].to_string(),
        r#"Statement[1] (Sid "Typos"): action "ec2-instance-connect:SendSerialConsoleSshKey" matches no known action"#
    );
    assert_eq!(
        findings[5].to_string(),
        r#"Statement[2]: action "ssm:*" matches no known action"#
    );
}

#[test]
fn checks_are_optional() {
    let policy = Policy::parse(
        "p",
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "x:Y", "Resource": "*",
            "Condition": {"StringEquals": {"no:Key": "v"}}}}"#,
    )
    .unwrap();
    assert_eq!(lint(&policy, &Known::default()), Vec::<Finding>::new());
    assert_eq!(lint(&policy, &known()).len(), 2);
}

#[test]
fn variables_under_an_old_version() {
    let policy = Policy::parse(
        "p",
        r#"{"Version": "2008-10-17", "Statement": {"Sid": "Old", "Effect": "Allow", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::home/${aws:username}/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}}}}"#,
    )
    .unwrap();
    let findings = lint(&policy, &Known::default());
    assert_eq!(
        findings.iter().map(|f| f.kind.clone()).collect::<Vec<_>>(),
        vec![
            FindingKind::VariableNotSubstituted("arn:aws:s3:::home/${aws:username}/*".into()),
            FindingKind::VariableNotSubstituted("${aws:PrincipalTag/Team}".into()),
        ]
    );
    assert_eq!(
        findings[0].to_string(),
        r#"Statement[0] (Sid "Old"): "arn:aws:s3:::home/${aws:username}/*" holds `${`, but variables are substituted only under "Version": "2012-10-17""#
    );
}
