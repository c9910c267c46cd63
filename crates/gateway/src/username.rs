//! SSH usernames: `<instance-id>.port<N>`, as AWS's serial console endpoint expects.
//!
//! The username arrives before authentication, so parsing is bounded: anything longer than
//! [`MAX_LEN`] is refused unread, and only the canonical spelling of a port number is accepted
//! (`port0`, never `port00`), so one slot has one name.

use console::{InstanceId, SerialPort};

/// The longest username accepted, bytes. `i-` and 17 hex digits plus `.port0` is 25.
pub const MAX_LEN: usize = 64;

/// Parses the username; `None` for anything else (answered like a wrong key).
pub fn parse(user: &str) -> Option<(InstanceId, SerialPort)> {
    if user.len() > MAX_LEN {
        return None;
    }
    let (id, port) = user.rsplit_once(".port")?;
    let port = parse_port(port)?;
    Some((InstanceId::parse(id).ok()?, SerialPort::new(port)))
}

/// A decimal port number in canonical form: one to three ASCII digits, no leading zero
/// (except `0` itself), no sign, no spaces.
fn parse_port(digits: &str) -> Option<u32> {
    let bytes = digits.as_bytes();
    let canonical = matches!(bytes, [b'0'] | [b'1'..=b'9', ..])
        && bytes.len() <= 3
        && bytes.iter().all(u8::is_ascii_digit);
    if !canonical {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let (id, port) = parse("i-0123456789abcdef0.port0").unwrap();
        assert_eq!(id.as_str(), "i-0123456789abcdef0");
        assert_eq!(port.get(), 0);
        assert_eq!(parse("i-0123456789abcdef0.port1").unwrap().1.get(), 1);
        assert_eq!(parse("i-0123456789abcdef0.port10").unwrap().1.get(), 10);
        for bad in [
            "i-0123456789abcdef0",
            "i-0123456789abcdef0.port",
            "i-0123456789abcdef0.portx",
            "root",
            "i-XYZ.port0",
            "i-0123456789abcdef0.port-1",
            "i-0123456789abcdef0.port99999",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn port_numbers_are_canonical() {
        for bad in [
            "i-0123456789abcdef0.port00",
            "i-0123456789abcdef0.port000",
            "i-0123456789abcdef0.port01",
            "i-0123456789abcdef0.port+0",
            "i-0123456789abcdef0.port 0",
            "i-0123456789abcdef0.port0 ",
            "i-0123456789abcdef0.port\u{0660}",
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn long_usernames_are_refused_unread() {
        // A valid name padded past the cap: refused on its length alone.
        let padded = format!("{}i-0123456789abcdef0.port0", " ".repeat(MAX_LEN));
        assert!(parse(&padded).is_none());
        let long = format!("i-{}.port0", "0".repeat(MAX_LEN));
        assert!(parse(&long).is_none());
        // At the cap the usual rules decide.
        let at_cap = format!("{}.port0", "x".repeat(MAX_LEN - 6));
        assert_eq!(at_cap.len(), MAX_LEN);
        assert!(parse(&at_cap).is_none());
    }
}
