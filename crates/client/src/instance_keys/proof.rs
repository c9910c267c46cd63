//! `X-Serialgate-Proof`: `t=<unix seconds>,sig=<hex HMAC-SHA256(token, message)>`, which shows
//! the server that the caller holds the instance's key token without sending it.

use hmac::{KeyInit as _, Mac as _};

/// The domain separator that starts every proof message.
const CONTEXT: &str = "serialgate-instance-keys-v1";

/// The string the HMAC covers: the context, the instance id, the OS user and the time, each
/// followed by a newline except the last.
pub fn message(instance: &str, os_user: &str, unix_seconds: u64) -> String {
    format!("{CONTEXT}\n{instance}\n{os_user}\n{unix_seconds}")
}

/// The header value for `instance` fetching `os_user`'s keys at `unix_seconds`.
pub fn header(token: &[u8], instance: &str, os_user: &str, unix_seconds: u64) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let sig = match hmac::Hmac::<sha2::Sha256>::new_from_slice(token) {
        Ok(mut mac) => {
            mac.update(message(instance, os_user, unix_seconds).as_bytes());
            hex(&mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("t={unix_seconds},sig={sig}")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_the_documented_string() {
        assert_eq!(
            message("i-0123456789abcdef0", "ec2-user", 1_700_000_000),
            "serialgate-instance-keys-v1\ni-0123456789abcdef0\nec2-user\n1700000000"
        );
    }

    #[test]
    fn header_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"0123456789abcdef-token",
        //   b"serialgate-instance-keys-v1\ni-0123456789abcdef0\nec2-user\n1700000000",
        //   hashlib.sha256).hexdigest())'
        let want =
            "t=1700000000,sig=2df1122d47cd820556c311e8b91f09382d0040437ddc07bd0752a324e78db90a";
        assert_eq!(
            header(
                b"0123456789abcdef-token",
                "i-0123456789abcdef0",
                "ec2-user",
                1_700_000_000
            ),
            want
        );
    }

    #[test]
    fn every_input_changes_the_signature() {
        let sig = |h: String| h.split_once(",sig=").map(|(_, s)| s.to_owned());
        let base = sig(header(
            b"token-token-token",
            "i-0123456789abcdef0",
            "root",
            10,
        ));
        assert_eq!(base.as_ref().map(String::len), Some(64));
        for other in [
            header(b"token-token-tokeN", "i-0123456789abcdef0", "root", 10),
            header(b"token-token-token", "i-0123456789abcdef1", "root", 10),
            header(b"token-token-token", "i-0123456789abcdef0", "rooT", 10),
            header(b"token-token-token", "i-0123456789abcdef0", "root", 11),
        ] {
            assert_ne!(base, sig(other));
        }
    }
}
