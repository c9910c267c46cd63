//! Latency samples and their percentiles.

use std::time::Duration;

/// A set of latency samples.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    sorted: bool,
    v: Vec<Duration>,
}

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            sorted: true,
            v: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, d: Duration) {
        self.sorted = false;
        self.v.push(d);
    }

    pub fn extend(&mut self, other: &Samples) {
        self.sorted = false;
        self.v.extend_from_slice(&other.v);
    }

    pub fn len(&self) -> usize {
        self.v.len()
    }

    pub fn total(&self) -> Duration {
        self.v.iter().sum()
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.v.sort_unstable();
            self.sorted = true;
        }
    }

    /// The `p`th percentile (nearest rank), in milliseconds; 0 when empty.
    pub fn pct_ms(&mut self, p: f64) -> f64 {
        self.sort();
        if self.v.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.v.len() as f64).ceil() as usize;
        let i = rank.clamp(1, self.v.len()) - 1;
        self.v.get(i).map_or(0.0, ms)
    }

    pub fn max_ms(&mut self) -> f64 {
        self.sort();
        self.v.last().map_or(0.0, ms)
    }

    pub fn mean_ms(&self) -> f64 {
        if self.v.is_empty() {
            return 0.0;
        }
        ms(&self.total()) / self.v.len() as f64
    }
}

pub fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints one row of the final summary table (the script collects the `SUMMARY ` lines).
pub fn summary_row(metric: &str, serialgate: &str, reference: &str, compare: &str, target: &str) {
    println!("SUMMARY {metric:<36} {serialgate:>14} {reference:>22} {compare:>14}  {target}");
}
