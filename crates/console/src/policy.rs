//! Who is asking and what they may do: an authenticated principal and the IAM policies that
//! decide for it (evaluated by [`iam`], see `ops/authorize.rs`).
//!
//! The rules, in one place:
//! - every action is decided by the principal's identity-based policies, AWS's way: an explicit
//!   `Deny` wins, then any `Allow`, else an implicit deny;
//! - an instance-level action is decided on the instance's ARN, always built with the caller's
//!   own account, so another account's instance is never in reach;
//! - an account-level action ([`Action::is_account_level`]) is decided on `*`, as in EC2 (no
//!   resource-level permissions);
//! - the flat `instances`/`actions` allow-lists of the configuration are one more policy
//!   ([`allow_list_policy`]).

use std::fmt;
use std::sync::Arc;

use iam::{Context, Policy, PolicySet};

use crate::ids::{AccountId, InstanceId};

/// The API actions a policy can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    SendSerialConsoleSSHPublicKey,
    SendSSHPublicKey,
    DescribeInstances,
    StartInstances,
    StopInstances,
    RebootInstances,
    GetConsoleOutput,
    EnableSerialConsoleAccess,
    DisableSerialConsoleAccess,
    GetSerialConsoleAccessStatus,
    ListSerialConsoleSessions,
    EndSerialConsoleSession,
    SpectateSerialConsole,
    /// Spending a browser console link (`GET /console/…`, presigned).
    OpenSerialConsole,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 14] = [
        Action::SendSerialConsoleSSHPublicKey,
        Action::SendSSHPublicKey,
        Action::DescribeInstances,
        Action::StartInstances,
        Action::StopInstances,
        Action::RebootInstances,
        Action::GetConsoleOutput,
        Action::EnableSerialConsoleAccess,
        Action::DisableSerialConsoleAccess,
        Action::GetSerialConsoleAccessStatus,
        Action::ListSerialConsoleSessions,
        Action::EndSerialConsoleSession,
        Action::SpectateSerialConsole,
        Action::OpenSerialConsole,
    ];

    /// The IAM action name, `ec2-instance-connect:…`, `ec2:…` or, for the session control that
    /// AWS does not have, `serialgate:…`.
    pub fn iam_name(self) -> &'static str {
        match self {
            Action::SendSerialConsoleSSHPublicKey => {
                "ec2-instance-connect:SendSerialConsoleSSHPublicKey"
            }
            Action::SendSSHPublicKey => "ec2-instance-connect:SendSSHPublicKey",
            Action::DescribeInstances => "ec2:DescribeInstances",
            Action::StartInstances => "ec2:StartInstances",
            Action::StopInstances => "ec2:StopInstances",
            Action::RebootInstances => "ec2:RebootInstances",
            Action::GetConsoleOutput => "ec2:GetConsoleOutput",
            Action::EnableSerialConsoleAccess => "ec2:EnableSerialConsoleAccess",
            Action::DisableSerialConsoleAccess => "ec2:DisableSerialConsoleAccess",
            Action::GetSerialConsoleAccessStatus => "ec2:GetSerialConsoleAccessStatus",
            Action::ListSerialConsoleSessions => "serialgate:ListSerialConsoleSessions",
            Action::EndSerialConsoleSession => "serialgate:EndSerialConsoleSession",
            Action::SpectateSerialConsole => "serialgate:SpectateSerialConsole",
            Action::OpenSerialConsole => "serialgate:OpenSerialConsole",
        }
    }

    /// The name without its service prefix, e.g. `StartInstances`.
    pub fn short_name(self) -> &'static str {
        let full = self.iam_name();
        full.split_once(':').map_or(full, |(_, short)| short)
    }

    /// Whether the action concerns the account rather than one instance: EC2 grants these
    /// without resource-level permissions, so an instance allow-list cannot narrow them.
    pub fn is_account_level(self) -> bool {
        matches!(
            self,
            Action::EnableSerialConsoleAccess
                | Action::DisableSerialConsoleAccess
                | Action::GetSerialConsoleAccessStatus
                | Action::DescribeInstances
                | Action::ListSerialConsoleSessions
        )
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Every condition key a request to this service can carry (`*`: a family of keys). The
/// request sets `aws:SourceIp` (when known), the time keys, `aws:SecureTransport`,
/// `aws:RequestedRegion` and `ec2:Region`; the caller brings the `aws:Principal…` keys,
/// `aws:username` (users only) and `aws:userid`; an instance of the caller's account brings its
/// tags, type and zone; `ec2:osuser` comes with SendSSHPublicKey only.
pub const CONDITION_KEYS: &[&str] = &[
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:SecureTransport",
    "aws:RequestedRegion",
    "aws:PrincipalArn",
    "aws:PrincipalAccount",
    "aws:PrincipalType",
    "aws:PrincipalTag/*",
    "aws:username",
    "aws:userid",
    "aws:ResourceTag/*",
    "ec2:ResourceTag/*",
    "ec2:InstanceType",
    "ec2:Region",
    "ec2:AvailabilityZone",
    "ec2:osuser",
];

/// A set of [`Action`]s. Always explicit: the empty set allows nothing.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ActionSet(u16);

impl ActionSet {
    /// No action at all.
    pub const NONE: ActionSet = ActionSet(0);

    /// Every action.
    pub fn all() -> Self {
        Action::ALL.into_iter().collect()
    }

    /// What a credential whose configuration names no `actions` may do: push keys (a
    /// spectator's included: whoever may take the console may watch it) and open the console
    /// in a browser, nothing else.
    pub fn push_only() -> Self {
        [
            Action::SendSerialConsoleSSHPublicKey,
            Action::SendSSHPublicKey,
            Action::SpectateSerialConsole,
            Action::OpenSerialConsole,
        ]
        .into_iter()
        .collect()
    }

    /// The actions an IAM-style action pattern names: `*` any run of characters, `?` exactly
    /// one, matched case-insensitively (as IAM does) against the full name
    /// (`ec2:DescribeInstances`) and the name without its prefix (`DescribeInstances`). So
    /// `"*"` is every action, `"ec2:*"` the EC2 ones, `"ec2:Describe*"` one, and `"ec2:Send*"`
    /// none (the pushes are `ec2-instance-connect:`).
    pub fn matching(pattern: &str) -> Self {
        let pattern = pattern.to_ascii_lowercase();
        let hit = |name: &str| glob_match(pattern.as_bytes(), name.to_ascii_lowercase().as_bytes());
        Action::ALL
            .into_iter()
            .filter(|a| hit(a.iam_name()) || hit(a.short_name()))
            .collect()
    }

    pub fn contains(self, action: Action) -> bool {
        self.0 & action.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: ActionSet) -> Self {
        ActionSet(self.0 | other.0)
    }

    /// The actions in the set, in [`Action::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Action> {
        Action::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Action> for ActionSet {
    fn from_iter<I: IntoIterator<Item = Action>>(iter: I) -> Self {
        ActionSet(iter.into_iter().fold(0, |bits, a| bits | a.bit()))
    }
}

impl fmt::Debug for ActionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// An authenticated caller. Built by the API layer from a verified signature; the domain trusts it.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `arn:aws:iam::ACCOUNT:user/NAME` or `arn:aws:iam::ACCOUNT:root`.
    pub arn: String,
    pub account: AccountId,
    /// The identity-based policies that decide what this principal may do (its own, then its
    /// account's), indexed by action. None attached allows nothing.
    pub policies: Arc<PolicySet>,
    /// The condition keys that describe the caller (`aws:PrincipalArn`, `aws:PrincipalAccount`,
    /// `aws:PrincipalTag/K`, `aws:username`, `aws:userid`), converted once.
    pub context: Arc<Context>,
}

/// Who a principal is, for the condition keys AWS sets from the caller.
#[derive(Debug, Clone, Default)]
pub struct Identity<'a> {
    /// `aws:username`; none for an account root.
    pub user: Option<&'a str>,
    /// `aws:userid`.
    pub user_id: &'a str,
    /// `aws:PrincipalTag/K`.
    pub tags: &'a [(String, String)],
}

