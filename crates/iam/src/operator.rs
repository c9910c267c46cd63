//! Condition operator names: a base operator, optionally negated, with the `…IfExists` suffix
//! and the `ForAnyValue:` / `ForAllValues:` set qualifiers.

use std::cmp::Ordering;

use crate::error::ParseErrorKind;

/// What an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    IpAddress,
    /// `ArnEquals` and `ArnLike` are the same test: components matched with wildcards.
    Arn,
    Null,
}

/// The request value compared with the policy value: `NumericLessThan` holds when the request
/// value is less than the policy value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub(crate) fn holds(self, request_vs_policy: Option<Ordering>) -> bool {
        let Some(order) = request_vs_policy else {
            return false;
        };
        match self {
            Cmp::Eq => order.is_eq(),
            Cmp::Lt => order.is_lt(),
            Cmp::Le => order.is_le(),
            Cmp::Gt => order.is_gt(),
            Cmp::Ge => order.is_ge(),
        }
    }
}

/// How a condition treats a multivalued request key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qualifier {
    /// At least one request value passes; a missing or empty key fails.
    ForAnyValue,
    /// Every request value passes; a missing or empty key passes.
    ForAllValues,
}

/// A parsed operator name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Operator {
    pub(crate) kind: Kind,
    /// `StringNotEquals`, `NotIpAddress`, …: the negation of the positive test.
    pub(crate) negated: bool,
    pub(crate) if_exists: bool,
    pub(crate) qualifier: Option<Qualifier>,
}

const BASE: &[(&str, Kind, bool)] = &[
    ("StringEquals", Kind::StringEquals, false),
    ("StringNotEquals", Kind::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Kind::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Kind::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Kind::StringLike, false),
    ("StringNotLike", Kind::StringLike, true),
    ("NumericEquals", Kind::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Kind::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Kind::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Kind::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Kind::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Kind::Numeric(Cmp::Ge), false),
    ("DateEquals", Kind::Date(Cmp::Eq), false),
    ("DateNotEquals", Kind::Date(Cmp::Eq), true),
    ("DateLessThan", Kind::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Kind::Date(Cmp::Le), false),
    ("DateGreaterThan", Kind::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Kind::Date(Cmp::Ge), false),
    ("Bool", Kind::Bool, false),
    ("IpAddress", Kind::IpAddress, false),
    ("NotIpAddress", Kind::IpAddress, true),
    ("ArnEquals", Kind::Arn, false),
    ("ArnNotEquals", Kind::Arn, true),
    ("ArnLike", Kind::Arn, false),
    ("ArnNotLike", Kind::Arn, true),
    ("Null", Kind::Null, false),
];

/// Parses an operator name. Names are case-sensitive, as AWS writes them.
pub(crate) fn parse(name: &str) -> Result<Operator, ParseErrorKind> {
    let (qualifier, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (Some(Qualifier::ForAnyValue), rest)
    } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (Some(Qualifier::ForAllValues), rest)
    } else {
        (None, name)
    };
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(base) => (true, base),
        None => (false, rest),
    };
    let Some(&(_, kind, negated)) = BASE.iter().find(|(n, _, _)| *n == base) else {
        return Err(ParseErrorKind::UnknownOperator(name.to_owned()));
    };
    let invalid = |reason| ParseErrorKind::InvalidOperator {
        operator: name.to_owned(),
        reason,
    };
    if kind == Kind::Null && if_exists {
        return Err(invalid("Null has no IfExists form"));
    }
    if kind == Kind::Null && qualifier.is_some() {
        return Err(invalid("Null takes no ForAnyValue/ForAllValues qualifier"));
    }
    Ok(Operator {
        kind,
        negated,
        if_exists,
        qualifier,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let op = parse("ForAllValues:StringNotLikeIfExists").unwrap();
        assert_eq!(op.kind, Kind::StringLike);
        assert!(op.negated && op.if_exists);
        assert_eq!(op.qualifier, Some(Qualifier::ForAllValues));
        let op = parse("NumericLessThanEquals").unwrap();
        assert_eq!(op.kind, Kind::Numeric(Cmp::Le));
        assert!(!op.negated && !op.if_exists && op.qualifier.is_none());
        assert_eq!(parse("NotIpAddressIfExists").unwrap().kind, Kind::IpAddress);
        for name in BASE.iter().map(|(n, _, _)| *n) {
            assert!(parse(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn refused() {
        for name in [
            "stringequals",
            "StringEqual",
            "ForAnyValues:StringLike",
            "BinaryEquals",
            "",
        ] {
            assert_eq!(
                parse(name),
                Err(ParseErrorKind::UnknownOperator(name.into())),
                "{name}"
            );
        }
        assert!(matches!(
            parse("NullIfExists"),
            Err(ParseErrorKind::InvalidOperator { .. })
        ));
        assert!(matches!(
            parse("ForAnyValue:Null"),
            Err(ParseErrorKind::InvalidOperator { .. })
        ));
    }
}
