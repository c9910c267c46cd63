//! Who is asking and what they may do: an authenticated principal and its allow-list.
//!
//! The rules, in one place:
//! - a principal may perform an action only if its [`ActionSet`] holds it; nothing means "all";
//! - an instance-level action also needs the instance's id or ARN to match the principal's
//!   [`InstanceScope`], where the ARN is always built with the caller's own account;
//! - an account-level action ([`Action::is_account_level`]) has no instance to match, as in EC2
//!   (no resource-level permissions): the action set alone decides, so an instance-scoped
//!   credential gets one only when its configuration names it (explicitly or by a wildcard).

use std::fmt;

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
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 10] = [
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
    ];

    /// The IAM action name, `ec2-instance-connect:…` or `ec2:…`.
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
        )
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

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

    /// What a credential whose configuration names no `actions` may do: push keys, nothing else.
    pub fn push_only() -> Self {
        [
            Action::SendSerialConsoleSSHPublicKey,
            Action::SendSSHPublicKey,
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

/// The instances a principal may name in instance-level actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceScope {
    /// Every instance of the principal's account.
    All,
    /// Instances whose id or ARN matches one of these IAM-style patterns (`*`, `?`).
    Matching(Vec<String>),
}

impl InstanceScope {
    /// Whether `instance` (whose ARN is `instance_arn`) is in scope.
    pub fn covers(&self, instance: &InstanceId, instance_arn: &str) -> bool {
        match self {
            InstanceScope::All => true,
            InstanceScope::Matching(patterns) => patterns.iter().any(|p| {
                glob_match(p.as_bytes(), instance_arn.as_bytes())
                    || glob_match(p.as_bytes(), instance.as_str().as_bytes())
            }),
        }
    }
}

/// An authenticated caller. Built by the API layer from a verified signature; the domain trusts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `arn:aws:iam::ACCOUNT:user/NAME` or `arn:aws:iam::ACCOUNT:root`.
    pub arn: String,
    pub account: AccountId,
    /// Instances this principal may name in instance-level actions.
    pub instances: InstanceScope,
    /// Actions this principal may perform.
    pub actions: ActionSet,
}

impl Principal {
    /// A principal allowed every action on every instance of its account.
    pub fn account_root(account: AccountId) -> Self {
        Self {
            arn: format!("arn:aws:iam::{account}:root"),
            account,
            instances: InstanceScope::All,
            actions: ActionSet::all(),
        }
    }

    /// Whether this principal may perform `action` at all: enough for an account-level action.
    pub fn may(&self, action: Action) -> bool {
        self.actions.contains(action)
    }

    /// Whether this principal may perform `action` on `instance` (whose ARN, in the caller's
    /// account, is `instance_arn`). An account-level action ignores the instance.
    pub fn allows(&self, action: Action, instance: &InstanceId, instance_arn: &str) -> bool {
        self.may(action)
            && (action.is_account_level() || self.instances.covers(instance, instance_arn))
    }
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
        assert_eq!(
            ActionSet::matching("ec2-instance-connect:*"),
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
        assert_eq!(push.union(ActionSet::matching("ec2:*")), ActionSet::all());
        assert_eq!(
            format!("{:?}", ActionSet::matching("ec2:Reboot*")),
            "{RebootInstances}"
        );
    }

    #[test]
    fn instance_scope() {
        let i = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let arn = "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0";
        assert!(InstanceScope::All.covers(&i, arn));
        assert!(InstanceScope::Matching(vec!["i-0123*".into()]).covers(&i, arn));
        assert!(
            InstanceScope::Matching(vec!["arn:aws:ec2:*:111122223333:*".into()]).covers(&i, arn)
        );
        assert!(!InstanceScope::Matching(vec!["i-fff*".into()]).covers(&i, arn));
        assert!(!InstanceScope::Matching(Vec::new()).covers(&i, arn));
    }

    #[test]
    fn allow_lists() {
        let acct = AccountId::parse("111122223333").unwrap();
        let i = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let arn = instance_arn("us-east-1", &acct, &i);
        assert_eq!(
            arn,
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"
        );
        let mut p = Principal::account_root(acct);
        assert!(p.allows(Action::SendSSHPublicKey, &i, &arn));
        p.actions = [Action::SendSerialConsoleSSHPublicKey]
            .into_iter()
            .collect();
        assert!(!p.allows(Action::SendSSHPublicKey, &i, &arn));
        assert!(p.allows(Action::SendSerialConsoleSSHPublicKey, &i, &arn));
        p.instances = InstanceScope::Matching(vec!["i-fff*".into()]);
        assert!(!p.allows(Action::SendSerialConsoleSSHPublicKey, &i, &arn));
        // An empty set allows nothing (it does not mean "all").
        p.actions = ActionSet::NONE;
        p.instances = InstanceScope::All;
        assert!(
            Action::ALL
                .into_iter()
                .all(|a| !p.may(a) && !p.allows(a, &i, &arn))
        );
    }
}
