//! SSH usernames: `<instance-id>.port<N>`, as AWS's serial console endpoint expects, with two
//! optional suffixes of serialgate's own, in this order: `.spectate` watches the port read-only
//! with a spectator's grant (`SpectateSerialConsole`), and `.replay-lines=<L>` asks for the
//! last `L` lines of the console's history before live output, as Google Cloud's serial
//! console has.
//!
//! The username arrives before authentication, so parsing is bounded: anything longer than
//! [`MAX_LEN`] is refused unread, and only the canonical spelling of a number is accepted
//! (`port0`, never `port00`; `replay-lines=5`, never `05`), so one slot has one name. The
//! suffix never changes which slot or grant a session uses: that is the instance and port.

use console::{InstanceId, SerialPort};

/// The longest username accepted, bytes. `i-` and 17 hex digits plus `.port0` is 25,
/// `.spectate` adds 9 and `.replay-lines=10000` 19.
pub const MAX_LEN: usize = 64;

/// The most lines a username may ask to replay.
pub const MAX_REPLAY_LINES: u32 = backends::MAX_REPLAY_LINES;

const REPLAY: &str = ".replay-lines=";
const SPECTATE: &str = ".spectate";

/// What a username asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub instance: InstanceId,
    pub port: SerialPort,
    /// Lines of history asked for before live output; `None` when the username does not say
    /// (the server's default applies).
    pub replay_lines: Option<u32>,
    /// A spectator: read-only, with a spectator's grant, beside the session holding the port.
    pub spectate: bool,
}

/// Parses the username; `None` for anything else (answered like a wrong key).
pub fn parse(user: &str) -> Option<Target> {
    if user.len() > MAX_LEN {
        return None;
    }
    let (slot, replay_lines) = match user.split_once(REPLAY) {
        Some((slot, lines)) => {
            let lines = parse_number(lines, 5)?;
            if lines > MAX_REPLAY_LINES {
                return None;
            }
            (slot, Some(lines))
        }
        None => (user, None),
    };
    let (slot, spectate) = match slot.strip_suffix(SPECTATE) {
        Some(slot) => (slot, true),
        None => (slot, false),
    };
    let (id, port) = slot.rsplit_once(".port")?;
    let port = parse_number(port, 3)?;
    Some(Target {
        instance: InstanceId::parse(id).ok()?,
        port: SerialPort::new(port),
        replay_lines,
        spectate,
    })
}

/// A decimal number in canonical form: one to `max_digits` ASCII digits, no leading zero
/// (except `0` itself), no sign, no spaces.
fn parse_number(digits: &str, max_digits: usize) -> Option<u32> {
    let bytes = digits.as_bytes();
    let canonical = matches!(bytes, [b'0'] | [b'1'..=b'9', ..])
        && bytes.len() <= max_digits
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

    fn slot(user: &str) -> Option<(String, u32)> {
        parse(user).map(|t| (t.instance.as_str().to_owned(), t.port.get()))
    }

    #[test]
    fn usernames() {
        let t = parse("i-0123456789abcdef0.port0").unwrap();
        assert_eq!(t.instance.as_str(), "i-0123456789abcdef0");
        assert_eq!(t.port.get(), 0);
        assert_eq!(t.replay_lines, None);
        assert_eq!(parse("i-0123456789abcdef0.port1").unwrap().port.get(), 1);
        assert_eq!(parse("i-0123456789abcdef0.port10").unwrap().port.get(), 10);
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
    fn replay_suffix() {
        let t = parse("i-0123456789abcdef0.port0.replay-lines=50").unwrap();
        assert_eq!(t.replay_lines, Some(50));
        // The suffix does not change the slot: the same instance and port as without it.
        assert_eq!(
            slot("i-0123456789abcdef0.port0.replay-lines=5"),
            slot("i-0123456789abcdef0.port0")
        );
        assert_eq!(
            parse("i-0123456789abcdef0.port1.replay-lines=10000")
                .unwrap()
                .replay_lines,
            Some(MAX_REPLAY_LINES)
        );
        // 0 asks for none, overriding a server default.
        assert_eq!(
            parse("i-0123456789abcdef0.port0.replay-lines=0")
                .unwrap()
                .replay_lines,
            Some(0)
        );
    }

    #[test]
    fn any_other_suffix_is_refused() {
        for bad in [
            "i-0123456789abcdef0.port0.replay-lines=",
            "i-0123456789abcdef0.port0.replay-lines=10001",
            "i-0123456789abcdef0.port0.replay-lines=99999",
            "i-0123456789abcdef0.port0.replay-lines=100000",
            "i-0123456789abcdef0.port0.replay-lines=05",
            "i-0123456789abcdef0.port0.replay-lines=-1",
            "i-0123456789abcdef0.port0.replay-lines=+5",
            "i-0123456789abcdef0.port0.replay-lines=5 ",
            "i-0123456789abcdef0.port0.replay-lines=5.replay-lines=5",
            "i-0123456789abcdef0.port0.replay-lines=5x",
            "i-0123456789abcdef0.port0.replay=5",
            "i-0123456789abcdef0.port0.replay-lines",
            "i-0123456789abcdef0.port0.other",
            "i-0123456789abcdef0.replay-lines=5.port0",
            "i-0123456789abcdef0.replay-lines=5",
            ".replay-lines=5",
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
        // The longest valid name fits.
        let longest = "i-0123456789abcdef0.port255.replay-lines=10000";
        assert!(longest.len() <= MAX_LEN);
        assert!(parse(longest).is_some());
    }

    #[test]
    fn spectators_say_so_before_the_replay() {
        let t = parse("i-0123456789abcdef0.port0.spectate").unwrap();
        assert!(t.spectate);
        assert_eq!((t.port.get(), t.replay_lines), (0, None));
        let t = parse("i-0123456789abcdef0.port0.spectate.replay-lines=20").unwrap();
        assert!(t.spectate);
        assert_eq!(t.replay_lines, Some(20));
        assert!(!parse("i-0123456789abcdef0.port0").unwrap().spectate);
        for bad in [
            "i-0123456789abcdef0.port0.replay-lines=20.spectate",
            "i-0123456789abcdef0.port0.spectate.spectate",
            "i-0123456789abcdef0.spectate",
            "i-0123456789abcdef0.port0.Spectate",
            "i-0123456789abcdef0.port0.spectator",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