impl Principal {
    /// A principal named `arn` in `account`, decided by `policies`.
    pub fn new(
        arn: String,
        account: AccountId,
        identity: &Identity<'_>,
        policies: Vec<Arc<Policy>>,
    ) -> Self {
        let mut context = Context::new();
        context
            .insert("aws:PrincipalArn", arn.clone())
            .insert("aws:PrincipalAccount", account.to_string())
            .insert(
                "aws:PrincipalType",
                if identity.user.is_some() {
                    "User"
                } else {
                    "Account"
                },
            )
            .insert("aws:userid", identity.user_id);
        if let Some(user) = identity.user {
            context.insert("aws:username", user);
        }
        for (k, v) in identity.tags {
            context.insert(&format!("aws:PrincipalTag/{k}"), v.clone());
        }
        let actions: Vec<&str> = Action::ALL.iter().map(|a| a.iam_name()).collect();
        Self {
            arn,
            account,
            policies: Arc::new(PolicySet::new(policies, &actions)),
            context: Arc::new(context),
        }
    }

    /// An account root allowed every action on every instance of its account.
    pub fn account_root(account: AccountId) -> Self {
        Self::new(
            format!("arn:aws:iam::{account}:root"),
            account.clone(),
            &Identity {
                user_id: account.as_str(),
                ..Identity::default()
            },
            vec![Arc::new(allow_everything())],
        )
    }
}

