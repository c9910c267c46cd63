//! A cap on unauthenticated connections per source address, enforced in the accept loop.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts unauthenticated connections per IP.
#[derive(Debug, Default)]
pub struct UnauthLimiter {
    max: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One unauthenticated connection; dropping it (on authentication or disconnect) frees the place.
#[derive(Debug)]
pub struct UnauthGuard {
    limiter: Arc<UnauthLimiter>,
    ip: IpAddr,
}

impl UnauthLimiter {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A place for `ip`, or `None` when it already has `max` connections waiting.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<UnauthGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(UnauthGuard {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// Current count for `ip` (tests, metrics).
    pub fn count(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(&ip).copied().unwrap_or(0)
    }
}

impl Drop for UnauthGuard {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_frees_on_drop() {
        let l = UnauthLimiter::new(2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let g1 = l.try_acquire(a).unwrap();
        let _g2 = l.try_acquire(a).unwrap();
        assert!(l.try_acquire(a).is_none());
        assert!(l.try_acquire(b).is_some());
        drop(g1);
        assert_eq!(l.count(a), 1);
        assert!(l.try_acquire(a).is_some());
    }
}
