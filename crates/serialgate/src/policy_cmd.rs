//! `serialgate policy`: checks the configured IAM policies, and simulates a request against a
//! credential's policies the way `serve` decides it.

use std::path::PathBuf;

use console::ops::Verdict;
use console::{Action, ConsoleService, InstanceId, RequestContext};

use crate::cli::load_config;
use crate::config::{self, Built};

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Load every policy of the configuration and warn about statements that cannot work:
    /// unknown action names, malformed ARNs, condition keys serialgate never sets.
    ///
    /// A policy that does not parse is an error (exit 1), as at `serve` start-up. Warnings exit
    /// 0, or 1 with --strict.
    Check {
        /// Configuration to check. Default: the embedded default.
        #[arg(long, short = 'c', value_name = "FILE", env = "SERIALGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Exit 1 when there is any warning.
        #[arg(long)]
        strict: bool,
        /// Also print the policies generated from `instances`/`actions` allow-lists.
        #[arg(long)]
        show_generated: bool,
    },
    /// Decide one request against a credential's policies, as `serve` would, and print the
    /// decision and the statement that made it (exit 0 allowed, 3 denied).
    ///
    /// The request carries what a real one would: the time, the region, the caller's tags
    /// and, for an instance of the caller's account, its tags, type and zone. --context sets or
    /// overrides a key (repeat a key for several values), e.g.
    ///   serialgate policy simulate -c serialgate.toml --access-key-id AKIAEXAMPLE \
    ///     --action ec2-instance-connect:SendSerialConsoleSSHPublicKey \
    ///     --resource i-0123456789abcdef0 --context aws:SourceIp=203.0.113.7
    #[command(verbatim_doc_comment)]
    Simulate {
        /// Configuration holding the credential. Default: the embedded default.
        #[arg(long, short = 'c', value_name = "FILE", env = "SERIALGATE_CONFIG")]
        config: Option<PathBuf>,
        /// The credential whose policies decide.
        #[arg(long, value_name = "ID")]
        access_key_id: String,
        /// The action, e.g. ec2:StopInstances (the prefix may be left out).
        #[arg(long, value_name = "ACTION")]
        action: String,
        /// The instance: its id or its ARN (in the caller's account and this region). Leave it
        /// out, or give `*`, for an account-level action.
        #[arg(long, value_name = "ARN|ID")]
        resource: Option<String>,
        /// `ec2:osuser`, for SendSSHPublicKey.
        #[arg(long, value_name = "USER")]
        os_user: Option<String>,
        /// A condition key and its value, KEY=VALUE; repeatable.
        #[arg(long = "context", value_name = "KEY=VALUE")]
        context: Vec<String>,
    },
}

/// Exit status of a denied simulation.
const DENIED: i32 = 3;

