//! Evaluation cases: request (action, resource, context) → decision and deciding statement,
//! over fixture policies where each statement has its own `Sid` and, for conditions, its own
//! test action, so a case names exactly the statement it expects to decide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use iam::{Context, Decision, Policy, PolicySet, Request, evaluate};

const PRINCIPAL: &str = "arn:aws:iam::111122223333:user/alice";
const I0: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0";
const SEND: &str = "ec2-instance-connect:SendSerialConsoleSSHPublicKey";

const ACTIONS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Exact", "Effect": "Allow", "Action": "ec2-instance-connect:SendSerialConsoleSSHPublicKey", "Resource": "*"},
  {"Sid": "Prefix", "Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"},
  {"Sid": "Question", "Effect": "Allow", "Action": "ec2:?topInstances", "Resource": "*"},
  {"Sid": "List", "Effect": "Allow", "Action": ["ec2:RebootInstances", "ec2:GetConsoleOutput"], "Resource": "*"},
  {"Sid": "Service", "Effect": "Allow", "Action": "test-*:*", "Resource": "*"}
]}"#;

const EVERYTHING: &str = r#"{"Version": "2012-10-17",
  "Statement": {"Sid": "All", "Effect": "Allow", "Action": "*", "Resource": "*"}}"#;

const NOT_ACTION: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "AllButStop", "Effect": "Allow", "NotAction": ["ec2:Stop*", "ec2:Terminate*"], "Resource": "*"}
]}"#;

const RESOURCES: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "OneInstance", "Effect": "Allow", "Action": "ec2-instance-connect:Send*",
   "Resource": "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"},
  {"Sid": "AnyRegion", "Effect": "Allow", "Action": "ec2:RebootInstances",
   "Resource": "arn:aws:ec2:*:111122223333:instance/*"},
  {"Sid": "RegionQ", "Effect": "Allow", "Action": "ec2:StopInstances",
   "Resource": "arn:aws:ec2:eu-west-?:*:instance/i-*"},
  {"Sid": "Malformed", "Effect": "Allow", "Action": "ec2:StartInstances", "Resource": "arn:aws:ec2:*"},
  {"Sid": "Endpoint", "Effect": "Allow", "Action": "ec2-instance-connect:OpenTunnel",
   "Resource": ["arn:aws:ec2:*:*:volume/*", "arn:aws:ec2:*:*:instance-connect-endpoint/eice-*"]}
]}"#;

const NOT_RESOURCE: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "NotProtected", "Effect": "Allow", "Action": "ec2:*",
   "NotResource": "arn:aws:ec2:*:*:instance/i-protected*"}
]}"#;

const DENY_PROD: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "DenyProd", "Effect": "Deny", "Action": "ec2:StopInstances",
   "Resource": "arn:aws:ec2:*:*:instance/i-prod*"},
  {"Sid": "DenyOffNetwork", "Effect": "Deny", "Action": "ec2-instance-connect:*", "Resource": "*",
   "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
]}"#;

const ALLOW_THEN_DENY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "AllowAll", "Effect": "Allow", "Action": "*", "Resource": "*"},
  {"Sid": "OnlyDescribe", "Effect": "Deny", "NotAction": "ec2:Describe*", "Resource": "*"}
]}"#;

const DENY_ONLY: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "DenyTerminate", "Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"}
]}"#;

const STRINGS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Eq", "Effect": "Allow", "Action": "test:StringEquals", "Resource": "*",
   "Condition": {"StringEquals": {"test:Key": ["a", "b"]}}},
  {"Sid": "NotEq", "Effect": "Allow", "Action": "test:StringNotEquals", "Resource": "*",
   "Condition": {"StringNotEquals": {"test:Key": ["a", "b"]}}},
  {"Sid": "EqIc", "Effect": "Allow", "Action": "test:StringEqualsIgnoreCase", "Resource": "*",
   "Condition": {"StringEqualsIgnoreCase": {"test:Key": "MiXeD"}}},
  {"Sid": "NotEqIc", "Effect": "Allow", "Action": "test:StringNotEqualsIgnoreCase", "Resource": "*",
   "Condition": {"StringNotEqualsIgnoreCase": {"test:Key": "MiXeD"}}},
  {"Sid": "Like", "Effect": "Allow", "Action": "test:StringLike", "Resource": "*",
   "Condition": {"StringLike": {"test:Key": "team-*-?"}}},
  {"Sid": "NotLike", "Effect": "Allow", "Action": "test:StringNotLike", "Resource": "*",
   "Condition": {"StringNotLike": {"test:Key": ["prod-*", "admin"]}}},
  {"Sid": "And", "Effect": "Allow", "Action": "test:And", "Resource": "*",
   "Condition": {"StringEquals": {"test:K1": "a", "test:K2": "b"}, "NumericLessThan": {"test:N": 5}}}
]}"#;

const NUMBERS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "NumEq", "Effect": "Allow", "Action": "test:NumericEquals", "Resource": "*",
   "Condition": {"NumericEquals": {"test:N": 10}}},
  {"Sid": "NumNe", "Effect": "Allow", "Action": "test:NumericNotEquals", "Resource": "*",
   "Condition": {"NumericNotEquals": {"test:N": "10"}}},
  {"Sid": "NumLt", "Effect": "Allow", "Action": "test:NumericLessThan", "Resource": "*",
   "Condition": {"NumericLessThan": {"test:N": "10"}}},
  {"Sid": "NumLe", "Effect": "Allow", "Action": "test:NumericLessThanEquals", "Resource": "*",
   "Condition": {"NumericLessThanEquals": {"test:N": "10"}}},
  {"Sid": "NumGt", "Effect": "Allow", "Action": "test:NumericGreaterThan", "Resource": "*",
   "Condition": {"NumericGreaterThan": {"test:N": 10}}},
  {"Sid": "NumGe", "Effect": "Allow", "Action": "test:NumericGreaterThanEquals", "Resource": "*",
   "Condition": {"NumericGreaterThanEquals": {"test:N": "10"}}},
  {"Sid": "NumAny", "Effect": "Allow", "Action": "test:NumericList", "Resource": "*",
   "Condition": {"NumericEquals": {"test:N": [1, 2.5]}}}
]}"#;

