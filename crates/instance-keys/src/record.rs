//! Signed key records: what the server answers and the instance verifies.
//!
//! ```text
//! #Timestamp=<grant expiry, unix seconds>
//! #Instance=<instance id>
//! #Caller=<principal ARN that pushed>
//! #Request=<request id of the push>
//! <the pushed public key: "type base64" (no comment)>
//! <base64 (standard, padded) Ed25519 signature, one line>
//! <empty line>
//! ```
//!
//! The signed data is every `#` line and the key line, each followed by `\n`, in order, bytes
//! exactly as sent; unknown `#Name=value` lines are signed data too, so fields can be added
//! without breaking older verifiers. A verifier ignores every record that fails a check.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use signature::{Signer as _, Verifier};
use ssh_key::{Algorithm, PrivateKey, PublicKey, Signature};

/// The fields of one record to format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// When the key stops being valid, Unix seconds.
    pub timestamp: u64,
    pub instance: &'a str,
    /// The ARN of the principal that pushed the key.
    pub caller: &'a str,
    /// The request id of the push.
    pub request: &'a str,
    /// The public key as `type base64`, without comment.
    pub key: &'a str,
}

/// Why a record cannot be formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    /// A field would not stay on its own line (it holds a line break, or the key is empty or
    /// starts with `#`), so the record would not parse back as written.
    BadField(&'static str),
    /// The signer could not sign (not an Ed25519 key, or a key without its private half).
    Sign(String),
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormatError::BadField(field) => write!(f, "the record's {field} is not one line"),
            FormatError::Sign(e) => write!(f, "cannot sign the record: {e}"),
        }
    }
}

impl std::error::Error for FormatError {}

/// The bytes a record's signature covers: each `#` line, then the key line, each followed by
/// `\n`.
pub fn signed_data(hash_lines: &[&str], key_line: &str) -> Vec<u8> {
    let len = hash_lines.iter().map(|l| l.len() + 1).sum::<usize>() + key_line.len() + 1;
    let mut data = Vec::with_capacity(len);
    for line in hash_lines.iter().chain(std::iter::once(&key_line)) {
        data.extend_from_slice(line.as_bytes());
        data.push(b'\n');
    }
    data
}

/// One record, signed by `signer` (Ed25519), ending with its empty line.
pub fn format_record(record: &Record<'_>, signer: &PrivateKey) -> Result<String, FormatError> {
    let one_line = |s: &str| !s.contains(['\n', '\r']);
    for (name, value) in [
        ("instance", record.instance),
        ("caller", record.caller),
        ("request", record.request),
        ("key", record.key),
    ] {
        if !one_line(value) {
            return Err(FormatError::BadField(name));
        }
    }
    if record.key.is_empty() || record.key.starts_with('#') {
        return Err(FormatError::BadField("key"));
    }
    if signer.algorithm() != Algorithm::Ed25519 {
        return Err(FormatError::Sign(format!(
            "the signer is {}, not ssh-ed25519",
            signer.algorithm()
        )));
    }
    let hash_lines = [
        format!("#Timestamp={}", record.timestamp),
        format!("#Instance={}", record.instance),
        format!("#Caller={}", record.caller),
        format!("#Request={}", record.request),
    ];
    let hash_refs = hash_lines.each_ref().map(String::as_str);
    let data = signed_data(&hash_refs, record.key);
    let signature: Signature = signer
        .try_sign(&data)
        .map_err(|e| FormatError::Sign(e.to_string()))?;
    let mut out = String::from_utf8_lossy(&data).into_owned();
    out.push_str(&STANDARD.encode(signature.as_bytes()));
    out.push_str("\n\n");
    Ok(out)
}

/// A record as received, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRecord {
    /// The `#` lines, as received.
    hash_lines: Vec<String>,
    key_line: String,
    signature: String,
}

/// Why [`SignedRecord::check`] refused a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The signature is malformed or not the signer's over this record.
    Signature,
    /// `#Instance` is missing, repeated, or another instance's.
    Instance,
    /// `#Timestamp` is missing, repeated, malformed, zero, or not after now.
    Expired,
    /// The key line is not an OpenSSH public key.
    Key,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Rejected::Signature => "bad signature",
            Rejected::Instance => "for another instance",
            Rejected::Expired => "expired",
            Rejected::Key => "not a public key",
        })
    }
}

