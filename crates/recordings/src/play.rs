//! Playing a recording back in real time (or faster): when each event is due.

use std::time::Duration;

/// Paces events by their recorded times, divided by `speed`, with pauses capped at
/// `idle_limit` (recorded seconds) when set: a console left alone for an hour plays back as a
/// short pause, not an hour.
#[derive(Debug, Clone)]
pub struct Pacer {
    speed: f64,
    idle_limit: Option<f64>,
    /// The recorded time of the previous event.
    last: f64,
}

impl Pacer {
    /// `speed` must be positive and finite (the CLI checks it); others are taken as 1.
    pub fn new(speed: f64, idle_limit: Option<f64>) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 {
            speed
        } else {
            1.0
        };
        Self {
            speed,
            idle_limit: idle_limit.filter(|l| l.is_finite() && *l >= 0.0),
            last: 0.0,
        }
    }

    /// How long to wait before showing an event recorded at `seconds`. Events out of order (a
    /// hand-edited file) are shown at once.
    pub fn wait_before(&mut self, seconds: f64) -> Duration {
        let mut gap = (seconds - self.last).max(0.0);
        self.last = self.last.max(seconds);
        if let Some(limit) = self.idle_limit {
            gap = gap.min(limit);
        }
        Duration::try_from_secs_f64(gap / self.speed).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_follow_the_recording_scaled_and_capped() {
        let mut p = Pacer::new(2.0, Some(1.0));
        assert_eq!(p.wait_before(0.5), Duration::from_millis(250));
        assert_eq!(p.wait_before(1.0), Duration::from_millis(250));
        // An hour of quiet is capped at one recorded second.
        assert_eq!(p.wait_before(3601.0), Duration::from_millis(500));
        // Out of order: at once, and the clock does not go back.
        assert_eq!(p.wait_before(10.0), Duration::ZERO);
        assert_eq!(p.wait_before(3601.5), Duration::from_millis(250));
        let mut plain = Pacer::new(f64::NAN, None);
        assert_eq!(plain.wait_before(7.0), Duration::from_secs(7));
    }
}
