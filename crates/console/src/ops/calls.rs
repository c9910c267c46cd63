//! Audit records of authenticated calls that no domain operation records itself: calls the
//! front door refused before any operation ran (a malformed argument, an unknown operation) and
//! the calls whose records carry the front door's own error codes (EC2 Query). The push
//! operations record every outcome themselves (their success record must be durable before the
//! grant is stored), so the front door never records a call that reached them.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::audit::AuditOutcome;
use crate::error::{ConsoleError, Denial};
use crate::service::{ConsoleService, RequestContext};

/// A failed record of a refused call is logged at most this often, with the number not logged.
const REFUSAL_WARNING_EVERY_MS: u64 = 10_000;

/// What a call was about, as far as the request says: each field only when its value is valid
/// (a malformed instance id is not recorded, so the trail holds no client junk).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallSubject {
    /// One instance id, or several joined by `,`.
    pub instance_id: Option<String>,
    /// `port0` or `user:NAME`.
    pub target: Option<String>,
    pub key_fingerprint: Option<String>,
}

impl ConsoleService {
    /// Records a call answered with success. A success whose record cannot be written becomes an
    /// internal error: no call is acknowledged without its record.
    pub async fn record_answered(
        &self,
        ctx: &RequestContext,
        operation: impl Into<Cow<'static, str>>,
        subject: CallSubject,
    ) -> Result<(), ConsoleError> {
        let event = self.call_event(
            ctx,
            operation,
            subject.instance_id,
            subject.target,
            subject.key_fingerprint,
        );
        self.audit.record(&event).await.map_err(|e| {
            tracing::error!(error = %e, request_id = %event.request_id, "audit record failed; call answered with an error");
            ConsoleError::Internal(format!("audit sink: {e}"))
        })
    }

    /// Records a call refused with the AWS error `code` (the one the caller receives) and, when
    /// its policies refused it, the `denial`. A record
    /// that cannot be written changes nothing for the caller, whose refusal stands; the failure
    /// is logged at warn, at most once per 10 s.
    pub async fn record_refused(
        &self,
        ctx: &RequestContext,
        operation: impl Into<Cow<'static, str>>,
        subject: CallSubject,
        code: &str,
        denial: Option<&Denial>,
    ) {
        let mut event = self.call_event(
            ctx,
            operation,
            subject.instance_id,
            subject.target,
            subject.key_fingerprint,
        );
        event.outcome = AuditOutcome::Error(code.to_owned());
        event.denial = denial.cloned();
        if let Err(e) = self.audit.record(&event).await {
            self.refusal_record_failed(&event.request_id, &e.to_string());
        }
    }

    /// Logs a refused call's record that could not be written: the first, then at most one per
    /// [`REFUSAL_WARNING_EVERY_MS`], so a broken store under a flood of refusals does not
    /// flood the log too.
    pub(crate) fn refusal_record_failed(&self, request_id: &str, error: &str) {
        if let Some(unlogged) = self
            .refusal_warnings
            .due(self.now_ms(), REFUSAL_WARNING_EVERY_MS)
        {
            tracing::warn!(
                error,
                request_id,
                failed_since_last_report = unlogged,
                "audit record of a refused call failed; the caller's error is unchanged"
            );
        }
    }
}

/// Decides when a frequent event is logged: the first time, then at most once per interval,
/// counting the occurrences in between. Lock-free: refusals come from every request task.
#[derive(Debug, Default)]
pub struct SampledWarning {
    /// When the last one was logged (ms since the Unix epoch); 0: never.
    last_ms: AtomicU64,
    unlogged: AtomicU64,
}

impl SampledWarning {
    /// `Some(occurrences not logged since the last report)` when this one should be logged.
    pub fn due(&self, now_ms: u64, every_ms: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        let now_ms = now_ms.max(1);
        let recent = last != 0 && now_ms.saturating_sub(last) < every_ms;
        // Of callers racing past an old `last`, only the one that moves it logs.
        if recent
            || self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.unlogged.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_failures_is_logged_once_per_interval_with_a_count() {
        let w = SampledWarning::default();
        assert_eq!(w.due(1_000, 10_000), Some(0));
        assert_eq!(w.due(1_001, 10_000), None);
        assert_eq!(w.due(10_999, 10_000), None);
        assert_eq!(w.due(11_000, 10_000), Some(2));
        assert_eq!(w.due(11_001, 10_000), None);
    }
}