const DATES: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Before2024", "Effect": "Allow", "Action": "test:DateLessThan", "Resource": "*",
   "Condition": {"DateLessThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}},
  {"Sid": "After2024", "Effect": "Allow", "Action": "test:DateGreaterThan", "Resource": "*",
   "Condition": {"DateGreaterThan": {"aws:CurrentTime": "1704067200"}}},
  {"Sid": "OnMay1", "Effect": "Allow", "Action": "test:DateEquals", "Resource": "*",
   "Condition": {"DateEquals": {"aws:CurrentTime": "2024-05-01"}}},
  {"Sid": "NotMay1", "Effect": "Allow", "Action": "test:DateNotEquals", "Resource": "*",
   "Condition": {"DateNotEquals": {"aws:CurrentTime": "2024-05-01"}}},
  {"Sid": "UntilMay1", "Effect": "Allow", "Action": "test:DateLessThanEquals", "Resource": "*",
   "Condition": {"DateLessThanEquals": {"aws:CurrentTime": "2024-05-01T00:00:00+00:00"}}},
  {"Sid": "FromMay1", "Effect": "Allow", "Action": "test:DateGreaterThanEquals", "Resource": "*",
   "Condition": {"DateGreaterThanEquals": {"aws:CurrentTime": "2024-05-01T02:00:00+02:00"}}}
]}"#;

const BOOLS_IPS_NULLS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Tls", "Effect": "Allow", "Action": "test:Bool", "Resource": "*",
   "Condition": {"Bool": {"aws:SecureTransport": true}}},
  {"Sid": "FromNets", "Effect": "Allow", "Action": "test:IpAddress", "Resource": "*",
   "Condition": {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}},
  {"Sid": "NotFromTen", "Effect": "Allow", "Action": "test:NotIpAddress", "Resource": "*",
   "Condition": {"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}},
  {"Sid": "NoToken", "Effect": "Allow", "Action": "test:NullTrue", "Resource": "*",
   "Condition": {"Null": {"aws:TokenIssueTime": "true"}}},
  {"Sid": "HasMfa", "Effect": "Allow", "Action": "test:NullFalse", "Resource": "*",
   "Condition": {"Null": {"aws:MultiFactorAuthAge": false}}},
  {"Sid": "PrincipalArn", "Effect": "Allow", "Action": "test:ArnLike", "Resource": "*",
   "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/a*"}}},
  {"Sid": "NotSourceArn", "Effect": "Allow", "Action": "test:ArnNotEquals", "Resource": "*",
   "Condition": {"ArnNotEquals": {"aws:SourceArn": "arn:aws:ec2:*:*:instance/i-bad"}}}
]}"#;

const IF_EXISTS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "OsUser", "Effect": "Allow", "Action": "test:StringEqualsIfExists", "Resource": "*",
   "Condition": {"StringEqualsIfExists": {"ec2:osuser": "ec2-user"}}},
  {"Sid": "Port", "Effect": "Allow", "Action": "test:NumericLessThanIfExists", "Resource": "*",
   "Condition": {"NumericLessThanIfExists": {"ec2-instance-connect:remotePort": 1024}}},
  {"Sid": "NotTen", "Effect": "Allow", "Action": "test:NotIpAddressIfExists", "Resource": "*",
   "Condition": {"NotIpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}},
  {"Sid": "Mfa", "Effect": "Allow", "Action": "test:BoolIfExists", "Resource": "*",
   "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}},
  {"Sid": "Expiry", "Effect": "Allow", "Action": "test:DateLessThanIfExists", "Resource": "*",
   "Condition": {"DateLessThanIfExists": {"test:Expiry": "2030-01-01"}}}
]}"#;

const SETS: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "AllLike", "Effect": "Allow", "Action": "test:ForAllValuesLike", "Resource": "*",
   "Condition": {"ForAllValues:StringLike": {"aws:TagKeys": ["env*", "team"]}}},
  {"Sid": "AnyEq", "Effect": "Allow", "Action": "test:ForAnyValueEquals", "Resource": "*",
   "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": "secret"}}},
  {"Sid": "AllNotEq", "Effect": "Allow", "Action": "test:ForAllValuesNotEquals", "Resource": "*",
   "Condition": {"ForAllValues:StringNotEquals": {"aws:TagKeys": ["root", "admin"]}}},
  {"Sid": "AnyNotLike", "Effect": "Allow", "Action": "test:ForAnyValueNotLike", "Resource": "*",
   "Condition": {"ForAnyValue:StringNotLike": {"aws:TagKeys": "a*"}}},
  {"Sid": "AnyIfExists", "Effect": "Allow", "Action": "test:ForAnyValueIfExists", "Resource": "*",
   "Condition": {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "x"}}},
  {"Sid": "AllNumbers", "Effect": "Allow", "Action": "test:ForAllValuesNumeric", "Resource": "*",
   "Condition": {"ForAllValues:NumericLessThan": {"test:Ports": 1024}}}
]}"#;

