//! `serialgate authorized-keys USER [FINGERPRINT]`: sshd's `AuthorizedKeysCommand` on an
//! instance. Fetches the keys pushed for USER with `SendSSHPublicKey`, proving the instance's
//! identity with its key token, and prints the ones whose records verify.
//!
//! Invariants: nothing unverified is ever printed; every failure (configuration, network,
//! answer) prints nothing and exits 255, as AWS's `eic_parse_authorized_keys`; one fetch, bounded
//! in time and size; only what the fetch needs is set up (a current-thread runtime, no logging
//! framework), as sshd runs this on every public key login.

pub mod config;
pub mod fetch;
pub mod syslog;

use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use ssh_key::{HashAlg, PublicKey};

use crate::args::AuthorizedKeysArgs;
use config::HelperConfig;
use syslog::{Log, Severity};

/// At least one key printed.
pub const KEYS: i32 = 0;
/// No key printed, whatever the reason (sshd only tells zero from non-zero).
pub const NO_KEYS: i32 = 255;
/// The answer's body is read up to this size; a larger one is refused whole.
const MAX_BODY: usize = 64 * 1024;
/// Records checked per answer at most (the server sends one per user today): each costs a
/// signature check, and a login must not wait on a flood of them.
const MAX_RECORDS: usize = 16;

/// Runs the command; returns the exit code.
pub fn run(args: &AuthorizedKeysArgs) -> i32 {
    let log = Log::system();
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            log.line(Severity::Error, &e);
            return NO_KEYS;
        }
    };
    for warning in &config.warnings {
        log.line(Severity::Warning, warning);
    }
    // sshd only asks about accounts that exist, whose names never need escaping; anything
    // else cannot have keys and must not reach the URL.
    if !plausible_user(&args.user) {
        return NO_KEYS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log.line(Severity::Error, &format!("cannot start: {e}"));
            return NO_KEYS;
        }
    };
    let now = unix_now();
    let fetched = runtime.block_on(async {
        tokio::time::timeout(config.timeout, fetch_keys(&config, &args.user, now)).await
    });
    let body = match fetched {
        Ok(Ok(Some(body))) => body,
        Ok(Ok(None)) => return NO_KEYS,
        Ok(Err(e)) => {
            log.line(
                Severity::Error,
                &format!("fetching keys for {}: {e}", args.user),
            );
            return NO_KEYS;
        }
        Err(_) => {
            log.line(
                Severity::Error,
                &format!(
                    "fetching keys for {}: no answer from {} within {} ms",
                    args.user,
                    config.endpoint.host,
                    config.timeout.as_millis()
                ),
            );
            return NO_KEYS;
        }
    };
    let expected = Expected {
        signer: &config.signer,
        instance: &config.instance_id,
        now: unix_now(),
        fingerprint: args.fingerprint.as_deref(),
    };
    let (keys, lines) = select(&body, &expected, &args.user);
    let mut out = String::new();
    for key in &keys {
        match key.key.to_openssh() {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(e) => {
                log.line(
                    Severity::Error,
                    &format!("cannot encode a verified key: {e}"),
                );
                return NO_KEYS;
            }
        }
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
    {
        log.line(
            Severity::Error,
            &format!("cannot write the keys for sshd: {e}"),
        );
        return NO_KEYS;
    }
    for (severity, line) in &lines {
        log.line(*severity, line);
    }
    if keys.is_empty() { NO_KEYS } else { KEYS }
}

/// GETs the user's records: `Some(body)` on 200, `None` on 404 (no keys: the server's one
/// answer to every refusal), an error otherwise.
async fn fetch_keys(config: &HelperConfig, user: &str, now: u64) -> Result<Option<String>, String> {
    let tls = if config.endpoint.tls {
        Some(fetch::tls_config(config.ca_file.as_deref())?)
    } else {
        None
    };
    let proof = config
        .token
        .as_ref()
        .map(|t| instance_keys::format_proof(t.as_bytes(), &config.instance_id, user, now));
    let mut headers = vec![
        ("accept", "text/plain"),
        (
            "user-agent",
            concat!("serialgate-authorized-keys/", env!("CARGO_PKG_VERSION")),
        ),
    ];
    // A managed VM's endpoint knows the instance by the channel; it is asked no proof.
    if let Some(proof) = &proof {
        headers.push((instance_keys::INSTANCE_HEADER, config.instance_id.as_str()));
        headers.push((instance_keys::PROOF_HEADER, proof.as_str()));
    }
    let path = format!("{}{user}", instance_keys::PATH_PREFIX);
    let answer = fetch::get(&config.endpoint, tls, &path, &headers, MAX_BODY).await?;
    match answer.status {
        200 => String::from_utf8(answer.body.to_vec())
            .map(Some)
            .map_err(|_| "the answer is not UTF-8 text".to_owned()),
        404 => Ok(None),
        status => Err(format!("the API answered HTTP {status}")),
    }
}

