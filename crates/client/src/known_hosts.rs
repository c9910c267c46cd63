//! OpenSSH known_hosts files: find the keys recorded for a host (plain, wildcard, negated and
//! hashed `|1|` patterns; `[host]:port` off port 22; `@revoked`), and append a learned key.

use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{KeyInit as _, Mac as _};
use russh::keys::PublicKey;

/// A line's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    None,
    /// `@revoked`: this key must never be accepted.
    Revoked,
    /// `@cert-authority`: a CA for host certificates (not used by this client).
    CertAuthority,
}

/// A known_hosts line whose host patterns matched.
#[derive(Debug, Clone)]
pub struct Entry {
    /// 1-based line number, for messages like OpenSSH's "Offending key in FILE:LINE".
    pub line: usize,
    pub marker: Marker,
    pub key: PublicKey,
}

/// Every entry in `text` whose host patterns match `name` (`host` or `[host]:port`). Lines
/// that cannot be parsed (unknown key types, junk) are skipped, as OpenSSH does.
pub fn lookup(text: &str, name: &str) -> Vec<Entry> {
    let name = name.to_ascii_lowercase();
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let (marker, patterns, key) = parse_line(line)?;
            matches_patterns(patterns, &name).then_some(Entry {
                line: i + 1,
                marker,
                key,
            })
        })
        .collect()
}

/// Splits a line into marker, host patterns and key; `None` for comments, blanks and junk.
fn parse_line(line: &str) -> Option<(Marker, &str, PublicKey)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let marker = match first {
        "@revoked" => Marker::Revoked,
        "@cert-authority" => Marker::CertAuthority,
        m if m.starts_with('@') => return None,
        _ => Marker::None,
    };
    if marker != Marker::None {
        first = fields.next()?;
    }
    let algorithm = fields.next()?;
    let blob = fields.next()?;
    let key = PublicKey::from_openssh(&format!("{algorithm} {blob}")).ok()?;
    Some((marker, first, key))
}

/// OpenSSH's host pattern list: comma-separated, `*` and `?` wildcards, `!` negation (a match
/// of a negated pattern rejects the line), and hashed entries `|1|salt|hmac-sha1`.
fn matches_patterns(patterns: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in patterns.split(',') {
        if let Some(hashed) = pattern.strip_prefix("|1|") {
            matched |= hashed_matches(hashed, name);
        } else if let Some(negated) = pattern.strip_prefix('!') {
            if wildcard(&negated.to_ascii_lowercase(), name) {
                return false;
            }
        } else {
            matched |= wildcard(&pattern.to_ascii_lowercase(), name);
        }
    }
    matched
}

