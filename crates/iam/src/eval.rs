//! Evaluation of identity-based policies, AWS's way: an explicit `Deny` in any statement of any
//! policy wins; otherwise any `Allow` allows; otherwise the request is implicitly denied.

use std::fmt;

use crate::context::{Env, Request};
use crate::policy::Policy;
use crate::statement::Effect;

/// The statement that decided a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementRef<'p> {
    /// Position of the policy in the sequence given to [`evaluate`].
    pub policy_index: usize,
    /// The policy's name, as given to [`Policy::parse`].
    pub policy_name: &'p str,
    /// Position of the statement in its policy (0-based).
    pub statement_index: usize,
    pub sid: Option<&'p str>,
}

impl fmt::Display for StatementRef<'_> {
    /// `policy "NAME" Statement[I] (Sid "SID")`, for audit and log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "policy {:?} Statement[{}]",
            self.policy_name, self.statement_index
        )?;
        match self.sid {
            Some(sid) => write!(f, " (Sid {sid:?})"),
            None => Ok(()),
        }
    }
}

/// The outcome of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision<'p> {
    /// No statement denies and this one (the first that applies) allows.
    Allow(StatementRef<'p>),
    /// This statement (the first that applies) denies.
    ExplicitDeny(StatementRef<'p>),
    /// No statement applies.
    ImplicitDeny,
}

impl<'p> Decision<'p> {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The deciding statement; `None` for an implicit deny.
    pub fn statement(&self) -> Option<StatementRef<'p>> {
        match self {
            Decision::Allow(s) | Decision::ExplicitDeny(s) => Some(*s),
            Decision::ImplicitDeny => None,
        }
    }

    /// AWS's sentence for a refused request, or `None` when it is allowed:
    /// `User: PRINCIPAL is not authorized to perform: ACTION on resource: RESOURCE because no
    /// identity-based policy allows the ACTION action`, or `… with an explicit deny in an
    /// identity-based policy`.
    pub fn denial_message(&self, request: &Request<'_>) -> Option<String> {
        let explicit = match self {
            Decision::Allow(_) => return None,
            Decision::ExplicitDeny(_) => true,
            Decision::ImplicitDeny => false,
        };
        Some(denial_sentence(
            request.principal,
            request.action,
            request.resource,
            explicit,
        ))
    }
}

/// AWS's sentence for a request its identity-based policies refused, explicitly (a `Deny`
/// applied) or not (no `Allow` applied): see [`Decision::denial_message`].
pub fn denial_sentence(principal: &str, action: &str, resource: &str, explicit: bool) -> String {
    let head =
        format!("User: {principal} is not authorized to perform: {action} on resource: {resource}");
    if explicit {
        format!("{head} with an explicit deny in an identity-based policy")
    } else {
        format!("{head} because no identity-based policy allows the {action} action")
    }
}

/// Evaluates `request` against every statement of every policy. The first applying `Deny` (in
/// policy order, then statement order) decides at once; otherwise the first applying `Allow`.
/// Once an `Allow` is found, only `Deny` statements are still tested.
pub fn evaluate<'p, I>(policies: I, request: &Request<'_>) -> Decision<'p>
where
    I: IntoIterator<Item = &'p Policy>,
{
    let env = Env::new(request);
    let mut allow = None;
    for (policy_index, policy) in policies.into_iter().enumerate() {
        for (statement_index, statement) in policy.statements.iter().enumerate() {
            if allow.is_some() && statement.effect == Effect::Allow {
                continue;
            }
            if !statement.applies(&env) {
                continue;
            }
            let at = StatementRef {
                policy_index,
                policy_name: policy.name(),
                statement_index,
                sid: statement.sid.as_deref(),
            };
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny(at),
                Effect::Allow => allow = Some(at),
            }
        }
    }
    allow.map_or(Decision::ImplicitDeny, Decision::Allow)
}
