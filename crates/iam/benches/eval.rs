//! Micro benchmark: one evaluation over 10 policies of 20 statements each.
//!
//! - `mixed`: statements over assorted actions and resources (most are ruled out by their
//!   action), the request allowed by the last policy's last statement, so every `Deny` is still
//!   tested after the allow is found.
//! - `worst`: every statement matches the action and the resource, and each has four
//!   conditions (a policy variable, an address block, a date, a set qualifier) of which the
//!   last fails: 200 statements evaluated in full, then an implicit deny.
//!
//! Run with `cargo bench -p iam`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use iam::{Context, Decision, Policy, PolicySet, Request, evaluate};

const POLICIES: usize = 10;
const STATEMENTS: usize = 20;

/// Nanoseconds per call of `f`: wall clock, and the CPU time of this thread when Linux reports
/// it (on a shared machine the wall figure includes the time other processes held the CPU).
fn per_op(iterations: u32, mut f: impl FnMut()) -> (f64, Option<f64>) {
    for _ in 0..iterations / 10 {
        f();
    }
    let cpu_before = thread_cpu_seconds();
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = thread_cpu_seconds()
        .zip(cpu_before)
        .map(|(after, before)| after - before);
    let per = |seconds: f64| seconds * 1e9 / f64::from(iterations);
    (per(wall), cpu.map(per))
}

/// User plus system time of the calling thread, from `/proc/thread-self/stat` (clock ticks,
/// assumed 100 per second: a run of a few seconds makes the tick granularity negligible).
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn report(label: &str, (wall, cpu): (f64, Option<f64>)) {
    match cpu {
        Some(cpu) => println!("{label}: {wall:>8.0} ns/eval wall, {cpu:>8.0} ns/eval CPU"),
        None => println!("{label}: {wall:>8.0} ns/eval wall"),
    }
}

fn mixed_statement(p: usize, s: usize) -> String {
    let last = p == POLICIES - 1 && s == STATEMENTS - 1;
    if last {
        return r#"{"Sid": "Serial", "Effect": "Allow",
            "Action": "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
            "Resource": "arn:aws:ec2:*:111122223333:instance/*",
            "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}}}"#
            .to_owned();
    }
    let (effect, action, resource, condition) = match s % 5 {
        0 => (
            "Allow",
            r#"["ec2:Describe*", "ec2:GetSerialConsoleAccessStatus"]"#,
            r#""*""#,
            "",
        ),
        1 => ("Deny", r#""ec2:TerminateInstances""#, r#""*""#, ""),
        2 => (
            "Allow",
            r#"["ec2:StartInstances", "ec2:StopInstances", "ec2:RebootInstances"]"#,
            r#""arn:aws:ec2:us-east-1:111122223333:instance/i-0*""#,
            r#", "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}"#,
        ),
        3 => (
            "Deny",
            r#""ec2-instance-connect:*""#,
            r#""arn:aws:ec2:*:*:instance/i-prod*""#,
            r#", "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}"#,
        ),
        _ => (
            "Allow",
            r#""ec2-instance-connect:SendSSHPublicKey""#,
            r#""arn:aws:ec2:*:111122223333:instance/*""#,
            r#", "Condition": {"StringEquals": {"ec2:osuser": "ec2-user"}}"#,
        ),
    };
    format!(
        r#"{{"Sid": "P{p}S{s}", "Effect": "{effect}", "Action": {action}, "Resource": {resource}{condition}}}"#
    )
}

fn worst_statement(p: usize, s: usize) -> String {
    format!(
        r#"{{"Sid": "P{p}S{s}", "Effect": "{effect}", "Action": "ec2-instance-connect:Send*",
            "Resource": ["arn:aws:ec2:us-west-2:*:instance/*", "arn:aws:ec2:*:111122223333:instance/i-*"],
            "Condition": {{
              "StringEquals": {{"aws:ResourceTag/Team": "${{aws:PrincipalTag/Team}}"}},
              "IpAddress": {{"aws:SourceIp": ["192.0.2.0/24", "10.0.0.0/8"]}},
              "DateLessThan": {{"aws:CurrentTime": "2030-01-01T00:00:00Z"}},
              "ForAllValues:StringLike": {{"aws:TagKeys": ["team", "env-*"]}}
            }}}}"#,
        effect = if s.is_multiple_of(2) { "Allow" } else { "Deny" },
    )
}

fn policies(statement: fn(usize, usize) -> String) -> Vec<Policy> {
    (0..POLICIES)
        .map(|p| {
            let body: Vec<String> = (0..STATEMENTS).map(|s| statement(p, s)).collect();
            let document = format!(
                r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
                body.join(",")
            );
            Policy::parse(format!("policy-{p}"), &document).unwrap()
        })
        .collect()
}

fn main() {
    let mut context = Context::new();
    context
        .insert("aws:username", "alice")
        .insert("aws:PrincipalTag/Team", "infra")
        .insert("aws:ResourceTag/Team", "infra")
        .insert("aws:SourceIp", "10.1.2.3")
        .insert("aws:CurrentTime", "2026-05-01T12:00:00Z")
        .insert("aws:SecureTransport", "true")
        .insert_all("aws:TagKeys", ["team", "owner"]);
    let request = Request {
        principal: "arn:aws:iam::111122223333:user/alice",
        action: "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
        resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0",
        context: &context,
    };

    let mixed = policies(mixed_statement);
    let decision = evaluate(&mixed, &request);
    assert!(matches!(decision, Decision::Allow(at) if at.sid == Some("Serial")));
    let ns = per_op(400_000, || {
        black_box(evaluate(black_box(&mixed), black_box(&request)));
    });
    report(
        &format!("mixed ({POLICIES}x{STATEMENTS} statements, allowed by the last)"),
        ns,
    );

    // The same policies indexed by action, as a principal holds them: only the statements that
    // name the request's action are tested.
    let actions = [
        "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
        "ec2-instance-connect:SendSSHPublicKey",
        "ec2:DescribeInstances",
        "ec2:StartInstances",
        "ec2:StopInstances",
    ];
    let indexed = PolicySet::new(mixed.iter().cloned().map(Arc::new).collect(), &actions);
    assert_eq!(indexed.evaluate(&request), decision);
    let ns = per_op(400_000, || {
        black_box(black_box(&indexed).evaluate(black_box(&request)));
    });
    report(
        &format!("mixed, indexed by action ({POLICIES}x{STATEMENTS})"),
        ns,
    );

    let worst = policies(worst_statement);
    assert_eq!(evaluate(&worst, &request), Decision::ImplicitDeny);
    let ns = per_op(40_000, || {
        black_box(evaluate(black_box(&worst), black_box(&request)));
    });
    report(
        &format!("worst ({POLICIES}x{STATEMENTS} statements, all conditions tested)"),
        ns,
    );
    let indexed = PolicySet::new(worst.iter().cloned().map(Arc::new).collect(), &actions);
    assert_eq!(indexed.evaluate(&request), Decision::ImplicitDeny);
    let ns = per_op(40_000, || {
        black_box(black_box(&indexed).evaluate(black_box(&request)));
    });
    report(
        &format!("worst, indexed by action ({POLICIES}x{STATEMENTS})"),
        ns,
    );
}
