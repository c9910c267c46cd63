//! Key records as the API serves them to an instance, and their verification.
//!
//! A record is `#Name=value` lines, the public key line (`type base64`), one line of base64
//! (standard, padded) Ed25519 signature, then an empty line. The signature covers every `#`
//! line and the key line, each followed by `\n`, bytes exactly as sent; unknown `#` names are
//! covered too, so the format can grow without older verifiers accepting less than was signed.

use base64::Engine as _;
use signature::Verifier;
use ssh_key::{Algorithm, HashAlg, PublicKey};

/// Records read from one answer at most (the server sends one per OS user today); the rest are
/// ignored, so a hostile answer cannot make the verifier work without bound.
pub const MAX_RECORDS: usize = 16;
/// `#` lines one record may carry at most.
const MAX_FIELDS: usize = 32;
/// An Ed25519 signature's length in bytes.
const SIGNATURE_LEN: usize = 64;

/// One record as read, nothing in it checked yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The `#` lines, in order, without their newline.
    pub header_lines: Vec<&'a str>,
    pub key_line: &'a str,
    pub signature: &'a str,
}

/// A record that does not have the record's shape (counted, never believed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// Splits an answer into records (at most [`MAX_RECORDS`]). Records are separated by empty
/// lines; each is `#` lines, then exactly a key line and a signature line.
pub fn parse_records(text: &str) -> Vec<Result<Record<'_>, Malformed>> {
    let mut out = Vec::new();
    let mut block: Vec<&str> = Vec::new();
    for line in text.split('\n') {
        if out.len() == MAX_RECORDS {
            break;
        }
        if line.is_empty() {
            if !block.is_empty() {
                out.push(record(&block));
                block.clear();
            }
        } else if block.len() <= MAX_FIELDS + 2 {
            block.push(line);
        } else {
            // Keep one line too many so that `record` refuses the block, without holding on to
            // the rest of it.
        }
    }
    if !block.is_empty() && out.len() < MAX_RECORDS {
        out.push(record(&block));
    }
    out
}

fn record<'a>(lines: &[&'a str]) -> Result<Record<'a>, Malformed> {
    let fields = lines.iter().take_while(|l| l.starts_with('#')).count();
    if fields > MAX_FIELDS {
        return Err(Malformed("too many # lines"));
    }
    match lines[fields..] {
        [key_line, signature] => Ok(Record {
            header_lines: lines[..fields].to_vec(),
            key_line,
            signature,
        }),
        _ => Err(Malformed(
            "a record is # lines, one key line and one signature line",
        )),
    }
}

impl Record<'_> {
    /// The bytes the signature covers: each `#` line and the key line, each followed by `\n`.
    pub fn signed_data(&self) -> Vec<u8> {
        let mut data = Vec::new();
        for line in self.header_lines.iter().chain([&self.key_line]) {
            data.extend_from_slice(line.as_bytes());
            data.push(b'\n');
        }
        data
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
    /// The SHA256 fingerprint sshd is asking about (`%f`), when it gave one.
    pub fingerprint: Option<&'a str>,
}

/// A key whose record passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedKey {
    pub key: PublicKey,
    /// `SHA256:…`, as sshd and ssh-keygen print it.
    pub fingerprint: String,
    /// Unix seconds after which the key must no longer be accepted.
    pub expires: u64,
    /// Who pushed it (a principal ARN) and the push's request id, when the record says.
    pub caller: Option<String>,
    pub request: Option<String>,
}

/// Why a record was dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Malformed(&'static str),
    /// Not signed by the pinned signer (or changed after signing).
    BadSignature,
    /// Signed for another instance.
    ForeignInstance(String),
    /// Its `#Timestamp` is not after now.
    Expired(u64),
    /// The signed key line is not a public key.
    UnusableKey(String),
    /// A valid key, but not the one sshd asked about.
    OtherFingerprint,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(why) => write!(f, "malformed record: {why}"),
            Self::BadSignature => f.write_str("the signature does not verify with the signer key"),
            Self::ForeignInstance(id) => write!(f, "the record is for instance {id}"),
            Self::Expired(at) => write!(f, "the record expired at {at} (Unix time)"),
            Self::UnusableKey(why) => write!(f, "the signed key cannot be used: {why}"),
            Self::OtherFingerprint => f.write_str("the key is not the one asked about"),
        }
    }
}

