//! Policy text compiled once: literal runs, `*` and `?` wildcards and `${…}` policy variables,
//! and the matcher that compares it with request text without building strings.
//!
//! Text substituted for a variable is matched literally: a tag value of `*` matches only `*`, so
//! the value of a key the requester may influence never widens a pattern.

use std::borrow::Cow;

use crate::key::Key;

/// How a piece of policy text is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Syntax {
    /// `${key}` is a policy variable (policy `Version` 2012-10-17), else plain text.
    pub(crate) variables: bool,
    /// `*` and `?` are wildcards, else plain text.
    pub(crate) wildcards: bool,
}

/// Supplies the value of a single-valued context key for a policy variable.
pub(crate) trait Lookup {
    /// The value of `key` when the request has exactly one value for it.
    fn single(&self, key: &Key) -> Option<&str>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Lit(Box<str>),
    /// Index into the pattern's variables.
    Var(usize),
    Star,
    One,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Var {
    key: Key,
    default: Option<Box<str>>,
}

/// Compiled policy text. The shapes most policies are made of (`*`, a literal, a literal then
/// `*`) are matched directly; the general matcher takes the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `*`.
    Any,
    /// Literal text.
    Exact(Box<str>),
    /// Literal text, then `*`.
    Prefix(Box<str>),
    /// Anything else: inner wildcards, `?`, or variables.
    General {
        pieces: Box<[Piece]>,
        vars: Box<[Var]>,
    },
}

/// What is wrong with a `${…}` in policy text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    /// `${` without its closing `}`.
    #[error("`${{` is not closed by `}}`")]
    Unterminated,
    /// `${}`.
    #[error("`${{}}` names no key")]
    Empty,
    /// Neither a key name nor `key, 'default'`.
    #[error("`${{{0}}}` is not a key name, or a key name followed by `, 'default value'`")]
    Malformed(String),
}

/// Compiles `text`. The escapes `${*}`, `${?}` and `${$}` stand for the literal characters;
/// `${key, 'text'}` gives a default used when the request has no single value for `key`.
pub(crate) fn compile(text: &str, syntax: Syntax) -> Result<Pattern, VariableError> {
    let mut builder = Builder::default();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if syntax.variables
            && let Some(after_open) = rest.strip_prefix("${")
        {
            let (inner, after) = split_variable(after_open)?;
            match inner.trim() {
                escaped @ ("*" | "?" | "$") => builder.text(escaped),
                variable => builder.var(parse_variable(variable)?),
            }
            rest = after;
            continue;
        }
        match c {
            '*' if syntax.wildcards => builder.star(),
            '?' if syntax.wildcards => builder.one(),
            _ => builder.text(&rest[..c.len_utf8()]),
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(builder.finish())
}

/// Splits the text after `${` at its closing `}`; a `}` inside a quoted default does not close.
fn split_variable(s: &str) -> Result<(&str, &str), VariableError> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '}' if !quoted => return Ok((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    Err(VariableError::Unterminated)
}

fn parse_variable(inner: &str) -> Result<Var, VariableError> {
    if inner.is_empty() {
        return Err(VariableError::Empty);
    }
    let malformed = || VariableError::Malformed(inner.to_owned());
    let (key, default) = match inner.split_once(',') {
        None => (inner, None),
        Some((key, default)) => {
            let default = default.trim();
            let quoted = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .filter(|d| !d.contains('\''))
                .ok_or_else(malformed)?;
            (key.trim(), Some(quoted.into()))
        }
    };
    let valid_key = !key.is_empty()
        && !key
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '$' | '{' | '}' | '\'' | ','));
    if !valid_key {
        return Err(malformed());
    }
    Ok(Var {
        key: Key::new(key),
        default,
    })
}

#[derive(Default)]
struct Builder {
    pieces: Vec<Piece>,
    vars: Vec<Var>,
    text: String,
}

