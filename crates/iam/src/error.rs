//! Why a policy document was refused, and where: the statement (index and `Sid`) and what is
//! wrong with it, worded so that a start-up error can print it after the file name.

use std::fmt;

use crate::json::Json;
use crate::pattern::VariableError;

/// A policy document that could not be loaded.
///
/// `Display` gives the location then the cause, e.g.
/// `Statement[1] (Sid "DenyProd"): Effect must be "Allow" or "Deny", not "Block"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    statement: Option<(usize, Option<String>)>,
    kind: ParseErrorKind,
}

/// What is wrong with a policy document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Not JSON, or a JSON object with a member given twice.
    #[error("invalid JSON at line {line} column {column}: {message}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// The document is not a JSON object.
    #[error("a policy document must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    /// A member the policy grammar does not have (names are case-sensitive).
    #[error("unknown element `{element}` (expected one of: {expected})")]
    UnknownElement {
        element: String,
        expected: &'static str,
    },
    /// `Principal` or `NotPrincipal`, which only resource-based policies have.
    #[error("`{0}` is not allowed in an identity-based policy")]
    PrincipalNotAllowed(String),
    /// A `Version` other than `2012-10-17` and `2008-10-17`.
    #[error("Version {0:?} is not supported (expected \"2012-10-17\" or \"2008-10-17\")")]
    UnsupportedVersion(String),
    /// A required element is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// Two elements that exclude each other.
    #[error("`{0}` and `{1}` cannot be used together")]
    Conflict(&'static str, &'static str),
    /// `Effect` is neither `Allow` nor `Deny`.
    #[error("Effect must be \"Allow\" or \"Deny\", not {0:?}")]
    InvalidEffect(String),
    /// An element of the wrong JSON type.
    #[error("{element} must be {expected}, not {found}")]
    WrongType {
        element: String,
        expected: &'static str,
        found: &'static str,
    },
    /// An element that must not be empty is.
    #[error("{0} is empty")]
    Empty(String),
    /// An action that is neither `*` nor `service:action`.
    #[error("action {0:?} is not `*` or `service:action`")]
    InvalidAction(String),
    /// A `Sid` with characters other than ASCII letters and digits.
    #[error("Sid {0:?} must contain only ASCII letters and digits")]
    InvalidSid(String),
    /// Two statements of one policy with the same `Sid`.
    #[error("Sid {0:?} is used by more than one statement")]
    DuplicateSid(String),
    /// A condition operator this engine does not know.
    #[error("unknown condition operator `{0}`")]
    UnknownOperator(String),
    /// A known operator with a qualifier or suffix that does not apply to it.
    #[error("condition operator `{operator}`: {reason}")]
    InvalidOperator {
        operator: String,
        reason: &'static str,
    },
    /// A condition value the operator cannot compare with.
    #[error("condition {operator} on {key:?}: {value:?} is not {expected}")]
    InvalidConditionValue {
        operator: String,
        key: String,
        value: String,
        expected: &'static str,
    },
    /// A malformed `${…}` policy variable.
    #[error("{element} {text:?}: {error}")]
    Variable {
        element: String,
        text: String,
        error: VariableError,
    },
}

impl ParseError {
    pub(crate) fn document(kind: ParseErrorKind) -> Self {
        Self {
            statement: None,
            kind,
        }
    }

    pub(crate) fn statement(index: usize, sid: Option<&str>, kind: ParseErrorKind) -> Self {
        Self {
            statement: Some((index, sid.map(str::to_owned))),
            kind,
        }
    }

    /// The index of the statement at fault (0-based, in document order; a lone statement
    /// object is 0), or `None` for a fault in the document itself.
    pub fn statement_index(&self) -> Option<usize> {
        self.statement.as_ref().map(|(index, _)| *index)
    }

    /// The `Sid` of the statement at fault, when it has a valid one.
    pub fn sid(&self) -> Option<&str> {
        self.statement.as_ref().and_then(|(_, sid)| sid.as_deref())
    }

    /// What is wrong.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.statement {
            None => {}
            Some((index, None)) => write!(f, "Statement[{index}]: ")?,
            Some((index, Some(sid))) => write!(f, "Statement[{index}] (Sid {sid:?}): ")?,
        }
        write!(f, "{}", self.kind)
    }
}

impl std::error::Error for ParseError {}

/// `element must be EXPECTED, not <what was found>`.
pub(crate) fn wrong_type(element: &str, expected: &'static str, found: &Json) -> ParseErrorKind {
    ParseErrorKind::WrongType {
        element: element.to_owned(),
        expected,
        found: found.type_name(),
    }
}
