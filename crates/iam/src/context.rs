//! What a request brings to evaluation: principal, action, resource, and the condition context
//! (keys with one or more string values).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use crate::arn::{self, ArnParts};
use crate::date::Timestamp;
use crate::key::Key;
use crate::pattern::Lookup;
use crate::values;

/// Condition context: each key (case-insensitive) has one or more string values. The engine
/// converts them for the numeric, date, `Bool` and IP operators; a value that does not convert
/// fails the condition. A key given no values is absent.
///
/// Values are converted once, on insertion, so that a context built for one request serves
/// every statement of every policy without parsing again.
///
/// `aws:PrincipalArn` need not be set: when absent it is the request's principal.
///
/// A context may [`inherit`](Self::inherit) keys from shared ones: what belongs to the caller
/// (its tags, its name) and to the resource (its tags, its type) is converted once, when the
/// caller or the resource is configured, and a request adds only its own keys (source address,
/// time) on top.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// Few entries per request: a scan comparing hashes beats a map.
    entries: Vec<Entry>,
    /// Looked up, in order, for a key this context does not set.
    bases: Vec<Arc<Context>>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    key: Key,
    texts: Vec<String>,
    /// `parsed[i]` is `texts[i]` converted.
    parsed: Vec<Parsed>,
}

/// A context value converted to each type an operator may want.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Parsed {
    number: Option<f64>,
    date: Option<Timestamp>,
    ip: Option<IpAddr>,
}

impl Parsed {
    fn new(text: &str) -> Self {
        Self {
            number: values::number(text),
            date: values::date(text),
            ip: values::ip(text),
        }
    }
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to the single `value`, replacing what it had.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.set(Key::new(key), vec![value.into()]);
        self
    }

    /// Sets `key` to `values` (a multivalued key such as `aws:TagKeys`), replacing what it had;
    /// no values removes the key.
    pub fn insert_all<I, V>(&mut self, key: &str, values: I) -> &mut Self
    where
        I: IntoIterator<Item = V>,
        V: Into<String>,
    {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        self.set(Key::new(key), values);
        self
    }

    /// [`insert`](Self::insert), by value, for building a context in one expression.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// Keys this context does not set are looked up in `base` (after any base inherited
    /// before). A key set here hides the base's, even with other values.
    pub fn inherit(&mut self, base: Arc<Context>) -> &mut Self {
        self.bases.push(base);
        self
    }

    /// The values of `key`, if it has any, here or in a base.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entry(&Key::new(key)).map(|e| e.texts.as_slice())
    }

    fn set(&mut self, key: Key, texts: Vec<String>) {
        self.entries.retain(|e| !e.key.same(&key));
        if !texts.is_empty() {
            let parsed = texts.iter().map(|t| Parsed::new(t)).collect();
            self.entries.push(Entry { key, texts, parsed });
        }
    }

    fn entry(&self, key: &Key) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.key.same(key))
            .or_else(|| self.bases.iter().find_map(|b| b.entry(key)))
    }
}

/// One request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The caller's ARN, e.g. `arn:aws:iam::111122223333:user/alice`.
    pub principal: &'a str,
    /// `service:Action`, e.g. `ec2-instance-connect:SendSerialConsoleSSHPublicKey`; matched
    /// case-insensitively.
    pub action: &'a str,
    /// The resource ARN, or `*` for an action without resource-level permissions.
    pub resource: &'a str,
    pub context: &'a Context,
}

/// One value of a key: its text and, from a [`Context`], its conversions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Value<'a> {
    pub(crate) text: &'a str,
    parsed: Option<&'a Parsed>,
}

impl Value<'_> {
    pub(crate) fn number(&self) -> Option<f64> {
        self.parsed
            .map_or_else(|| values::number(self.text), |p| p.number)
    }

    pub(crate) fn date(&self) -> Option<Timestamp> {
        self.parsed
            .map_or_else(|| values::date(self.text), |p| p.date)
    }

    pub(crate) fn ip(&self) -> Option<IpAddr> {
        self.parsed.map_or_else(|| values::ip(self.text), |p| p.ip)
    }
}

/// The values of one key for one request.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Values<'a> {
    Context(&'a Entry),
    /// `aws:PrincipalArn` taken from the request.
    Principal(&'a str),
}

impl<'a> Values<'a> {
    pub(crate) fn iter(self) -> ValuesIter<'a> {
        ValuesIter {
            values: self,
            next: 0,
        }
    }

    fn single(self) -> Option<&'a str> {
        match self {
            Values::Context(Entry { texts, .. }) => match texts.as_slice() {
                [one] => Some(one),
                _ => None,
            },
            Values::Principal(arn) => Some(arn),
        }
    }
}

/// Iterates over [`Values`] by index: cheaper than a chain of adapters in the innermost loop.
#[derive(Debug)]
pub(crate) struct ValuesIter<'a> {
    values: Values<'a>,
    next: usize,
}