pub fn run(args: PolicyArgs) -> Result<(), Box<dyn std::error::Error>> {
    match args.command {
        PolicyCommand::Check {
            config,
            strict,
            show_generated,
        } => {
            let (cfg, origin) = load_config(config.as_ref())?;
            let built = config::build(&cfg, &origin)?;
            let warnings = check(&built, show_generated);
            println!(
                "{origin}: {} polic{} loaded, {warnings} warning(s)",
                built.policies.len(),
                if built.policies.len() == 1 {
                    "y"
                } else {
                    "ies"
                }
            );
            if strict && warnings > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        PolicyCommand::Simulate {
            config,
            access_key_id,
            action,
            resource,
            os_user,
            context,
        } => {
            let (cfg, origin) = load_config(config.as_ref())?;
            let built = config::build(&cfg, &origin)?;
            let allowed = simulate(
                built,
                &access_key_id,
                &action,
                resource.as_deref(),
                os_user.as_deref(),
                &context,
            )?;
            if !allowed {
                std::process::exit(DENIED);
            }
            Ok(())
        }
    }
}

/// Prints each policy and its warnings; returns how many there are.
fn check(built: &Built, show_generated: bool) -> usize {
    let findings = config::policies::lint(&built.policies);
    for named in &built.policies {
        let mine: Vec<&iam::Finding> = findings
            .iter()
            .filter(|(p, _)| std::ptr::eq(*p, named))
            .map(|(_, f)| f)
            .collect();
        let status = if mine.is_empty() {
            "OK".to_owned()
        } else {
            format!("{} warning(s)", mine.len())
        };
        println!("{} ({:?}): {status}", named.source, named.policy.name());
        for f in mine {
            println!("  warning: {}", statement_of(f));
        }
        if show_generated && let Some(doc) = &named.generated {
            for line in doc.lines() {
                println!("  {line}");
            }
        }
    }
    findings.len()
}

/// `Statement[I] (Sid "S"): what is wrong`.
pub fn statement_of(f: &iam::Finding) -> String {
    let sid = f
        .sid
        .as_deref()
        .map(|s| format!(" (Sid {s:?})"))
        .unwrap_or_default();
    format!("Statement[{}]{sid}: {}", f.statement_index, f.kind)
}

/// Runs one simulation and prints it; returns whether the request is allowed.
fn simulate(
    built: Built,
    access_key_id: &str,
    action: &str,
    resource: Option<&str>,
    os_user: Option<&str>,
    context: &[String],
) -> Result<bool, Box<dyn std::error::Error>> {
    let principal = built.credentials.principal(access_key_id).ok_or_else(|| {
        format!("--access-key-id: no credential {access_key_id} in the configuration")
    })?;
    let action = parse_action(action)?;
    let region = built.settings.region.clone();
    let instance = match resource {
        None | Some("*") => None,
        Some(r) => Some(parse_resource(r, &region, principal.account.as_str())?),
    };
    if instance.is_none() && !action.is_account_level() {
        return Err(format!(
            "--resource: {} is decided on an instance; give its id or ARN",
            action.iam_name()
        )
        .into());
    }
    let extra = parse_context(context)?;
    let ctx = RequestContext {
        request_id: "simulation".into(),
        principal,
        source_ip: None,
        secure_transport: false,
    };
    let service = ConsoleService::new(built.registry, built.settings, built.throttle);
    match service.simulate(&ctx, action, instance.as_ref(), os_user, &extra) {
        Verdict::Allowed {
            statement,
            resource,
        } => {
            println!("allowed: {} on {resource}", action.iam_name());
            println!("  by {statement}");
            Ok(true)
        }
        Verdict::Denied(denial) => {
            match &denial.denied_by {
                Some(statement) => {
                    println!(
                        "explicitly denied: {} on {}",
                        action.iam_name(),
                        denial.resource
                    );
                    println!("  by {statement}");
                }
                None => {
                    println!(
                        "implicitly denied: {} on {}",
                        action.iam_name(),
                        denial.resource
                    );
                    println!("  no statement allows it");
                }
            }
            println!(
                "  AWS message: {}",
                iam::denial_sentence(
                    &denial.principal_arn,
                    action.iam_name(),
                    &denial.resource,
                    denial.denied_by.is_some()
                )
            );
            Ok(false)
        }
    }
}

/// An action by its IAM name, with or without its prefix, in any case.
fn parse_action(name: &str) -> Result<Action, String> {
    Action::ALL
        .into_iter()
        .find(|a| {
            a.iam_name().eq_ignore_ascii_case(name) || a.short_name().eq_ignore_ascii_case(name)
        })
        .ok_or_else(|| {
            let known: Vec<&str> = Action::ALL.iter().map(|a| a.iam_name()).collect();
            format!(
                "--action: unknown action {name:?}; known actions: {}",
                known.join(", ")
            )
        })
}

/// An instance id, or its ARN in `account` and `region` (the only ARNs a request can name).
fn parse_resource(text: &str, region: &str, account: &str) -> Result<InstanceId, String> {
    let id = match text.strip_prefix("arn:") {
        None => text,
        Some(_) => {
            let prefix = format!("arn:aws:ec2:{region}:{account}:instance/");
            text.strip_prefix(&prefix).ok_or_else(|| {
                format!(
                    "--resource: {text:?} is not an instance ARN of the caller's account in this region ({prefix}ID)"
                )
            })?
        }
    };
    InstanceId::parse(id).map_err(|e| format!("--resource: {e}"))
}

/// `KEY=VALUE` pairs, the values of a repeated key gathered in order.
fn parse_context(pairs: &[String]) -> Result<Vec<(String, Vec<String>)>, String> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for pair in pairs {
        let (key, value) = pair
            .split_once('=')
            .filter(|(k, _)| !k.is_empty())
            .ok_or_else(|| format!("--context: {pair:?} is not KEY=VALUE"))?;
        match out.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(key)) {
            Some((_, values)) => values.push(value.to_owned()),
            None => out.push((key.to_owned(), vec![value.to_owned()])),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse_or_say_why() {
        assert_eq!(parse_action("stopinstances"), Ok(Action::StopInstances));
        assert_eq!(
            parse_action("ec2-instance-connect:SendSSHPublicKey"),
            Ok(Action::SendSSHPublicKey)
        );
        assert!(
            parse_action("ec2:TerminateInstances")
                .unwrap_err()
                .contains("known actions")
        );
        let id = "i-0123456789abcdef0";
        assert_eq!(
            parse_resource(id, "us-east-1", "111122223333")
                .unwrap()
                .as_str(),
            id
        );
        let arn = format!("arn:aws:ec2:us-east-1:111122223333:instance/{id}");
        assert_eq!(
            parse_resource(&arn, "us-east-1", "111122223333")
                .unwrap()
                .as_str(),
            id
        );
        assert!(parse_resource(&arn, "us-east-1", "444455556666").is_err());
        assert!(parse_resource("i-xyz", "us-east-1", "111122223333").is_err());
        let ctx = parse_context(&[
            "aws:SourceIp=10.0.0.1".into(),
            "aws:TagKeys=a".into(),
            "aws:tagkeys=b=c".into(),
        ])
        .unwrap();
        assert_eq!(
            ctx,
            [
                ("aws:SourceIp".to_owned(), vec!["10.0.0.1".to_owned()]),
                (
                    "aws:TagKeys".to_owned(),
                    vec!["a".to_owned(), "b=c".to_owned()]
                ),
            ]
        );
        assert!(parse_context(&["novalue".into()]).is_err());
        assert!(parse_context(&["=x".into()]).is_err());
    }
}
