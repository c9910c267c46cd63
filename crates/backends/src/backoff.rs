//! Reconnection pacing for a console that may fail to open, or open and close at once.
//!
//! Invariant: a console is never reopened faster than the backoff allows unless it stayed up
//! for the `stable` time. Resetting on every successful open would not do: a command that exits
//! at once (`ipmitool sol activate` with the BMC away) opens successfully every time, and would
//! be relaunched hundreds of times a second.

use std::time::Duration;

use tokio::time::Instant;

/// Exponential backoff, reset only by a connection that lasted.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    stable: Duration,
    next: Duration,
    up_since: Option<Instant>,
}

impl Backoff {
    /// Waits start at `min` and double up to `max`; a connection that stays up `stable` resets
    /// them.
    pub fn new(min: Duration, max: Duration, stable: Duration) -> Self {
        let max = max.max(min);
        Self {
            min,
            max,
            stable,
            next: min,
            up_since: None,
        }
    }

    /// The console opened at `now`.
    pub fn opened(&mut self, now: Instant) {
        self.up_since = Some(now);
    }

    /// The console closed at `now`; returns how long to wait before reopening it. One that
    /// stayed up at least `stable` is reopened at once and the waits start over; one that
    /// closed sooner waits like a failed attempt.
    pub fn closed(&mut self, now: Instant) -> Duration {
        let lasted = self
            .up_since
            .take()
            .is_some_and(|t| now.saturating_duration_since(t) >= self.stable);
        if lasted {
            self.next = self.min;
            Duration::ZERO
        } else {
            self.failed()
        }
    }

    /// An attempt to open failed; returns how long to wait before the next one.
    pub fn failed(&mut self) -> Duration {
        self.up_since = None;
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }

    /// Starts the waits over (the console is known to be back, e.g. a VM just started).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn standard() -> Backoff {
        Backoff::new(100 * MS, Duration::from_secs(5), Duration::from_secs(10))
    }

    #[test]
    fn failures_double_up_to_the_maximum() {
        let mut b = standard();
        let waits: Vec<u64> = (0..9)
            .map(|_| u64::try_from(b.failed().as_millis()).unwrap())
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    }

    #[test]
    fn a_console_that_closes_at_once_is_paced_like_a_failure() {
        let mut b = standard();
        let mut now = Instant::now();
        let mut opens = 0;
        let end = now + Duration::from_secs(60);
        while now < end {
            b.opened(now);
            opens += 1;
            now += b.closed(now);
        }
        // 100 ms doubling to 5 s: seven waits reach 6.3 s, then one open per 5 s.
        assert!(opens <= 20, "{opens} opens in a minute");
        assert!(opens >= 10, "{opens} opens in a minute");
    }

    #[test]
    fn a_console_that_lasted_is_reopened_at_once_and_resets_the_waits() {
        let mut b = standard();
        for _ in 0..5 {
            b.failed();
        }
        let t = Instant::now();
        b.opened(t);
        assert_eq!(b.closed(t + Duration::from_secs(10)), Duration::ZERO);
        assert_eq!(b.failed(), 100 * MS);
        // Up for less than the stable time: no reset.
        b.opened(t);
        assert_eq!(b.closed(t + Duration::from_secs(9)), 200 * MS);
    }

    #[test]
    fn reset_starts_over() {
        let mut b = standard();
        b.failed();
        b.failed();
        b.reset();
        assert_eq!(b.failed(), 100 * MS);
    }
}
