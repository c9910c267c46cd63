//! Evaluation of identity-based policies, AWS's way: an explicit `Deny` in any statement of any
//! policy wins; otherwise any `Allow` allows; otherwise the request is implicitly denied.

use std::fmt;
use std::sync::Arc;

use crate::context::{Env, Request};
use crate::policy::Policy;
use crate::statement::{Effect, Statement};

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
    let candidates = policies
        .into_iter()
        .enumerate()
        .flat_map(|(policy_index, policy)| {
            policy
                .statements
                .iter()
                .enumerate()
                .map(move |(statement_index, statement)| {
                    (policy_index, policy, statement_index, statement)
                })
        })
        .filter(|(.., statement)| statement.names_action(&env.action));
    decide(candidates, &env)
}

/// The policies attached to one principal, with, for each action the service knows, the
/// statements whose `Action`/`NotAction` take it in, found once: evaluating a known action
/// tests those statements only. Decides exactly as [`evaluate`] over the same policies.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    policies: Vec<Arc<Policy>>,
    by_action: Vec<Named>,
}

/// The statements that name one action.
#[derive(Debug, Clone)]
struct Named {
    /// ASCII lowercase.
    action: Box<str>,
    /// (policy index, statement index), in evaluation order.
    statements: Box<[(u32, u32)]>,
}

impl PolicySet {
    /// `policies`, in evaluation order, indexed for `actions` (`service:Name`).
    pub fn new(policies: Vec<Arc<Policy>>, actions: &[&str]) -> Self {
        let by_action = actions
            .iter()
            .map(|action| {
                let action = action.to_ascii_lowercase();
                let mut named = Vec::new();
                for (p, policy) in policies.iter().enumerate() {
                    for (s, statement) in policy.statements.iter().enumerate() {
                        if statement.names_action(&action) {
                            named.push((index(p), index(s)));
                        }
                    }
                }
                Named {
                    action: action.into_boxed_str(),
                    statements: named.into_boxed_slice(),
                }
            })
            .collect();
        Self {
            policies,
            by_action,
        }
    }

    pub fn policies(&self) -> &[Arc<Policy>] {
        &self.policies
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The decision on `request`, as [`evaluate`] gives it.
    pub fn evaluate(&self, request: &Request<'_>) -> Decision<'_> {
        let env = Env::new(request);
        let Some(named) = self.by_action.iter().find(|n| *n.action == *env.action) else {
            return evaluate(self.policies.iter().map(AsRef::as_ref), request);
        };
        let candidates = named.statements.iter().filter_map(|&(p, s)| {
            let policy = self.policies.get(p as usize)?;
            let statement = policy.statements.get(s as usize)?;
            Some((p as usize, policy.as_ref(), s as usize, statement))
        });
        decide(candidates, &env)
    }
}

/// A policy or statement position; policies are far smaller than 2^32 statements.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The decision over `candidates`: statements that name the request's action, in order.
fn decide<'p>(
    candidates: impl Iterator<Item = (usize, &'p Policy, usize, &'p Statement)>,
    env: &Env<'_>,
) -> Decision<'p> {
    let mut allow = None;
    for (policy_index, policy, statement_index, statement) in candidates {
        if allow.is_some() && statement.effect == Effect::Allow {
            continue;
        }
        if !statement.applies_to_named_action(env) {
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
    allow.map_or(Decision::ImplicitDeny, Decision::Allow)
}
