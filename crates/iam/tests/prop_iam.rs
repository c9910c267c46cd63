//! Properties of evaluation over generated policy sets and requests, and of the parser over
//! arbitrary JSON-ish input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use iam::{Context, Decision, Effect, Known, Policy, PolicySet, Request, evaluate, lint};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The default case count for these properties, unless `PROPTEST_CASES` says otherwise
/// (`scripts/fuzz.sh` raises it).
fn config(cases: u32) -> Config {
    let base = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        Config { cases, ..base }
    }
}

const ACTIONS: &[&str] = &[
    "ec2:DescribeInstances",
    "ec2:StopInstances",
    "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    "ec2-instance-connect:SendSSHPublicKey",
    "s3:GetObject",
];
const ACTION_PATTERNS: &[&str] = &[
    "*",
    "ec2:*",
    "ec2:Describe*",
    "ec2-instance-connect:Send*",
    "s3:?etObject",
    "EC2:stop*",
    "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
    "iam:*",
];
const RESOURCES: &[&str] = &[
    "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
    "arn:aws:ec2:us-east-1:111122223333:instance/i-2",
    "arn:aws:ec2:eu-west-1:444455556666:instance/i-1",
    "arn:aws:s3:::bucket/home/alice/x",
    "*",
];
const RESOURCE_PATTERNS: &[&str] = &[
    "*",
    "arn:aws:ec2:*:*:instance/*",
    "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
    "arn:aws:s3:::bucket/home/${aws:username}/*",
    "arn:aws:ec2:*:444455556666:*",
    "arn:aws:ec2:*",
];
/// Condition blocks with distinct operators, so any subset is one valid `Condition` object.
const CONDITIONS: &[&str] = &[
    r#""StringEquals": {"aws:username": "alice"}"#,
    r#""NumericLessThan": {"test:n": 5}"#,
    r#""IpAddress": {"aws:SourceIp": "10.0.0.0/8"}"#,
    r#""Null": {"aws:TokenIssueTime": "true"}"#,
    r#""ForAllValues:StringLike": {"aws:TagKeys": ["a*"]}"#,
    r#""StringNotEqualsIfExists": {"ec2:osuser": "root"}"#,
    r#""DateLessThan": {"aws:CurrentTime": "2030-01-01"}"#,
    r#""Bool": {"aws:SecureTransport": "true"}"#,
    r#""ForAnyValue:StringEquals": {"aws:TagKeys": "b"}"#,
];
/// Context keys and the values each may take (a key may also be absent).
const CONTEXT: &[(&str, &[&[&str]])] = &[
    ("aws:username", &[&["alice"], &["bob"]]),
    ("test:n", &[&["3"], &["7"], &["x"]]),
    ("aws:SourceIp", &[&["10.1.1.1"], &["192.0.2.1"]]),
    ("aws:TokenIssueTime", &[&["2024-01-01T00:00:00Z"]]),
    ("aws:TagKeys", &[&["a1"], &["a1", "b"]]),
    ("ec2:osuser", &[&["root"], &["ec2-user"]]),
    (
        "aws:CurrentTime",
        &[&["2024-01-01T00:00:00Z"], &["2031-01-01"]],
    ),
    ("aws:SecureTransport", &[&["true"], &["false"]]),
];

#[derive(Debug, Clone)]
struct Stmt {
    effect: Effect,
    not_action: bool,
    actions: Vec<&'static str>,
    not_resource: bool,
    resources: Vec<&'static str>,
    conditions: Vec<&'static str>,
}

impl Stmt {
    fn json(&self, sid: &str) -> String {
        let list = |items: &[&str]| {
            let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
            format!("[{}]", quoted.join(", "))
        };
        let mut out = format!(
            r#"{{"Sid": "{sid}", "Effect": "{:?}", "{}": {}, "{}": {}"#,
            self.effect,
            if self.not_action {
                "NotAction"
            } else {
                "Action"
            },
            list(&self.actions),
            if self.not_resource {
                "NotResource"
            } else {
                "Resource"
            },
            list(&self.resources),
        );
        if !self.conditions.is_empty() {
            out.push_str(&format!(
                r#", "Condition": {{{}}}"#,
                self.conditions.join(", ")
            ));
        }
        out.push('}');
        out
    }
}