impl From<Malformed> for Rejection {
    fn from(m: Malformed) -> Self {
        Self::Malformed(m.0)
    }
}

/// The pinned signer from its OpenSSH line (`ssh-ed25519 AAAA… comment`).
pub fn parse_signer(line: &str) -> Result<PublicKey, String> {
    let key = PublicKey::from_openssh(line.trim())
        .map_err(|e| format!("not an OpenSSH public key line: {e}"))?;
    if key.algorithm() != Algorithm::Ed25519 {
        return Err(format!(
            "the signer key must be ssh-ed25519, not {}",
            key.algorithm()
        ));
    }
    Ok(key)
}

/// Checks `record`: the signature first, so that nothing in it is read before it is known to
/// come from the signer; then instance, expiry, the key itself and the fingerprint asked for.
pub fn verify(record: &Record<'_>, expected: &Expected<'_>) -> Result<VerifiedKey, Rejection> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(record.signature)
        .map_err(|_| Rejection::Malformed("the signature line is not base64"))?;
    if raw.len() != SIGNATURE_LEN {
        return Err(Rejection::BadSignature);
    }
    let signature =
        ssh_key::Signature::new(Algorithm::Ed25519, raw).map_err(|_| Rejection::BadSignature)?;
    // The trait's raw verification, not `PublicKey::verify` (that one checks SSHSIG blobs).
    Verifier::verify(expected.signer, &record.signed_data(), &signature)
        .map_err(|_| Rejection::BadSignature)?;

    let fields = Fields::read(&record.header_lines)?;
    match fields.instance {
        Some(id) if id == expected.instance => {}
        Some(id) => return Err(Rejection::ForeignInstance(id.to_owned())),
        None => return Err(Rejection::Malformed("no #Instance")),
    }
    let expires = fields
        .timestamp
        .ok_or(Rejection::Malformed("no #Timestamp"))?
        .parse::<u64>()
        .map_err(|_| Rejection::Malformed("#Timestamp is not Unix seconds"))?;
    if expires <= expected.now {
        return Err(Rejection::Expired(expires));
    }
    let key = PublicKey::from_openssh(record.key_line)
        .map_err(|e| Rejection::UnusableKey(e.to_string()))?;
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    if expected.fingerprint.is_some_and(|f| f != fingerprint) {
        return Err(Rejection::OtherFingerprint);
    }
    Ok(VerifiedKey {
        key,
        fingerprint,
        expires,
        caller: fields.caller.map(str::to_owned),
        request: fields.request.map(str::to_owned),
    })
}

/// The `#Name=value` fields this verifier knows; others are signed data only.
#[derive(Debug, Default)]
struct Fields<'a> {
    timestamp: Option<&'a str>,
    instance: Option<&'a str>,
    caller: Option<&'a str>,
    request: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn read(lines: &[&'a str]) -> Result<Self, Rejection> {
        let mut fields = Self::default();
        let mut names: Vec<&str> = Vec::with_capacity(lines.len());
        for line in lines {
            let (name, value) = line
                .strip_prefix('#')
                .and_then(|l| l.split_once('='))
                .ok_or(Rejection::Malformed("a # line without Name=value"))?;
            // One meaning per name: a record saying two things about itself is refused.
            if names.contains(&name) {
                return Err(Rejection::Malformed("a # name given twice"));
            }
            names.push(name);
            let slot = match name {
                "Timestamp" => &mut fields.timestamp,
                "Instance" => &mut fields.instance,
                "Caller" => &mut fields.caller,
                "Request" => &mut fields.request,
                _ => continue,
            };
            *slot = Some(value);
        }
        Ok(fields)
    }
}

#[cfg(test)]
mod tests {
    use ssh_key::PrivateKey;

    use super::*;

    const INSTANCE: &str = "i-0123456789abcdef0";
    const NOW: u64 = 1_800_000_000;

