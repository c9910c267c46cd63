//! IAM JSON policy documents, evaluated the way AWS evaluates identity-based policies.
//!
//! Invariant: pure logic — no I/O, no clock, no async. Documents are parsed and compiled once
//! ([`Policy::parse`]); [`evaluate`] then reads no JSON and allocates at most the request's
//! action lowercased, plus the text of a typed condition value built from a policy variable.
//!
//! The grammar: `Version` (`2012-10-17`, or `2008-10-17` under which `${…}` is plain text),
//! `Id`, `Statement` (one object or an array) with `Sid`, `Effect`, `Action`/`NotAction`,
//! `Resource`/`NotResource` and `Condition`. Actions are `*` or `service:Name` with `*`/`?`
//! wildcards, case-insensitive. Resources are `*` or ARN patterns matched per component
//! (`arn:partition:service:region:account:resource`). Condition operators: `String…`,
//! `Numeric…`, `Date…`, `Bool`, `IpAddress`/`NotIpAddress`, `Arn…`, `Null`, each (but `Null`)
//! with an `…IfExists` form and the `ForAnyValue:`/`ForAllValues:` qualifiers. Policy
//! variables (`${aws:username}`, `${aws:PrincipalTag/K}`, any context key, `${key, 'default'}`,
//! the escapes `${*}` `${?}` `${$}`) are substituted in `Resource` and condition values; the
//! substituted text is matched literally, and a variable without a value makes that pattern or
//! value match nothing. Anything outside the grammar is a [`ParseError`] naming the statement
//! (`Principal`, `BinaryEquals` and unknown operators included); unknown action names and
//! condition keys, and malformed ARNs (which match nothing), load, and [`lint`] reports them.
//!
//! Evaluation: an applying `Deny` anywhere wins, else an applying `Allow`, else an implicit deny;
//! the [`Decision`] names the deciding statement and renders AWS's denial sentence. Condition
//! values of one key are ORed, keys and operators ANDed; a key missing from the request fails
//! positive operators and `ForAnyValue:`, and passes negated operators, `…IfExists` and
//! `ForAllValues:`; a request value that does not convert to the operator's type fails it.
//!
//! Public API, in short: [`Policy::parse`] (name, JSON) → [`Policy`] or [`ParseError`];
//! [`Context`] + [`Request`] → [`evaluate`] over any sequence of `&Policy` → [`Decision`]
//! ([`StatementRef`], [`Decision::denial_message`]); [`lint`] with [`Known`] → [`Finding`]s.
//!
//! ```
//! use iam::{evaluate, Context, Decision, Policy, Request};
//!
//! let policy = Policy::parse("serial-console", r#"{
//!     "Version": "2012-10-17",
//!     "Statement": [{
//!         "Sid": "SerialConsole",
//!         "Effect": "Allow",
//!         "Action": "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
//!         "Resource": "arn:aws:ec2:*:111122223333:instance/*",
//!         "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}}
//!     }]
//! }"#)?;
//! let context = Context::new()
//!     .with("aws:PrincipalTag/Team", "infra")
//!     .with("aws:ResourceTag/Team", "web");
//! let request = Request {
//!     principal: "arn:aws:iam::111122223333:user/alice",
//!     action: "ec2-instance-connect:SendSerialConsoleSSHPublicKey",
//!     resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0",
//!     context: &context,
//! };
//! let decision = evaluate([&policy], &request);
//! assert_eq!(decision, Decision::ImplicitDeny);
//! assert_eq!(
//!     decision.denial_message(&request).as_deref(),
//!     Some("User: arn:aws:iam::111122223333:user/alice is not authorized to perform: \
//!           ec2-instance-connect:SendSerialConsoleSSHPublicKey on resource: \
//!           arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0 because no \
//!           identity-based policy allows the ec2-instance-connect:SendSerialConsoleSSHPublicKey action"),
//! );
//! # Ok::<(), iam::ParseError>(())
//! ```

mod arn;
mod condition;
mod context;
mod date;
mod error;
mod eval;
mod json;
mod key;
mod lint;
mod operator;
mod pattern;
mod policy;
mod statement;
mod values;

pub use context::{Context, Request};
pub use error::{ParseError, ParseErrorKind};
pub use eval::{Decision, PolicySet, StatementRef, denial_sentence, evaluate};
pub use lint::{Finding, FindingKind, Known, lint};
pub use pattern::VariableError;
pub use policy::{Policy, Version};
pub use statement::Effect;