impl Builder {
    fn flush(&mut self) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            self.pieces.push(Piece::Lit(text.into()));
        }
    }

    fn text(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn star(&mut self) {
        self.flush();
        // `**` matches what `*` matches; one star keeps the matcher's backtracking short.
        if self.pieces.last() != Some(&Piece::Star) {
            self.pieces.push(Piece::Star);
        }
    }

    fn one(&mut self) {
        self.flush();
        self.pieces.push(Piece::One);
    }

    fn var(&mut self, var: Var) {
        self.flush();
        self.pieces.push(Piece::Var(self.vars.len()));
        self.vars.push(var);
    }

    fn finish(mut self) -> Pattern {
        self.flush();
        if self.vars.is_empty() {
            match self.pieces.as_mut_slice() {
                [] => return Pattern::Exact("".into()),
                [Piece::Star] => return Pattern::Any,
                [Piece::Lit(lit)] => return Pattern::Exact(std::mem::take(lit)),
                [Piece::Lit(lit), Piece::Star] => return Pattern::Prefix(std::mem::take(lit)),
                _ => {}
            }
        }
        Pattern::General {
            pieces: self.pieces.into(),
            vars: self.vars.into(),
        }
    }
}

impl Pattern {
    /// Whether the pattern has policy variables.
    pub(crate) fn has_vars(&self) -> bool {
        matches!(self, Pattern::General { vars, .. } if !vars.is_empty())
    }

    /// The values of the variables, in order; `None` when one has neither a value nor a default.
    fn resolve<'a>(&'a self, lookup: &'a dyn Lookup) -> Option<Resolved<'a>> {
        let vars: &[Var] = match self {
            Pattern::General { vars, .. } => vars,
            _ => &[],
        };
        let value = |var: &'a Var| lookup.single(&var.key).or(var.default.as_deref());
        if vars.len() <= INLINE {
            let mut inline = [""; INLINE];
            for (slot, var) in inline.iter_mut().zip(vars) {
                *slot = value(var)?;
            }
            Some(Resolved::Inline(inline, vars.len()))
        } else {
            vars.iter()
                .map(value)
                .collect::<Option<Vec<_>>>()
                .map(Resolved::Heap)
        }
    }

    /// Whether `text` matches: wildcards as compiled, ASCII case folded when `fold`. A variable
    /// without a value makes the pattern match nothing.
    pub(crate) fn matches(&self, text: &str, lookup: &dyn Lookup, fold: bool) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(lit) => lit.len() == text.len() && starts_at(lit, text, 0, fold),
            Pattern::Prefix(lit) => starts_at(lit, text, 0, fold),
            Pattern::General { pieces, vars } if vars.is_empty() => {
                glob(pieces, &[], text.as_bytes(), fold)
            }
            Pattern::General { pieces, .. } => match self.resolve(lookup) {
                Some(values) => glob(pieces, values.as_slice(), text.as_bytes(), fold),
                None => false,
            },
        }
    }

    /// The pattern's text in pieces, variables substituted from `values`, wildcards as the
    /// characters they were written as.
    fn texts<'a>(&'a self, values: &'a [&'a str]) -> impl Iterator<Item = &'a str> {
        let (head, tail, pieces): (Option<&str>, Option<&str>, &[Piece]) = match self {
            Pattern::Any => (Some("*"), None, &[]),
            Pattern::Exact(lit) => (Some(lit), None, &[]),
            Pattern::Prefix(lit) => (Some(lit), Some("*"), &[]),
            Pattern::General { pieces, .. } => (None, None, pieces),
        };
        head.into_iter()
            .chain(tail)
            .chain(pieces.iter().map(|piece| match piece {
                Piece::Lit(s) => s,
                Piece::Var(i) => values.get(*i).copied().unwrap_or(""),
                Piece::Star => "*",
                Piece::One => "?",
            }))
    }

    /// Whether `text` equals the pattern's text ignoring case (Unicode lowercase), for a
    /// pattern compiled without wildcards.
    pub(crate) fn equals_ignore_case(&self, text: &str, lookup: &dyn Lookup) -> bool {
        let Some(values) = self.resolve(lookup) else {
            return false;
        };
        let mut ours = self
            .texts(values.as_slice())
            .flat_map(str::chars)
            .flat_map(char::to_lowercase);
        let mut theirs = text.chars().flat_map(char::to_lowercase);
        loop {
            match (ours.next(), theirs.next()) {
                (None, None) => return true,
                (a, b) if a == b => {}
                _ => return false,
            }
        }
    }

    /// The text with variables substituted, for a pattern compiled without wildcards; `None`
    /// when a variable has no value.
    pub(crate) fn render(&self, lookup: &dyn Lookup) -> Option<Cow<'_, str>> {
        if let Pattern::Exact(lit) = self {
            return Some(Cow::Borrowed(lit));
        }
        let values = self.resolve(lookup)?;
        Some(Cow::Owned(self.texts(values.as_slice()).collect()))
    }
}