impl SignedRecord {
    /// The value of the record's only `#name=` line; `None` when there is none or more than
    /// one (a repeated field is ambiguous, so it counts as missing).
    pub fn field(&self, name: &str) -> Option<&str> {
        let mut values = self.hash_lines.iter().filter_map(|line| {
            let (n, v) = line.strip_prefix('#')?.split_once('=')?;
            (n == name).then_some(v)
        });
        let first = values.next()?;
        values.next().is_none().then_some(first)
    }

    /// `#Timestamp`: when the key stops being valid, Unix seconds.
    pub fn timestamp(&self) -> Option<u64> {
        let t = self.field("Timestamp")?;
        let canonical = t.bytes().all(|b| b.is_ascii_digit()) && (t == "0" || !t.starts_with('0'));
        if canonical { t.parse().ok() } else { None }
    }

    pub fn instance(&self) -> Option<&str> {
        self.field("Instance")
    }

    pub fn caller(&self) -> Option<&str> {
        self.field("Caller")
    }

    pub fn request(&self) -> Option<&str> {
        self.field("Request")
    }

    /// The key line, as received (`type base64`).
    pub fn key_line(&self) -> &str {
        &self.key_line
    }

    /// The bytes the signature covers.
    pub fn signed_data(&self) -> Vec<u8> {
        let hash_refs: Vec<&str> = self.hash_lines.iter().map(String::as_str).collect();
        signed_data(&hash_refs, &self.key_line)
    }

    /// Whether the record carries `signer`'s Ed25519 signature over its signed data.
    pub fn verify(&self, signer: &PublicKey) -> bool {
        if signer.algorithm() != Algorithm::Ed25519 {
            return false;
        }
        let Ok(bytes) = STANDARD.decode(&self.signature) else {
            return false;
        };
        let Ok(signature) = Signature::new(Algorithm::Ed25519, bytes) else {
            return false;
        };
        // The trait's method: `PublicKey::verify` is the SSHSIG one.
        Verifier::verify(signer, &self.signed_data(), &signature).is_ok()
    }

    /// Every check an instance makes before it trusts a key: `signer`'s signature, `#Instance`
    /// is `instance`, `#Timestamp` is after `now_seconds`, and the key line parses. Returns the
    /// key (a fingerprint filter is the caller's).
    pub fn check(
        &self,
        signer: &PublicKey,
        instance: &str,
        now_seconds: u64,
    ) -> Result<PublicKey, Rejected> {
        if !self.verify(signer) {
            return Err(Rejected::Signature);
        }
        if self.instance() != Some(instance) {
            return Err(Rejected::Instance);
        }
        match self.timestamp() {
            Some(t) if t != 0 && t > now_seconds => {}
            _ => return Err(Rejected::Expired),
        }
        PublicKey::from_openssh(&self.key_line).map_err(|_| Rejected::Key)
    }
}

/// Splits an answer into records, in order. A record is `#` lines, one key line and one
/// signature line, ended by an empty line or the end of the text; a group of lines of any other
/// shape is skipped up to the next empty line. Lines are split on `\n` only, so a `\r` stays
/// part of its line (and fails the signature). Linear in the input.
pub fn parse_records(text: &str) -> Vec<SignedRecord> {
    let mut records = Vec::new();
    let mut current = Partial::default();
    for line in text.split('\n') {
        if line.is_empty() {
            if let Some(record) = std::mem::take(&mut current).finish() {
                records.push(record);
            }
        } else {
            current.add(line);
        }
    }
    if let Some(record) = current.finish() {
        records.push(record);
    }
    records
}

/// The lines of a record read so far.
#[derive(Debug, Default)]
struct Partial {
    hash_lines: Vec<String>,
    key_line: Option<String>,
    signature: Option<String>,
    /// Not the shape of a record: skipped to the next empty line.
    broken: bool,
}

impl Partial {
    fn add(&mut self, line: &str) {
        if self.broken {
            return;
        }
        if self.signature.is_some() {
            // A line after the signature: not our format.
            self.broken = true;
        } else if self.key_line.is_some() {
            self.signature = Some(line.to_owned());
        } else if line.starts_with('#') {
            self.hash_lines.push(line.to_owned());
        } else {
            self.key_line = Some(line.to_owned());
        }
    }

