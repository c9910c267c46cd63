//! Time as an input: every expiry in the domain reads the clock through [`Clock`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time. Grants and teardown blocks are stored as absolute times because
/// they may be shared between nodes (Redis), so a monotonic clock would not do.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    fn now(&self) -> SystemTime;

    /// Milliseconds since the Unix epoch; the unit every store uses for expiry.
    fn now_ms(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; shared by clones so a test can advance the time the
/// service sees.
#[derive(Debug, Clone)]
pub struct ManualClock {
    ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// Starts at `start`.
    pub fn new(start: SystemTime) -> Self {
        let ms = start
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            ms: Arc::new(AtomicU64::new(ms)),
        }
    }

    /// Moves time forward.
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.ms.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets an absolute time.
    pub fn set(&self, to: SystemTime) {
        let ms = to
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.ms.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.ms.load(Ordering::SeqCst))
    }
}

/// ISO 8601 in UTC with milliseconds (`2016-11-15T09:30:00.000Z`): EC2's timestamp form and
/// the form of `aws:CurrentTime`.
pub fn iso8601(ms_since_epoch: u64) -> String {
    let nanos = i128::from(ms_since_epoch) * 1_000_000;
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&format).ok())
        // Only times past the year 9999 fail; the epoch is a harmless stand-in.
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1000));
        assert_eq!(c.now_ms(), 1_000_000);
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.now_ms(), 1_001_500);
        let c2 = c.clone();
        c2.advance(Duration::from_secs(1));
        assert_eq!(c.now_ms(), 1_002_500);
    }
}
