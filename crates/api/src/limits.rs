//! What one client may hold of the API listener: connection caps (global and per source address),
//! the per-connection timeouts and the request-head size limits, with their defaults.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The listener's limits. `serve` derives `max_connections` from the open-file limit; the other
/// defaults are fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiLimits {
    /// Open connections at once, all clients together. Default 1024.
    pub max_connections: usize,
    /// Open connections at once from one source address (IPv6: one /64). Default 128.
    pub max_connections_per_ip: usize,
    /// A request head (request line and headers; on a new TLS connection, the handshake too)
    /// must arrive within this, counted from the connection's accept or the request's first
    /// byte. Default 10 s.
    pub header_read_timeout: Duration,
    /// A keep-alive connection with no request in progress is closed after this. Default 30 s.
    pub idle_timeout: Duration,
    /// A whole request (head, body and handling) must be answered within this, counted like
    /// `header_read_timeout`; past it the client gets a timeout error. Default 30 s.
    pub request_timeout: Duration,
    /// Largest request head, bytes (request line and headers); more is refused with 431.
    /// Default 16384.
    pub max_header_bytes: usize,
    /// Most header fields in one request; more is refused with 431. Default 64.
    pub max_headers: usize,
}

impl ApiLimits {
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
    pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 128;
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;
    pub const DEFAULT_MAX_HEADERS: usize = 64;
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: Self::DEFAULT_MAX_CONNECTIONS_PER_IP,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            request_timeout: Self::DEFAULT_REQUEST_TIMEOUT,
            max_header_bytes: Self::DEFAULT_MAX_HEADER_BYTES,
            max_headers: Self::DEFAULT_MAX_HEADERS,
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` are open.
    Global,
    /// `max_connections_per_ip` are open from this address.
    PerIp,
}

/// Counts open connections, in total and per source address.
#[derive(Debug)]
pub(crate) struct ConnLimiter {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// One open connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl ConnLimiter {
    pub(crate) fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_ip,
            counts: Mutex::new(Counts::default()),
        })
    }

    /// A place for a connection from `ip`, or why there is none.
    pub(crate) fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, Refusal> {
        let ip = source(ip);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= self.max_total {
            return Err(Refusal::Global);
        }
        let n = counts.per_ip.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        counts.total += 1;
        Ok(ConnGuard {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// Open connections, in total and from `ip`.
    #[cfg(test)]
    fn count(&self, ip: IpAddr) -> (usize, usize) {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        (
            counts.total,
            counts.per_ip.get(&source(ip)).copied().unwrap_or(0),
        )
    }
}

/// What the per-address cap counts: an IPv4 address as itself (also when it reaches a dual-stack
/// socket as an IPv4-mapped IPv6 address), an IPv6 address by its /64, the usual assignment to
/// one site, so a client cannot escape the cap by cycling through its own addresses.
fn source(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !(u128::MAX >> 64))),
        v4 => v4,
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut counts = self
            .limiter
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_ip_and_in_total_and_frees_on_drop() {
        let l = ConnLimiter::new(3, 2);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let c: IpAddr = "10.0.0.3".parse().unwrap();
        let a1 = l.try_acquire(a).unwrap();
        let _a2 = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), Refusal::PerIp);
        let _b1 = l.try_acquire(b).unwrap();
        assert_eq!(l.try_acquire(c).unwrap_err(), Refusal::Global);
        assert_eq!(l.count(a), (3, 2));
        drop(a1);
        assert_eq!(l.count(a), (2, 1));
        let _c1 = l.try_acquire(c).unwrap();
        assert_eq!(l.try_acquire(a).unwrap_err(), Refusal::Global);
    }

    #[test]
    fn ipv6_counts_per_64() {
        let l = ConnLimiter::new(10, 1);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _g = l.try_acquire(a).unwrap();
        assert_eq!(l.try_acquire(same_64).unwrap_err(), Refusal::PerIp);
        assert!(l.try_acquire(other_64).is_ok());
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let l = ConnLimiter::new(10, 1);
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _g = l.try_acquire(v4).unwrap();
        assert_eq!(l.try_acquire(mapped).unwrap_err(), Refusal::PerIp);
    }
}
