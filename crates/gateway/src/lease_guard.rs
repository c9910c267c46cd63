//! Holds a session's lease and guarantees it is released on every exit path.

use std::sync::Arc;

use console::ConsoleService;
use console::leases::Lease;

/// Owns a lease. `release` ends it cleanly; if the guard is dropped instead (a task ended early,
/// panicked or was aborted), `Drop` releases it from a spawned task.
#[derive(Debug)]
pub struct LeaseGuard {
    service: Arc<ConsoleService>,
    lease: Option<Lease>,
}

impl LeaseGuard {
    pub fn new(service: Arc<ConsoleService>, lease: Lease) -> Self {
        Self {
            service,
            lease: Some(lease),
        }
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Replaces the held lease after a renewal.
    pub fn update(&mut self, lease: Lease) {
        self.lease = Some(lease);
    }

    /// Forgets a lease that was lost (someone else holds the slot now).
    pub fn forget(&mut self) {
        self.lease = None;
    }

    /// Releases now and waits for the store; the guard holds nothing afterwards.
    pub async fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            release(&self.service, &lease).await;
        }
    }
}

async fn release(service: &ConsoleService, lease: &Lease) {
    match service.end_session(lease).await {
        Ok(()) => {
            tracing::debug!(instance = %lease.slot.instance, port = %lease.slot.port, "session slot released")
        }
        // The lease expires by itself; the slot frees after lease time + teardown.
        Err(e) => {
            tracing::warn!(error = %e, instance = %lease.slot.instance, "could not release session slot; it will expire")
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let service = Arc::clone(&self.service);
            // Outside a runtime (process exit) the lease simply expires.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { release(&service, &lease).await });
            }
        }
    }
}
