//! One policy statement: compiled from its JSON object, and tested against a request.

use crate::arn::ArnPattern;
use crate::condition::{self, Condition};
use crate::context::Env;
use crate::error::{ParseErrorKind, wrong_type};
use crate::json::Json;
use crate::pattern::{self, NoVars, Pattern, Syntax};

/// Whether a statement grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
pub(crate) struct Statement {
    pub(crate) sid: Option<Box<str>>,
    pub(crate) effect: Effect,
    /// `NotAction`: the statement applies to every action the patterns do not match.
    pub(crate) not_action: bool,
    pub(crate) actions: Box<[Pattern]>,
    pub(crate) raw_actions: Box<[Box<str>]>,
    /// `NotResource`: the statement applies to every resource the patterns do not match.
    pub(crate) not_resource: bool,
    pub(crate) resources: Box<[ArnPattern]>,
    pub(crate) raw_resources: Box<[Box<str>]>,
    pub(crate) conditions: Box<[Condition]>,
}

const ELEMENTS: &str = "Sid, Effect, Action, NotAction, Resource, NotResource, Condition";

impl Statement {
    /// Whether `Action`/`NotAction` takes in `action` (ASCII lowercase). Depends on nothing
    /// else in the request, so it can be decided ahead of time for a known action.
    pub(crate) fn names_action(&self, action: &str) -> bool {
        let named = self
            .actions
            .iter()
            .any(|p| p.matches(action, &NoVars, false));
        named != self.not_action
    }

    /// Whether the statement applies (its effect aside) to a request whose action it names
    /// ([`names_action`](Self::names_action)). Cheapest test first.
    pub(crate) fn applies_to_named_action(&self, env: &Env<'_>) -> bool {
        let resource = self
            .resources
            .iter()
            .any(|p| p.matches(env.resource.as_ref(), env));
        if resource == self.not_resource {
            return false;
        }
        self.conditions.iter().all(|c| c.holds(env))
    }

    /// Compiles a statement object. `variables`: the policy's `Version` substitutes them.
    pub(crate) fn compile(json: &Json, variables: bool) -> Result<Self, ParseErrorKind> {
        let Json::Object(members) = json else {
            return Err(wrong_type("a statement", "an object", json));
        };
        let mut sid = None;
        let mut effect = None;
        let mut action = None;
        let mut not_action = None;
        let mut resource = None;
        let mut not_resource = None;
        let mut conditions = Vec::new();
        for (name, value) in members {
            match name.as_str() {
                "Sid" => sid = parse_sid(value)?,
                "Effect" => effect = Some(parse_effect(value)?),
                "Action" => action = Some(strings("Action", value)?),
                "NotAction" => not_action = Some(strings("NotAction", value)?),
                "Resource" => resource = Some(strings("Resource", value)?),
                "NotResource" => not_resource = Some(strings("NotResource", value)?),
                "Condition" => conditions = condition::compile(value, variables)?,
                "Principal" | "NotPrincipal" => {
                    return Err(ParseErrorKind::PrincipalNotAllowed(name.clone()));
                }
                _ => {
                    return Err(ParseErrorKind::UnknownElement {
                        element: name.clone(),
                        expected: ELEMENTS,
                    });
                }
            }
        }
        let effect = effect.ok_or(ParseErrorKind::Missing("Effect"))?;
        let (not_action, raw_actions) = one_of(("Action", action), ("NotAction", not_action))?;
        let (not_resource, raw_resources) =
            one_of(("Resource", resource), ("NotResource", not_resource))?;
        let actions = raw_actions
            .iter()
            .map(|a| compile_action(a))
            .collect::<Result<_, _>>()?;
        let resources = raw_resources
            .iter()
            .map(|r| {
                ArnPattern::compile(r, variables).map_err(|error| ParseErrorKind::Variable {
                    element: if not_resource {
                        "NotResource"
                    } else {
                        "Resource"
                    }
                    .to_owned(),
                    text: r.clone(),
                    error,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            sid,
            effect,
            not_action,
            actions,
            raw_actions: raw_actions.into_iter().map(Into::into).collect(),
            not_resource,
            resources,
            raw_resources: raw_resources.into_iter().map(Into::into).collect(),
            conditions: conditions.into(),
        })
    }
}

/// Exactly one of a positive element and its `Not…` form; `true` when it is the `Not…` form.
fn one_of(
    (name, positive): (&'static str, Option<Vec<String>>),
    (not_name, negative): (&'static str, Option<Vec<String>>),
) -> Result<(bool, Vec<String>), ParseErrorKind> {
    match (positive, negative) {
        (Some(_), Some(_)) => Err(ParseErrorKind::Conflict(name, not_name)),
        (Some(values), None) => Ok((false, values)),
        (None, Some(values)) => Ok((true, values)),
        (None, None) => Err(ParseErrorKind::Missing(match name {
            "Action" => "Action or NotAction",
            _ => "Resource or NotResource",
        })),
    }
}

/// The `Sid`, which IAM restricts to ASCII letters and digits (it also keeps audit lines clean).
/// An empty `Sid` is no `Sid`.
pub(crate) fn parse_sid(value: &Json) -> Result<Option<Box<str>>, ParseErrorKind> {
    let Json::String(sid) = value else {
        return Err(wrong_type("Sid", "a string", value));
    };
    if !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ParseErrorKind::InvalidSid(sid.clone()));
    }
    Ok((!sid.is_empty()).then(|| sid.as_str().into()))
}

fn parse_effect(value: &Json) -> Result<Effect, ParseErrorKind> {
    match value {
        Json::String(s) if s == "Allow" => Ok(Effect::Allow),
        Json::String(s) if s == "Deny" => Ok(Effect::Deny),
        Json::String(s) => Err(ParseErrorKind::InvalidEffect(s.clone())),
        other => Err(wrong_type("Effect", "a string", other)),
    }
}

/// A string or a non-empty array of strings.
fn strings(element: &str, value: &Json) -> Result<Vec<String>, ParseErrorKind> {
    match value {
        Json::String(s) => Ok(vec![s.clone()]),
        Json::Array(items) if items.is_empty() => Err(ParseErrorKind::Empty(element.to_owned())),
        Json::Array(items) => items
            .iter()
            .map(|item| match item {
                Json::String(s) => Ok(s.clone()),
                other => Err(wrong_type(
                    element,
                    "a string or an array of strings",
                    other,
                )),
            })
            .collect(),
        other => Err(wrong_type(
            element,
            "a string or an array of strings",
            other,
        )),
    }
}

/// `*`, or `service:action` with wildcards allowed on either side; compiled ASCII-lowercase to
/// meet the request's action, lowercased once per evaluation.
fn compile_action(text: &str) -> Result<Pattern, ParseErrorKind> {
    let well_formed = text == "*"
        || text.split_once(':').is_some_and(|(service, name)| {
            !service.is_empty()
                && !name.is_empty()
                && !name.contains(':')
                && !text.chars().any(char::is_whitespace)
        });
    if !well_formed {
        return Err(ParseErrorKind::InvalidAction(text.to_owned()));
    }
    let syntax = Syntax {
        variables: false,
        wildcards: true,
    };
    pattern::compile(&text.to_ascii_lowercase(), syntax)
        .map_err(|_| ParseErrorKind::InvalidAction(text.to_owned()))
}
