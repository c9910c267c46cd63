//! SSH usernames: `<instance-id>.port<N>`, as AWS's serial console endpoint expects.

use console::{InstanceId, SerialPort};

/// Parses the username; `None` for anything else (answered like a wrong key).
pub fn parse(user: &str) -> Option<(InstanceId, SerialPort)> {
    let (id, port) = user.rsplit_once(".port")?;
    if port.is_empty() || port.len() > 3 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u32 = port.parse().ok()?;
    Some((InstanceId::parse(id).ok()?, SerialPort::new(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        let (id, port) = parse("i-0123456789abcdef0.port0").unwrap();
        assert_eq!(id.as_str(), "i-0123456789abcdef0");
        assert_eq!(port.get(), 0);
        assert_eq!(parse("i-0123456789abcdef0.port1").unwrap().1.get(), 1);
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
}