fn policy_json(statements: &[Stmt]) -> String {
    let body: Vec<String> = statements
        .iter()
        .enumerate()
        .map(|(i, s)| s.json(&format!("S{i}")))
        .collect();
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
        body.join(", ")
    )
}

fn compile(policies: &[Vec<Stmt>]) -> Vec<Policy> {
    policies
        .iter()
        .enumerate()
        .map(|(i, p)| Policy::parse(format!("p{i}"), &policy_json(p)).unwrap())
        .collect()
}

fn stmt_with(effect: impl Strategy<Value = Effect>) -> impl Strategy<Value = Stmt> {
    (
        effect,
        any::<bool>(),
        prop::sample::subsequence(ACTION_PATTERNS, 1..=3),
        prop::bool::weighted(0.2),
        prop::sample::subsequence(RESOURCE_PATTERNS, 1..=3),
        prop::sample::subsequence(CONDITIONS, 0..=2),
    )
        .prop_map(
            |(effect, not_action, actions, not_resource, resources, conditions)| Stmt {
                effect,
                not_action: not_action && actions.len() < 3,
                actions,
                not_resource,
                resources,
                conditions,
            },
        )
}

fn effect() -> impl Strategy<Value = Effect> + Clone {
    prop_oneof![Just(Effect::Allow), Just(Effect::Deny)]
}

fn policies_with(
    effect: impl Strategy<Value = Effect> + Clone,
) -> impl Strategy<Value = Vec<Vec<Stmt>>> {
    prop::collection::vec(prop::collection::vec(stmt_with(effect), 1..6), 0..4)
}