/// What a record must satisfy to be believed.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The pinned signer (Ed25519).
    pub signer: &'a PublicKey,
    /// This instance's id.
    pub instance: &'a str,
    /// Now, Unix seconds: a record whose `#Timestamp` is not later has expired.
    pub now: u64,
    /// The SHA256 fingerprint sshd asks about (`%f`), when it gave one.
    pub fingerprint: Option<&'a str>,
}

/// A key whose record passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    pub key: PublicKey,
    /// `SHA256:…`, as sshd and ssh-keygen print it.
    pub fingerprint: String,
}

/// The keys of `body` that verify, and the log lines about them: one AWS-worded line per key,
/// one per record refused for a reason an operator should see. The signature is checked before
/// anything else in a record is read ([`instance_keys::SignedRecord::check`]).
pub fn select(
    body: &str,
    expected: &Expected<'_>,
    user: &str,
) -> (Vec<VerifiedKey>, Vec<(Severity, String)>) {
    let mut keys = Vec::new();
    let mut lines = Vec::new();
    for record in instance_keys::parse_records(body).iter().take(MAX_RECORDS) {
        let key = match record.check(expected.signer, expected.instance, expected.now) {
            Ok(key) => key,
            Err(rejected) => {
                let hint = if rejected == instance_keys::Rejected::Expired {
                    " (is this host's clock right?)"
                } else {
                    ""
                };
                lines.push((
                    Severity::Warning,
                    format!("Ignoring a key record for {user}: {rejected}{hint}"),
                ));
                continue;
            }
        };
        let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
        // sshd asks once per offered key: the others are expected misses, not worth a line.
        if expected.fingerprint.is_some_and(|f| f != fingerprint) {
            continue;
        }
        lines.push((
            Severity::Info,
            format!(
                "Providing ssh key from serialgate with fingerprint: {fingerprint}, request-id: \
                 {}, for principal: {}",
                record.request().unwrap_or("-"),
                record.caller().unwrap_or("-"),
            ),
        ));
        keys.push(VerifiedKey { key, fingerprint });
    }
    (keys, lines)
}

