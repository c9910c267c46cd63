//! The `Condition` element: compiled at load (operators resolved, values parsed to their
//! types), evaluated against a request's context.
//!
//! Semantics, as AWS documents them: the values listed for one key are ORed; keys and operators
//! are ANDed. A key missing from the request fails a positive operator and passes a negated one
//! (`StringNotEquals`, `NotIpAddress`, …), passes any `…IfExists` operator, fails
//! `ForAnyValue:` and passes `ForAllValues:`. A negated operator is the negation of its positive
//! form: `StringNotEquals` with values `a`, `b` holds when the request value is neither. A
//! request value that is not of the operator's type (number, date, boolean, IP address, ARN)
//! fails the test whatever the operator's polarity: `NumericNotEquals 10` does not hold for
//! `ten`. A policy value whose variable has no value matches nothing, so `StringEquals` fails
//! on it and `StringNotEquals` passes it.

use crate::arn::{self, ArnPattern};
use crate::context::{Env, Value};
use crate::date::Timestamp;
use crate::error::{ParseErrorKind, wrong_type};
use crate::json::Json;
use crate::key::Key;
use crate::operator::{self, Cmp, Kind, Operator, Qualifier};
use crate::pattern::{self, Lookup, NoVars, Pattern, Syntax, VariableError};
use crate::values::{self, Cidr};

/// One operator applied to one key.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    operator: Operator,
    key: Key,
    /// As written, for `lint`.
    pub(crate) raw_key: Box<str>,
    /// As written, for `lint`.
    pub(crate) raw_values: Box<[Box<str>]>,
    values: Values,
}

#[derive(Debug, Clone)]
enum Values {
    /// `StringEquals` (compiled without wildcards) and `StringLike` (with).
    Strings(Box<[Pattern]>),
    /// `StringEqualsIgnoreCase`.
    StringsIgnoreCase(Box<[Pattern]>),
    Numbers(Cmp, Box<[Typed<f64>]>),
    Dates(Cmp, Box<[Typed<Timestamp>]>),
    Bools(Box<[Typed<bool>]>),
    Cidrs(Box<[Typed<Cidr>]>),
    Arns(Box<[ArnPattern]>),
    /// `true`: the key must be absent; `false`: present.
    Null(Box<[bool]>),
}

/// A typed policy value: parsed at load, or, when it holds a policy variable, substituted and
/// parsed at evaluation.
#[derive(Debug, Clone)]
enum Typed<T> {
    Fixed(T),
    Var(Pattern),
}

impl<T: Copy> Typed<T> {
    fn get(&self, lookup: &dyn Lookup, parse: fn(&str) -> Option<T>) -> Option<T> {
        match self {
            Typed::Fixed(v) => Some(*v),
            Typed::Var(p) => parse(&p.render(lookup)?),
        }
    }
}

impl Condition {
    /// Whether the condition holds for the request.
    pub(crate) fn holds(&self, env: &Env<'_>) -> bool {
        let op = self.operator;
        let present = env.values(&self.key);
        if let Values::Null(wants_absent) = &self.values {
            let absent = present.is_none();
            return wants_absent.contains(&absent);
        }
        let Some(values) = present else {
            return op.if_exists
                || match op.qualifier {
                    None => op.negated,
                    Some(Qualifier::ForAnyValue) => false,
                    Some(Qualifier::ForAllValues) => true,
                };
        };
        // Without a qualifier, a positive operator holds when some value passes (a single value:
        // that one) and a negated one when every value passes, i.e. when none matches.
        let every = match op.qualifier {
            Some(Qualifier::ForAllValues) => true,
            Some(Qualifier::ForAnyValue) => false,
            None => op.negated,
        };
        let passes = |v: Value<'_>| self.matches(v, env).is_some_and(|m| m != op.negated);
        let mut values = values.iter();
        if every {
            values.all(passes)
        } else {
            values.any(passes)
        }
    }

    /// The values of an `Arn…` operator that are not ARN patterns, for `lint`.
    pub(crate) fn malformed_arns(&self) -> impl Iterator<Item = &str> {
        let arns: &[ArnPattern] = match &self.values {
            Values::Arns(arns) => arns,
            _ => &[],
        };
        arns.iter()
            .zip(self.raw_values.iter())
            .filter(|(arn, _)| **arn == ArnPattern::Malformed)
            .map(|(_, raw)| &**raw)
    }

    /// The positive test of one request value against the policy values (ORed); `None` when
    /// the value is not of the operator's type, which fails negated operators too.
    fn matches(&self, value: Value<'_>, env: &Env<'_>) -> Option<bool> {
        match &self.values {
            Values::Strings(patterns) => {
                Some(patterns.iter().any(|p| p.matches(value.text, env, false)))
            }
            Values::StringsIgnoreCase(patterns) => Some(
                patterns
                    .iter()
                    .any(|p| p.equals_ignore_case(value.text, env)),
            ),
            Values::Numbers(cmp, wants) => {
                let have = value.number()?;
                Some(wants.iter().any(|want| {
                    want.get(env, values::number)
                        .is_some_and(|want| cmp.holds(have.partial_cmp(&want)))
                }))
            }
            Values::Dates(cmp, wants) => {
                let have = value.date()?;
                Some(wants.iter().any(|want| {
                    want.get(env, values::date)
                        .is_some_and(|want| cmp.holds(Some(have.cmp(&want))))
                }))
            }
            Values::Bools(wants) => {
                let have = values::boolean(value.text)?;
                Some(
                    wants
                        .iter()
                        .any(|want| want.get(env, values::boolean) == Some(have)),
                )
            }
            Values::Cidrs(wants) => {
                let have = value.ip()?;
                Some(wants.iter().any(|want| {
                    want.get(env, Cidr::parse)
                        .is_some_and(|cidr| cidr.contains(have))
                }))
            }
            Values::Arns(patterns) => {
                let parts = arn::split(value.text)?;
                Some(patterns.iter().any(|p| p.matches(Some(&parts), env)))
            }
            Values::Null(_) => None,
        }
    }
}

