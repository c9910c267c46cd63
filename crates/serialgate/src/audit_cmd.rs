//! `serialgate audit`: reads the audit trail back: authenticated API calls, unauthenticated
//! refusals counted per source and reason, and SSH sessions.

use std::path::PathBuf;

use audit::{AuditQuery, AuditRecord, format_time_ms, parse_time_ms};

use crate::cli::load_config;
use crate::stores;

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Configuration naming the audit store (`[audit] postgres`, else `state_dir/audit.db`).
    /// Default: the embedded default's.
    #[arg(long, short = 'c', value_name = "FILE", env = "SERIALGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Only records about this instance.
    #[arg(long, value_name = "ID")]
    pub instance: Option<String>,
    /// Only records at or after this time (RFC 3339, e.g. 2026-11-27T21:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Print one JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: AuditArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (cfg, _) = load_config(args.config.as_ref())?;
    let mut query = AuditQuery {
        instance_id: args.instance.clone(),
        ..AuditQuery::default()
    };
    if let Some(t) = &args.since {
        query.since_ms = parse_time_ms(t).map_err(|e| format!("--since: {e}"))?;
    }
    if let Some(t) = &args.until {
        query.until_ms = parse_time_ms(t).map_err(|e| format!("--until: {e}"))?;
    }
    let log = if cfg.audit.postgres.is_some() {
        stores::open_audit_log(&cfg, &cfg.state_dir(), "audit-cli")?
    } else {
        // serve falls back to the per-user directory when state_dir is not writable; look
        // where it wrote, and never create an empty database here.
        let dir = cfg
            .written_state_dirs()
            .into_iter()
            .find(|d| stores::sqlite_path(d).is_file())
            .ok_or_else(|| {
                format!(
                    "no audit database at {} (serialgate serve creates it)",
                    stores::sqlite_path(&cfg.state_dir()).display()
                )
            })?;
        stores::open_audit_log(&cfg, &dir, "audit-cli")?
    };
    let records = log.query(&query).await?;
    if args.json {
        for r in &records {
            println!("{}", serde_json::to_string(r)?);
        }
    } else {
        print_table(&records);
    }
    Ok(())
}

/// Two lines per record, so the table fits a terminal: the time, kind, what and outcome, then
/// the rest as `name value` pairs, wrapped to the terminal's width (100 columns when stdout is
/// not a terminal; `--json` is for machines).
fn print_table(records: &[AuditRecord]) {
    let width = terminal_width().unwrap_or(100).max(40);
    for r in records {
        println!("{}", headline(r));
        for line in wrap(&facts(r), width.saturating_sub(INDENT.len())) {
            println!("{INDENT}{line}");
        }
    }
}

const INDENT: &str = "    ";

