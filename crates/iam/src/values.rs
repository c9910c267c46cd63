//! The typed values of the numeric, date, `Bool` and IP address operators, parsed from policy
//! text once at load and from request values at each comparison (an unparseable request value
//! matches nothing).

use std::net::IpAddr;

use crate::date::{self, Timestamp};

/// A number: an optional sign, digits, an optional fraction and exponent. `inf` and `NaN`, which
/// Rust's float parser also accepts, are not numbers in a policy.
pub(crate) fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    let plausible = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
    if !plausible {
        return None;
    }
    s.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `true` or `false`, in any case.
pub(crate) fn boolean(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// An ISO 8601 date or date-time, or epoch seconds.
pub(crate) fn date(s: &str) -> Option<Timestamp> {
    date::parse(s.trim())
}

/// An IP address from a request. An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4
/// address, as a dual-stack listener reports IPv4 clients that way.
pub(crate) fn ip(s: &str) -> Option<IpAddr> {
    let addr: IpAddr = s.trim().parse().ok()?;
    Some(match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    })
}

/// An address block: `203.0.113.0/24`, `2001:db8::/32`, or one address (a /32 or /128).
/// Host bits set in the address are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: u128,
    mask: u128,
    v4: bool,
}

impl Cidr {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let (bits, v4, width) = match addr {
            IpAddr::V4(a) => (u128::from(u32::from(a)), true, 32u32),
            IpAddr::V6(a) => (u128::from(a), false, 128u32),
        };
        let prefix = match prefix {
            None => width,
            // Digits only: `u32::from_str` would also take a leading `+`.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u32>().ok().filter(|p| *p <= width)?
            }
            Some(_) => return None,
        };
        let host_bits = width - prefix;
        let mask = if prefix == 0 {
            0
        } else {
            (u128::MAX >> (128 - width)) & !((1u128 << host_bits) - 1)
        };
        Some(Self {
            network: bits & mask,
            mask,
            v4,
        })
    }

    pub(crate) fn contains(&self, addr: IpAddr) -> bool {
        let bits = match (addr, self.v4) {
            (IpAddr::V4(a), true) => u128::from(u32::from(a)),
            (IpAddr::V6(a), false) => u128::from(a),
            _ => return false,
        };
        bits & self.mask == self.network
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("10"), Some(10.0));
        assert_eq!(number(" -1.5e2 "), Some(-150.0));
        assert_eq!(number("+3"), Some(3.0));
        for bad in [
            "", "inf", "NaN", "infinity", "1e999", "0x10", "1,5", "e", "-",
        ] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans() {
        assert_eq!(boolean("TRUE"), Some(true));
        assert_eq!(boolean("false"), Some(false));
        assert_eq!(boolean("1"), None);
        assert_eq!(boolean("yes"), None);
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("203.0.113.77/24").unwrap();
        assert!(net.contains(ip("203.0.113.1").unwrap()));
        assert!(!net.contains(ip("203.0.114.1").unwrap()));
        assert!(net.contains(ip("::ffff:203.0.113.9").unwrap()));
        let one = Cidr::parse("192.0.2.1").unwrap();
        assert!(one.contains(ip("192.0.2.1").unwrap()));
        assert!(!one.contains(ip("192.0.2.2").unwrap()));
        let all = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all.contains(ip("8.8.8.8").unwrap()));
        assert!(
            !all.contains(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            "an IPv4 block holds no IPv6 address"
        );
        let v6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains(ip("2001:db8:1234:5678:ffff::1").unwrap()));
        assert!(!v6.contains(ip("2001:db8:1234:5679::1").unwrap()));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("::1").unwrap()));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0/8",
            "::/129",
            "x",
        ] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