/// Compiles a `Condition` element. `variables`: the policy's `Version` substitutes them.
pub(crate) fn compile(json: &Json, variables: bool) -> Result<Vec<Condition>, ParseErrorKind> {
    let Json::Object(blocks) = json else {
        return Err(wrong_type("Condition", "an object", json));
    };
    let mut out = Vec::new();
    for (name, block) in blocks {
        let operator = operator::parse(name)?;
        let element = || format!("Condition {name}");
        let Json::Object(keys) = block else {
            return Err(wrong_type(&element(), "an object", block));
        };
        if keys.is_empty() {
            return Err(ParseErrorKind::Empty(element()));
        }
        for (key, value) in keys {
            if key.is_empty() {
                return Err(ParseErrorKind::Empty(format!("a condition key in {name}")));
            }
            let raw_values = scalars(&format!("Condition {name} {key:?}"), value)?;
            let values = compile_values(name, operator.kind, key, &raw_values, variables)?;
            out.push(Condition {
                operator,
                key: Key::new(key),
                raw_key: key.as_str().into(),
                raw_values: raw_values.into_iter().map(Into::into).collect(),
                values,
            });
        }
    }
    Ok(out)
}

/// A condition value: a string, number or boolean, or a non-empty array of them.
fn scalars(element: &str, value: &Json) -> Result<Vec<String>, ParseErrorKind> {
    let scalar = |v: &Json| match v {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(wrong_type(element, "a string, number or boolean", other)),
    };
    match value {
        Json::Array(items) if items.is_empty() => Err(ParseErrorKind::Empty(element.to_owned())),
        Json::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn compile_values(
    operator: &str,
    kind: Kind,
    key: &str,
    raw: &[String],
    variables: bool,
) -> Result<Values, ParseErrorKind> {
    let c = ValueCompiler {
        operator,
        key,
        variables,
    };
    Ok(match kind {
        Kind::StringEquals => Values::Strings(c.strings(raw, false)?),
        Kind::StringEqualsIgnoreCase => Values::StringsIgnoreCase(c.strings(raw, false)?),
        Kind::StringLike => Values::Strings(c.strings(raw, true)?),
        Kind::Numeric(cmp) => Values::Numbers(cmp, c.typed(raw, values::number, "a number")?),
        Kind::Date(cmp) => Values::Dates(
            cmp,
            c.typed(raw, values::date, "an ISO 8601 date or epoch seconds")?,
        ),
        Kind::Bool => Values::Bools(c.typed(raw, values::boolean, "true or false")?),
        Kind::IpAddress => {
            Values::Cidrs(c.typed(raw, Cidr::parse, "an IP address or CIDR block")?)
        }
        Kind::Arn => Values::Arns(
            raw.iter()
                .map(|text| ArnPattern::compile(text, variables).map_err(|e| c.variable(text, e)))
                .collect::<Result<_, _>>()?,
        ),
        // No variables: whether a key is present cannot depend on another key.
        Kind::Null => Values::Null(
            raw.iter()
                .map(|text| values::boolean(text).ok_or_else(|| c.invalid(text, "true or false")))
                .collect::<Result<_, _>>()?,
        ),
    })
}

/// Compiles the values of one operator and key, naming both in its errors.
struct ValueCompiler<'a> {
    operator: &'a str,
    key: &'a str,
    variables: bool,
}

impl ValueCompiler<'_> {
    fn strings(&self, raw: &[String], wildcards: bool) -> Result<Box<[Pattern]>, ParseErrorKind> {
        let syntax = Syntax {
            variables: self.variables,
            wildcards,
        };
        raw.iter()
            .map(|text| pattern::compile(text, syntax).map_err(|e| self.variable(text, e)))
            .collect()
    }

    fn typed<T>(
        &self,
        raw: &[String],
        parse: fn(&str) -> Option<T>,
        expected: &'static str,
    ) -> Result<Box<[Typed<T>]>, ParseErrorKind> {
        let syntax = Syntax {
            variables: self.variables,
            wildcards: false,
        };
        raw.iter()
            .map(|text| {
                let compiled =
                    pattern::compile(text, syntax).map_err(|e| self.variable(text, e))?;
                if compiled.has_vars() {
                    return Ok(Typed::Var(compiled));
                }
                compiled
                    .render(&NoVars)
                    .and_then(|literal| parse(&literal))
                    .map(Typed::Fixed)
                    .ok_or_else(|| self.invalid(text, expected))
            })
            .collect()
    }

    fn variable(&self, text: &str, error: VariableError) -> ParseErrorKind {
        ParseErrorKind::Variable {
            element: format!("Condition {} {:?}", self.operator, self.key),
            text: text.to_owned(),
            error,
        }
    }

    fn invalid(&self, text: &str, expected: &'static str) -> ParseErrorKind {
        ParseErrorKind::InvalidConditionValue {
            operator: self.operator.to_owned(),
            key: self.key.to_owned(),
            value: text.to_owned(),
            expected,
        }
    }
}