#[derive(Debug, Clone)]
struct Req {
    action: &'static str,
    resource: &'static str,
    context: Vec<(&'static str, &'static [&'static str])>,
}

fn request() -> impl Strategy<Value = Req> {
    let entries: Vec<_> = CONTEXT
        .iter()
        .map(|(key, choices)| {
            prop::option::of(prop::sample::select(*choices)).prop_map(move |v| v.map(|v| (*key, v)))
        })
        .collect();
    (
        prop::sample::select(ACTIONS),
        prop::sample::select(RESOURCES),
        entries,
    )
        .prop_map(|(action, resource, context)| Req {
            action,
            resource,
            context: context.into_iter().flatten().collect(),
        })
}

fn decide(policies: &[Policy], req: &Req) -> (bool, Option<Effect>) {
    let mut context = Context::new();
    for (key, values) in &req.context {
        context.insert_all(key, values.iter().copied());
    }
    let request = Request {
        principal: "arn:aws:iam::111122223333:user/alice",
        action: req.action,
        resource: req.resource,
        context: &context,
    };
    let decision = evaluate(policies, &request);
    let shared: Vec<Arc<Policy>> = policies.iter().cloned().map(Arc::new).collect();
    let indexed = PolicySet::new(shared, ACTIONS);
    assert_eq!(
        indexed.evaluate(&request),
        decision,
        "the indexed set decides alike"
    );
    let effect = decision.statement().map(|at| {
        let policy = &policies[at.policy_index];
        assert_eq!(policy.name(), at.policy_name);
        policy.statement(at.statement_index).unwrap().1
    });
    match decision {
        Decision::Allow(_) => assert_eq!(effect, Some(Effect::Allow)),
        Decision::ExplicitDeny(_) => assert_eq!(effect, Some(Effect::Deny)),
        Decision::ImplicitDeny => assert_eq!(effect, None),
    }
    (decision.is_allowed(), effect)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn prop_explicit_deny_wins(
        mut policies in policies_with(effect()),
        req in request(),
        where_policy in any::<prop::sample::Index>(),
        where_statement in any::<prop::sample::Index>(),
    ) {
        let deny = Stmt {
            effect: Effect::Deny,
            not_action: false,
            actions: vec![req.action],
            not_resource: false,
            resources: vec!["*"],
            conditions: vec![],
        };
        if policies.is_empty() {
            policies.push(Vec::new());
        }
        let p = where_policy.index(policies.len());
        let s = where_statement.index(policies[p].len() + 1);
        policies[p].insert(s, deny);
        let (allowed, effect) = decide(&compile(&policies), &req);
        prop_assert!(!allowed);
        prop_assert_eq!(effect, Some(Effect::Deny));
    }

    #[test]
    fn prop_no_allow_statement_denies_everything(
        policies in policies_with(Just(Effect::Deny)),
        req in request(),
    ) {
        let (allowed, _) = decide(&compile(&policies), &req);
        prop_assert!(!allowed);
    }

    #[test]
    fn prop_adding_an_allow_never_turns_allow_into_deny(
        mut policies in policies_with(effect()),
        req in request(),
        extra in stmt_with(Just(Effect::Allow)),
        where_policy in any::<prop::sample::Index>(),
        where_statement in any::<prop::sample::Index>(),
    ) {
        let (before, before_effect) = decide(&compile(&policies), &req);
        if policies.is_empty() {
            policies.push(Vec::new());
        }
        let p = where_policy.index(policies.len());
        let s = where_statement.index(policies[p].len() + 1);
        policies[p].insert(s, extra);
        let (after, after_effect) = decide(&compile(&policies), &req);
        if before {
            prop_assert!(after);
        }
        // Nor does it lift an explicit deny.
        if before_effect == Some(Effect::Deny) {
            prop_assert_eq!(after_effect, Some(Effect::Deny));
        }
    }
}

/// Policy-flavoured JSON: the grammar's names and values, nested arbitrarily.
fn json_ish() -> impl Strategy<Value = String> {
    const WORDS: &[&str] = &[
        "Version",
        "2012-10-17",
        "2008-10-17",
        "Statement",
        "Sid",
        "Effect",
        "Allow",
        "Deny",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "Principal",
        "Id",
        "*",
        "ec2:*",
        "a:b?",
        "arn:aws:ec2:*:*:instance/*",
        "arn:${aws:username}:${",
        "${*}${?}${$}",
        "${aws:x, 'd}'}",
        "${",
        "StringLike",
        "ForAllValues:StringNotEqualsIfExists",
        "NumericLessThan",
        "DateGreaterThan",
        "IpAddress",
        "NullIfExists",
        "Null",
        "Bool",
        "ArnLike",
        "aws:SourceIp",
        "10.0.0.0/8",
        "::/0",
        "2024-02-29T00:00:00Z",
        "1e308",
        "",
        "é",
        "\u{0}",
    ];
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| if n.is_finite() {
            n.to_string()
        } else {
            "0".into()
        }),
        prop::sample::select(WORDS).prop_map(|w| format!("{w:?}")),
        "\\PC{0,12}".prop_map(|s| format!("{s:?}")),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(
                (
                    prop_oneof![
                        prop::sample::select(WORDS).prop_map(str::to_owned),
                        "\\PC{0,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|members| {
                let members: Vec<String> =
                    members.iter().map(|(k, v)| format!("{k:?}: {v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// Parsing, and evaluating and linting whatever parses, never panics.
fn exercise(document: &str) {
    let Ok(policy) = Policy::parse("fuzz", document) else {
        return;
    };
    let context = Context::new()
        .with("aws:username", "alice")
        .with("aws:SourceIp", "10.0.0.1")
        .with("aws:CurrentTime", "2024-01-01T00:00:00Z");
    for resource in RESOURCES {
        let request = Request {
            principal: "arn:aws:iam::1:user/alice",
            action: "ec2:DescribeInstances",
            resource,
            context: &context,
        };
        let _ = evaluate([&policy], &request);
    }
    let _ = lint(
        &policy,
        &Known {
            actions: Some(ACTIONS),
            condition_keys: Some(&["aws:*"]),
        },
    );
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn prop_parsing_never_panics_on_json_ish_input(document in json_ish()) {
        exercise(&document);
    }

    #[test]
    fn prop_parsing_never_panics_on_mutated_policies(
        policies in policies_with(effect()),
        cut in any::<prop::sample::Index>(),
        len in 0usize..8,
        insert in "\\PC{0,6}",
    ) {
        let statements: Vec<Stmt> = policies.into_iter().flatten().collect();
        let document = policy_json(&statements);
        let mut start = cut.index(document.len() + 1);
        while !document.is_char_boundary(start) {
            start -= 1;
        }
        let mut end = (start + len).min(document.len());
        while !document.is_char_boundary(end) {
            end -= 1;
        }
        let mutated = format!("{}{insert}{}", &document[..start], &document[end..]);
        exercise(&mutated);
    }

    #[test]
    fn prop_parsing_never_panics_on_arbitrary_text(document in "\\PC{0,200}") {
        exercise(&document);
    }
}
