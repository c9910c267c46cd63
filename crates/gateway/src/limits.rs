//! Connection caps, enforced in the accept loop before a connection costs anything more than
//! its socket: a global cap on open connections, a per-address cap on all connections, and a
//! per-address cap on connections that have not authenticated yet.
//!
//! A connection holds a [`ConnGuard`] for its whole life and an [`UnauthGuard`] until it
//! authenticates; dropping either frees its place. All three counts change under one lock, so a
//! refused connection never holds a place, even briefly.
//!
//! "One source address" is an IPv4 address (IPv4-mapped IPv6 included) or an IPv6 /64: one host
//! is normally given a whole /64, so counting single IPv6 addresses would let it open as many
//! connections as it likes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// The caps, in connections. Zero is treated as one (a cap of zero would refuse everyone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Open connections in total.
    pub total: usize,
    /// Open connections from one source address, authenticated or not.
    pub per_ip: usize,
    /// Unauthenticated connections from one source address.
    pub unauth_per_ip: usize,
}

/// Which cap refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total,
    PerIp,
    UnauthPerIp,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "max_connections",
            Refusal::PerIp => "max_connections_per_ip",
            Refusal::UnauthPerIp => "max_unauthenticated_per_ip",
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct PerIp {
    all: usize,
    unauth: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, PerIp>,
}

/// Counts open connections against [`Caps`].
#[derive(Debug)]
pub struct Limiter {
    caps: Caps,
    counts: Mutex<Counts>,
}

