//! Findings about statements that load but cannot work as their author meant: an action that
//! names nothing the service has, an ARN that is not one (it matches nothing, so an `Allow`
//! grants nothing and a `Deny` refuses nothing), a condition key the service never sets, a
//! `${…}` that the policy's `Version` leaves as plain text.

use std::fmt;

use crate::arn::ArnPattern;
use crate::pattern::{self, NoVars, Syntax};
use crate::policy::{Policy, Version};

/// What the service knows, to check names against. `None` skips that check. Comparisons ignore
/// ASCII case.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known<'a> {
    /// Every action the service authorizes, literally, e.g.
    /// `ec2-instance-connect:SendSerialConsoleSSHPublicKey`.
    pub actions: Option<&'a [&'a str]>,
    /// Every condition key the service sets; entries may use `*` and `?` for key families
    /// (`aws:ResourceTag/*`).
    pub condition_keys: Option<&'a [&'a str]>,
}

/// One finding about one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub statement_index: usize,
    pub sid: Option<String>,
    pub kind: FindingKind,
}

/// What a [`Finding`] is about.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// An `Action`/`NotAction` pattern that matches none of the known actions.
    UnknownAction(String),
    /// A `Resource`/`NotResource` or `Arn…` condition value that is not `*` or an ARN of six
    /// components: it matches nothing.
    MalformedArn(String),
    /// A condition key that is not among the known keys: the request never has it.
    UnknownConditionKey(String),
    /// Text with `${` in a policy whose `Version` is not 2012-10-17: not substituted.
    VariableNotSubstituted(String),
}

impl fmt::Display for FindingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FindingKind::UnknownAction(a) => write!(f, "action {a:?} matches no known action"),
            FindingKind::MalformedArn(r) => write!(
                f,
                "{r:?} is not \"*\" or an ARN (arn:partition:service:region:account:resource) and matches nothing"
            ),
            FindingKind::UnknownConditionKey(k) => {
                write!(
                    f,
                    "condition key {k:?} is not a known key and is never present"
                )
            }
            FindingKind::VariableNotSubstituted(t) => write!(
                f,
                "{t:?} holds `${{`, but variables are substituted only under \"Version\": \"2012-10-17\""
            ),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Statement[{}]", self.statement_index)?;
        if let Some(sid) = &self.sid {
            write!(f, " (Sid {sid:?})")?;
        }
        write!(f, ": {}", self.kind)
    }
}

/// Reports every finding in `policy`, in statement order.
pub fn lint(policy: &Policy, known: &Known<'_>) -> Vec<Finding> {
    let known_keys = known.condition_keys.map(compile_all);
    let mut findings = Vec::new();
    for (index, statement) in policy.statements.iter().enumerate() {
        let mut report = |kind| {
            findings.push(Finding {
                statement_index: index,
                sid: statement.sid.as_deref().map(str::to_owned),
                kind,
            });
        };
        if let Some(known_actions) = known.actions {
            for (pattern, raw) in statement.actions.iter().zip(&statement.raw_actions) {
                if !known_actions
                    .iter()
                    .any(|name| pattern.matches(name, &NoVars, true))
                {
                    report(FindingKind::UnknownAction(raw.to_string()));
                }
            }
        }
        for (pattern, raw) in statement.resources.iter().zip(&statement.raw_resources) {
            if *pattern == ArnPattern::Malformed {
                report(FindingKind::MalformedArn(raw.to_string()));
            }
        }
        for condition in &statement.conditions {
            for raw in condition.malformed_arns() {
                report(FindingKind::MalformedArn(raw.to_owned()));
            }
            if let Some(known_keys) = &known_keys
                && !known_keys
                    .iter()
                    .any(|k| k.matches(&condition.raw_key, &NoVars, true))
            {
                report(FindingKind::UnknownConditionKey(
                    condition.raw_key.to_string(),
                ));
            }
        }
        if policy.version() != Version::V2012_10_17 {
            let texts = statement.raw_resources.iter().chain(
                statement
                    .conditions
                    .iter()
                    .flat_map(|c| c.raw_values.iter()),
            );
            for text in texts.filter(|t| t.contains("${")) {
                report(FindingKind::VariableNotSubstituted(text.to_string()));
            }
        }
    }
    findings
}

fn compile_all(entries: &[&str]) -> Vec<pattern::Pattern> {
    let syntax = Syntax {
        variables: false,
        wildcards: true,
    };
    entries
        .iter()
        .filter_map(|e| pattern::compile(e, syntax).ok())
        .collect()
}