impl Principal {
    /// A user of `account` decided by its allow-lists alone (see [`allow_list_policy`]).
    pub fn with_allow_list(
        user: &str,
        account: AccountId,
        instances: Option<&[String]>,
        actions: ActionSet,
    ) -> Self {
        let policies = allow_list_policy(user, &account, instances, actions)
            .map(|(_, policy)| Arc::new(policy))
            .into_iter()
            .collect();
        Self::new(
            format!("arn:aws:iam::{account}:user/{user}"),
            account,
            &Identity {
                user: Some(user),
                user_id: user,
                tags: &[],
            },
            policies,
        )
    }
}

/// `Allow * on *`: what an account root may do.
fn allow_everything() -> Policy {
    let document =
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;
    // A constant document; a parse failure would be a bug caught by every test.
    Policy::parse("account root", document).unwrap_or_else(|e| unreachable!("{e}"))
}

/// The policy equivalent to a credential's `instances` and `actions` allow-lists:
/// - `Sid "Instances"` allows the instance-level actions of `actions` on the instances that
///   `instances` names (an id pattern `P` becomes `arn:aws:ec2:*:ACCOUNT:instance/P`, an ARN
///   pattern stays as written, and no list means every instance of the account);
/// - `Sid "Account"` allows the account-level actions of `actions` on `*`, which is how AWS
///   decides them (no resource-level permissions), so the instance list does not narrow them.
///
/// `None` when `actions` is empty (nothing to allow). The document is returned with the policy
/// so that it can be shown to an operator.
pub fn allow_list_policy(
    name: &str,
    account: &AccountId,
    instances: Option<&[String]>,
    actions: ActionSet,
) -> Option<(String, Policy)> {
    let names = |account_level: bool| -> Vec<&'static str> {
        actions
            .iter()
            .filter(|a| a.is_account_level() == account_level)
            .map(Action::iam_name)
            .collect()
    };
    let resources: Vec<String> = match instances {
        None => vec!["*".to_owned()],
        Some(list) => list
            .iter()
            .map(|p| {
                if p.starts_with("arn:") {
                    p.clone()
                } else {
                    format!("arn:aws:ec2:*:{account}:instance/{p}")
                }
            })
            .collect(),
    };
    let mut statements = Vec::new();
    let on_instances = names(false);
    if !on_instances.is_empty() && !resources.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "Instances", "Effect": "Allow", "Action": on_instances, "Resource": resources,
        }));
    }
    let on_account = names(true);
    if !on_account.is_empty() {
        statements.push(serde_json::json!({
            "Sid": "Account", "Effect": "Allow", "Action": on_account, "Resource": "*",
        }));
    }
    if statements.is_empty() {
        return None;
    }
    let document = serde_json::to_string_pretty(&serde_json::json!({
        "Version": "2012-10-17", "Statement": statements,
    }))
    .ok()?;
    // Built from known action names and ARN patterns, so it always parses; an instance pattern
    // that is no valid ARN component still parses (it matches nothing, as before).
    let policy = Policy::parse(name, &document).ok()?;
    Some((document, policy))
}

