//! EC2 Query parameters: the form-encoded body decoded into names and values, with the EC2
//! conventions for lists (`InstanceId.1`, `InstanceId.2`), filters (`Filter.1.Name`,
//! `Filter.1.Value.1`) and booleans (`true`/`false`).
//!
//! Unknown parameters are ignored rather than refused (EC2 says `UnknownParameter`): SDKs only
//! send modelled ones, and a newer SDK's optional member should not break an older server.

use std::collections::{BTreeMap, HashSet};

use console::InstanceId;

use crate::ec2::error::{Ec2Error, echo};

/// The decoded parameters. When a name repeats, the last value wins.
#[derive(Debug, Default)]
pub struct Params {
    map: BTreeMap<String, String>,
}

/// One `Filter.N`: a name and its values (any of which may match).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub name: String,
    pub values: Vec<String>,
}

/// Most parameters one request may carry. The largest real call (`DescribeInstances` with a
/// list of ids and a few filters) needs far fewer; decoding stops here.
pub const MAX_PARAMS: usize = 1000;

impl Params {
    /// Decodes `application/x-www-form-urlencoded` (`+` is a space, `%XX` a byte; invalid UTF-8
    /// becomes U+FFFD, which no parameter accepts). Linear in the body, with no cap on the
    /// number of parameters: requests go through [`Params::from_body`].
    pub fn parse(body: &[u8]) -> Self {
        Self {
            map: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    /// A request body: as [`Params::parse`], refusing more than [`MAX_PARAMS`] parameters
    /// (`InvalidParameterValue`) before decoding any of them.
    pub fn from_body(body: &[u8]) -> Result<Self, Ec2Error> {
        let count = body
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .take(MAX_PARAMS + 1)
            .count();
        if count > MAX_PARAMS {
            return Err(Ec2Error::invalid_value(format!(
                "The request has more than {MAX_PARAMS} parameters; at most {MAX_PARAMS} are \
                 accepted."
            )));
        }
        Ok(Self::parse(body))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    pub fn required(&self, name: &str) -> Result<&str, Ec2Error> {
        self.get(name)
            .ok_or_else(|| Ec2Error::missing_parameter(name))
    }

    /// A boolean parameter; absent is `false`. EC2 accepts `true`/`false` in any case.
    pub fn flag(&self, name: &str) -> Result<bool, Ec2Error> {
        match self.get(name) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(Ec2Error::invalid_value(format!(
                "Invalid value '{}' for {name}. Valid values: true, false",
                echo(v)
            ))),
        }
    }

    /// The values of `prefix.1`, `prefix.2`, … in index order. Indexes need not be contiguous;
    /// names whose suffix is not a positive integer are not part of the list.
    pub fn list(&self, prefix: &str) -> Vec<&str> {
        let mut items: Vec<(u32, &str)> = self
            .map
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    index(k.strip_prefix(prefix)?.strip_prefix('.')?)?,
                    v.as_str(),
                ))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// `InstanceId.N`, validated (`InvalidInstanceID.Malformed`) and without repeats, in order.
    pub fn instance_ids(&self) -> Result<Vec<InstanceId>, Ec2Error> {
        let raw = self.list("InstanceId");
        let mut seen = HashSet::with_capacity(raw.len());
        let mut ids = Vec::with_capacity(raw.len());
        for raw in raw {
            let id = instance_id(raw)?;
            if seen.insert(raw) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// `Filter.N.Name` with its `Filter.N.Value.M`, in index order. A value without a name is
    /// `MissingParameter`, as the filter would otherwise silently vanish.
    pub fn filters(&self) -> Result<Vec<Filter>, Ec2Error> {
        let mut by_index: BTreeMap<u32, RawFilter<'_>> = BTreeMap::new();
        for (k, v) in &self.map {
            let Some(rest) = k.strip_prefix("Filter.") else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Some(n) = index(n) else { continue };
            if field == "Name" {
                by_index.entry(n).or_default().name = Some(v);
            } else if let Some(m) = field.strip_prefix("Value.").and_then(index) {
                by_index.entry(n).or_default().values.push((m, v));
            }
        }
        by_index
            .into_iter()
            .map(|(n, RawFilter { name, mut values })| {
                let name =
                    name.ok_or_else(|| Ec2Error::missing_parameter(&format!("Filter.{n}.Name")))?;
                values.sort_by_key(|(m, _)| *m);
                Ok(Filter {
                    name: name.to_owned(),
                    values: values.into_iter().map(|(_, v)| v.to_owned()).collect(),
                })
            })
            .collect()
    }
}

/// One `Filter.N` as collected: its name, and its values with their indexes.
#[derive(Debug, Default)]
struct RawFilter<'a> {
    name: Option<&'a str>,
    values: Vec<(u32, &'a str)>,
}

/// EC2's id check, reported with EC2's wording instead of the model's.
pub fn instance_id(raw: &str) -> Result<InstanceId, Ec2Error> {
    InstanceId::parse(raw).map_err(|_| Ec2Error::malformed_instance_id(raw))
}

/// A list index: decimal digits, at least 1.
fn index(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| *n >= 1)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ec2::error::Ec2Code;

    #[test]
    fn decodes_form_and_lists_in_index_order() {
        let p = Params::parse(
            b"Action=DescribeInstances&InstanceId.10=i-0000000000a&InstanceId.2=i-0000000000b\
              &InstanceId.x=i-zzz&InstanceId.0=i-zzz&InstanceId.2=i-0000000000c&Note=a+b%26c",
        );
        assert_eq!(p.get("Action"), Some("DescribeInstances"));
        assert_eq!(p.get("Note"), Some("a b&c"));
        // The repeated InstanceId.2 keeps its last value; .x and .0 are not list items.
        assert_eq!(p.list("InstanceId"), ["i-0000000000c", "i-0000000000a"]);
        assert!(p.list("Instance").is_empty());
    }

    #[test]
    fn instance_ids_are_validated_and_deduplicated() {
        let p = Params::parse(b"InstanceId.1=i-0000000001&InstanceId.2=i-0000000001");
        assert_eq!(p.instance_ids().unwrap().len(), 1);
        let e = Params::parse(b"InstanceId.1=i-XYZ")
            .instance_ids()
            .unwrap_err();
        assert_eq!(e.code, Ec2Code::InvalidInstanceIdMalformed);
        assert_eq!(e.message, r#"Invalid id: "i-XYZ" (expecting "i-...")"#);
    }

    #[test]
    fn request_bodies_are_capped_in_parameters() {
        let at_cap = (1..=MAX_PARAMS)
            .map(|n| format!("InstanceId.{n}=i-{n:017x}"))
            .collect::<Vec<_>>()
            .join("&");
        let p = Params::from_body(at_cap.as_bytes()).unwrap();
        assert_eq!(p.instance_ids().unwrap().len(), MAX_PARAMS);
        // Empty pairs are not parameters.
        assert!(Params::from_body(format!("{at_cap}&&&").as_bytes()).is_ok());
        let e = Params::from_body(format!("{at_cap}&Extra=1").as_bytes()).unwrap_err();
        assert_eq!(e.code, Ec2Code::InvalidParameterValue);
        assert!(e.message.contains("at most 1000"), "{}", e.message);
    }

    #[test]
    fn flags() {
        let p = Params::parse(b"DryRun=TRUE&Force=false&Latest=yes");
        assert!(p.flag("DryRun").unwrap());
        assert!(!p.flag("Force").unwrap());
        assert!(!p.flag("Absent").unwrap());
        assert_eq!(
            p.flag("Latest").unwrap_err().code,
            Ec2Code::InvalidParameterValue
        );
    }

    #[test]
    fn filters() {
        let p = Params::parse(
            b"Filter.2.Name=tag%3ATeam&Filter.2.Value.2=b&Filter.2.Value.1=a\
              &Filter.1.Name=instance-state-name&Filter.1.Value.1=running",
        );
        assert_eq!(
            p.filters().unwrap(),
            [
                Filter {
                    name: "instance-state-name".into(),
                    values: vec!["running".into()]
                },
                Filter {
                    name: "tag:Team".into(),
                    values: vec!["a".into(), "b".into()]
                },
            ]
        );
        let e = Params::parse(b"Filter.1.Value.1=x").filters().unwrap_err();
        assert_eq!(e.code, Ec2Code::MissingParameter);
        assert_eq!(
            e.message,
            "The request must contain the parameter Filter.1.Name"
        );
    }
}
