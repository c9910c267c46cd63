//! Who is asking and what they may do: an authenticated principal and its allow-list.

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
    /// The IAM action name, `ec2-instance-connect:…`.
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

    /// Parses an IAM action name, with or without its service prefix.
    pub fn from_iam_name(name: &str) -> Option<Self> {
        let short = name
            .strip_prefix("ec2-instance-connect:")
            .or_else(|| name.strip_prefix("ec2:"))
            .unwrap_or(name);
        Some(match short {
            "SendSerialConsoleSSHPublicKey" => Action::SendSerialConsoleSSHPublicKey,
            "SendSSHPublicKey" => Action::SendSSHPublicKey,
            "DescribeInstances" => Action::DescribeInstances,
            "StartInstances" => Action::StartInstances,
            "StopInstances" => Action::StopInstances,
            "RebootInstances" => Action::RebootInstances,
            "GetConsoleOutput" => Action::GetConsoleOutput,
            "EnableSerialConsoleAccess" => Action::EnableSerialConsoleAccess,
            "DisableSerialConsoleAccess" => Action::DisableSerialConsoleAccess,
            "GetSerialConsoleAccessStatus" => Action::GetSerialConsoleAccessStatus,
            _ => return None,
        })
    }

    /// Whether this action is allowed for `principal` regardless of resource (EC2 actions
    /// without resource-level permissions: the account-level switch).
    pub fn is_account_level(self) -> bool {
        matches!(
            self,
            Action::EnableSerialConsoleAccess
                | Action::DisableSerialConsoleAccess
                | Action::GetSerialConsoleAccessStatus
                | Action::DescribeInstances
        )
    }
}

/// An authenticated caller. Built by the API layer from a verified signature; the domain trusts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `arn:aws:iam::ACCOUNT:user/NAME` or `arn:aws:iam::ACCOUNT:root`.
    pub arn: String,
    pub account: AccountId,
    /// IAM-style patterns (`*`, `?`) over instance ARNs or bare instance ids; empty means all.
    pub resources: Vec<String>,
    /// Allowed actions; empty means all.
    pub actions: Vec<Action>,
}

impl Principal {
    /// A principal allowed everything in its account.
    pub fn account_root(account: AccountId) -> Self {
        Self {
            arn: format!("arn:aws:iam::{account}:root"),
            account,
            resources: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// Whether this principal may perform `action` on `instance` (whose ARN is `instance_arn`).
    pub fn allows(&self, action: Action, instance: &InstanceId, instance_arn: &str) -> bool {
        let action_ok = self.actions.is_empty() || self.actions.contains(&action);
        let resource_ok = self.resources.is_empty()
            || self.resources.iter().any(|p| {
                glob_match(p.as_bytes(), instance_arn.as_bytes())
                    || glob_match(p.as_bytes(), instance.as_str().as_bytes())
            });
        action_ok && resource_ok
    }
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

    #[test]
    fn allow_lists() {
        let acct = AccountId::parse("111122223333").unwrap();
        let i = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let arn = "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0";
        let mut p = Principal::account_root(acct);
        assert!(p.allows(Action::SendSSHPublicKey, &i, arn));
        p.actions = vec![Action::SendSerialConsoleSSHPublicKey];
        assert!(!p.allows(Action::SendSSHPublicKey, &i, arn));
        assert!(p.allows(Action::SendSerialConsoleSSHPublicKey, &i, arn));
        p.resources = vec!["i-fff*".into()];
        assert!(!p.allows(Action::SendSerialConsoleSSHPublicKey, &i, arn));
    }
}
