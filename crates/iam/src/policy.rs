//! A policy document: parsed from JSON and compiled once, then evaluated many times.

use std::collections::HashSet;

use crate::error::{ParseError, ParseErrorKind, wrong_type};
use crate::json::{self, Json};
use crate::statement::{self, Effect, Statement};

/// The policy language version. Only `2012-10-17` substitutes `${…}` policy variables; under
/// `2008-10-17` (also the version of a document without `Version`) they are plain text, as in
/// AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V2008_10_17,
    V2012_10_17,
}

/// A compiled identity-based policy: statements with lowercase action patterns, ARN patterns
/// split into components, and condition values already parsed (numbers, dates, address
/// blocks), so evaluation reads no JSON and does almost no allocation.
#[derive(Debug, Clone)]
pub struct Policy {
    name: Box<str>,
    version: Version,
    pub(crate) statements: Box<[Statement]>,
}

const ELEMENTS: &str = "Version, Id, Statement";

impl Policy {
    /// Parses and compiles a policy document. `name` is the caller's label for it (a file
    /// name, an attachment name); decisions and lint findings report it.
    pub fn parse(name: impl Into<String>, document: &str) -> Result<Self, ParseError> {
        let json = json::parse(document).map_err(|e| {
            ParseError::document(ParseErrorKind::Json {
                line: e.line(),
                column: e.column(),
                message: json_message(&e),
            })
        })?;
        let Json::Object(members) = &json else {
            return Err(ParseError::document(ParseErrorKind::NotAnObject(
                json.type_name(),
            )));
        };
        let mut version = Version::V2008_10_17;
        let mut statement = None;
        for (element, value) in members {
            match element.as_str() {
                "Version" => version = parse_version(value).map_err(ParseError::document)?,
                "Id" if matches!(value, Json::String(_)) => {}
                "Id" => return Err(ParseError::document(wrong_type("Id", "a string", value))),
                "Statement" => statement = Some(value),
                _ => {
                    return Err(ParseError::document(ParseErrorKind::UnknownElement {
                        element: element.clone(),
                        expected: ELEMENTS,
                    }));
                }
            }
        }
        let statement =
            statement.ok_or_else(|| ParseError::document(ParseErrorKind::Missing("Statement")))?;
        let items: &[Json] = match statement {
            Json::Array(items) if items.is_empty() => {
                return Err(ParseError::document(ParseErrorKind::Empty(
                    "Statement".into(),
                )));
            }
            Json::Array(items) => items,
            Json::Object(_) => std::slice::from_ref(statement),
            other => {
                return Err(ParseError::document(wrong_type(
                    "Statement",
                    "an object or an array of objects",
                    other,
                )));
            }
        };
        let variables = version == Version::V2012_10_17;
        let mut statements = Vec::with_capacity(items.len());
        let mut sids = HashSet::new();
        for (index, item) in items.iter().enumerate() {
            // The Sid is read first so that an error anywhere in the statement can name it.
            let sid = declared_sid(item);
            let at = |kind| ParseError::statement(index, sid.as_deref(), kind);
            let compiled = Statement::compile(item, variables).map_err(at)?;
            if let Some(sid) = &compiled.sid
                && !sids.insert(sid.clone())
            {
                return Err(at(ParseErrorKind::DuplicateSid(sid.to_string())));
            }
            statements.push(compiled);
        }
        Ok(Self {
            name: name.into().into(),
            version,
            statements: statements.into(),
        })
    }

    /// The name given to [`parse`](Self::parse).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The document's `Version`.
    pub fn version(&self) -> Version {
        self.version
    }

    /// How many statements the policy has.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// The `Sid` and effect of statement `index`.
    pub fn statement(&self, index: usize) -> Option<(Option<&str>, Effect)> {
        self.statements
            .get(index)
            .map(|s| (s.sid.as_deref(), s.effect))
    }
}

/// The statement's `Sid` if it has a valid one, for error locations.
fn declared_sid(statement: &Json) -> Option<Box<str>> {
    let Json::Object(members) = statement else {
        return None;
    };
    let (_, value) = members.iter().find(|(name, _)| name == "Sid")?;
    statement::parse_sid(value).ok().flatten()
}

fn parse_version(value: &Json) -> Result<Version, ParseErrorKind> {
    match value {
        Json::String(s) if s == "2012-10-17" => Ok(Version::V2012_10_17),
        Json::String(s) if s == "2008-10-17" => Ok(Version::V2008_10_17),
        Json::String(s) => Err(ParseErrorKind::UnsupportedVersion(s.clone())),
        other => Err(wrong_type("Version", "a string", other)),
    }
}

/// serde_json's message without its own " at line L column C" suffix (the kind prints those).
fn json_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    full.strip_suffix(&suffix).unwrap_or(&full).to_owned()
}
