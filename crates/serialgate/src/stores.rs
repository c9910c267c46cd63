//! Chooses the stores a node runs with, from `[store]` and `[audit]`: embedded memory or a
//! shared Redis for grants, session slots, throttle buckets and account switches; SQLite in
//! `state_dir` or a shared PostgreSQL for the audit trail.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use audit::{AuditLog, Logged, PgAudit, SqliteAudit};
use console::{AuditSink, ConsoleService, Settings, ThrottleConfig};
use store_redis::{RedisConfig, RedisStore};

use crate::config::Config;

/// The stores of one node, opened but not yet installed in the service.
#[derive(Debug)]
pub struct Stores {
    redis: Option<RedisStore>,
    teardown: Duration,
    lease_ttl: Duration,
    throttle: ThrottleConfig,
    audit: Arc<dyn AuditLog>,
    /// What they are, for the startup log (no credentials).
    pub description: String,
}

impl Stores {
    /// Opens what the configuration names. Nothing here waits for a server: Redis and
    /// PostgreSQL are connected on first use (see [`Stores::check`]).
    pub fn open(
        cfg: &Config,
        state_dir: &Path,
        node: &str,
        settings: &Settings,
        throttle: ThrottleConfig,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let redis = match &cfg.store.redis {
            Some(url) => {
                let mut rc = RedisConfig::new(url.clone());
                rc.timeout = Duration::from_millis(cfg.store.timeout_ms);
                Some(RedisStore::connect(&rc).map_err(|e| format!("[store] redis: {e}"))?)
            }
            None => None,
        };
        let audit = open_audit_log(cfg, state_dir, node)?;
        let description = format!(
            "state {}, audit {}",
            match &cfg.store.redis {
                Some(url) => format!("redis {}", redact(url)),
                None => "in memory".to_owned(),
            },
            match &cfg.audit.postgres {
                Some(url) => format!("postgres {}", redact(url)),
                None => format!("sqlite {}", sqlite_path(state_dir).display()),
            }
        );
        Ok(Self {
            redis,
            teardown: settings.teardown,
            lease_ttl: settings.lease_ttl,
            throttle,
            audit,
            description,
        })
    }

    /// Puts the stores into `service` (the memory stores it was built with stay unless Redis
    /// is configured). API calls are also written to the log, after the durable record.
    pub fn install(&self, service: ConsoleService) -> ConsoleService {
        let audit: Arc<dyn AuditSink> = Arc::clone(&self.audit) as Arc<dyn AuditSink>;
        let service = service.with_audit(Arc::new(Logged(audit)));
        match &self.redis {
            Some(r) => service
                .with_slots(Arc::new(r.slots(self.teardown, self.lease_ttl)))
                .with_directory(Arc::new(r.directory()))
                .with_throttle(Arc::new(r.throttle(self.throttle)))
                .with_accounts(Arc::new(r.accounts())),
            None => service,
        }
    }

    /// Console ownership and the node registry, shared by a cluster (Redis only).
    pub fn ownership(&self) -> Option<Arc<dyn console::ConsoleOwnership>> {
        self.redis
            .as_ref()
            .map(|r| Arc::new(r.ownership(self.lease_ttl)) as Arc<dyn console::ConsoleOwnership>)
    }

    /// Every instance's EC2 state, shared by a cluster (Redis only).
    pub fn states(&self) -> Option<Arc<dyn console::SharedStates>> {
        self.redis
            .as_ref()
            .map(|r| Arc::new(r.states()) as Arc<dyn console::SharedStates>)
    }

    /// What `/ready` asks of the stores: the Redis slots (their epochs) and the audit trail.
    pub fn for_readiness(&self) -> (Option<store_redis::RedisSlots>, Arc<dyn AuditLog>) {
        let slots = self
            .redis
            .as_ref()
            .map(|r| r.slots(self.teardown, self.lease_ttl));
        (slots, Arc::clone(&self.audit))
    }
}

/// `audit.db` in the state directory.
pub fn sqlite_path(state_dir: &Path) -> PathBuf {
    state_dir.join("audit.db")
}

/// The audit store the configuration names: PostgreSQL if `[audit] postgres` is set, else
/// SQLite in `state_dir`.
pub fn open_audit_log(
    cfg: &Config,
    state_dir: &Path,
    node: &str,
) -> Result<Arc<dyn AuditLog>, Box<dyn std::error::Error>> {
    Ok(match &cfg.audit.postgres {
        Some(url) => Arc::new(PgAudit::new(url, node)?),
        None => Arc::new(SqliteAudit::open(&sqlite_path(state_dir), node)?),
    })
}

/// A URL without its password, for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_the_log() {
        assert_eq!(
            redact("redis://:hunter2@10.0.0.5:6379/0"),
            "redis://***@10.0.0.5:6379/0"
        );
        assert_eq!(
            redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(
            redact("postgres://sg:pw@db/audit"),
            "postgres://***@db/audit"
        );
    }
}
