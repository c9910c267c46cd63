//! What `GET /ready` asks on this node: the shared store (Redis reachable, and the epoch of the
//! node's instances open, see `store_redis`), the audit trail (a record written now would
//! commit) and the consoles (connected or not; reported, not required, since one unreachable
//! BMC must not take a node, and with it every console it serves, out of a load balancer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::ready::{Check, Readiness, Report};
use async_trait::async_trait;
use audit::AuditLog;
use console::{Clock as _, InstanceId, SystemClock};
use store_redis::RedisSlots;
use tokio::sync::Mutex;

/// How long an answer is reused: `/ready` is unauthenticated, and each answer costs a round
/// trip to Redis per instance and one to the audit store.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// Disconnected consoles named in the detail, at most.
const NAMED: usize = 5;

#[derive(Debug)]
pub struct NodeReadiness {
    pub redis: Option<RedisSlots>,
    pub audit: Arc<dyn AuditLog>,
    pub instances: Vec<InstanceId>,
    pub consoles: Arc<gateway::Consoles>,
    /// The last answer; the lock also makes concurrent askers share one round of checks.
    last: Mutex<Option<(Instant, Report)>>,
}

impl NodeReadiness {
    pub fn new(
        redis: Option<RedisSlots>,
        audit: Arc<dyn AuditLog>,
        instances: Vec<InstanceId>,
        consoles: Arc<gateway::Consoles>,
    ) -> Self {
        Self {
            redis,
            audit,
            instances,
            consoles,
            last: Mutex::new(None),
        }
    }

    async fn check_store(&self) -> Check {
        let Some(slots) = &self.redis else {
            return check("store", true, true, "in memory".to_owned());
        };
        let now = SystemClock.now_ms();
        match slots.open_epochs(&self.instances, now).await {
            Ok(opens) if opens > now => check(
                "store",
                false,
                true,
                format!(
                    "redis: sessions open in {:.1} s (Redis is new or lost its data; sessions \
                     from before must end first)",
                    Duration::from_millis(opens - now).as_secs_f64()
                ),
            ),
            Ok(_) => check("store", true, true, "redis: ok".to_owned()),
            Err(e) => check("store", false, true, e.to_string()),
        }
    }

    async fn check_audit(&self) -> Check {
        match self.audit.ping().await {
            Ok(()) => check("audit", true, true, "ok".to_owned()),
            Err(e) => check("audit", false, true, e.to_string()),
        }
    }

    fn check_consoles(&self) -> Check {
        let down: Vec<&InstanceId> = self
            .instances
            .iter()
            .filter(|id| self.consoles.hub(id).is_some_and(|h| !h.is_connected()))
            .collect();
        let total = self.instances.len();
        let mut detail = format!("{} of {total} connected", total - down.len());
        if !down.is_empty() {
            let named: Vec<String> = down.iter().take(NAMED).map(|id| id.to_string()).collect();
            detail.push_str(&format!("; not connected: {}", named.join(", ")));
            if down.len() > NAMED {
                detail.push_str(&format!(" and {} more", down.len() - NAMED));
            }
        }
        check("consoles", down.is_empty(), false, detail)
    }
}

fn check(name: &'static str, ok: bool, required: bool, detail: String) -> Check {
    Check {
        name,
        ok,
        required,
        detail,
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
        let report = Report {
            checks: vec![store, audit, self.check_consoles()],
        };
        *last = Some((Instant::now(), report.clone()));
        report
    }
}