fn terminal_width() -> Option<usize> {
    let size = rustix::termios::tcgetwinsize(rustix::stdio::stdout()).ok()?;
    (size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Time, kind, what was done, outcome.
fn headline(r: &AuditRecord) -> String {
    let what = match (&r.operation, &r.target, &r.reason) {
        (Some(op), _, _) => op.clone(),
        (None, Some(t), _) => t.clone(),
        (None, None, Some(reason)) => reason.clone(),
        (None, None, None) => "-".to_owned(),
    };
    format!(
        "{}  {:<13}  {what}  {}",
        format_time_ms(r.time_ms),
        r.kind,
        r.outcome
    )
}

/// Everything else that is known, as `name value` items: first, for a call the caller's
/// policies refused, why (the outcome on the line above is only an error code).
fn facts(r: &AuditRecord) -> Vec<String> {
    let named = |name: &str, v: &Option<String>| v.as_ref().map(|v| format!("{name} {v}"));
    let source = if r.kind == "api-refused" && r.source_ip.is_none() {
        Some("source other sources".to_owned())
    } else {
        named("source", &r.source_ip)
    };
    denial(r)
        .into_iter()
        .flatten()
        .chain(
            [
                named("instance", &r.instance_id),
                source,
                named("request", &r.request_id),
            ]
            .into_iter()
            .flatten(),
        )
        .chain([details(r)])
        .collect()
}

/// For a call the caller's policies refused: the action, the resource, and the `Deny`
/// statement that decided it or `implicit deny` when no statement allowed it.
fn denial(r: &AuditRecord) -> Option<[String; 3]> {
    let action = r.action.as_ref()?;
    let decided = match &r.statement {
        Some(statement) => format!("denied by {statement}"),
        None => "implicit deny".to_owned(),
    };
    Some([
        format!("action {action}"),
        format!("resource {}", r.resource.as_deref().unwrap_or("-")),
        decided,
    ])
}

/// Joins `items` with ", " into lines of at most `width` characters (an item longer than the
/// width gets a line of its own).
fn wrap(items: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for item in items {
        if !line.is_empty() && line.chars().count() + 2 + item.chars().count() > width {
            lines.push(std::mem::take(&mut line) + ",");
        }
        if !line.is_empty() {
            line.push_str(", ");
        }
        line.push_str(item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// What the other items do not say, per kind of record.
fn details(r: &AuditRecord) -> String {
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
    if let Some(count) = r.count {
        let last = r
            .last_time_ms
            .map_or_else(|| "-".to_owned(), format_time_ms);
        return format!(
            "{count} unauthenticated request{} until {last}, access key {}, node {}",
            if count == 1 { "" } else { "s" },
            dash(&r.access_key_id),
            r.node
        );
    }
    // In a cluster, a session names the node that owned the console (the writer, `node`, is
    // the node that accepted the connection).
    let console = r
        .console_node
        .as_ref()
        .map(|n| format!(", console on {n}"))
        .unwrap_or_default();
    let recording = r
        .recording
        .as_ref()
        .map(|id| format!(", recording {id}"))
        .unwrap_or_default();
    match (r.duration_ms, r.bytes_in, r.bytes_out) {
        (Some(d), Some(i), Some(o)) => format!(
            "{:.1} s, {i} B in, {o} B out, session {}, key {}{console}{recording}",
            d as f64 / 1000.0,
            dash(&r.session_id),
            dash(&r.key_fingerprint)
        ),
        _ => format!(
            "principal {}, key {}, node {}{console}{recording}",
            dash(&r.principal_arn),
            dash(&r.key_fingerprint),
            r.node
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_keeps_items_whole_and_lines_within_the_width() {
        let items: Vec<String> = [
            "instance i-0123456789abcdef0",
            "source 127.0.0.1",
            "request 3162",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            wrap(&items, 40),
            vec![
                "instance i-0123456789abcdef0,",
                "source 127.0.0.1, request 3162"
            ]
        );
        assert_eq!(wrap(&items, 200).len(), 1);
        for line in wrap(&items, 20) {
            assert!(line.chars().count() <= 31, "{line}");
        }
    }

    #[test]
    fn refusal_counts_show_their_count_window_and_key() {
        let r = AuditRecord {
            time_ms: 1_800_000_000_000,
            kind: "api-refused".into(),
            request_id: None,
            operation: None,
            session_id: None,
            principal_arn: None,
            source_ip: Some("192.0.2.7".into()),
            instance_id: None,
            target: None,
            key_fingerprint: None,
            outcome: "InvalidSignatureException".into(),
            duration_ms: None,
            bytes_in: None,
            bytes_out: None,
            node: "node-a".into(),
            count: Some(12),
            last_time_ms: Some(1_800_000_059_000),
            reason: Some("signature-mismatch".into()),
            access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
            action: None,
            resource: None,
            statement: None,
            console_node: None,
            recording: None,
        };
        assert_eq!(
            details(&r),
            "12 unauthenticated requests until 2027-01-15T08:00:59Z, access key \
             AKIAIOSFODNN7EXAMPLE, node node-a"
        );
    }

    /// A push the caller's policies refused, as the API records it.
    fn denied(statement: Option<&str>) -> AuditRecord {
        AuditRecord {
            time_ms: 1_800_000_000_000,
            kind: "api".into(),
            request_id: Some("3162".into()),
            operation: Some("SendSerialConsoleSSHPublicKey".into()),
            session_id: None,
            principal_arn: Some("arn:aws:iam::111122223333:user/alice".into()),
            source_ip: Some("127.0.0.1".into()),
            instance_id: Some("i-0123456789abcdef0".into()),
            target: Some("port0".into()),
            key_fingerprint: None,
            outcome: "AuthException".into(),
            duration_ms: None,
            bytes_in: None,
            bytes_out: None,
            node: "node-a".into(),
            count: None,
            last_time_ms: None,
            reason: None,
            access_key_id: None,
            action: Some("ec2-instance-connect:SendSerialConsoleSSHPublicKey".into()),
            resource: Some(
                "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0".into(),
            ),
            statement: statement.map(str::to_owned),
            console_node: None,
            recording: None,
        }
    }

    #[test]
    fn a_policy_denial_shows_action_resource_and_statement_on_the_second_line() {
        let r = denied(Some(
            r#"policy "no-console" Statement[1] (Sid "NoConsole")"#,
        ));
        let lines = wrap(&facts(&r), 96);
        // Right under the outcome they explain, before the other facts.
        assert!(
            lines.join(" ").starts_with(
                "action ec2-instance-connect:SendSerialConsoleSSHPublicKey, resource \
                 arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0, denied by \
                 policy \"no-console\" Statement[1] (Sid \"NoConsole\"), instance "
            ),
            "{lines:#?}"
        );
        // The headline stays one line; nothing else moves.
        assert_eq!(
            headline(&r),
            "2027-01-15T08:00:00Z  api            SendSerialConsoleSSHPublicKey  AuthException"
        );
        for line in &lines {
            assert!(line.chars().count() <= 96, "{line}");
        }

        let implicit = facts(&denied(None));
        assert_eq!(implicit[2], "implicit deny");
        let allowed = AuditRecord {
            action: None,
            resource: None,
            outcome: "success".into(),
            ..denied(None)
        };
        let items = facts(&allowed);
        assert!(
            !items
                .iter()
                .any(|i| i.starts_with("action") || i.contains("deny")),
            "{items:?}"
        );
    }

    #[test]
    fn json_carries_the_denial() {
        let statement = r#"policy "no-console" Statement[1] (Sid "NoConsole")"#;
        let v = serde_json::to_value(denied(Some(statement))).unwrap();
        assert_eq!(
            v["action"],
            "ec2-instance-connect:SendSerialConsoleSSHPublicKey"
        );
        assert_eq!(
            v["resource"],
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0123456789abcdef0"
        );
        assert_eq!(v["statement"], statement);
        // An implicit deny: the statement is there, and null.
        let v = serde_json::to_value(denied(None)).unwrap();
        assert!(v["statement"].is_null() && v.get("statement").is_some());
    }
}