const VARIABLES: &str = r#"{"Version": "2012-10-17", "Statement": [
  {"Sid": "Home", "Effect": "Allow", "Action": "test:Home", "Resource": "arn:aws:s3:::home/${aws:username}/*"},
  {"Sid": "Abac", "Effect": "Allow", "Action": "test:Abac", "Resource": "*",
   "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}}},
  {"Sid": "Escape", "Effect": "Allow", "Action": "test:Escape", "Resource": "arn:aws:s3:::bucket/${*}lit${?}${$}"},
  {"Sid": "Default", "Effect": "Allow", "Action": "test:Default",
   "Resource": "arn:aws:s3:::home/${aws:username, 'anonymous'}/*"},
  {"Sid": "UserId", "Effect": "Allow", "Action": "test:UserId", "Resource": "*",
   "Condition": {"StringLike": {"s3:prefix": "home/${aws:userid}/*"}}},
  {"Sid": "AnyKey", "Effect": "Allow", "Action": "test:AnyKey",
   "Resource": "arn:aws:ec2:*:${aws:PrincipalAccount}:instance/${test:InstanceId}"},
  {"Sid": "VarNum", "Effect": "Allow", "Action": "test:VarNum", "Resource": "*",
   "Condition": {"NumericLessThan": {"test:N": "${test:Limit}"}}},
  {"Sid": "NotEqMissing", "Effect": "Allow", "Action": "test:NotEqMissing", "Resource": "*",
   "Condition": {"StringNotEquals": {"test:Key": "${test:Missing}"}}}
]}"#;

const OLD_VERSION: &str = r#"{"Version": "2008-10-17", "Statement": [
  {"Sid": "Old", "Effect": "Allow", "Action": "test:Home", "Resource": "arn:aws:s3:::home/${aws:username}/*"},
  {"Sid": "OldCond", "Effect": "Allow", "Action": "test:Abac", "Resource": "*",
   "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}}}
]}"#;

const NO_VERSION: &str = r#"{"Statement": [
  {"Sid": "Unversioned", "Effect": "Allow", "Action": "test:Home", "Resource": "arn:aws:s3:::home/${aws:username}/*"}
]}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Allowed by the statement with this Sid in the policy with this index.
    Allow(usize, &'static str),
    /// Explicitly denied by that statement.
    Deny(usize, &'static str),
    Implicit,
}
use Expect::{Allow, Deny, Implicit};

type Ctx = &'static [(&'static str, &'static [&'static str])];

struct Case {
    name: &'static str,
    policies: Vec<&'static str>,
    action: &'static str,
    resource: &'static str,
    context: Ctx,
    expect: Expect,
}

