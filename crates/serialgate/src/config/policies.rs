//! The IAM policies of credentials and accounts: read, parsed and compiled at startup, with a
//! credential's `instances`/`actions` allow-lists translated into one more policy. A document
//! that does not parse is a start-up error naming its key, its file and the statement.

use std::path::Path;
use std::sync::Arc;

use console::AccountId;
use console::policy::{Action, ActionSet, allow_list_policy};
use iam::Policy;

use super::{AccountConfig, CredentialConfig};

/// A policy as loaded, with the name decisions and `serialgate policy` report it under.
#[derive(Debug, Clone)]
pub struct NamedPolicy {
    pub policy: Arc<Policy>,
    /// Where it comes from: `accounts[0].credentials[1].policy[0]`, a file path, …
    pub source: String,
    /// The JSON of a policy translated from `instances`/`actions` (the others are the
    /// operator's own text).
    pub generated: Option<String>,
}

/// The lint findings of `policies` against what serialgate knows: its actions and the
/// condition keys its requests carry.
pub fn lint(policies: &[NamedPolicy]) -> Vec<(&NamedPolicy, iam::Finding)> {
    let actions: Vec<&str> = Action::ALL.iter().map(|a| a.iam_name()).collect();
    let known = iam::Known {
        actions: Some(&actions),
        condition_keys: Some(console::policy::CONDITION_KEYS),
    };
    policies
        .iter()
        .flat_map(|p| {
            iam::lint(&p.policy, &known)
                .into_iter()
                .map(move |f| (p, f))
        })
        .collect()
}

/// (key path, problem), as config errors are reported.
type Problem = (String, String);

/// The policies of `[[accounts.policies]]`, in order.
pub(super) fn account_policies(
    index: usize,
    account: &AccountConfig,
    id: &AccountId,
) -> Result<Vec<NamedPolicy>, Problem> {
    let mut out = Vec::with_capacity(account.policies.len());
    for (n, p) in account.policies.iter().enumerate() {
        let key = format!("accounts[{index}].policies[{n}]");
        let (document, default_name, file) = match (&p.document, &p.file) {
            (Some(doc), None) => (doc.clone(), format!("account {id} policies[{n}]"), None),
            (None, Some(path)) => (
                read(&key, path)?,
                path.display().to_string(),
                Some(path.as_path()),
            ),
            _ => return Err((key, "give either document or file".into())),
        };
        let name = p.name.clone().unwrap_or(default_name);
        let named = compile(&key, &name, &document).map_err(|(k, problem)| match file {
            // A named policy's errors still say which file to open.
            Some(path) if p.name.is_some() => (k, format!("{}: {problem}", path.display())),
            _ => (k, problem),
        })?;
        out.push(named);
    }
    Ok(out)
}

/// A credential's policies: its own (`policy`, then `policy_file`), then the translation of its
/// allow-lists, then its account's. With no policy from anywhere and no allow-list, the
/// credential gets the push actions (the two of AWS and the spectator's).
pub(super) fn credential_policies(
    key: &str,
    c: &CredentialConfig,
    account: &AccountId,
    of_account: &[NamedPolicy],
) -> Result<Vec<NamedPolicy>, Problem> {
    let mut out = Vec::new();
    for (n, doc) in c.policy.iter().flat_map(|p| p.as_slice()).enumerate() {
        let at = format!("{key}.policy[{n}]");
        out.push(compile(
            &at,
            &format!("{} policy[{n}]", c.access_key_id),
            doc,
        )?);
    }
    for (n, path) in c.policy_file.iter().flat_map(|p| p.as_slice()).enumerate() {
        let at = format!("{key}.policy_file[{n}]");
        let document = read(&at, path)?;
        out.push(compile(&at, &path.display().to_string(), &document)?);
    }
    let has_allow_list = c.instances.is_some() || c.actions.is_some();
    if has_allow_list || (out.is_empty() && of_account.is_empty()) {
        let instances = instance_patterns(key, c)?;
        let actions = action_set(key, c)?;
        let name = format!("{} instances+actions", c.access_key_id);
        if let Some((document, policy)) = allow_list_policy(&name, account, instances, actions) {
            out.push(NamedPolicy {
                policy: Arc::new(policy),
                source: format!("{key}.instances/actions"),
                generated: Some(document),
            });
        }
    }
    out.extend(of_account.iter().cloned());
    Ok(out)
}

fn read(key: &str, path: &Path) -> Result<String, Problem> {
    std::fs::read_to_string(path).map_err(|e| {
        (
            key.to_owned(),
            format!("cannot read {}: {e}", path.display()),
        )
    })
}

fn compile(key: &str, name: &str, document: &str) -> Result<NamedPolicy, Problem> {
    match Policy::parse(name, document) {
        Ok(policy) => Ok(NamedPolicy {
            policy: Arc::new(policy),
            source: key.to_owned(),
            generated: None,
        }),
        Err(e) => Err((key.to_owned(), format!("policy {name:?}: {e}"))),
    }
}

/// `instances` as given (see [`CredentialConfig`]); `None` means every instance.
fn instance_patterns<'c>(
    key: &str,
    c: &'c CredentialConfig,
) -> Result<Option<&'c [String]>, Problem> {
    match &c.instances {
        None => Ok(None),
        Some(list) if list.is_empty() => Err((
            format!("{key}.instances"),
            "must name at least one instance id or ARN; leave it out for every instance of the account".into(),
        )),
        Some(list) => match list.iter().position(String::is_empty) {
            Some(k) => Err((format!("{key}.instances[{k}]"), "must not be empty".into())),
            None => Ok(Some(list)),
        },
    }
}

/// `actions`, expanded over the known actions; none given means the key pushes.
fn action_set(key: &str, c: &CredentialConfig) -> Result<ActionSet, Problem> {
    let Some(list) = &c.actions else {
        // What README and AWS's managed push policies give a key: the pushes (and watching).
        return Ok(ActionSet::push_only());
    };
    if list.is_empty() {
        return Err((
            format!("{key}.actions"),
            "must name at least one action; leave it out for the key push actions".into(),
        ));
    }
    let mut set = ActionSet::NONE;
    for (k, pattern) in list.iter().enumerate() {
        let matched = ActionSet::matching(pattern);
        if matched.is_empty() {
            let known: Vec<&str> = Action::ALL.iter().map(|a| a.iam_name()).collect();
            return Err((
                format!("{key}.actions[{k}]"),
                format!(
                    "{pattern:?} matches no action; known actions: {}",
                    known.join(", ")
                ),
            ));
        }
        set = set.union(matched);
    }
    Ok(set)
}
