//! A warning that a peer can trigger at will (a frame that fails its authentication check) is
//! logged at most once per interval, with a count of the ones in between, so it cannot flood
//! the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// How often a [`Sampled`] warning may be logged.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(60);

/// Decides when a frequent warning is logged: the first time, then at most once per interval.
/// Lock-free: every connection task of a server or client shares one.
#[derive(Debug)]
pub(crate) struct Sampled {
    start: Instant,
    /// When the last one was logged, in ms since `start`, plus one; 0: never.
    last: AtomicU64,
    unlogged: AtomicU64,
}

impl Default for Sampled {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            last: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }
}

impl Sampled {
    /// `Some(occurrences not logged since the last report)` when this one should be logged.
    pub fn due(&self) -> Option<u64> {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let every = u64::try_from(WARN_EVERY.as_millis()).unwrap_or(u64::MAX);
        self.due_at(elapsed.saturating_add(1), every)
    }

    fn due_at(&self, now: u64, every: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let recent = last != 0 && now.saturating_sub(last) < every;
        // Of callers racing past an old `last`, only the one that moves it logs.
        if recent
            || self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
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

    #[tokio::test(start_paused = true)]
    async fn a_flood_is_logged_once_per_interval_with_a_count() {
        let w = Sampled::default();
        assert_eq!(w.due(), Some(0));
        assert_eq!(w.due(), None);
        tokio::time::advance(WARN_EVERY - Duration::from_millis(1)).await;
        assert_eq!(w.due(), None);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(w.due(), Some(2));
        assert_eq!(w.due(), None);
    }
}