/// A user name sshd could pass: 1 to 32 of letters, digits, `.`, `_`, `-`, `@`, `$`, not
/// starting with `-` or `.` (so never a path segment such as `..`).
fn plausible_user(user: &str) -> bool {
    (1..=32).contains(&user.len())
        && !user.starts_with(['-', '.'])
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'$'))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use instance_keys::{Record, format_record};
    use ssh_key::{Algorithm, PrivateKey};

    use super::*;

    const INSTANCE: &str = "i-0123456789abcdef0";
    const NOW: u64 = 1_800_000_000;

    struct Fixture {
        signer: PrivateKey,
        user: PublicKey,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                signer: new_key(),
                user: new_key().public_key().clone(),
            }
        }

        fn record(&self, instance: &str, expires: u64) -> String {
            let key = self.user.to_openssh().unwrap();
            let record = Record {
                timestamp: expires,
                instance,
                caller: "arn:aws:iam::111122223333:user/bob",
                request: "req-1",
                key: &key,
            };
            format_record(&record, &self.signer).unwrap()
        }

        fn good(&self) -> String {
            self.record(INSTANCE, NOW + 60)
        }

        fn select(
            &self,
            body: &str,
            fingerprint: Option<&str>,
        ) -> (Vec<VerifiedKey>, Vec<(Severity, String)>) {
            let signer = self.signer.public_key().clone();
            let expected = Expected {
                signer: &signer,
                instance: INSTANCE,
                now: NOW,
                fingerprint,
            };
            select(body, &expected, "ec2-user")
        }

        fn fingerprint(&self) -> String {
            self.user.fingerprint(HashAlg::Sha256).to_string()
        }
    }

    fn new_key() -> PrivateKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
    }

    fn warnings(lines: &[(Severity, String)]) -> Vec<&str> {
        lines
            .iter()
            .filter(|(s, _)| *s == Severity::Warning)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    #[test]
    fn a_good_record_gives_its_key_and_the_aws_worded_line() {
        let f = Fixture::new();
        let (keys, lines) = f.select(&f.good(), Some(&f.fingerprint()));
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].key, f.user);
        assert_eq!(keys[0].fingerprint, f.fingerprint());
        assert_eq!(
            lines,
            [(
                Severity::Info,
                format!(
                    "Providing ssh key from serialgate with fingerprint: {}, request-id: req-1, \
                     for principal: arn:aws:iam::111122223333:user/bob",
                    f.fingerprint()
                )
            )]
        );
    }

    #[test]
    fn a_tampered_record_gives_nothing() {
        let f = Fixture::new();
        let good = f.good();
        // Every byte of the signed lines (all but the signature line and the blank line).
        let signed_len = good.trim_end().rfind('\n').unwrap() + 1;
        for at in 0..signed_len {
            let mut bytes = good.clone().into_bytes();
            if bytes[at] == b'\n' {
                continue;
            }
            bytes[at] ^= 0x01;
            let (keys, _) = f.select(&String::from_utf8_lossy(&bytes), None);
            assert!(keys.is_empty(), "flipping byte {at} was accepted");
        }
        // The signature itself (a character carrying six of its bits).
        let mut bytes = good.into_bytes();
        let at = bytes.len() - 6;
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let (keys, lines) = f.select(&String::from_utf8_lossy(&bytes), None);
        assert!(keys.is_empty());
        assert_eq!(
            warnings(&lines),
            ["Ignoring a key record for ec2-user: bad signature"]
        );
    }

    #[test]
    fn another_signer_another_instance_or_an_expired_record_gives_nothing() {
        let f = Fixture::new();
        let forged = Fixture {
            signer: new_key(),
            user: f.user.clone(),
        };
        let cases = [
            (forged.good(), "bad signature"),
            (
                f.record("i-0123456789abcdef1", NOW + 60),
                "for another instance",
            ),
            (
                f.record(INSTANCE, NOW),
                "expired (is this host's clock right?)",
            ),
        ];
        for (body, why) in cases {
            let (keys, lines) = f.select(&body, None);
            assert!(keys.is_empty(), "{why}");
            assert_eq!(
                warnings(&lines),
                [format!("Ignoring a key record for ec2-user: {why}")]
            );
        }
    }

    #[test]
    fn another_fingerprint_gives_nothing_quietly() {
        let f = Fixture::new();
        let other = new_key()
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string();
        let (keys, lines) = f.select(&f.good(), Some(&other));
        assert!(keys.is_empty() && lines.is_empty(), "{lines:?}");
    }

    #[test]
    fn one_bad_record_does_not_hide_a_good_one_and_floods_are_cut() {
        let f = Fixture::new();
        let body = format!(
            "{}garbage\n\n{}",
            f.record("i-0123456789abcdef1", NOW + 9),
            f.good()
        );
        let (keys, lines) = f.select(&body, None);
        assert_eq!(keys.len(), 1);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let flood = f.record(INSTANCE, NOW).repeat(MAX_RECORDS) + &f.good();
        let (keys, lines) = f.select(&flood, None);
        assert!(keys.is_empty(), "records past the cap are not read");
        assert_eq!(lines.len(), MAX_RECORDS);
    }

    #[test]
    fn user_names() {
        for ok in ["root", "ec2-user", "a", "user.name@corp", "machine$", "_x9"] {
            assert!(plausible_user(ok), "{ok}");
        }
        for bad in [
            "",
            "-n",
            "a/b",
            "a b",
            "a%2fb",
            "..",
            ".x",
            &"x".repeat(33),
            "ü",
        ] {
            assert!(!plausible_user(bad), "{bad}");
        }
    }
}
