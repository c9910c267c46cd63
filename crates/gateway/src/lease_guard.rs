//! Holds a session's lease and guarantees it is released on every exit path.

use std::sync::Arc;

use console::leases::Lease;

use crate::Shared;

/// Owns a lease. `release` ends it cleanly; if the guard is dropped instead (a task ended early,
/// panicked or was aborted), `Drop` releases it from a task on the gateway's session tracker, so
/// a shutdown waits for that release too.
pub(crate) struct LeaseGuard {
    shared: Arc<Shared>,
    lease: Option<Lease>,
}

impl std::fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl LeaseGuard {
    pub(crate) fn new(shared: Arc<Shared>, lease: Lease) -> Self {
        Self {
            shared,
            lease: Some(lease),
        }
    }

    pub(crate) fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Replaces the held lease after a renewal.
    pub(crate) fn update(&mut self, lease: Lease) {
        self.lease = Some(lease);
    }

    /// Forgets a lease that was lost (someone else holds the slot now).
    pub(crate) fn forget(&mut self) {
        self.lease = None;
    }

    /// Takes the lease out for the caller to release (see [`release`]).
    pub(crate) fn take(&mut self) -> Option<Lease> {
        self.lease.take()
    }

    /// Releases now and waits for the store; the guard holds nothing afterwards.
    pub(crate) async fn release(&mut self) {
        if let Some(lease) = self.lease.take() {
            release(&self.shared, &lease).await;
        }
    }

    /// Releases without the teardown block, for a session ended on request once it stopped
    /// writing to its console; the guard holds nothing afterwards.
    pub(crate) async fn release_now(&mut self) {
        if let Some(lease) = self.lease.take() {
            release_as(&self.shared, &lease, true).await;
        }
    }
}

/// Ends `lease` in the store, waiting at most the store timeout: a store that does not answer
/// must not hold up a shutdown, and the lease lapses by itself anyway.
pub(crate) async fn release(shared: &Shared, lease: &Lease) {
    release_as(shared, lease, false).await;
}

/// [`release`], into the teardown block or (`now`) freeing the slot at once.
async fn release_as(shared: &Shared, lease: &Lease, now: bool) {
    let bound = shared.config.store_timeout;
    let service = &shared.service;
    let ending = async {
        if now {
            service.end_session_now(lease).await
        } else {
            service.end_session(lease).await
        }
    };
    match tokio::time::timeout(bound, ending).await {
        Ok(Ok(())) => {
            tracing::debug!(instance = %lease.slot.instance, port = %lease.slot.port, "session slot released")
        }
        // The lease expires by itself; the slot frees after lease time + teardown.
        Ok(Err(e)) => {
            tracing::warn!(error = %e, instance = %lease.slot.instance, "could not release session slot; it will expire")
        }
        Err(_) => {
            tracing::warn!(instance = %lease.slot.instance, timeout_ms = bound.as_millis(), "session store did not answer the release; the slot will expire")
        }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let shared = Arc::clone(&self.shared);
            // Outside a runtime (process exit) the lease simply expires.
            if tokio::runtime::Handle::try_current().is_ok() {
                let tracker = shared.sessions.clone();
                tracker.spawn(async move { release(&shared, &lease).await });
            }
        }
    }
}
