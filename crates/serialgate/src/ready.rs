//! What `GET /ready` asks on this node: the shared store (Redis reachable, and the epoch of the
//! node's instances open, see `store_redis`), the audit trail (a record written now would
//! commit) and the consoles (connected or not; reported, not required, since one unreachable
//! BMC must not take a node, and with it every console it serves, out of a load balancer).
//!
//! `/ready` is unauthenticated, so its body says what is wrong in a few words and counts the
//! consoles without naming them; the causes (addresses, paths, errors) go to the log, once
//! when a dependency goes down and once when it is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::ready::{Check, Readiness, Report};
use async_trait::async_trait;
use audit::AuditLog;
use backends::HubState;
use console::{Clock as _, InstanceId, SystemClock};
use store_redis::RedisSlots;
use tokio::sync::Mutex;

/// How long an answer is reused: `/ready` is unauthenticated, and each answer costs a round
/// trip to Redis per instance and one to the audit store.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// Disconnected consoles named in the log, at most.
const NAMED: usize = 5;

#[derive(Debug)]
pub struct NodeReadiness {
    pub redis: Option<RedisSlots>,
    pub audit: Arc<dyn AuditLog>,
    pub instances: Vec<InstanceId>,
    pub consoles: Arc<consoles::Consoles>,
    /// The last answer; the lock also makes concurrent askers share one round of checks.
    last: Mutex<Option<(Instant, Report)>>,
}

/// A check's public state and, when it failed, the cause for the log.
struct Outcome {
    check: Check,
    cause: Option<String>,
}

impl NodeReadiness {
    pub fn new(
        redis: Option<RedisSlots>,
        audit: Arc<dyn AuditLog>,
        instances: Vec<InstanceId>,
        consoles: Arc<consoles::Consoles>,
    ) -> Self {
        Self {
            redis,
            audit,
            instances,
            consoles,
            last: Mutex::new(None),
        }
    }

    async fn check_store(&self) -> Outcome {
        let Some(slots) = &self.redis else {
            return outcome("store", true, "in memory", None);
        };
        let now = SystemClock.now_ms();
        match slots.open_epochs(&self.instances, now).await {
            Ok(opens) if opens > now => {
                let wait = Duration::from_millis(opens - now).as_secs_f64();
                let cause = "Redis has no record of these instances' sessions (it is new or lost \
                             its data): sessions from before must end first"
                    .to_owned();
                outcome(
                    "store",
                    false,
                    &format!("redis: sessions open in {wait:.1} s"),
                    Some(cause),
                )
            }
            Ok(_) => outcome("store", true, "redis: ok", None),
            Err(e) => outcome("store", false, "redis: unreachable", Some(e.to_string())),
        }
    }

    async fn check_audit(&self) -> Outcome {
        match self.audit.ping().await {
            Ok(()) => outcome("audit", true, "ok", None),
            Err(e) => outcome("audit", false, "cannot write", Some(e.to_string())),
        }
    }

    fn check_consoles(&self) -> Outcome {
        let down: Vec<(&InstanceId, String)> = self
            .instances
            .iter()
            .filter_map(|id| match self.consoles.hub(id)?.state() {
                HubState::Connected => None,
                HubState::Connecting => Some((id, "not tried yet".to_owned())),
                HubState::Down { reason } => Some((id, reason)),
            })
            .collect();
        // `exec:` consoles have no hub: they are started per session, nothing to watch.
        let total = self
            .instances
            .iter()
            .filter(|id| self.consoles.hub(id).is_some())
            .count();
        let detail = format!("{} of {total} connected", total - down.len());
        let cause = (!down.is_empty()).then(|| describe_down(&down));
        let mut o = outcome("consoles", down.is_empty(), &detail, cause);
        o.check.required = false;
        o
    }
}

/// The consoles that are not connected, with why, for the log (at most [`NAMED`]).
fn describe_down(down: &[(&InstanceId, String)]) -> String {
    let mut text: Vec<String> = down
        .iter()
        .take(NAMED)
        .map(|(id, reason)| format!("{id}: {reason}"))
        .collect();
    if down.len() > NAMED {
        text.push(format!("and {} more", down.len() - NAMED));
    }
    text.join("; ")
}

fn outcome(name: &'static str, ok: bool, detail: &str, cause: Option<String>) -> Outcome {
    Outcome {
        check: Check {
            name,
            ok,
            required: true,
            detail: detail.to_owned(),
        },
        cause,
    }
}

#[async_trait]
impl Readiness for NodeReadiness {
    async fn report(&self) -> Report {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return report.clone();
        }
        let (store, audit) = tokio::join!(self.check_store(), self.check_audit());
        let outcomes = [store, audit, self.check_consoles()];
        let before = last.as_ref().map(|(_, r)| r);
        for o in &outcomes {
            log_change(before, o);
        }
        let report = Report {
            checks: outcomes.into_iter().map(|o| o.check).collect(),
        };
        *last = Some((Instant::now(), report.clone()));
        report
    }
}

/// Logs a check that went down (with its cause) or came back, compared with the last answer
/// (none: the first, at startup, where every state is logged).
fn log_change(before: Option<&Report>, o: &Outcome) {
    let was_ok = before.and_then(|r| {
        r.checks
            .iter()
            .find(|c| c.name == o.check.name)
            .map(|c| c.ok)
    });
    let c = &o.check;
    match (was_ok, c.ok, &o.cause) {
        (Some(true), true, _) | (Some(false), false, _) => {}
        (_, true, _) => tracing::info!("{}: {}", c.name, c.detail),
        (_, false, cause) => {
            let cause = cause.as_deref().unwrap_or("");
            if c.required {
                tracing::warn!(
                    "{}: {} ({cause}); GET /ready answers 503 until this clears",
                    c.name,
                    c.detail
                );
            } else {
                tracing::warn!("{}: {} ({cause})", c.name, c.detail);
            }
        }
    }
}
