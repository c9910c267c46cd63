//! Validated identifiers, with the exact rules of the EC2 Instance Connect service model.
//!
//! Each type can only be built through its parser, so a value in hand has passed the model's
//! length and pattern checks. Parse errors are a short reason naming the parameter and the rule,
//! meant to follow AWS's "One of the parameters is not valid." message.

use std::fmt;
use std::sync::LazyLock;

/// `i-` followed by lowercase hex, 10–32 characters in all (model shape `InstanceId`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(String);

impl InstanceId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if !(10..=32).contains(&s.len()) {
            return Err(format!(
                "InstanceId must be 10 to 32 characters long, got {}",
                s.len()
            ));
        }
        let valid = s.strip_prefix("i-").is_some_and(|hex| {
            !hex.is_empty() && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if !valid {
            return Err("InstanceId must match ^i-[a-f0-9]+$".to_owned());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!("account id must be exactly 12 digits, got {s:?}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A serial port number. The model allows only 0 on the API; the SSH username may name any
/// number, which then simply never matches a grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SerialPort(u32);

impl SerialPort {
    /// The only port the service model accepts.
    pub const ZERO: SerialPort = SerialPort(0);

    /// Validates a port number as the API receives it (model shape `SerialPort`: min 0, max 0).
    pub fn from_api(n: i64) -> Result<Self, String> {
        if n == 0 {
            Ok(Self(0))
        } else {
            Err(format!(
                "SerialPort must be 0 (only port 0 is supported), got {n}"
            ))
        }
    }

    /// Any port number, as named in an SSH username.
    pub fn new(n: u32) -> Self {
        Self(n)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for SerialPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An OS user name for `SendSSHPublicKey` (model shape `InstanceOSUser`, 1–32 characters).
///
/// The model's pattern uses a look-ahead, which `regex-lite` does not support, so its two
/// alternatives are checked by hand:
/// 1. `[A-Za-z_][A-Za-z0-9@._-]{0,30}[A-Za-z0-9$_-]?`
/// 2. `(?=.{2,32}$)[0-9]{1,32}[A-Za-z@._-][A-Za-z0-9@._-]*[A-Za-z0-9$_-]?`
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OsUser(String);

fn is_middle(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'@' | b'.' | b'_' | b'-')
}

fn is_last(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'$' | b'_' | b'-')
}

fn os_user_first_form(s: &[u8]) -> bool {
    let Some((&first, rest)) = s.split_first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'_') || s.len() > 32 {
        return false;
    }
    match rest.split_last() {
        None => true,
        // With 30 middle characters the optional last one is the only way to reach 32.
        Some((&last, middle)) => {
            middle.iter().all(|&b| is_middle(b))
                && (is_last(last) || (s.len() < 32 && is_middle(last)))
        }
    }
}

fn os_user_second_form(s: &[u8]) -> bool {
    if !(2..=32).contains(&s.len()) {
        return false;
    }
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let Some(&sep) = s.get(digits) else {
        return false;
    };
    if digits == 0 || !(sep.is_ascii_alphabetic() || matches!(sep, b'@' | b'.' | b'_' | b'-')) {
        return false;
    }
    let rest = &s[digits + 1..];
    match rest.split_last() {
        None => true,
        Some((&last, middle)) => {
            middle.iter().all(|&b| is_middle(b)) && (is_middle(last) || is_last(last))
        }
    }
}

impl OsUser {
    pub fn parse(s: &str) -> Result<Self, String> {
        if !(1..=32).contains(&s.len()) {
            return Err(format!(
                "InstanceOSUser must be 1 to 32 characters long, got {}",
                s.len()
            ));
        }
        let b = s.as_bytes();
        if os_user_first_form(b) || os_user_second_form(b) {
            Ok(Self(s.to_owned()))
        } else {
            Err("InstanceOSUser must be a valid Linux user name (letters, digits, '@', '.', '_', '-', optionally ending in '$'; not starting with '-')".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OsUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An Availability Zone name (model shape `AvailabilityZone`: 6–32 chars, `^(\w+-){2,3}\d+\w+$`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AvailabilityZone(String);

static AZ_PATTERN: LazyLock<Option<regex_lite::Regex>> =
    LazyLock::new(|| regex_lite::Regex::new(r"^(\w+-){2,3}\d+\w+$").ok());

impl AvailabilityZone {
    pub fn parse(s: &str) -> Result<Self, String> {
        if !(6..=32).contains(&s.len()) {
            return Err(format!(
                "AvailabilityZone must be 6 to 32 characters long, got {}",
                s.len()
            ));
        }
        match AZ_PATTERN.as_ref() {
            Some(re) if re.is_match(s) => Ok(Self(s.to_owned())),
            _ => Err(format!(
                "AvailabilityZone must match ^(\\w+-){{2,3}}\\d+\\w+$ (for example us-east-1a), got {s:?}"
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AvailabilityZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_id_rules() {
        assert!(InstanceId::parse("i-0123456789abcdef0").is_ok());
        assert!(InstanceId::parse("i-12345678").is_ok()); // exactly 10
        assert!(InstanceId::parse("i-1234567").is_err()); // 9
        assert!(InstanceId::parse(&format!("i-{}", "a".repeat(30))).is_ok()); // 32
        assert!(InstanceId::parse(&format!("i-{}", "a".repeat(31))).is_err()); // 33
        assert!(InstanceId::parse("i-0123456789ABCDEF0").is_err());
        assert!(InstanceId::parse("x-0123456789abcdef0").is_err());
        assert!(InstanceId::parse("i-0123456789abcdefg").is_err());
    }

    #[test]
    fn serial_port_only_zero() {
        assert!(SerialPort::from_api(0).is_ok());
        assert!(SerialPort::from_api(1).is_err());
        assert!(SerialPort::from_api(-1).is_err());
    }

    #[test]
    fn os_user_rules() {
        for ok in [
            "ec2-user",
            "ubuntu",
            "root",
            "a",
            "_x",
            "user$",
            "a.b@c",
            "1user",
            "123-x",
            "9a$",
            "abcdefghijklmnopqrstuvwxyz012345",
        ] {
            assert!(OsUser::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "",
            "-user",
            "1",
            "12",
            "user name",
            "us/er",
            "a$b",
            "@user",
            ".x",
            "abcdefghijklmnopqrstuvwxyz0123456",
            "abcdefghijklmnopqrstuvwxyz01234.",
        ] {
            assert!(OsUser::parse(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn availability_zone_rules() {
        for ok in [
            "us-east-1a",
            "us-east-2b",
            "eu-central-1c",
            "us-gov-west-1a",
            "ap-northeast-1d",
        ] {
            assert!(AvailabilityZone::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["use1a", "us-east", "us-east-a", "us_east_1a!", "x"] {
            assert!(AvailabilityZone::parse(bad).is_err(), "{bad}");
        }
    }
}
