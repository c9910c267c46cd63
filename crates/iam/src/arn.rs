//! ARN patterns (`Resource`, `NotResource`, the `Arn…` condition operators), matched one
//! component at a time as AWS documents: `arn:partition:service:region:account:resource`, where
//! a wildcard stays inside its component except in the last, which may itself hold `:` and `/`.

use crate::pattern::{self, Lookup, Pattern, Syntax, VariableError};

/// The six components of a request ARN, split once per evaluation.
pub(crate) type ArnParts<'a> = [&'a str; 6];

/// Splits an ARN into its six components; `None` for anything that is not `arn:…` with six.
pub(crate) fn split(arn: &str) -> Option<ArnParts<'_>> {
    let mut parts = arn.splitn(6, ':');
    let out = [
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    ];
    (out[0] == "arn").then_some(out)
}

/// A compiled ARN pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ArnPattern {
    /// `*` alone: every resource, ARN or not.
    Any,
    /// Six components.
    Arn(Box<[Pattern; 6]>),
    /// Not `*` and not six components starting with `arn`: matches nothing (`lint` reports it).
    Malformed,
}

impl ArnPattern {
    /// Compiles `text`; `variables` is whether `${…}` is a policy variable.
    pub(crate) fn compile(text: &str, variables: bool) -> Result<Self, VariableError> {
        if text == "*" {
            return Ok(Self::Any);
        }
        let syntax = Syntax {
            variables,
            wildcards: true,
        };
        let components = split_pattern(text, variables).filter(|c| c[0] == "arn");
        let Some(components) = components else {
            // Still a load error when a variable is malformed (an unclosed `${` can be what
            // swallowed the colons).
            pattern::compile(text, syntax)?;
            return Ok(Self::Malformed);
        };
        let mut compiled = Vec::with_capacity(6);
        for component in components {
            compiled.push(pattern::compile(component, syntax)?);
        }
        match <Box<[Pattern; 6]>>::try_from(compiled.into_boxed_slice()) {
            Ok(components) => Ok(Self::Arn(components)),
            Err(_) => Ok(Self::Malformed),
        }
    }

    /// Whether the request resource matches. `parts` is `split(resource)`.
    pub(crate) fn matches(&self, parts: Option<&ArnParts<'_>>, lookup: &dyn Lookup) -> bool {
        match (self, parts) {
            (Self::Any, _) => true,
            // Both begin with `arn`, checked when each was split.
            (Self::Arn(patterns), Some(parts)) => patterns
                .iter()
                .zip(parts)
                .skip(1)
                .all(|(pattern, part)| pattern.matches(part, lookup, false)),
            _ => false,
        }
    }
}

/// Splits a pattern into six components at `:`, except a `:` inside `${…}` (variable names such
/// as `aws:username` hold one).
fn split_pattern(text: &str, variables: bool) -> Option<[&str; 6]> {
    let mut out = [""; 6];
    let mut start = 0;
    let mut found = 0;
    let mut in_variable = false;
    let mut quoted = false;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if found == 5 {
            break;
        }
        match b {
            b'$' if variables && !in_variable && bytes.get(i + 1) == Some(&b'{') => {
                in_variable = true;
            }
            b'\'' if in_variable => quoted = !quoted,
            b'}' if in_variable && !quoted => in_variable = false,
            b':' if !in_variable => {
                out[found] = &text[start..i];
                found += 1;
                start = i + 1;
            }
            _ => {}
        }
    }
    if found < 5 {
        return None;
    }
    out[5] = &text[start..];
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pattern::NoVars;

    fn m(pattern: &str, resource: &str) -> bool {
        ArnPattern::compile(pattern, true)
            .unwrap()
            .matches(split(resource).as_ref(), &NoVars)
    }

    const INSTANCE: &str = "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0";

    #[test]
    fn components_match_separately() {
        assert!(m("*", INSTANCE));
        assert!(m("*", "not-an-arn"));
        assert!(m("arn:aws:ec2:*:*:instance/*", INSTANCE));
        assert!(m("arn:*:*:*:*:*", INSTANCE));
        assert!(m(
            "arn:aws:ec2:us-east-?:111122223333:instance/i-*",
            INSTANCE
        ));
        assert!(!m("arn:aws:ec2:*:*:volume/*", INSTANCE));
        assert!(
            !m("arn:aws:ec2:*1:*", INSTANCE),
            "a star does not reach across components"
        );
        assert!(!m("arn:aws:ec2:*:*:instance/*", "*"));
        assert!(!m("arn:*:*:*:*:*", "not-an-arn"));
    }

    #[test]
    fn the_last_component_holds_colons_and_slashes() {
        let function = "arn:aws:lambda:us-east-1:111122223333:function:name:alias";
        assert!(m("arn:aws:lambda:*:*:function:*", function));
        assert!(m("arn:aws:lambda:*:*:*", function));
        assert!(!m("arn:aws:lambda:*:*:function:other*", function));
        assert!(m("arn:aws:s3:::bucket/*", "arn:aws:s3:::bucket/a/b:c"));
    }

    #[test]
    fn malformed_patterns_match_nothing() {
        for pattern in ["arn:*", "arn:aws:ec2", "", "i-0123", "ARN:aws:ec2:*:*:*"] {
            assert_eq!(
                ArnPattern::compile(pattern, true).unwrap(),
                ArnPattern::Malformed,
                "{pattern}"
            );
            assert!(!m(pattern, INSTANCE));
        }
    }

    #[test]
    fn a_malformed_variable_is_an_error_even_in_a_malformed_arn() {
        assert_eq!(
            ArnPattern::compile("arn:aws:iam::${aws:x:user/x", true),
            Err(VariableError::Unterminated)
        );
        assert!(
            matches!(
                ArnPattern::compile("arn:aws:iam::${aws:x:user/x", false),
                Ok(ArnPattern::Arn(_))
            ),
            "without variables `${{` is text and the colons split"
        );
    }

    #[test]
    fn colons_inside_variables_do_not_split() {
        let parts = split_pattern("arn:aws:s3:::home/${aws:username}/*", true).unwrap();
        assert_eq!(parts[5], "home/${aws:username}/*");
        let parts = split_pattern("arn:aws:iam::${aws:x, 'a:b'}:user/x", true).unwrap();
        assert_eq!(parts[4], "${aws:x, 'a:b'}");
        let plain = split_pattern("arn:aws:iam::${aws:x}:user/x", false).unwrap();
        assert_eq!(plain[4], "${aws", "without variables `${{` is plain text");
    }

    #[test]
    fn splitting_request_arns() {
        assert_eq!(
            split("arn:aws:s3:::b"),
            Some(["arn", "aws", "s3", "", "", "b"])
        );
        assert_eq!(split("arn:aws:s3::"), None);
        assert_eq!(split("urn:aws:s3:::b"), None);
    }
}