/// `salt|hash` (both base64): HMAC-SHA1 keyed with the salt over the host name.
fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (BASE64.decode(salt), BASE64.decode(hash)) else {
        return false;
    };
    let Ok(mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// Glob match with `*` (any run) and `?` (one character).
fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The line OpenSSH writes for a learned key: `name algorithm base64`.
pub fn entry_line(name: &str, key: &PublicKey) -> Result<String, String> {
    let openssh = key
        .to_openssh()
        .map_err(|e| format!("cannot encode the host key: {e}"))?;
    let mut parts = openssh.split_ascii_whitespace();
    match (parts.next(), parts.next()) {
        (Some(algorithm), Some(blob)) => Ok(format!("{name} {algorithm} {blob}")),
        _ => Err("cannot encode the host key".to_owned()),
    }
}

/// Appends `name key` to `path`, creating the file (mode 0600) and its directory (0700) if
/// needed, and starting on a fresh line if the file does not end with one.
pub fn append(path: &Path, name: &str, key: &PublicKey) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let line = entry_line(name, key)?;
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let needs_newline = std::fs::read(path)
        .map(|b| !b.is_empty() && !b.ends_with(b"\n"))
        .unwrap_or(false);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open {shown}: {e}"))?;
    let text = format!("{}{line}\n", if needs_newline { "\n" } else { "" });
    file.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {shown}: {e}"))
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

    fn lines(text: &str, name: &str) -> Vec<(usize, Marker)> {
        lookup(text, name)
            .into_iter()
            .map(|e| (e.line, e.marker))
            .collect()
    }

    #[test]
    fn plain_and_port_entries() {
        let text = format!(
            "# comment\n\n[127.0.0.1]:2222 {KEY_A}\n127.0.0.1 {KEY_B} root@x\ngw.example,10.0.0.1 {KEY_A}\n"
        );
        assert_eq!(lines(&text, "[127.0.0.1]:2222"), vec![(3, Marker::None)]);
        assert_eq!(lines(&text, "127.0.0.1"), vec![(4, Marker::None)]);
        assert_eq!(lines(&text, "10.0.0.1"), vec![(5, Marker::None)]);
        assert_eq!(lines(&text, "GW.Example"), vec![(5, Marker::None)]);
        assert!(lines(&text, "[127.0.0.1]:2223").is_empty());
        let found = lookup(&text, "[127.0.0.1]:2222");
        assert_eq!(found[0].key.key_data(), key(KEY_A).key_data());
    }

    #[test]
    fn wildcards_and_negation() {
        let text = format!("*.example,!bad.example {KEY_A}\n[10.0.0.?]:2222 {KEY_B}\n");
        assert_eq!(lines(&text, "gw.example").len(), 1);
        assert!(lines(&text, "bad.example").is_empty());
        assert!(lines(&text, "example").is_empty());
        assert_eq!(lines(&text, "[10.0.0.7]:2222").len(), 1);
        assert!(lines(&text, "[10.0.0.17]:2222").is_empty());
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(wildcard("*", ""));
        assert!(!wildcard("a*d", "abc"));
    }

    #[test]
    fn markers_and_junk() {
        let text = format!(
            "@revoked h {KEY_A}\n@cert-authority *.example {KEY_B}\n@bogus h {KEY_A}\nh not-a-key AAAA\nh\nh {KEY_B}\n"
        );
        assert_eq!(
            lines(&text, "h"),
            vec![(1, Marker::Revoked), (6, Marker::None)]
        );
        assert_eq!(lines(&text, "x.example"), vec![(2, Marker::CertAuthority)]);
    }

    #[test]
    fn hashed_entries() {
        // From `ssh-keygen -H`: |1|salt|HMAC-SHA1(salt, "[127.0.0.1]:2222").
        let salt = [7u8; 20];
        let mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt)
            .unwrap()
            .chain_update(b"[127.0.0.1]:2222")
            .finalize()
            .into_bytes();
        let text = format!(
            "|1|{}|{} {KEY_A}\n",
            BASE64.encode(salt),
            BASE64.encode(mac)
        );
        assert_eq!(lines(&text, "[127.0.0.1]:2222").len(), 1);
        assert!(lines(&text, "127.0.0.1").is_empty());
        assert!(lines("|1|%%%|%%% ssh-ed25519 AAAA\n", "h").is_empty());
    }

    #[test]
    fn russh_fixture_hashed_line() {
        // The hashed line from russh's own known_hosts test, for host "example.com".
        let text = "|1|O33ESRMWPVkMYIwJ1Uw+n877jTo=|nuuC5vEqXlEZ/8BXQR7m619W6Ak= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF\n";
        assert_eq!(lines(text, "example.com").len(), 1);
    }

    #[test]
    fn append_creates_and_separates_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("known_hosts");
        append(&path, "[h]:2222", &key(KEY_A)).unwrap();
        std::fs::write(&path, std::fs::read_to_string(&path).unwrap().trim_end()).unwrap();
        append(&path, "h", &key(KEY_B)).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, format!("[h]:2222 {KEY_A}\nh {KEY_B}\n"));
        assert_eq!(lines(&text, "[h]:2222"), vec![(1, Marker::None)]);
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