    fn finish(self) -> Option<SignedRecord> {
        match (self.broken, self.key_line, self.signature) {
            (false, Some(key_line), Some(signature)) => Some(SignedRecord {
                hash_lines: self.hash_lines,
                key_line,
                signature,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ssh_key::private::Ed25519Keypair;

    const INSTANCE: &str = "i-0123456789abcdef0";
    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

    fn signer(seed: u8) -> PrivateKey {
        PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn record() -> Record<'static> {
        Record {
            timestamp: 1_700_000_060,
            instance: INSTANCE,
            caller: "arn:aws:iam::111122223333:user/alice",
            request: "3b2b6a4e-6b0f-4c2e-9f5c-0d6b7e1f2a3b",
            key: KEY,
        }
    }

    #[test]
    fn a_record_is_laid_out_as_documented() {
        let text = format_record(&record(), &signer(1)).unwrap();
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(
            lines[..5],
            [
                "#Timestamp=1700000060",
                "#Instance=i-0123456789abcdef0",
                "#Caller=arn:aws:iam::111122223333:user/alice",
                "#Request=3b2b6a4e-6b0f-4c2e-9f5c-0d6b7e1f2a3b",
                KEY,
            ]
        );
        assert_eq!(STANDARD.decode(lines[5]).unwrap().len(), 64);
        assert_eq!(lines[6..], ["", ""], "the record ends with an empty line");
    }

    #[test]
    fn the_signature_is_plain_ed25519_over_the_signed_lines() {
        let key = signer(1);
        let text = format_record(&record(), &key).unwrap();
        let (signed, rest) = text.split_at(text.find(KEY).unwrap() + KEY.len() + 1);
        let sig = STANDARD.decode(rest.trim_end()).unwrap();
        let sig = Signature::new(Algorithm::Ed25519, sig).unwrap();
        Verifier::verify(key.public_key(), signed.as_bytes(), &sig).unwrap();
    }

    #[test]
    fn round_trip_verifies_and_checks() {
        let key = signer(1);
        let text = format_record(&record(), &key).unwrap();
        let parsed = parse_records(&text);
        assert_eq!(parsed.len(), 1);
        let r = &parsed[0];
        assert!(r.verify(key.public_key()));
        assert_eq!(r.timestamp(), Some(1_700_000_060));
        assert_eq!(r.instance(), Some(INSTANCE));
        assert_eq!(r.caller(), Some("arn:aws:iam::111122223333:user/alice"));
        assert_eq!(r.request(), Some("3b2b6a4e-6b0f-4c2e-9f5c-0d6b7e1f2a3b"));
        assert_eq!(r.key_line(), KEY);
        let checked = r.check(key.public_key(), INSTANCE, 1_700_000_059).unwrap();
        assert_eq!(checked.to_openssh().unwrap(), KEY);
    }

    #[test]
    fn check_refuses_other_signers_instances_and_expired_records() {
        let key = signer(1);
        let text = format_record(&record(), &key).unwrap();
        let r = &parse_records(&text)[0];
        let now = 1_700_000_000;
        assert_eq!(
            r.check(signer(2).public_key(), INSTANCE, now),
            Err(Rejected::Signature)
        );
        assert_eq!(
            r.check(key.public_key(), "i-0123456789abcdef1", now),
            Err(Rejected::Instance)
        );
        assert_eq!(
            r.check(key.public_key(), INSTANCE, 1_700_000_060),
            Err(Rejected::Expired),
            "a record is valid only before its timestamp"
        );
    }

    #[test]
    fn any_changed_byte_of_a_signed_line_fails_verification() {
        let key = signer(1);
        let text = format_record(&record(), &key).unwrap();
        let signed_len = text.find(KEY).unwrap() + KEY.len();
        let mut tried = 0;
        for i in 0..signed_len {
            if text.as_bytes()[i] == b'\n' {
                continue;
            }
            for replacement in [b'A', b'0', b'#', b'=', b' ', b'\n', b'\r'] {
                if text.as_bytes()[i] == replacement {
                    continue;
                }
                let mut bytes = text.clone().into_bytes();
                bytes[i] = replacement;
                let tampered = String::from_utf8(bytes).unwrap();
                let verified = parse_records(&tampered)
                    .iter()
                    .filter(|r| r.verify(key.public_key()))
                    .count();
                assert_eq!(
                    verified, 0,
                    "byte {i} changed to {replacement:?} still verifies"
                );
                tried += 1;
            }
        }
        assert!(tried > 1000, "{tried}");
    }

    #[test]
    fn a_changed_signature_or_an_added_line_fails_verification() {
        let key = signer(1);
        let text = format_record(&record(), &key).unwrap();
        let sig_start = text.find(KEY).unwrap() + KEY.len() + 1;
        let sig_end = text.len() - 2;
        for i in sig_start..sig_end {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(
                parse_records(&tampered)
                    .iter()
                    .all(|r| !r.verify(key.public_key())),
                "signature byte {i}"
            );
        }
        let added = format!("#Extra=1\n{text}");
        assert!(!parse_records(&added)[0].verify(key.public_key()));
        let dropped = text.replacen("#Caller=arn:aws:iam::111122223333:user/alice\n", "", 1);
        assert!(!parse_records(&dropped)[0].verify(key.public_key()));
    }

    #[test]
    fn unknown_fields_are_signed_data() {
        let key = signer(1);
        let lines = [
            "#Timestamp=5",
            "#Instance=i-1",
            "#Future=x",
            "#no equals sign",
        ];
        let data = signed_data(&lines, KEY);
        let sig: Signature = key.try_sign(&data).unwrap();
        let text = format!(
            "{}{}\n",
            String::from_utf8(data).unwrap(),
            STANDARD.encode(sig.as_bytes())
        );
        let r = &parse_records(&text)[0];
        assert!(r.verify(key.public_key()));
        assert_eq!(r.field("Future"), Some("x"));
    }

    #[test]
    fn a_repeated_field_counts_as_missing() {
        let r = &parse_records("#Instance=i-1\n#Instance=i-2\n#Timestamp=9\nkey\nsig\n")[0];
        assert_eq!(r.instance(), None);
        assert_eq!(r.timestamp(), Some(9));
        let r = &parse_records("#Timestamp=09\nkey\nsig\n")[0];
        assert_eq!(r.timestamp(), None, "not canonical");
    }

    #[test]
    fn records_are_split_on_empty_lines_and_malformed_groups_skipped() {
        let key = signer(1);
        let one = format_record(&record(), &key).unwrap();
        let other = Record {
            request: "second",
            ..record()
        };
        let two = format_record(&other, &key).unwrap();
        // A group with a line after its signature, and one without a signature, in between.
        let text = format!("{one}\n\n#A=1\nk\ns\nextra\n\n#B=1\nk\n\n{two}");
        let parsed = parse_records(&text);
        assert_eq!(parsed.len(), 2);
        assert_eq!(
            parsed[0].request(),
            Some("3b2b6a4e-6b0f-4c2e-9f5c-0d6b7e1f2a3b")
        );
        assert_eq!(parsed[1].request(), Some("second"));
        assert!(parsed.iter().all(|r| r.verify(key.public_key())));
        // The last record may end without its empty line.
        assert_eq!(parse_records(one.trim_end_matches('\n')).len(), 1);
        assert!(parse_records("").is_empty());
        assert!(parse_records("\n\n\n").is_empty());
    }

    #[test]
    fn fields_that_would_break_the_layout_are_refused() {
        let key = signer(1);
        for (bad, field) in [
            (
                Record {
                    caller: "a\n#Instance=i-2",
                    ..record()
                },
                "caller",
            ),
            (
                Record {
                    request: "r\r",
                    ..record()
                },
                "request",
            ),
            (
                Record {
                    instance: "i-1\n",
                    ..record()
                },
                "instance",
            ),
            (
                Record {
                    key: "",
                    ..record()
                },
                "key",
            ),
            (
                Record {
                    key: "#x",
                    ..record()
                },
                "key",
            ),
        ] {
            assert_eq!(format_record(&bad, &key), Err(FormatError::BadField(field)));
        }
    }
}