/// No variables: what [`Pattern::render`] needs for a pattern known to have none.
pub(crate) struct NoVars;

impl Lookup for NoVars {
    fn single(&self, _key: &Key) -> Option<&str> {
        None
    }
}

/// How many variable values a match keeps on the stack.
const INLINE: usize = 4;

/// Variable values for one match: inline for the usual few, so matching allocates nothing.
enum Resolved<'a> {
    Inline([&'a str; INLINE], usize),
    Heap(Vec<&'a str>),
}

impl<'a> Resolved<'a> {
    fn as_slice(&self) -> &[&'a str] {
        match self {
            Resolved::Inline(values, len) => &values[..*len],
            Resolved::Heap(values) => values,
        }
    }
}

/// Whether `text` holds `lit` at byte `t`.
fn starts_at(lit: &str, text: &str, t: usize, fold: bool) -> bool {
    bytes_at(lit.as_bytes(), text.as_bytes(), t, fold)
}

fn bytes_at(lit: &[u8], text: &[u8], t: usize, fold: bool) -> bool {
    text.get(t..t.saturating_add(lit.len()))
        .is_some_and(|window| {
            if fold {
                window.eq_ignore_ascii_case(lit)
            } else {
                window == lit
            }
        })
}

/// Wildcard matching over the pieces: `*` any run of characters, `?` exactly one character,
/// literal runs compared whole. One backtracking point (the last `*`) is enough for these two
/// wildcards, so the work is at most pattern length × text length and nothing is allocated.
fn glob(pieces: &[Piece], values: &[&str], text: &[u8], fold: bool) -> bool {
    let char_len = |t: usize| text.get(t).map_or(1, |b| utf8_len(*b).min(text.len() - t));
    let (mut i, mut t) = (0usize, 0usize);
    // The piece after the last `*`, and the text position that `*` currently stops at.
    let mut resume: Option<(usize, usize)> = None;
    loop {
        let lit = match pieces.get(i) {
            None if t == text.len() => return true,
            None => None,
            Some(Piece::Star) => {
                i += 1;
                if i == pieces.len() {
                    return true;
                }
                resume = Some((i, t));
                continue;
            }
            Some(Piece::One) if t < text.len() => {
                t += char_len(t);
                i += 1;
                continue;
            }
            Some(Piece::One) => None,
            Some(Piece::Lit(s)) => Some(s.as_bytes()),
            Some(Piece::Var(v)) => match values.get(*v) {
                Some(value) => Some(value.as_bytes()),
                None => return false,
            },
        };
        if let Some(lit) = lit
            && bytes_at(lit, text, t, fold)
        {
            t += lit.len();
            i += 1;
            continue;
        }
        match resume {
            Some((after_star, stop)) if stop < text.len() => {
                let next = stop + char_len(stop);
                resume = Some((after_star, next));
                i = after_star;
                t = next;
            }
            _ => return false,
        }
    }
}

/// Length of the UTF-8 sequence that starts with `lead` (1 for a stray continuation byte).
fn utf8_len(lead: u8) -> usize {
    match lead {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    const GLOB: Syntax = Syntax {
        variables: true,
        wildcards: true,
    };
    const PLAIN: Syntax = Syntax {
        variables: true,
        wildcards: false,
    };

    struct Map(HashMap<&'static str, &'static str>);

    impl Lookup for Map {
        fn single(&self, key: &Key) -> Option<&str> {
            self.0.get(key.name()).copied()
        }
    }

    fn vars() -> Map {
        Map(HashMap::from([("aws:username", "alice"), ("empty", "")]))
    }

    fn m(pattern: &str, text: &str) -> bool {
        compile(pattern, GLOB)
            .unwrap()
            .matches(text, &vars(), false)
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "ac"));
        assert!(!m("a*c", "acb"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "xxbxxaxx"));
        assert!(m("a**?", "ab"));
        assert!(m("?", "é"), "? is one character, not one byte");
        assert!(!m("??", "é"));
        assert!(m("*é", "aéé"));
        assert!(!m("abc", "ABC"));
    }

    #[test]
    fn folding_is_ascii_and_optional() {
        let p = compile("ec2:Describe*", GLOB).unwrap();
        assert!(p.matches("EC2:describeInstances", &NoVars, true));
        assert!(!p.matches("EC2:describeInstances", &NoVars, false));
    }

    #[test]
    fn variables_substitute_literally() {
        assert!(m("home/${aws:username}/*", "home/alice/x"));
        assert!(
            m("home/${AWS:UserName}/*", "home/alice/x"),
            "keys are case-insensitive"
        );
        assert!(!m("home/${aws:username}/*", "home/bob/x"));
        assert!(
            !m("${missing}", ""),
            "a variable without a value matches nothing"
        );
        assert!(m("a${empty}b", "ab"));
        let star = Map(HashMap::from([("k", "*")]));
        let p = compile("${k}", GLOB).unwrap();
        assert!(p.matches("*", &star, false));
        assert!(
            !p.matches("x", &star, false),
            "a substituted `*` is not a wildcard"
        );
    }

    #[test]
    fn defaults_and_escapes() {
        assert!(m("${missing, 'dflt'}", "dflt"));
        assert!(m("${aws:username,'dflt'}", "alice"));
        assert!(m("${missing, 'a}b'}", "a}b"));
        assert!(m("${*}${?}${$}", "*?$"));
        assert!(!m("${*}", "x"), "an escaped star is literal");
        assert!(m("${ * }", "*"));
    }

    #[test]
    fn variables_off_leaves_text_alone() {
        let p = compile(
            "${aws:username}",
            Syntax {
                variables: false,
                wildcards: true,
            },
        )
        .unwrap();
        assert!(p.matches("${aws:username}", &vars(), false));
        assert!(!p.matches("alice", &vars(), false));
        assert!(!p.has_vars());
    }

    #[test]
    fn variable_errors() {
        assert_eq!(compile("a${b", GLOB), Err(VariableError::Unterminated));
        assert_eq!(compile("${}", GLOB), Err(VariableError::Empty));
        assert_eq!(
            compile("${a b}", GLOB),
            Err(VariableError::Malformed("a b".into()))
        );
        assert_eq!(
            compile("${a, dflt}", GLOB),
            Err(VariableError::Malformed("a, dflt".into()))
        );
    }

    #[test]
    fn plain_patterns_compare_exactly_or_ignoring_case() {
        let p = compile("Straße-${aws:username}", PLAIN).unwrap();
        assert!(p.matches("Straße-alice", &vars(), false));
        assert!(!p.matches("straße-alice", &vars(), false));
        assert!(!p.equals_ignore_case("STRASSE-ALICE", &vars()));
        assert!(p.equals_ignore_case("STRAßE-ALICE", &vars()));
        assert!(!p.equals_ignore_case("STRAßE-ALICEX", &vars()));
        let q = compile("a*?", PLAIN).unwrap();
        assert!(q.matches("a*?", &NoVars, false));
        assert!(!q.matches("abc", &NoVars, false));
        assert_eq!(q.render(&NoVars).as_deref(), Some("a*?"));
        assert_eq!(p.render(&vars()).as_deref(), Some("Straße-alice"));
        assert_eq!(compile("${x}", PLAIN).unwrap().render(&vars()), None);
    }
}
