//! Host key verification: against a pinned fingerprint (`--host-key-fingerprint`, or AWS's
//! published one for the Region) or a known_hosts file (with `--accept-new` for first use), and
//! the OpenSSH-style messages for a changed, unknown or revoked key.

use std::path::PathBuf;

use russh::keys::{HashAlg, PublicKey};

use crate::endpoints::HostPort;
use crate::known_hosts::{self, Marker};

/// How the server's host key is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Exactly this SHA256 fingerprint (normalised, `SHA256:…`).
    Fingerprint { expected: String, source: PinSource },
    /// A known_hosts file; `accept_new` records an unknown host's key (never a changed one).
    KnownHosts { path: PathBuf, accept_new: bool },
}

/// Where a pinned fingerprint came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    Flag,
    AwsTable { region: String },
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Matches the pin or a known_hosts entry.
    Trusted,
    /// Unknown, and recorded in known_hosts because of `--accept-new`.
    Learned { path: PathBuf },
    /// Does not match: refuse, with this (multi-line) explanation.
    Refused(String),
}

impl Verdict {
    pub fn accepted(&self) -> bool {
        !matches!(self, Verdict::Refused(_))
    }
}

/// OpenSSH's name for a key type in messages (`ED25519`, `RSA`, `ECDSA`).
fn kind(key: &PublicKey) -> &'static str {
    match key.algorithm().as_str() {
        "ssh-ed25519" => "ED25519",
        "ssh-rsa" => "RSA",
        a if a.starts_with("ecdsa-") => "ECDSA",
        _ => "host",
    }
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

const CHANGED_BANNER: &str = "\
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.";

impl Trust {
    /// Checks `key` presented by `server`. With `accept_new`, an unknown key is appended to the
    /// known_hosts file here (a failure to write it is reported on stderr, as OpenSSH does).
    pub fn check(&self, server: &HostPort, key: &PublicKey) -> Verdict {
        let got = fingerprint(key);
        match self {
            Trust::Fingerprint { expected, source } => {
                if &got == expected {
                    return Verdict::Trusted;
                }
                let whose = match source {
                    PinSource::Flag => "the --host-key-fingerprint".to_owned(),
                    PinSource::AwsTable { region } => {
                        format!("AWS's published fingerprint for {region}")
                    }
                };
                Verdict::Refused(format!(
                    "Host key verification failed for {server}.\n{CHANGED_BANNER}\n\
                     The fingerprint for the {k} key sent by the remote host is\n{got}.\n\
                     Expected ({whose}): {expected}\n\
                     Refusing to connect. If the server's key really changed, check the new \
                     fingerprint out of band (`serialgate host-key` on a serialgate server) and \
                     pass it with --host-key-fingerprint.",
                    k = kind(key)
                ))
            }
            Trust::KnownHosts { path, accept_new } => {
                self.check_known_hosts(server, key, path, *accept_new)
            }
        }
    }