    fn new_key() -> PrivateKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
    }

    /// A record as the server formats it.
    fn format(signer: &PrivateKey, header: &[String], key_line: &str) -> String {
        let mut signed = String::new();
        for line in header.iter().map(String::as_str).chain([key_line]) {
            signed.push_str(line);
            signed.push('\n');
        }
        let sig: ssh_key::Signature =
            signature::Signer::try_sign(signer, signed.as_bytes()).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.as_bytes());
        format!("{signed}{b64}\n\n")
    }

    fn header(instance: &str, expires: u64) -> Vec<String> {
        vec![
            format!("#Timestamp={expires}"),
            format!("#Instance={instance}"),
            "#Caller=arn:aws:iam::111122223333:user/alice".to_owned(),
            "#Request=4b1c9d2e-0000-4000-8000-000000000001".to_owned(),
        ]
    }

    struct Fixture {
        signer: PrivateKey,
        user_key: PublicKey,
    }

    impl Fixture {
        fn new() -> Self {
            Self {
                signer: new_key(),
                user_key: new_key().public_key().clone(),
            }
        }

        fn key_line(&self) -> String {
            self.user_key.to_openssh().unwrap()
        }

        fn good(&self) -> String {
            format(&self.signer, &header(INSTANCE, NOW + 60), &self.key_line())
        }

        fn check(
            &self,
            text: &str,
            fingerprint: Option<&str>,
        ) -> Vec<Result<VerifiedKey, Rejection>> {
            let signer = self.signer.public_key().clone();
            let expected = Expected {
                signer: &signer,
                instance: INSTANCE,
                now: NOW,
                fingerprint,
            };
            parse_records(text)
                .into_iter()
                .map(|r| verify(&r?, &expected))
                .collect()
        }
    }

    #[test]
    fn a_good_record_verifies_and_says_who_pushed_it() {
        let f = Fixture::new();
        let got = f.check(&f.good(), None);
        let [Ok(key)] = &got[..] else {
            panic!("{got:?}")
        };
        assert_eq!(key.key, f.user_key);
        assert_eq!(key.expires, NOW + 60);
        assert_eq!(
            key.fingerprint,
            f.user_key.fingerprint(HashAlg::Sha256).to_string()
        );
        assert!(key.fingerprint.starts_with("SHA256:"));
        assert_eq!(
            key.caller.as_deref(),
            Some("arn:aws:iam::111122223333:user/alice")
        );
        assert_eq!(
            key.request.as_deref(),
            Some("4b1c9d2e-0000-4000-8000-000000000001")
        );
    }

    #[test]
    fn signed_data_is_the_hash_lines_and_the_key_line() {
        let records = parse_records("#A=1\n#B=2\nssh-ed25519 AAAA\nc2ln\n\n");
        let [Ok(r)] = &records[..] else {
            panic!("{records:?}")
        };
        assert_eq!(r.signed_data(), b"#A=1\n#B=2\nssh-ed25519 AAAA\n");
        assert_eq!(r.signature, "c2ln");
    }

    #[test]
    fn changing_any_signed_byte_breaks_the_signature() {
        let f = Fixture::new();
        let good = f.good();
        let signature_starts = good.trim_end().rfind('\n').unwrap() + 1;
        for at in 0..signature_starts - 1 {
            let mut bytes = good.clone().into_bytes();
            if bytes[at] == b'\n' {
                continue;
            }
            bytes[at] ^= 0x01;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let got = f.check(&text, None);
            assert!(
                got.iter().all(|r| r.is_err()),
                "flipping byte {at} was accepted: {got:?}"
            );
        }
    }

    #[test]
    fn a_tampered_signature_or_another_signer_is_refused() {
        let f = Fixture::new();
        let mut good = f.good().into_bytes();
        // Base64 of 64 bytes ends "…XY==": X carries six signature bits, Y only two.
        let last = good.len() - 6;
        good[last] = if good[last] == b'A' { b'B' } else { b'A' };
        let got = f.check(&String::from_utf8(good).unwrap(), None);
        assert_eq!(got, [Err(Rejection::BadSignature)]);

        let other = format(&new_key(), &header(INSTANCE, NOW + 60), &f.key_line());
        assert_eq!(f.check(&other, None), [Err(Rejection::BadSignature)]);
    }

    #[test]
    fn another_instance_expired_or_missing_fields_are_refused() {
        let f = Fixture::new();
        let key = f.key_line();
        let foreign = format(&f.signer, &header("i-0123456789abcdef1", NOW + 60), &key);
        assert_eq!(
            f.check(&foreign, None),
            [Err(Rejection::ForeignInstance(
                "i-0123456789abcdef1".into()
            ))]
        );
        let expired = format(&f.signer, &header(INSTANCE, NOW), &key);
        assert_eq!(f.check(&expired, None), [Err(Rejection::Expired(NOW))]);
        let no_instance = format(&f.signer, &[format!("#Timestamp={}", NOW + 9)], &key);
        assert_eq!(
            f.check(&no_instance, None),
            [Err(Rejection::Malformed("no #Instance"))]
        );
        let no_time = format(&f.signer, &[format!("#Instance={INSTANCE}")], &key);
        assert_eq!(
            f.check(&no_time, None),
            [Err(Rejection::Malformed("no #Timestamp"))]
        );
        let twice = [
            header(INSTANCE, NOW + 60),
            vec![format!("#Instance={INSTANCE}")],
        ]
        .concat();
        assert_eq!(
            f.check(&format(&f.signer, &twice, &key), None),
            [Err(Rejection::Malformed("a # name given twice"))]
        );
    }

    #[test]
    fn unknown_fields_are_signed_data_too() {
        let f = Fixture::new();
        let mut fields = header(INSTANCE, NOW + 60);
        fields.push("#Future=something".to_owned());
        let text = format(&f.signer, &fields, &f.key_line());
        assert!(matches!(&f.check(&text, None)[..], [Ok(_)]));
        // Dropping the unknown line after signing breaks the signature.
        let cut = text.replace("#Future=something\n", "");
        assert_eq!(f.check(&cut, None), [Err(Rejection::BadSignature)]);
    }

    #[test]
    fn the_fingerprint_asked_for_must_match() {
        let f = Fixture::new();
        let own = f.user_key.fingerprint(HashAlg::Sha256).to_string();
        assert!(matches!(&f.check(&f.good(), Some(&own))[..], [Ok(_)]));
        let other = new_key().fingerprint(HashAlg::Sha256).to_string();
        assert_eq!(
            f.check(&f.good(), Some(&other)),
            [Err(Rejection::OtherFingerprint)]
        );
    }

    #[test]
    fn a_signed_line_that_is_no_key_is_refused() {
        let f = Fixture::new();
        let text = format(
            &f.signer,
            &header(INSTANCE, NOW + 60),
            "ssh-ed25519 bm90IGEga2V5",
        );
        assert!(matches!(
            &f.check(&text, None)[..],
            [Err(Rejection::UnusableKey(_))]
        ));
    }

    #[test]
    fn one_bad_record_does_not_hide_a_good_one() {
        let f = Fixture::new();
        let text = format!(
            "{}garbage\n\n{}",
            f.good().replace("#Instance", "#Instanze"),
            f.good()
        );
        let got = f.check(&text, None);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], Err(Rejection::BadSignature));
        assert!(matches!(got[1], Err(Rejection::Malformed(_))));
        assert!(got[2].is_ok());
    }

    #[test]
    fn parsing_is_bounded() {
        let many = "#A=1\nssh-ed25519 AAAA\nc2ln\n\n".repeat(MAX_RECORDS * 4);
        assert_eq!(parse_records(&many).len(), MAX_RECORDS);
        let long = format!("{}ssh-ed25519 AAAA\nc2ln\n", "#A=1\n".repeat(10_000));
        assert_eq!(parse_records(&long), [Err(Malformed("too many # lines"))]);
        assert!(parse_records("").is_empty());
        assert!(parse_records("\n\n\n").is_empty());
    }

    #[test]
    fn the_signer_must_be_ed25519() {
        let key = new_key().public_key().to_openssh().unwrap();
        assert!(parse_signer(&format!("{key} serialgate-signer\n")).is_ok());
        assert!(parse_signer("ssh-ed25519 AAAA").is_err());
        let ecdsa = PrivateKey::random(
            &mut rand::rng(),
            Algorithm::Ecdsa {
                curve: ssh_key::EcdsaCurve::NistP256,
            },
        )
        .unwrap();
        let err = parse_signer(&ecdsa.public_key().to_openssh().unwrap()).unwrap_err();
        assert!(err.contains("must be ssh-ed25519"), "{err}");
    }
}