impl<'a> Iterator for ValuesIter<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Value<'a>> {
        let i = self.next;
        self.next += 1;
        match self.values {
            Values::Context(entry) => Some(Value {
                text: entry.texts.get(i)?,
                parsed: entry.parsed.get(i),
            }),
            Values::Principal(text) => (i == 0).then_some(Value { text, parsed: None }),
        }
    }
}

/// A request prepared for evaluation: its action lowercased and its resource split into ARN
/// components, once for all statements.
#[derive(Debug)]
pub(crate) struct Env<'a> {
    pub(crate) request: &'a Request<'a>,
    /// ASCII-lowercase, as action patterns are compiled.
    pub(crate) action: Cow<'a, str>,
    pub(crate) resource: Option<ArnParts<'a>>,
}

impl<'a> Env<'a> {
    pub(crate) fn new(request: &'a Request<'a>) -> Self {
        let action = if request.action.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(request.action.to_ascii_lowercase())
        } else {
            Cow::Borrowed(request.action)
        };
        Self {
            request,
            action,
            resource: arn::split(request.resource),
        }
    }

    /// The values of `key`; `None` when the request has none.
    pub(crate) fn values(&self, key: &Key) -> Option<Values<'a>> {
        if let Some(entry) = self.request.context.entry(key) {
            return Some(Values::Context(entry));
        }
        (key.name() == "aws:principalarn").then_some(Values::Principal(self.request.principal))
    }
}

impl Lookup for Env<'_> {
    /// A multivalued key is no variable value: AWS refuses to substitute one.
    fn single(&self, key: &Key) -> Option<&str> {
        self.values(key).and_then(Values::single)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_empty_means_absent() {
        let mut ctx = Context::new();
        ctx.insert("aws:UserName", "alice")
            .insert_all("aws:TagKeys", ["a", "b"])
            .insert_all("gone", Vec::<String>::new());
        assert_eq!(ctx.get("AWS:USERNAME"), Some(&["alice".to_owned()][..]));
        assert_eq!(ctx.get("aws:tagkeys").map(<[_]>::len), Some(2));
        assert_eq!(ctx.get("gone"), None);
        ctx.insert_all("aws:tagkeys", Vec::<String>::new());
        assert_eq!(ctx.get("aws:TagKeys"), None);
        ctx.insert("AWS:username", "bob");
        assert_eq!(ctx.get("aws:username"), Some(&["bob".to_owned()][..]));
    }

    fn request(context: &Context) -> Request<'_> {
        Request {
            principal: "arn:aws:iam::1:user/a",
            action: "Svc:DoThing",
            resource: "*",
            context,
        }
    }

    #[test]
    fn principal_arn_defaults_to_the_principal() {
        let ctx = Context::new();
        let req = request(&ctx);
        let env = Env::new(&req);
        let key = Key::new("aws:PrincipalArn");
        assert_eq!(env.single(&key), Some("arn:aws:iam::1:user/a"));
        assert_eq!(env.action, "svc:dothing");
        let ctx = Context::new().with("aws:PrincipalArn", "other");
        let req = request(&ctx);
        assert_eq!(Env::new(&req).single(&key), Some("other"));
    }

    #[test]
    fn multivalued_keys_are_no_variable_values() {
        let mut ctx = Context::new();
        ctx.insert_all("k", ["a", "b"]).insert_all("one", ["x"]);
        let req = request(&ctx);
        let env = Env::new(&req);
        assert_eq!(env.single(&Key::new("k")), None);
        assert_eq!(env.single(&Key::new("one")), Some("x"));
    }

    #[test]
    fn inherited_keys_are_found_and_own_keys_hide_them() {
        let principal = Arc::new(
            Context::new()
                .with("aws:username", "alice")
                .with("aws:PrincipalTag/team", "db"),
        );
        let resource = Arc::new(
            Context::new()
                .with("aws:ResourceTag/team", "db")
                .with("aws:username", "not-the-caller"),
        );
        let mut ctx = Context::new().with("aws:PrincipalTag/team", "web");
        ctx.inherit(principal).inherit(resource);
        assert_eq!(
            ctx.get("aws:PrincipalTag/team"),
            Some(&["web".to_owned()][..])
        );
        assert_eq!(ctx.get("aws:username"), Some(&["alice".to_owned()][..]));
        assert_eq!(
            ctx.get("aws:resourcetag/team"),
            Some(&["db".to_owned()][..])
        );
        assert_eq!(ctx.get("aws:SourceIp"), None);
        let req = request(&ctx);
        let env = Env::new(&req);
        assert_eq!(env.single(&Key::new("aws:username")), Some("alice"));
    }

    #[test]
    fn values_are_converted_once() {
        let ctx = Context::new().with("n", "10").with("ip", "::ffff:10.0.0.1");
        let req = request(&ctx);
        let env = Env::new(&req);
        let n = env.values(&Key::new("n")).unwrap().iter().next().unwrap();
        assert_eq!(n.number(), Some(10.0));
        assert!(n.date().is_some(), "digits are also epoch seconds");
        assert_eq!(n.ip(), None);
        let ip = env.values(&Key::new("ip")).unwrap().iter().next().unwrap();
        assert_eq!(ip.ip(), Some("10.0.0.1".parse().unwrap()));
    }
}
