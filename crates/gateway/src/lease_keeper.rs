//! Keeps a session's lease: renews it on schedule and says when the session must end because it
//! may no longer hold the slot.
//!
//! Invariant: a session stops writing to its console before its lease can lapse. The lease
//! lapses `ttl` after the renewal (or acquisition) that set it was sent, by the store's reckoning;
//! this node counts the same `ttl` on its monotonic clock from just before it sent that request,
//! which is never later. The session ends when the renewal answers that the lease is gone or
//! fenced by a newer holder, or when no renewal has succeeded and the lease would lapse within
//! the safety margin, whatever the store is doing (failing, or not answering at all). Another
//! node acquires only once the lease has lapsed by its own wall clock, so a second writer is
//! impossible as long as the nodes' clocks drift apart by less than the margin.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use console::ops::Renewal as Renewed;
use console::{ConsoleService, EndRequest, Lease, StoreError};
use tokio::time::{Instant, sleep_until};

use crate::lease_guard::LeaseGuard;
use crate::session_record::millis;

/// Renewals are never sent more often than this, whatever the lease time.
const MIN_RENEWAL_INTERVAL: Duration = Duration::from_millis(100);

/// When to renew and when to give up, from the lease time and the store timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseTiming {
    pub ttl: Duration,
    /// Between renewals.
    pub every: Duration,
    /// The session ends this long before the lease would lapse if no renewal has succeeded.
    pub margin: Duration,
}

impl LeaseTiming {
    /// The margin is a sixth of the lease time and at least one store timeout — it covers clock
    /// drift between nodes and the session's own closing — but never more than half the lease
    /// time, or a slow store would end healthy sessions. Renewals come every third of the lease
    /// time, or more often when the margin is large, so that at least two attempts fit before
    /// the session gives up.
    pub(crate) fn new(ttl: Duration, store_timeout: Duration) -> Self {
        let margin = (ttl / 6).max(store_timeout).min(ttl / 2);
        let every = (ttl / 3)
            .min(ttl.saturating_sub(margin) / 2)
            .max(MIN_RENEWAL_INTERVAL);
        Self { ttl, every, margin }
    }
}

/// Why the lease keeper ended the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeaseEnd {
    /// The store answered that the lease is gone or held by a newer holder.
    Lost,
    /// No renewal succeeded in time: the lease would lapse within the margin.
    Unrenewed,
    /// The renewal found a request to end the session (one whose notice did not arrive).
    EndRequested(EndRequest),
}

type Renewal = Pin<Box<dyn Future<Output = Result<Option<Renewed>, StoreError>> + Send>>;

/// The renewal schedule of one session's lease.
pub(crate) struct LeaseKeeper {
    service: Arc<ConsoleService>,
    timing: LeaseTiming,
    /// The latest instant the held lease can still be valid, on this node's monotonic clock.
    lapses_at: Instant,
    next_renewal: Instant,
    /// The renewal in flight and when it was sent. Kept across calls to [`LeaseKeeper::watch`]
    /// (which the session's loop drops and re-creates on every event), so a busy session's
    /// renewal is never cancelled and sent again.
    in_flight: Option<(Instant, Renewal)>,
}

impl LeaseKeeper {
    /// Starts keeping `lease`, which lapses at `lease.expires_at_ms` by the service's clock.
    pub(crate) fn new(service: Arc<ConsoleService>, timing: LeaseTiming, lease: &Lease) -> Self {
        let now = Instant::now();
        let left = lease.expires_at_ms.saturating_sub(service.clock().now_ms());
        Self {
            service,
            timing,
            lapses_at: now + Duration::from_millis(left),
            next_renewal: now + timing.every,
            in_flight: None,
        }
    }

    /// When the session must have stopped if no renewal succeeds before.
    pub(crate) fn give_up_at(&self) -> Instant {
        self.lapses_at
            .checked_sub(self.timing.margin)
            .unwrap_or(self.lapses_at)
    }

    /// Renews the lease held by `guard` on schedule and resolves only when the session must
    /// end. Cancel-safe: dropping the future keeps the renewal in flight for the next call.
    pub(crate) async fn watch(&mut self, guard: &mut LeaseGuard) -> LeaseEnd {
        loop {
            if self.in_flight.is_none() {
                tokio::select! {
                    () = sleep_until(self.next_renewal) => {}
                    () = sleep_until(self.give_up_at()) => return LeaseEnd::Unrenewed,
                }
                let Some(lease) = guard.lease().cloned() else {
                    return LeaseEnd::Lost;
                };
                let service = Arc::clone(&self.service);
                let renewal: Renewal =
                    Box::pin(async move { service.renew_listed_session(&lease).await });
                self.in_flight = Some((Instant::now(), renewal));
            }
            let give_up_at = self.give_up_at();
            let Some((sent, renewal)) = self.in_flight.as_mut() else {
                continue;
            };
            let sent = *sent;
            let result = tokio::select! {
                r = renewal.as_mut() => r,
                () = sleep_until(give_up_at) => return LeaseEnd::Unrenewed,
            };
            self.in_flight = None;
            self.next_renewal = sent + self.timing.every;
            match result {
                Ok(Some(renewed)) => {
                    guard.update(renewed.lease);
                    self.lapses_at = self.lapses_at.max(sent + self.timing.ttl);
                    if let Some(end) = renewed.end {
                        return LeaseEnd::EndRequested(end);
                    }
                }
                Ok(None) => {
                    guard.forget();
                    return LeaseEnd::Lost;
                }
                // Retried on schedule; the give-up instant stands whatever the store does.
                Err(e) => tracing::warn!(
                    error = %e,
                    left_ms = millis(self.give_up_at().saturating_duration_since(Instant::now())),
                    "lease renewal failed; the session closes unless a renewal succeeds in time"
                ),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_default_lease_renews_every_third_and_gives_up_a_sixth_early() {
        let t = LeaseTiming::new(15 * S, 2 * S);
        assert_eq!(t.every, 5 * S);
        assert_eq!(t.margin, 2500 * MS);
    }

    #[test]
    fn the_margin_is_at_least_the_store_timeout() {
        let t = LeaseTiming::new(15 * S, 4 * S);
        assert_eq!(t.margin, 4 * S);
        // Two attempts still fit before giving up.
        assert_eq!(t.every, 5 * S);
        assert!(2 * t.every <= t.ttl - t.margin);
    }

    #[test]
    fn a_short_lease_renews_more_often_and_caps_the_margin() {
        // 3 s lease, 2 s store timeout: giving up 2 s early would leave one second, so the
        // margin is capped at half the lease, and renewals come twice in what is left.
        let t = LeaseTiming::new(3 * S, 2 * S);
        assert_eq!(t.margin, 1500 * MS);
        assert_eq!(t.every, 750 * MS);
        let t = LeaseTiming::new(3 * S, 100 * MS);
        assert_eq!(t.margin, 500 * MS);
        assert_eq!(t.every, S);
    }

    #[test]
    fn renewals_are_spaced_whatever_the_lease() {
        let t = LeaseTiming::new(MS, Duration::ZERO);
        assert_eq!(t.every, MIN_RENEWAL_INTERVAL);
        for ttl_s in 3..120 {
            let t = LeaseTiming::new(ttl_s * S, 2 * S);
            assert!(t.margin * 2 <= t.ttl, "{t:?}");
            assert!(2 * t.every <= t.ttl - t.margin, "{t:?}");
        }
    }
}