/// `arn:aws:ec2:REGION:ACCOUNT:instance/ID`.
pub fn instance_arn(region: &str, account: &AccountId, id: &InstanceId) -> String {
    format!("arn:aws:ec2:{region}:{account}:instance/{id}")
}

/// IAM wildcard matching: `*` any run of characters, `?` exactly one.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with single backtrack point: linear in practice, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"i-0123*", b"i-0123456789abcdef0"));
        assert!(glob_match(
            b"arn:aws:ec2:*:111122223333:instance/*",
            b"arn:aws:ec2:us-east-1:111122223333:instance/i-1"
        ));
        assert!(!glob_match(
            b"arn:aws:ec2:*:111122223333:instance/*",
            b"arn:aws:ec2:us-east-1:999922223333:instance/i-1"
        ));
        assert!(glob_match(b"i-????", b"i-abcd"));
        assert!(!glob_match(b"i-????", b"i-abcde"));
        assert!(!glob_match(b"", b"x"));
        assert!(glob_match(b"", b""));
    }

    fn names(set: ActionSet) -> Vec<&'static str> {
        set.iter().map(Action::short_name).collect()
    }

    #[test]
    fn action_patterns_expand_over_the_known_actions() {
        assert_eq!(ActionSet::matching("*"), ActionSet::all());
        assert_eq!(
            names(ActionSet::matching("ec2:*")),
            [
                "DescribeInstances",
                "StartInstances",
                "StopInstances",
                "RebootInstances",
                "GetConsoleOutput",
                "EnableSerialConsoleAccess",
                "DisableSerialConsoleAccess",
                "GetSerialConsoleAccessStatus",
            ]
        );
        // The default set: Instance Connect's pushes, serialgate's spectator push and its
        // browser link.
        assert_eq!(
            ActionSet::matching("ec2-instance-connect:*")
                .union(ActionSet::matching("serialgate:Spectate*"))
                .union(ActionSet::matching("serialgate:OpenSerialConsole")),
            ActionSet::push_only()
        );
        assert_eq!(
            names(ActionSet::matching("ec2:Describe*")),
            ["DescribeInstances"]
        );
        // With or without the prefix, in any case, as IAM reads action names.
        assert_eq!(
            names(ActionSet::matching("StartInstances")),
            ["StartInstances"]
        );
        assert_eq!(
            names(ActionSet::matching("ec2:startinstances")),
            ["StartInstances"]
        );
        assert_eq!(
            names(ActionSet::matching("*SerialConsoleAccess")),
            ["EnableSerialConsoleAccess", "DisableSerialConsoleAccess"]
        );
        assert_eq!(
            names(ActionSet::matching("Send?SHPublicKey")),
            ["SendSSHPublicKey"]
        );
        // The pushes belong to ec2-instance-connect, not ec2; nonsense names match nothing.
        assert!(ActionSet::matching("ec2:SendSSHPublicKey").is_empty());
        assert!(ActionSet::matching("ec2:TerminateInstances").is_empty());
        assert!(ActionSet::matching("").is_empty());
    }

    #[test]
    fn action_sets() {
        assert_eq!(ActionSet::all().iter().count(), Action::ALL.len());
        assert!(ActionSet::NONE.is_empty());
        let push = ActionSet::push_only();
        assert!(push.contains(Action::SendSSHPublicKey));
        assert!(push.contains(Action::SendSerialConsoleSSHPublicKey));
        assert!(
            !Action::ALL
                .into_iter()
                .any(|a| a.is_account_level() && push.contains(a))
        );
        assert_eq!(
            push.union(ActionSet::matching("ec2:*"))
                .union(ActionSet::matching("serialgate:*")),
            ActionSet::all()
        );
        assert_eq!(
            format!("{:?}", ActionSet::matching("serialgate:*")),
            "{ListSerialConsoleSessions, EndSerialConsoleSession, SpectateSerialConsole, OpenSerialConsole}"
        );
        assert_eq!(
            format!("{:?}", ActionSet::matching("ec2:Reboot*")),
            "{RebootInstances}"
        );
    }

    /// The allow-list semantics the translation must keep: the action in the set and, for an
    /// instance-level action, the id or the ARN matching one of the patterns.
    fn old_rule(
        instances: Option<&[String]>,
        actions: ActionSet,
        action: Action,
        id: &str,
        arn: &str,
    ) -> bool {
        actions.contains(action)
            && (action.is_account_level()
                || instances.is_none_or(|list| {
                    list.iter().any(|p| {
                        glob_match(p.as_bytes(), arn.as_bytes())
                            || glob_match(p.as_bytes(), id.as_bytes())
                    })
                }))
    }

    #[test]
    fn allow_lists_translate_into_an_equivalent_policy() {
        let acct = AccountId::parse("111122223333").unwrap();
        let scopes: Vec<Option<Vec<String>>> = vec![
            None,
            Some(vec!["i-0123*".into()]),
            Some(vec!["i-0123456789abcdef0".into(), "i-fff*".into()]),
            Some(vec!["arn:aws:ec2:*:111122223333:instance/i-0?23*".into()]),
            Some(vec!["arn:aws:ec2:*:999999999999:instance/*".into()]),
            Some(vec!["*".into()]),
        ];
        let action_sets = [
            ActionSet::push_only(),
            ActionSet::all(),
            ActionSet::matching("ec2:*"),
            ActionSet::matching("ec2:Describe*").union(ActionSet::matching("SendSSHPublicKey")),
            ActionSet::matching("*SerialConsoleAccess*"),
        ];
        let ids = [
            "i-0123456789abcdef0",
            "i-0fff00000000000ab",
            "i-0223456789abcdef0",
        ];
        let mut checked = 0;
        for scope in &scopes {
            for &actions in &action_sets {
                let (_, policy) =
                    allow_list_policy("allow-list", &acct, scope.as_deref(), actions).unwrap();
                for id in ids {
                    let id = InstanceId::parse(id).unwrap();
                    let arn = instance_arn("eu-west-3", &acct, &id);
                    for action in Action::ALL {
                        let resource = if action.is_account_level() {
                            "*"
                        } else {
                            arn.as_str()
                        };
                        let context = Context::new();
                        let request = iam::Request {
                            principal: "arn:aws:iam::111122223333:user/u",
                            action: action.iam_name(),
                            resource,
                            context: &context,
                        };
                        let allowed = iam::evaluate([&policy], &request).is_allowed();
                        let expected =
                            old_rule(scope.as_deref(), actions, action, id.as_str(), &arn);
                        assert_eq!(allowed, expected, "{scope:?} {actions:?} {action:?} {id}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(
            checked,
            scopes.len() * action_sets.len() * ids.len() * Action::ALL.len()
        );
        assert!(allow_list_policy("none", &acct, None, ActionSet::NONE).is_none());
    }

    #[test]
    fn the_account_root_may_do_everything_and_principal_keys_are_set() {
        let acct = AccountId::parse("111122223333").unwrap();
        let root = Principal::account_root(acct.clone());
        assert_eq!(root.arn, "arn:aws:iam::111122223333:root");
        assert_eq!(
            root.context.get("aws:PrincipalAccount"),
            Some(&["111122223333".to_owned()][..])
        );
        assert_eq!(root.context.get("aws:username"), None);
        let tags = [("team".to_owned(), "db".to_owned())];
        let alice = Principal::new(
            "arn:aws:iam::111122223333:user/alice".into(),
            acct,
            &Identity {
                user: Some("alice"),
                user_id: "AKIDALICE",
                tags: &tags,
            },
            Vec::new(),
        );
        assert_eq!(
            alice.context.get("aws:username"),
            Some(&["alice".to_owned()][..])
        );
        assert_eq!(
            alice.context.get("aws:PrincipalTag/team"),
            Some(&["db".to_owned()][..])
        );
        assert_eq!(
            alice.context.get("aws:userid"),
            Some(&["AKIDALICE".to_owned()][..])
        );
        assert!(alice.policies.is_empty());
    }
}