/// A case over several policies.
fn multi(
    name: &'static str,
    policies: &[&'static str],
    action: &'static str,
    resource: &'static str,
    context: Ctx,
    expect: Expect,
) -> Case {
    Case {
        name,
        policies: policies.to_vec(),
        action,
        resource,
        context,
        expect,
    }
}

/// One policy, an action and a resource, a context.
fn res(
    name: &'static str,
    policy: &'static str,
    action: &'static str,
    resource: &'static str,
    context: Ctx,
    expect: Expect,
) -> Case {
    multi(name, &[policy], action, resource, context, expect)
}

/// One policy, resource `*`, a context.
fn ctx(
    name: &'static str,
    policy: &'static str,
    action: &'static str,
    context: Ctx,
    expect: Expect,
) -> Case {
    res(name, policy, action, "*", context, expect)
}

/// One policy, resource `*`, no context.
fn act(name: &'static str, policy: &'static str, action: &'static str, expect: Expect) -> Case {
    ctx(name, policy, action, &[], expect)
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    let s3_home = |user: &'static str| -> &'static str {
        match user {
            "alice" => "arn:aws:s3:::home/alice/notes.txt",
            "bob" => "arn:aws:s3:::home/bob/notes.txt",
            "anonymous" => "arn:aws:s3:::home/anonymous/x",
            _ => unreachable!(),
        }
    };
    vec![
        // Actions: exact, case-insensitive, `*` and `?` wildcards, lists, service wildcards.
        act("exact action", ACTIONS, SEND, Allow(0, "Exact")),
        act("action case-insensitive", ACTIONS, "EC2-INSTANCE-CONNECT:sendserialconsolesshpublickey", Allow(0, "Exact")),
        act("prefix wildcard", ACTIONS, "ec2:DescribeInstances", Allow(0, "Prefix")),
        act("prefix wildcard, lowercase request", ACTIONS, "ec2:describeinstancetypes", Allow(0, "Prefix")),
        act("star matches nothing too", ACTIONS, "ec2:Describe", Allow(0, "Prefix")),
        act("question mark is one character", ACTIONS, "ec2:StopInstances", Allow(0, "Question")),
        act("question mark is only one character", ACTIONS, "ec2:StartInstances", Implicit),
        act("action list, second entry", ACTIONS, "ec2:GetConsoleOutput", Allow(0, "List")),
        act("sibling action not granted", ACTIONS, "ec2-instance-connect:SendSSHPublicKey", Implicit),
        act("other service not granted", ACTIONS, "iam:DescribeUsers", Implicit),
        act("wildcard in the service name", ACTIONS, "test-x:Anything", Allow(0, "Service")),
        act("wildcard service needs the colon", ACTIONS, "testx:Anything", Implicit),
        act("star alone allows every action", EVERYTHING, "anything:AtAll", Allow(0, "All")),
        // NotAction.
        act("NotAction: unlisted action", NOT_ACTION, "ec2:StartInstances", Allow(0, "AllButStop")),
        act("NotAction: listed action", NOT_ACTION, "ec2:StopInstances", Implicit),
        act("NotAction: second pattern", NOT_ACTION, "EC2:terminateinstances", Implicit),
        act("NotAction: other service", NOT_ACTION, SEND, Allow(0, "AllButStop")),
        // Resources: ARN components, wildcards per component.
        res("exact instance ARN", RESOURCES, SEND, I0, &[], Allow(0, "OneInstance")),
        res("other instance", RESOURCES, SEND, "arn:aws:ec2:us-east-1:111122223333:instance/i-1", &[], Implicit),
        res("same instance, other region", RESOURCES, SEND, "arn:aws:ec2:eu-west-1:111122223333:instance/i-0123456789abcdef0", &[], Implicit),
        res("region wildcard", RESOURCES, "ec2:RebootInstances", "arn:aws:ec2:eu-west-1:111122223333:instance/i-1", &[], Allow(0, "AnyRegion")),
        res("other account", RESOURCES, "ec2:RebootInstances", "arn:aws:ec2:eu-west-1:999999999999:instance/i-1", &[], Implicit),
        res("ARN pattern does not match resource *", RESOURCES, "ec2:RebootInstances", "*", &[], Implicit),
        res("star stays in its component", RESOURCES, "ec2:RebootInstances", "arn:aws:ec2:us-east-1:9:111122223333:instance/i-1", &[], Implicit),
        res("question mark in region", RESOURCES, "ec2:StopInstances", "arn:aws:ec2:eu-west-2:1:instance/i-9", &[], Allow(0, "RegionQ")),
        res("question mark is one character in region", RESOURCES, "ec2:StopInstances", "arn:aws:ec2:eu-west-10:1:instance/i-9", &[], Implicit),
        res("question mark region mismatch", RESOURCES, "ec2:StopInstances", I0, &[], Implicit),
        res("malformed ARN pattern matches nothing", RESOURCES, "ec2:StartInstances", I0, &[], Implicit),
        res("second resource of a list", RESOURCES, "ec2-instance-connect:OpenTunnel", "arn:aws:ec2:us-east-1:1:instance-connect-endpoint/eice-0abc", &[], Allow(0, "Endpoint")),
        res("resource type differs", RESOURCES, "ec2-instance-connect:OpenTunnel", I0, &[], Implicit),
        res("ARNs are case-sensitive", RESOURCES, SEND, "arn:aws:ec2:us-east-1:111122223333:instance/I-0123456789ABCDEF0", &[], Implicit),
        // NotResource.
        res("NotResource: unprotected", NOT_RESOURCE, "ec2:RebootInstances", I0, &[], Allow(0, "NotProtected")),
        res("NotResource: protected", NOT_RESOURCE, "ec2:RebootInstances", "arn:aws:ec2:us-east-1:1:instance/i-protected1", &[], Implicit),
        res("NotResource: resource *", NOT_RESOURCE, "ec2:DescribeInstances", "*", &[], Allow(0, "NotProtected")),
        // Deny over Allow, across policies and within one; implicit deny.
        multi("deny in another policy wins", &[EVERYTHING, DENY_PROD], "ec2:StopInstances", "arn:aws:ec2:us-east-1:1:instance/i-prod7", &[("aws:SourceIp", &["10.1.1.1"])], Deny(1, "DenyProd")),
        multi("deny listed first wins too", &[DENY_PROD, EVERYTHING], "ec2:StopInstances", "arn:aws:ec2:us-east-1:1:instance/i-prod7", &[], Deny(0, "DenyProd")),
        multi("deny does not apply: allow", &[EVERYTHING, DENY_PROD], "ec2:StopInstances", "arn:aws:ec2:us-east-1:1:instance/i-dev7", &[], Allow(0, "All")),
        multi("deny with a condition that holds", &[EVERYTHING, DENY_PROD], SEND, I0, &[("aws:SourceIp", &["192.0.2.1"])], Deny(1, "DenyOffNetwork")),
        multi("deny with a condition that fails", &[EVERYTHING, DENY_PROD], SEND, I0, &[("aws:SourceIp", &["10.0.0.1"])], Allow(0, "All")),
        multi("negated deny condition, key missing: deny", &[EVERYTHING, DENY_PROD], SEND, I0, &[], Deny(1, "DenyOffNetwork")),
        act("deny after allow in one policy", ALLOW_THEN_DENY, "ec2:StopInstances", Deny(0, "OnlyDescribe")),
        act("allow survives a deny that does not apply", ALLOW_THEN_DENY, "ec2:DescribeInstances", Allow(0, "AllowAll")),
        act("deny-only policy: implicit deny", DENY_ONLY, "ec2:StartInstances", Implicit),
        act("deny-only policy: explicit deny", DENY_ONLY, "ec2:TerminateInstances", Deny(0, "DenyTerminate")),
        multi("no policies: implicit deny", &[], SEND, I0, &[], Implicit),
        // String operators.
        ctx("StringEquals first value", STRINGS, "test:StringEquals", &[("test:Key", &["a"])], Allow(0, "Eq")),
        ctx("StringEquals second value", STRINGS, "test:StringEquals", &[("test:Key", &["b"])], Allow(0, "Eq")),
        ctx("StringEquals is case-sensitive", STRINGS, "test:StringEquals", &[("test:Key", &["A"])], Implicit),
        ctx("StringEquals missing key", STRINGS, "test:StringEquals", &[], Implicit),
        ctx("StringEquals multivalued request: any", STRINGS, "test:StringEquals", &[("test:Key", &["c", "a"])], Allow(0, "Eq")),
        ctx("condition keys are case-insensitive", STRINGS, "test:StringEquals", &[("TEST:KEY", &["a"])], Allow(0, "Eq")),
        ctx("StringNotEquals other value", STRINGS, "test:StringNotEquals", &[("test:Key", &["c"])], Allow(0, "NotEq")),
        ctx("StringNotEquals listed value", STRINGS, "test:StringNotEquals", &[("test:Key", &["b"])], Implicit),
        ctx("StringNotEquals missing key holds", STRINGS, "test:StringNotEquals", &[], Allow(0, "NotEq")),
        ctx("StringNotEquals multivalued request: none may match", STRINGS, "test:StringNotEquals", &[("test:Key", &["c", "a"])], Implicit),
        ctx("StringEqualsIgnoreCase", STRINGS, "test:StringEqualsIgnoreCase", &[("test:Key", &["mixed"])], Allow(0, "EqIc")),
        ctx("StringEqualsIgnoreCase other", STRINGS, "test:StringEqualsIgnoreCase", &[("test:Key", &["mixe"])], Implicit),
        ctx("StringNotEqualsIgnoreCase same", STRINGS, "test:StringNotEqualsIgnoreCase", &[("test:Key", &["MIXED"])], Implicit),
        ctx("StringNotEqualsIgnoreCase other", STRINGS, "test:StringNotEqualsIgnoreCase", &[("test:Key", &["x"])], Allow(0, "NotEqIc")),
        ctx("StringLike", STRINGS, "test:StringLike", &[("test:Key", &["team-web-1"])], Allow(0, "Like")),
        ctx("StringLike empty star", STRINGS, "test:StringLike", &[("test:Key", &["team--x"])], Allow(0, "Like")),
        ctx("StringLike question mark", STRINGS, "test:StringLike", &[("test:Key", &["team-web-12"])], Implicit),
        ctx("StringLike is case-sensitive", STRINGS, "test:StringLike", &[("test:Key", &["TEAM-web-1"])], Implicit),
        ctx("StringNotLike matching", STRINGS, "test:StringNotLike", &[("test:Key", &["prod-db"])], Implicit),
        ctx("StringNotLike not matching", STRINGS, "test:StringNotLike", &[("test:Key", &["dev-db"])], Allow(0, "NotLike")),
        ctx("StringNotLike second value", STRINGS, "test:StringNotLike", &[("test:Key", &["admin"])], Implicit),
        ctx("keys and operators ANDed", STRINGS, "test:And", &[("test:K1", &["a"]), ("test:K2", &["b"]), ("test:N", &["4"])], Allow(0, "And")),
        ctx("one key fails", STRINGS, "test:And", &[("test:K1", &["a"]), ("test:K2", &["c"]), ("test:N", &["4"])], Implicit),
        ctx("one operator fails", STRINGS, "test:And", &[("test:K1", &["a"]), ("test:K2", &["b"]), ("test:N", &["5"])], Implicit),
        // Numeric operators.
        ctx("NumericEquals", NUMBERS, "test:NumericEquals", &[("test:N", &["10"])], Allow(0, "NumEq")),
        ctx("NumericEquals other notation", NUMBERS, "test:NumericEquals", &[("test:N", &["10.0"])], Allow(0, "NumEq")),
        ctx("NumericEquals other number", NUMBERS, "test:NumericEquals", &[("test:N", &["11"])], Implicit),
        ctx("NumericEquals not a number", NUMBERS, "test:NumericEquals", &[("test:N", &["ten"])], Implicit),
        ctx("NumericNotEquals", NUMBERS, "test:NumericNotEquals", &[("test:N", &["11"])], Allow(0, "NumNe")),
        ctx("NumericNotEquals same", NUMBERS, "test:NumericNotEquals", &[("test:N", &["10"])], Implicit),
        ctx("NumericNotEquals not a number fails", NUMBERS, "test:NumericNotEquals", &[("test:N", &["ten"])], Implicit),
        ctx("NumericLessThan", NUMBERS, "test:NumericLessThan", &[("test:N", &["9.5"])], Allow(0, "NumLt")),
        ctx("NumericLessThan equal", NUMBERS, "test:NumericLessThan", &[("test:N", &["10"])], Implicit),
        ctx("NumericLessThanEquals equal", NUMBERS, "test:NumericLessThanEquals", &[("test:N", &["10"])], Allow(0, "NumLe")),
        ctx("NumericLessThanEquals greater", NUMBERS, "test:NumericLessThanEquals", &[("test:N", &["10.01"])], Implicit),
        ctx("NumericGreaterThan equal", NUMBERS, "test:NumericGreaterThan", &[("test:N", &["10"])], Implicit),
        ctx("NumericGreaterThan exponent", NUMBERS, "test:NumericGreaterThan", &[("test:N", &["1e2"])], Allow(0, "NumGt")),
        ctx("NumericGreaterThanEquals", NUMBERS, "test:NumericGreaterThanEquals", &[("test:N", &["10"])], Allow(0, "NumGe")),
        ctx("NumericGreaterThanEquals negative", NUMBERS, "test:NumericGreaterThanEquals", &[("test:N", &["-11"])], Implicit),
        ctx("numeric values ORed", NUMBERS, "test:NumericList", &[("test:N", &["2.5"])], Allow(0, "NumAny")),
        ctx("numeric missing key", NUMBERS, "test:NumericLessThan", &[], Implicit),
        // Date operators.
        ctx("DateLessThan", DATES, "test:DateLessThan", &[("aws:CurrentTime", &["2023-12-31T23:59:59Z"])], Allow(0, "Before2024")),
        ctx("DateLessThan equal", DATES, "test:DateLessThan", &[("aws:CurrentTime", &["2024-01-01T00:00:00Z"])], Implicit),
        ctx("DateLessThan epoch request", DATES, "test:DateLessThan", &[("aws:CurrentTime", &["1700000000"])], Allow(0, "Before2024")),
        ctx("DateGreaterThan epoch policy", DATES, "test:DateGreaterThan", &[("aws:CurrentTime", &["2024-01-01T00:00:01+00:00"])], Allow(0, "After2024")),
        ctx("DateGreaterThan with offset", DATES, "test:DateGreaterThan", &[("aws:CurrentTime", &["2024-01-01T01:00:00+02:00"])], Implicit),
        ctx("DateEquals date only", DATES, "test:DateEquals", &[("aws:CurrentTime", &["2024-05-01T00:00:00Z"])], Allow(0, "OnMay1")),
        ctx("DateNotEquals", DATES, "test:DateNotEquals", &[("aws:CurrentTime", &["2024-05-02"])], Allow(0, "NotMay1")),
        ctx("DateNotEquals same instant", DATES, "test:DateNotEquals", &[("aws:CurrentTime", &["1714521600"])], Implicit),
        ctx("DateLessThanEquals equal", DATES, "test:DateLessThanEquals", &[("aws:CurrentTime", &["2024-05-01"])], Allow(0, "UntilMay1")),
        ctx("DateGreaterThanEquals earlier", DATES, "test:DateGreaterThanEquals", &[("aws:CurrentTime", &["2024-04-30T23:59:59.999Z"])], Implicit),
        ctx("DateGreaterThanEquals equal", DATES, "test:DateGreaterThanEquals", &[("aws:CurrentTime", &["2024-05-01T00:00:00Z"])], Allow(0, "FromMay1")),
        ctx("date not a date", DATES, "test:DateLessThan", &[("aws:CurrentTime", &["yesterday"])], Implicit),
        // Bool, IP addresses, Null, ARNs.
        ctx("Bool true", BOOLS_IPS_NULLS, "test:Bool", &[("aws:SecureTransport", &["true"])], Allow(0, "Tls")),
        ctx("Bool any case", BOOLS_IPS_NULLS, "test:Bool", &[("aws:SecureTransport", &["TRUE"])], Allow(0, "Tls")),
        ctx("Bool false", BOOLS_IPS_NULLS, "test:Bool", &[("aws:SecureTransport", &["false"])], Implicit),
        ctx("Bool missing", BOOLS_IPS_NULLS, "test:Bool", &[], Implicit),
        ctx("Bool not a boolean", BOOLS_IPS_NULLS, "test:Bool", &[("aws:SecureTransport", &["1"])], Implicit),
        ctx("IpAddress v4 in block", BOOLS_IPS_NULLS, "test:IpAddress", &[("aws:SourceIp", &["203.0.113.5"])], Allow(0, "FromNets")),
        ctx("IpAddress v4 outside", BOOLS_IPS_NULLS, "test:IpAddress", &[("aws:SourceIp", &["198.51.100.1"])], Implicit),
        ctx("IpAddress v6 in block", BOOLS_IPS_NULLS, "test:IpAddress", &[("aws:SourceIp", &["2001:db8:ffff::1"])], Allow(0, "FromNets")),
        ctx("IpAddress v4-mapped v6", BOOLS_IPS_NULLS, "test:IpAddress", &[("aws:SourceIp", &["::ffff:203.0.113.9"])], Allow(0, "FromNets")),
        ctx("IpAddress not an address", BOOLS_IPS_NULLS, "test:IpAddress", &[("aws:SourceIp", &["localhost"])], Implicit),
        ctx("NotIpAddress inside", BOOLS_IPS_NULLS, "test:NotIpAddress", &[("aws:SourceIp", &["10.1.2.3"])], Implicit),
        ctx("NotIpAddress outside", BOOLS_IPS_NULLS, "test:NotIpAddress", &[("aws:SourceIp", &["192.168.1.1"])], Allow(0, "NotFromTen")),
        ctx("NotIpAddress missing key holds", BOOLS_IPS_NULLS, "test:NotIpAddress", &[], Allow(0, "NotFromTen")),
        ctx("NotIpAddress not an address fails", BOOLS_IPS_NULLS, "test:NotIpAddress", &[("aws:SourceIp", &["localhost"])], Implicit),
        ctx("Null true, key absent", BOOLS_IPS_NULLS, "test:NullTrue", &[], Allow(0, "NoToken")),
        ctx("Null true, key present", BOOLS_IPS_NULLS, "test:NullTrue", &[("aws:TokenIssueTime", &["2024-05-01T00:00:00Z"])], Implicit),
        ctx("Null false, key present", BOOLS_IPS_NULLS, "test:NullFalse", &[("aws:MultiFactorAuthAge", &["30"])], Allow(0, "HasMfa")),
        ctx("Null false, key absent", BOOLS_IPS_NULLS, "test:NullFalse", &[], Implicit),
        ctx("ArnLike on the principal (implicit key)", BOOLS_IPS_NULLS, "test:ArnLike", &[], Allow(0, "PrincipalArn")),
        ctx("ArnLike on another principal", BOOLS_IPS_NULLS, "test:ArnLike", &[("aws:PrincipalArn", &["arn:aws:iam::111122223333:user/bob"])], Implicit),
        ctx("ArnNotEquals other ARN", BOOLS_IPS_NULLS, "test:ArnNotEquals", &[("aws:SourceArn", &["arn:aws:ec2:us-east-1:1:instance/i-good"])], Allow(0, "NotSourceArn")),
        ctx("ArnNotEquals same ARN", BOOLS_IPS_NULLS, "test:ArnNotEquals", &[("aws:SourceArn", &["arn:aws:ec2:us-east-1:1:instance/i-bad"])], Implicit),
        // IfExists.
        ctx("IfExists: key missing", IF_EXISTS, "test:StringEqualsIfExists", &[], Allow(0, "OsUser")),
        ctx("IfExists: key matches", IF_EXISTS, "test:StringEqualsIfExists", &[("ec2:osuser", &["ec2-user"])], Allow(0, "OsUser")),
        ctx("IfExists: key differs", IF_EXISTS, "test:StringEqualsIfExists", &[("ec2:osuser", &["root"])], Implicit),
        ctx("NumericIfExists: missing", IF_EXISTS, "test:NumericLessThanIfExists", &[], Allow(0, "Port")),
        ctx("NumericIfExists: too large", IF_EXISTS, "test:NumericLessThanIfExists", &[("ec2-instance-connect:remotePort", &["8080"])], Implicit),
        ctx("NotIpAddressIfExists: inside", IF_EXISTS, "test:NotIpAddressIfExists", &[("aws:SourceIp", &["10.9.9.9"])], Implicit),
        ctx("NotIpAddressIfExists: missing", IF_EXISTS, "test:NotIpAddressIfExists", &[], Allow(0, "NotTen")),
        ctx("BoolIfExists: false", IF_EXISTS, "test:BoolIfExists", &[("aws:MultiFactorAuthPresent", &["false"])], Implicit),
        ctx("BoolIfExists: missing", IF_EXISTS, "test:BoolIfExists", &[], Allow(0, "Mfa")),
        ctx("DateIfExists: before", IF_EXISTS, "test:DateLessThanIfExists", &[("test:Expiry", &["2029-12-31"])], Allow(0, "Expiry")),
        ctx("DateIfExists: after", IF_EXISTS, "test:DateLessThanIfExists", &[("test:Expiry", &["2031-01-01"])], Implicit),
        // Set qualifiers.
        ctx("ForAllValues: every value matches", SETS, "test:ForAllValuesLike", &[("aws:TagKeys", &["env-a", "team"])], Allow(0, "AllLike")),
        ctx("ForAllValues: one value does not", SETS, "test:ForAllValuesLike", &[("aws:TagKeys", &["env-a", "owner"])], Implicit),
        ctx("ForAllValues: missing key holds", SETS, "test:ForAllValuesLike", &[], Allow(0, "AllLike")),
        ctx("ForAnyValue: one value matches", SETS, "test:ForAnyValueEquals", &[("aws:TagKeys", &["x", "secret"])], Allow(0, "AnyEq")),
        ctx("ForAnyValue: none matches", SETS, "test:ForAnyValueEquals", &[("aws:TagKeys", &["x", "y"])], Implicit),
        ctx("ForAnyValue: missing key fails", SETS, "test:ForAnyValueEquals", &[], Implicit),
        ctx("ForAllValues negated: none listed", SETS, "test:ForAllValuesNotEquals", &[("aws:TagKeys", &["alice", "bob"])], Allow(0, "AllNotEq")),
        ctx("ForAllValues negated: one listed", SETS, "test:ForAllValuesNotEquals", &[("aws:TagKeys", &["alice", "root"])], Implicit),
        ctx("ForAllValues negated: missing key holds", SETS, "test:ForAllValuesNotEquals", &[], Allow(0, "AllNotEq")),
        ctx("ForAnyValue negated: one unlike", SETS, "test:ForAnyValueNotLike", &[("aws:TagKeys", &["abc", "xyz"])], Allow(0, "AnyNotLike")),
        ctx("ForAnyValue negated: all alike", SETS, "test:ForAnyValueNotLike", &[("aws:TagKeys", &["abc", "a"])], Implicit),
        ctx("ForAnyValue negated: missing key fails", SETS, "test:ForAnyValueNotLike", &[], Implicit),
        ctx("ForAnyValue IfExists: missing key holds", SETS, "test:ForAnyValueIfExists", &[], Allow(0, "AnyIfExists")),
        ctx("ForAllValues numeric", SETS, "test:ForAllValuesNumeric", &[("test:Ports", &["22", "80"])], Allow(0, "AllNumbers")),
        ctx("ForAllValues numeric: one unparseable", SETS, "test:ForAllValuesNumeric", &[("test:Ports", &["22", "ssh"])], Implicit),
        // Policy variables.
        res("variable in resource", VARIABLES, "test:Home", s3_home("alice"), &[("aws:username", &["alice"])], Allow(0, "Home")),
        res("variable in resource, other user's home", VARIABLES, "test:Home", s3_home("bob"), &[("aws:username", &["alice"])], Implicit),
        res("variable without a value matches nothing", VARIABLES, "test:Home", s3_home("alice"), &[], Implicit),
        res("multivalued key is no variable value", VARIABLES, "test:Home", s3_home("alice"), &[("aws:username", &["alice", "bob"])], Implicit),
        res("substituted text is literal", VARIABLES, "test:Home", s3_home("alice"), &[("aws:username", &["*"])], Implicit),
        ctx("variable in a condition value", VARIABLES, "test:Abac", &[("aws:PrincipalTag/Team", &["infra"]), ("aws:ResourceTag/Team", &["infra"])], Allow(0, "Abac")),
        ctx("variable in a condition value, differs", VARIABLES, "test:Abac", &[("aws:PrincipalTag/Team", &["infra"]), ("aws:ResourceTag/Team", &["web"])], Implicit),
        ctx("variable in a condition value, missing", VARIABLES, "test:Abac", &[("aws:ResourceTag/Team", &["infra"])], Implicit),
        res("escapes", VARIABLES, "test:Escape", "arn:aws:s3:::bucket/*lit?$", &[], Allow(0, "Escape")),
        res("escaped star is no wildcard", VARIABLES, "test:Escape", "arn:aws:s3:::bucket/xlit?$", &[], Implicit),
        res("default value", VARIABLES, "test:Default", s3_home("anonymous"), &[], Allow(0, "Default")),
        res("default value unused when the key is set", VARIABLES, "test:Default", s3_home("anonymous"), &[("aws:username", &["alice"])], Implicit),
        res("key set instead of default", VARIABLES, "test:Default", s3_home("alice"), &[("aws:username", &["alice"])], Allow(0, "Default")),
        ctx("aws:userid in StringLike", VARIABLES, "test:UserId", &[("aws:userid", &["AIDAEXAMPLE"]), ("s3:prefix", &["home/AIDAEXAMPLE/docs"])], Allow(0, "UserId")),
        res("any context key, in two components", VARIABLES, "test:AnyKey", "arn:aws:ec2:us-east-1:111122223333:instance/i-7", &[("aws:PrincipalAccount", &["111122223333"]), ("test:InstanceId", &["i-7"])], Allow(0, "AnyKey")),
        res("any context key, wrong account", VARIABLES, "test:AnyKey", "arn:aws:ec2:us-east-1:111122223333:instance/i-7", &[("aws:PrincipalAccount", &["444455556666"]), ("test:InstanceId", &["i-7"])], Implicit),
        ctx("variable in a numeric value", VARIABLES, "test:VarNum", &[("test:N", &["3"]), ("test:Limit", &["5"])], Allow(0, "VarNum")),
        ctx("variable in a numeric value, missing", VARIABLES, "test:VarNum", &[("test:N", &["3"])], Implicit),
        ctx("negated operator, missing variable value", VARIABLES, "test:NotEqMissing", &[("test:Key", &["x"])], Allow(0, "NotEqMissing")),
        // Version 2008-10-17 and no Version: no substitution.
        res("2008: variable is plain text", OLD_VERSION, "test:Home", s3_home("alice"), &[("aws:username", &["alice"])], Implicit),
        res("2008: literal text matches", OLD_VERSION, "test:Home", "arn:aws:s3:::home/${aws:username}/x", &[("aws:username", &["alice"])], Allow(0, "Old")),
        ctx("2008: condition value is plain text", OLD_VERSION, "test:Abac", &[("aws:PrincipalTag/Team", &["infra"]), ("aws:ResourceTag/Team", &["infra"])], Implicit),
        ctx("2008: condition value literal", OLD_VERSION, "test:Abac", &[("aws:ResourceTag/Team", &["${aws:PrincipalTag/Team}"])], Allow(0, "OldCond")),
        res("no Version: variable is plain text", NO_VERSION, "test:Home", s3_home("alice"), &[("aws:username", &["alice"])], Implicit),
    ]
}

fn context(pairs: Ctx) -> Context {
    let mut context = Context::new();
    for (key, values) in pairs {
        context.insert_all(key, values.iter().copied());
    }
    context
}

#[test]
fn evaluation_table() {
    let cases = cases();
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let policies: Vec<Policy> = case
            .policies
            .iter()
            .enumerate()
            .map(|(i, json)| Policy::parse(format!("p{i}"), json).unwrap())
            .collect();
        let context = context(case.context);
        let request = Request {
            principal: PRINCIPAL,
            action: case.action,
            resource: case.resource,
            context: &context,
        };
        let decision = evaluate(&policies, &request);
        // The indexed set decides the same, whether it knows the action or not.
        let shared: Vec<Arc<Policy>> = policies.iter().cloned().map(Arc::new).collect();
        for known in [&[case.action][..], &["svc:Other"][..]] {
            let set = PolicySet::new(shared.clone(), known);
            assert_eq!(
                format!("{:?}", set.evaluate(&request)),
                format!("{decision:?}"),
                "{}",
                case.name
            );
        }
        let got = match decision {
            Decision::Allow(at) => {
                format!("Allow({}, {:?})", at.policy_index, at.sid.unwrap_or(""))
            }
            Decision::ExplicitDeny(at) => {
                format!("Deny({}, {:?})", at.policy_index, at.sid.unwrap_or(""))
            }
            Decision::ImplicitDeny => format!("{Implicit:?}"),
        };
        if got != format!("{:?}", case.expect) {
            failures.push(format!(
                "{}: expected {:?}, got {got}",
                case.name, case.expect
            ));
            continue;
        }
        // The reference is consistent: the named statement has that Sid in that policy.
        if let Some(at) = decision.statement() {
            let policy = &policies[at.policy_index];
            assert_eq!(at.policy_name, policy.name());
            assert_eq!(
                policy.statement(at.statement_index).unwrap().0,
                at.sid,
                "{}",
                case.name
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn denial_messages() {
    let deny = Policy::parse("deny", DENY_ONLY).unwrap();
    let allow = Policy::parse("all", EVERYTHING).unwrap();
    let ctx = Context::new();
    let request = Request {
        principal: PRINCIPAL,
        action: "ec2:TerminateInstances",
        resource: I0,
        context: &ctx,
    };
    let explicit = evaluate([&allow, &deny], &request);
    assert_eq!(
        explicit.denial_message(&request).unwrap(),
        "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: \
         ec2:TerminateInstances on resource: \
         arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0 \
         with an explicit deny in an identity-based policy"
    );
    let at = explicit.statement().unwrap();
    assert_eq!(
        (at.policy_index, at.policy_name, at.statement_index),
        (1, "deny", 0)
    );
    assert_eq!(
        at.to_string(),
        r#"policy "deny" Statement[0] (Sid "DenyTerminate")"#
    );

    let send = Request {
        action: SEND,
        ..request
    };
    let implicit = evaluate([&deny], &send);
    assert_eq!(
        implicit.denial_message(&send).unwrap(),
        "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: \
         ec2-instance-connect:SendSerialConsoleSSHPublicKey on resource: \
         arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0 because no \
         identity-based policy allows the ec2-instance-connect:SendSerialConsoleSSHPublicKey action"
    );
    let allowed = evaluate([&allow], &send);
    assert!(allowed.is_allowed());
    assert_eq!(allowed.denial_message(&send), None);
}

#[test]
fn first_applying_allow_is_reported() {
    let a = Policy::parse("a", ACTIONS).unwrap();
    let b = Policy::parse("b", EVERYTHING).unwrap();
    let ctx = Context::new();
    let request = Request {
        principal: PRINCIPAL,
        action: "ec2:DescribeInstances",
        resource: "*",
        context: &ctx,
    };
    let at = evaluate([&b, &a], &request).statement().unwrap();
    assert_eq!(
        (at.policy_name, at.statement_index, at.sid),
        ("b", 0, Some("All"))
    );
    let at = evaluate([&a, &b], &request).statement().unwrap();
    assert_eq!(
        (at.policy_name, at.statement_index, at.sid),
        ("a", 1, Some("Prefix"))
    );
}
