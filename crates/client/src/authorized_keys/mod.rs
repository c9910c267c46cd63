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

use crate::args::AuthorizedKeysArgs;
use crate::instance_keys::proof;
use crate::instance_keys::records::{self, Expected, Rejection, VerifiedKey};
use config::HelperConfig;
use syslog::{Log, Severity};

/// At least one key printed.
pub const KEYS: i32 = 0;
/// No key printed, whatever the reason (sshd only tells zero from non-zero).
pub const NO_KEYS: i32 = 255;
/// The answer's body is read up to this size; a larger one is refused whole.
const MAX_BODY: usize = 64 * 1024;

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
    let proof = proof::header(config.token.as_bytes(), &config.instance_id, user, now);
    let headers = [
        ("X-Serialgate-Instance", config.instance_id.as_str()),
        ("X-Serialgate-Proof", proof.as_str()),
        ("Accept", "text/plain"),
        (
            "User-Agent",
            concat!("serialgate-authorized-keys/", env!("CARGO_PKG_VERSION")),
        ),
    ];
    let path = format!("/instance-keys/v1/{user}");
    let answer = fetch::get(&config.endpoint, tls, &path, &headers, MAX_BODY).await?;
    match answer.status {
        200 => String::from_utf8(answer.body.to_vec())
            .map(Some)
            .map_err(|_| "the answer is not UTF-8 text".to_owned()),
        404 => Ok(None),
        status => Err(format!("the API answered HTTP {status}")),
    }
}

/// The keys of `body` that verify, and the log lines about them: one AWS-worded line per key,
/// one per record refused for a reason an operator should see.
pub fn select(
    body: &str,
    expected: &Expected<'_>,
    user: &str,
) -> (Vec<VerifiedKey>, Vec<(Severity, String)>) {
    let mut keys = Vec::new();
    let mut lines = Vec::new();
    for record in records::parse_records(body) {
        match record
            .map_err(Rejection::from)
            .and_then(|r| records::verify(&r, expected))
        {
            Ok(key) => {
                lines.push((
                    Severity::Info,
                    format!(
                        "Providing ssh key from serialgate with fingerprint: {}, request-id: {}, \
                         for principal: {}",
                        key.fingerprint,
                        key.request.as_deref().unwrap_or("-"),
                        key.caller.as_deref().unwrap_or("-"),
                    ),
                ));
                keys.push(key);
            }
            // sshd asks once per offered key: the others are expected misses.
            Err(Rejection::OtherFingerprint) => {}
            Err(rejection @ Rejection::Expired(_)) => lines.push((
                Severity::Warning,
                format!(
                    "Ignoring a key record for {user}: {rejection} (is this host's clock right?)"
                ),
            )),
            Err(rejection) => lines.push((
                Severity::Warning,
                format!("Ignoring a key record for {user}: {rejection}"),
            )),
        }
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
    use base64::Engine as _;
    use ssh_key::{Algorithm, HashAlg, PrivateKey};

    use super::*;

    const INSTANCE: &str = "i-0123456789abcdef0";

    fn record(signer: &PrivateKey, instance: &str, expires: u64, key: &str) -> String {
        let signed = format!(
            "#Timestamp={expires}\n#Instance={instance}\n#Caller=arn:aws:iam::111122223333:user/bob\n\
             #Request=req-1\n{key}\n"
        );
        let sig: ssh_key::Signature =
            signature::Signer::try_sign(signer, signed.as_bytes()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.as_bytes());
        format!("{signed}{b64}\n\n")
    }

    #[test]
    fn select_keeps_verified_keys_and_says_why_others_went() {
        let signer = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        let user = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        let key = user.public_key().to_openssh().unwrap();
        let body = [
            record(&signer, INSTANCE, 200, &key),
            record(&signer, "i-0123456789abcdef1", 200, &key),
            record(&signer, INSTANCE, 100, &key),
        ]
        .concat();
        let pinned = signer.public_key().clone();
        let expected = Expected {
            signer: &pinned,
            instance: INSTANCE,
            now: 100,
            fingerprint: None,
        };
        let (keys, lines) = select(&body, &expected, "ec2-user");
        assert_eq!(keys.len(), 1);
        assert_eq!(&keys[0].key, user.public_key());
        let fingerprint = user.public_key().fingerprint(HashAlg::Sha256);
        assert_eq!(
            lines[0],
            (
                Severity::Info,
                format!(
                    "Providing ssh key from serialgate with fingerprint: {fingerprint}, \
                     request-id: req-1, for principal: arn:aws:iam::111122223333:user/bob"
                )
            )
        );
        assert!(
            lines[1].1.contains("for instance i-0123456789abcdef1"),
            "{lines:?}"
        );
        assert!(lines[2].1.contains("expired"), "{lines:?}");
        assert_eq!(lines.len(), 3);

        // Another fingerprint asked about: nothing printed, nothing logged.
        let other = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap();
        let other = other.public_key().fingerprint(HashAlg::Sha256).to_string();
        let expected = Expected {
            fingerprint: Some(&other),
            ..expected
        };
        let (keys, lines) = select(&record(&signer, INSTANCE, 200, &key), &expected, "u");
        assert!(keys.is_empty() && lines.is_empty(), "{lines:?}");
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
