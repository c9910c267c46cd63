//! `serialgate audit`: reads the audit trail back: authenticated API calls, unauthenticated
//! refusals counted per source and reason, and SSH sessions.

use std::path::PathBuf;

use audit::{AuditQuery, AuditRecord, format_time_ms, parse_time_ms};

use crate::cli::load_config;
use crate::config;
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
        let dir = [cfg.state_dir(), config::user_state_dir()]
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

fn print_table(records: &[AuditRecord]) {
    println!(
        "{:<24}  {:<13}  {:<20}  {:<30}  {:<15}  {:<36}  {:<40}  details",
        "time", "kind", "instance", "what", "source", "request", "outcome"
    );
    for r in records {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
        let refused = r.kind == "api-refused";
        let what = match (&r.operation, &r.target, &r.reason) {
            (Some(op), _, _) => op.clone(),
            (None, Some(t), _) => t.clone(),
            (None, None, Some(reason)) => reason.clone(),
            (None, None, None) => "-".to_owned(),
        };
        let source = match &r.source_ip {
            Some(ip) => ip.clone(),
            None if refused => "other sources".to_owned(),
            None => "-".to_owned(),
        };
        println!(
            "{:<24}  {:<13}  {:<20}  {:<30}  {:<15}  {:<36}  {:<40}  {}",
            format_time_ms(r.time_ms),
            r.kind,
            dash(&r.instance_id),
            what,
            source,
            dash(&r.request_id),
            r.outcome,
            details(r)
        );
    }
}

/// The last column: what the other columns do not say, per kind of record.
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
    match (r.duration_ms, r.bytes_in, r.bytes_out) {
        (Some(d), Some(i), Some(o)) => format!(
            "{:.1} s, {i} B in, {o} B out, session {}, key {}",
            d as f64 / 1000.0,
            dash(&r.session_id),
            dash(&r.key_fingerprint)
        ),
        _ => format!(
            "principal {}, key {}, node {}",
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
        };
        assert_eq!(
            details(&r),
            "12 unauthenticated requests until 2027-01-15T08:00:59Z, access key \
             AKIAIOSFODNN7EXAMPLE, node node-a"
        );
    }
}