/// One open connection; dropping it frees its place in the global and per-address counts.
#[derive(Debug)]
pub struct ConnGuard {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

/// One unauthenticated connection; dropping it (on authentication or disconnect) frees the
/// place.
#[derive(Debug)]
pub struct UnauthGuard {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Limiter {
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            caps: Caps {
                total: caps.total.max(1),
                per_ip: caps.per_ip.max(1),
                unauth_per_ip: caps.unauth_per_ip.max(1),
            },
            counts: Mutex::new(Counts::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent whatever panicked while holding the lock: every update is
        // a single increment or decrement.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Places for a new connection from `ip`, or the cap that is full.
    pub fn try_admit(self: &Arc<Self>, ip: IpAddr) -> Result<(ConnGuard, UnauthGuard), Refusal> {
        let ip = source(ip);
        let mut counts = self.lock();
        if counts.total >= self.caps.total {
            return Err(Refusal::Total);
        }
        let entry = counts.per_ip.get(&ip).copied().unwrap_or_default();
        if entry.all >= self.caps.per_ip {
            return Err(Refusal::PerIp);
        }
        if entry.unauth >= self.caps.unauth_per_ip {
            return Err(Refusal::UnauthPerIp);
        }
        counts.total += 1;
        counts.per_ip.insert(
            ip,
            PerIp {
                all: entry.all + 1,
                unauth: entry.unauth + 1,
            },
        );
        drop(counts);
        let conn = ConnGuard {
            limiter: Arc::clone(self),
            ip,
        };
        let unauth = UnauthGuard {
            limiter: Arc::clone(self),
            ip,
        };
        Ok((conn, unauth))
    }

    /// Open connections in total (tests, metrics).
    pub fn total(&self) -> usize {
        self.lock().total
    }

    /// Open and unauthenticated connections from `ip`'s source (tests, metrics).
    pub fn count(&self, ip: IpAddr) -> (usize, usize) {
        let ip = source(ip);
        let counts = self.lock();
        counts.per_ip.get(&ip).map_or((0, 0), |e| (e.all, e.unauth))
    }

    fn release(&self, ip: IpAddr, whole_connection: bool) {
        let mut counts = self.lock();
        if whole_connection {
            counts.total = counts.total.saturating_sub(1);
        }
        if let Some(e) = counts.per_ip.get_mut(&ip) {
            if whole_connection {
                e.all = e.all.saturating_sub(1);
            } else {
                e.unauth = e.unauth.saturating_sub(1);
            }
            if e.all == 0 && e.unauth == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

/// The source a connection is counted against: the IPv4 address, or the IPv6 /64.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.limiter.release(self.ip, true);
    }
}

impl Drop for UnauthGuard {
    fn drop(&mut self) {
        self.limiter.release(self.ip, false);
    }
}

/// Reports refused connections without letting an attacker flood the log: each refusal is
/// logged at debug, and at most one warning per [`RefusalLog::INTERVAL`] sums up the refusals
/// since the last one.
#[derive(Debug, Default)]
pub struct RefusalLog {
    last_warning: Option<Instant>,
    unreported: u64,
}

impl RefusalLog {
    pub const INTERVAL: Duration = Duration::from_secs(10);

    /// Records a refusal at `now`; returns how many refusals the warning due now should report
    /// (this one included), or `None` while warnings are held back.
    pub fn refused(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        let due = self
            .last_warning
            .is_none_or(|t| now.saturating_duration_since(t) >= Self::INTERVAL);
        if !due {
            return None;
        }
        self.last_warning = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn caps(total: usize, per_ip: usize, unauth_per_ip: usize) -> Caps {
        Caps {
            total,
            per_ip,
            unauth_per_ip,
        }
    }

    #[test]
    fn unauthenticated_cap_per_ip_frees_on_drop() {
        let l = Limiter::new(caps(100, 100, 2));
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let (_c1, u1) = l.try_admit(a).unwrap();
        let (_c2, _u2) = l.try_admit(a).unwrap();
        assert_eq!(l.try_admit(a).unwrap_err(), Refusal::UnauthPerIp);
        assert!(l.try_admit(b).is_ok());
        // Authenticating (dropping the unauthenticated guard) frees that place only.
        drop(u1);
        assert_eq!(l.count(a), (2, 1));
        assert!(l.try_admit(a).is_ok());
    }

    #[test]
    fn per_ip_cap_counts_authenticated_connections_too() {
        let l = Limiter::new(caps(100, 2, 100));
        let a = ip("10.0.0.1");
        let (c1, u1) = l.try_admit(a).unwrap();
        let (_c2, u2) = l.try_admit(a).unwrap();
        drop((u1, u2));
        assert_eq!(l.try_admit(a).unwrap_err(), Refusal::PerIp);
        assert!(l.try_admit(ip("10.0.0.2")).is_ok());
        drop(c1);
        assert!(l.try_admit(a).is_ok());
    }

    #[test]
    fn global_cap_spans_addresses_and_refusals_hold_nothing() {
        let l = Limiter::new(caps(2, 100, 100));
        let g1 = l.try_admit(ip("10.0.0.1")).unwrap();
        let _g2 = l.try_admit(ip("10.0.0.2")).unwrap();
        for _ in 0..5 {
            assert_eq!(l.try_admit(ip("10.0.0.3")).unwrap_err(), Refusal::Total);
        }
        assert_eq!(l.total(), 2);
        assert_eq!(l.count(ip("10.0.0.3")), (0, 0));
        drop(g1);
        assert_eq!(l.total(), 1);
        assert!(l.try_admit(ip("10.0.0.3")).is_ok());
    }

    #[test]
    fn the_map_forgets_addresses_with_nothing_open() {
        let l = Limiter::new(caps(10, 10, 10));
        let a = ip("10.0.0.1");
        let guards = l.try_admit(a).unwrap();
        drop(guards);
        assert!(l.lock().per_ip.is_empty());
        assert_eq!(l.total(), 0);
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_source() {
        let l = Limiter::new(caps(100, 2, 100));
        let _a = l.try_admit(ip("2001:db8:1:2::1")).unwrap();
        let _b = l.try_admit(ip("2001:db8:1:2:ffff::9")).unwrap();
        assert_eq!(
            l.try_admit(ip("2001:db8:1:2:1234:5678:9abc:def0"))
                .unwrap_err(),
            Refusal::PerIp
        );
        assert!(l.try_admit(ip("2001:db8:1:3::1")).is_ok());
        // An IPv4-mapped address is its IPv4 address.
        let _c = l.try_admit(ip("10.0.0.1")).unwrap();
        let _d = l.try_admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(l.try_admit(ip("10.0.0.1")).unwrap_err(), Refusal::PerIp);
    }

    #[test]
    fn zero_caps_admit_one() {
        let l = Limiter::new(caps(0, 0, 0));
        let _g = l.try_admit(ip("10.0.0.1")).unwrap();
        assert!(l.try_admit(ip("10.0.0.1")).is_err());
    }

    #[test]
    fn refusal_warnings_are_rate_limited() {
        let mut log = RefusalLog::default();
        let t0 = Instant::now();
        assert_eq!(log.refused(t0), Some(1));
        for i in 1..1000u64 {
            assert_eq!(log.refused(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(log.refused(t0 + RefusalLog::INTERVAL), Some(1000));
        assert_eq!(log.refused(t0 + RefusalLog::INTERVAL), None);
    }
}