    fn check_known_hosts(
        &self,
        server: &HostPort,
        key: &PublicKey,
        path: &PathBuf,
        accept_new: bool,
    ) -> Verdict {
        let name = server.known_hosts_name();
        let shown = path.display();
        let got = fingerprint(key);
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Verdict::Refused(format!(
                    "Host key verification failed for {server}: cannot read {shown}: {e}"
                ));
            }
        };
        let entries = known_hosts::lookup(&text, &name);
        let same = |e: &&known_hosts::Entry| e.key.key_data() == key.key_data();
        if let Some(e) = entries
            .iter()
            .filter(|e| e.marker == Marker::Revoked)
            .find(same)
        {
            return Verdict::Refused(format!(
                "Host key verification failed for {server}.\n\
                 The {k} host key {got} is marked as revoked in {shown}:{line}.\n\
                 Refusing to connect.",
                k = kind(key),
                line = e.line
            ));
        }
        let usable: Vec<_> = entries
            .iter()
            .filter(|e| e.marker == Marker::None)
            .collect();
        if usable.iter().any(same) {
            return Verdict::Trusted;
        }
        if let Some(e) = usable.iter().find(|e| e.key.algorithm() == key.algorithm()) {
            return Verdict::Refused(format!(
                "Host key verification failed for {name}.\n{CHANGED_BANNER}\n\
                 The fingerprint for the {k} key sent by the remote host is\n{got}.\n\
                 Offending {k} key in {shown}:{line}\n\
                 Refusing to connect. If the server's key really changed (e.g. a new state_dir), \
                 check the new fingerprint out of band (`serialgate host-key`), remove line \
                 {line} from {shown}, and connect again with --accept-new or \
                 --host-key-fingerprint.",
                k = kind(key),
                line = e.line
            ));
        }
        if accept_new {
            return match known_hosts::append(path, &name, key) {
                Ok(()) => {
                    eprintln!(
                        "Warning: permanently added '{name}' ({k}, {got}) to {shown}.",
                        k = kind(key)
                    );
                    Verdict::Learned { path: path.clone() }
                }
                Err(e) => {
                    eprintln!("Warning: {e}; the host key was not recorded.");
                    Verdict::Trusted
                }
            };
        }
        let other_types = if usable.is_empty() {
            String::new()
        } else {
            format!(
                "\n{shown} has keys of another type for this host (e.g. line {}), not this one.",
                usable[0].line
            )
        };
        Verdict::Refused(format!(
            "Host key verification failed: the authenticity of host '{name}' can't be \
             established.\n{k} key fingerprint is {got}.\n\
             It is not in {shown}.{other_types}\n\
             Compare it with the server's (on a serialgate server: `serialgate host-key`), then \
             connect again with --host-key-fingerprint {got} (pin it for this connection) or \
             --accept-new (record it in {shown} and trust it from then on).",
            k = kind(key)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA6rWI3G1sz07DnfFlrouTcysQlj2P+jpNSOEWD9OJ3X";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    fn server() -> HostPort {
        HostPort::new("127.0.0.1", 2222)
    }

    fn known_hosts(text: &str, accept_new: bool) -> (tempfile::TempDir, Trust) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, text).unwrap();
        (dir, Trust::KnownHosts { path, accept_new })
    }

    #[test]
    fn pinned_fingerprint() {
        let k = key(KEY_A);
        let pin = |expected: String| Trust::Fingerprint {
            expected,
            source: PinSource::Flag,
        };
        assert_eq!(pin(fingerprint(&k)).check(&server(), &k), Verdict::Trusted);
        let v = pin(fingerprint(&key(KEY_B))).check(&server(), &k);
        let Verdict::Refused(msg) = v else {
            panic!("accepted a wrong key")
        };
        assert!(
            msg.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
            "{msg}"
        );
        assert!(msg.contains(&fingerprint(&k)), "{msg}");
    }

    #[test]
    fn aws_table_message_names_the_region() {
        let t = Trust::Fingerprint {
            expected: "SHA256:dXwn5ma/xadVMeBZGEru5l2gx+yI5LDiJaLUcz0FMmw".into(),
            source: PinSource::AwsTable {
                region: "us-east-1".into(),
            },
        };
        let Verdict::Refused(msg) = t.check(&server(), &key(KEY_A)) else {
            panic!()
        };
        assert!(
            msg.contains("AWS's published fingerprint for us-east-1"),
            "{msg}"
        );
    }

    #[test]
    fn known_unknown_changed_revoked() {
        let (_d, t) = known_hosts(&format!("[127.0.0.1]:2222 {KEY_A}\n"), false);
        assert_eq!(t.check(&server(), &key(KEY_A)), Verdict::Trusted);

        let Verdict::Refused(msg) = t.check(&server(), &key(KEY_B)) else {
            panic!()
        };
        assert!(
            msg.contains("HAS CHANGED") && msg.contains("known_hosts:1"),
            "{msg}"
        );

        let Verdict::Refused(msg) = t.check(&HostPort::new("127.0.0.1", 2223), &key(KEY_A)) else {
            panic!()
        };
        assert!(msg.contains("can't be established"), "{msg}");
        assert!(msg.contains("--accept-new") && msg.contains("--host-key-fingerprint"));

        let (_d, t) = known_hosts(
            &format!("@revoked [127.0.0.1]:2222 {KEY_A}\n[127.0.0.1]:2222 {KEY_A}\n"),
            true,
        );
        let Verdict::Refused(msg) = t.check(&server(), &key(KEY_A)) else {
            panic!()
        };
        assert!(msg.contains("revoked"), "{msg}");
    }

    #[test]
    fn accept_new_records_unknown_but_never_changed() {
        let (_d, t) = known_hosts("", true);
        let Trust::KnownHosts { path, .. } = &t else {
            panic!()
        };
        assert!(matches!(
            t.check(&server(), &key(KEY_A)),
            Verdict::Learned { .. }
        ));
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(text, format!("[127.0.0.1]:2222 {KEY_A}\n"));
        assert_eq!(t.check(&server(), &key(KEY_A)), Verdict::Trusted);
        // A different key for the now-known host is a change, even with --accept-new.
        assert!(!t.check(&server(), &key(KEY_B)).accepted());
        assert_eq!(std::fs::read_to_string(path).unwrap(), text);
    }

    #[test]
    fn missing_file_is_unknown() {
        let t = Trust::KnownHosts {
            path: PathBuf::from("/nonexistent/dir/known_hosts"),
            accept_new: false,
        };
        assert!(!t.check(&server(), &key(KEY_A)).accepted());
    }
}
