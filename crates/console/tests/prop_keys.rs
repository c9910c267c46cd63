//! Property tests of SSH public key parsing (the `SSHPublicKey` member of a push): any text is
//! accepted or refused with a `KeyError`, never a panic, in linear time; a generated ed25519 or
//! RSA key written as an OpenSSH line or an RFC 4716 block (any headers, continuation lines,
//! wrapping and line endings) parses to the same key and fingerprint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use console::{KeyError, SshPublicKey};
use proptest::prelude::*;
use proptest::test_runner::Config;
use ssh_key::{HashAlg, PublicKey};

const ED25519: &str = include_str!("../../../testdata/keys/ed25519.pub");
const RSA2048: &str = include_str!("../../../testdata/keys/rsa2048.pub");
const ED25519_RFC4716: &str = include_str!("../../../testdata/keys/ed25519.rfc4716.pub");

const BEGIN: &str = "---- BEGIN SSH2 PUBLIC KEY ----";
const END: &str = "---- END SSH2 PUBLIC KEY ----";

/// The default case count, unless `PROPTEST_CASES` says otherwise (`scripts/fuzz.sh`).
fn config(cases: u32) -> Config {
    let base = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        Config { cases, ..base }
    }
}

// --- key blobs ------------------------------------------------------------------------------

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).unwrap().to_be_bytes());
    out.extend_from_slice(bytes);
}

/// An SSH mpint: big-endian, with a zero byte in front when the top bit is set.
fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|&b| b == 0).collect();
    let mut bytes = Vec::new();
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        bytes.push(0);
    }
    bytes.extend(trimmed);
    put_string(out, &bytes);
}

/// The wire blob of an ed25519 key (32 bytes of key material).
fn ed25519_blob(key: &[u8; 32]) -> Vec<u8> {
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-ed25519");
    put_string(&mut blob, key);
    blob
}

/// The wire blob of an RSA key with an odd modulus of exactly `bits` bits.
fn rsa_blob(e: &[u8], bits: usize, seed: &[u8]) -> Vec<u8> {
    let len = bits.div_ceil(8);
    let mut n: Vec<u8> = (0..len).map(|i| seed[i % seed.len()] ^ (i as u8)).collect();
    let top_bit = (bits - 1) % 8;
    n[0] &= (1u16 << (top_bit + 1)).wrapping_sub(1) as u8;
    n[0] |= 1 << top_bit;
    n[len - 1] |= 1;
    let mut blob = Vec::new();
    put_string(&mut blob, b"ssh-rsa");
    put_mpint(&mut blob, e);
    put_mpint(&mut blob, &n);
    blob
}

#[derive(Debug, Clone)]
struct Key {
    algorithm: &'static str,
    blob: Vec<u8>,
}

fn key() -> impl Strategy<Value = Key> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|k| Key {
            algorithm: "ssh-ed25519",
            blob: ed25519_blob(&k),
        }),
        (
            prop_oneof![
                Just(vec![1u8, 0, 1]),
                Just(vec![3u8]),
                any::<u32>().prop_map(|e| (e | 1).to_be_bytes().to_vec())
            ],
            prop_oneof![Just(2048usize), Just(3072), Just(4096), 2048usize..=4096],
            prop::collection::vec(any::<u8>(), 1..32),
        )
            .prop_map(|(e, bits, seed)| Key {
                algorithm: "ssh-rsa",
                blob: rsa_blob(&e, bits, &seed),
            }),
    ]
}

fn b64(blob: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(blob)
}

// --- the two text forms ---------------------------------------------------------------------

/// `TYPE BASE64 [COMMENT]`, with any blanks around and between (the comment may hold spaces).
fn openssh(key: &Key, sep: &str, comment: Option<&str>, lead: &str, trail: &str) -> String {
    let mut line = format!("{lead}{}{sep}{}", key.algorithm, b64(&key.blob));
    if let Some(c) = comment {
        line.push_str(sep);
        line.push_str(c);
    }
    line.push_str(trail);
    line
}

#[derive(Debug, Clone)]
struct Header {
    tag: String,
    /// The value, in pieces joined by `\` continuation lines.
    pieces: Vec<String>,
}

fn header() -> impl Strategy<Value = Header> {
    (
        prop_oneof![
            "[A-Za-z][A-Za-z0-9-]{0,12}",
            Just("Comment".to_owned()),
            Just("x-Note".to_owned())
        ],
        prop::collection::vec("[ -\\[\\]-~]{0,40}", 1..4),
    )
        .prop_map(|(tag, pieces)| Header { tag, pieces })
}

/// An RFC 4716 block: headers (some continued over lines), the base64 wrapped at `width`,
/// with `eol` line endings.
fn rfc4716(key: &Key, headers: &[Header], width: usize, eol: &str) -> String {
    let mut out = format!("{BEGIN}{eol}");
    for h in headers {
        let last = h.pieces.len() - 1;
        for (i, piece) in h.pieces.iter().enumerate() {
            if i == 0 {
                out.push_str(&format!("{}: ", h.tag));
            }
            out.push_str(piece);
            if i < last {
                out.push('\\');
            }
            out.push_str(eol);
        }
    }
    let body = b64(&key.blob);
    for chunk in body.as_bytes().chunks(width) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str(eol);
    }
    out.push_str(END);
    out.push_str(eol);
    out
}

fn reference_fingerprint(key: &Key) -> String {
    PublicKey::from_bytes(&key.blob)
        .unwrap()
        .fingerprint(HashAlg::Sha256)
        .to_string()
}

proptest! {
    #![proptest_config(config(128))]

    /// A generated key parses to the same key, with the fingerprint `ssh-keygen -l` prints,
    /// from its OpenSSH line and from its RFC 4716 block, whatever the comment, headers,
    /// wrapping and line endings (texts over 4096 characters are refused as too long).
    #[test]
    fn prop_keys_same_fingerprint_in_both_forms(
        key in key(),
        sep in prop::sample::select(vec![" ", "  ", "\t", " \t "]),
        comment in prop::option::of("[ -~]{0,40}"),
        lead in "[ \t]{0,2}",
        trail in "[ \t\r\n]{0,2}",
        headers in prop::collection::vec(header(), 0..4),
        width in prop_oneof![Just(64usize), Just(70), Just(72), 1usize..200],
        eol in prop::sample::select(vec!["\n", "\r\n"]),
    ) {
        let want = reference_fingerprint(&key);
        let line = openssh(&key, sep, comment.as_deref(), &lead, &trail);
        let block = rfc4716(&key, &headers, width, eol);
        for text in [line, block] {
            let chars = text.chars().count();
            match SshPublicKey::parse(&text) {
                Ok(parsed) => {
                    prop_assert_eq!(parsed.fingerprint(), want.as_str());
                    prop_assert_eq!(parsed.algorithm(), key.algorithm);
                    // The stored form parses back to the same key.
                    let stored = parsed.to_openssh();
                    prop_assert_eq!(SshPublicKey::parse(&stored), Ok(parsed));
                }
                Err(KeyError::Length(n)) => {
                    prop_assert_eq!(n, chars);
                    prop_assert!(!(80..=4096).contains(&n));
                }
                Err(e) => prop_assert!(false, "{e} for {text:?}"),
            }
        }
    }

    /// Near-misses of real keys (a byte replaced, cut short, text inserted) and arbitrary text:
    /// a key or a `KeyError`, never a panic.
    #[test]
    fn prop_keys_never_panic(text in key_text()) {
        if let Ok(key) = SshPublicKey::parse(&text) {
            prop_assert!(key.fingerprint().starts_with("SHA256:"));
        }
    }

    /// Well-formed base64 of arbitrary blobs, some shaped like keys with lying lengths: the
    /// blob decoder refuses them without panicking.
    #[test]
    fn prop_key_blobs_never_panic(
        algorithm in prop::sample::select(vec!["ssh-ed25519", "ssh-rsa"]),
        fields in prop::collection::vec(
            prop_oneof![
                any::<u32>().prop_map(|n| n.to_be_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 0..40),
                Just(vec![0xff, 0xff, 0xff, 0xff]),
                Just(vec![0, 0, 0, 0]),
            ],
            0..6,
        ),
        comment in "[a-z]{60,80}",
    ) {
        let mut blob = Vec::new();
        put_string(&mut blob, algorithm.as_bytes());
        for f in fields {
            blob.extend(f);
        }
        let _ = SshPublicKey::parse(&format!("{algorithm} {} {comment}", b64(&blob)));
        let _ = SshPublicKey::parse(&format!("{BEGIN}\n{}\n{END}\n{comment}", b64(&blob)));
    }
}

fn key_text() -> impl Strategy<Value = String> {
    let real = prop::sample::select(vec![ED25519, RSA2048, ED25519_RFC4716]);
    prop_oneof![
        (real.clone(), any::<prop::sample::Index>(), any::<char>()).prop_map(|(k, at, c)| {
            let mut chars: Vec<char> = k.chars().collect();
            let i = at.index(chars.len());
            chars[i] = c;
            chars.into_iter().collect()
        }),
        (real.clone(), any::<prop::sample::Index>()).prop_map(|(k, at)| {
            let chars: Vec<char> = k.chars().collect();
            chars[..at.index(chars.len() + 1)].iter().collect()
        }),
        (
            real,
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                "\n", ":", "\\\n", " ", "----", BEGIN, END, "=", "AAAA", "\r\n",
            ])
        )
            .prop_map(|(k, at, insert)| {
                let mut chars: Vec<char> = k.chars().collect();
                let i = at.index(chars.len() + 1);
                chars.splice(i..i, insert.chars());
                chars.into_iter().collect()
            }),
        ".{0,120}",
        "(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|x) [A-Za-z0-9+/=]{0,100}( .{0,20})?",
    ]
}

// --- linear time on adversarial shapes ------------------------------------------------------

#[test]
fn prop_linear_huge_and_header_heavy_keys() {
    const BIG: usize = 1 << 20;
    let b64 = ED25519.split(' ').nth(1).unwrap();
    // Within the 4096-character limit: as many header lines (and continuations) as fit.
    let many_headers = format!("{BEGIN}\n{}{b64}\n{END}\n", "x: y\n".repeat(790));
    assert!(many_headers.len() <= 4096);
    assert_eq!(
        SshPublicKey::parse(&many_headers).unwrap(),
        SshPublicKey::parse(ED25519).unwrap()
    );
    // One header continued over 1900 lines; the empty line after them ends it.
    let continued = format!("{BEGIN}\nC: \\\n{}\n{b64}\n{END}\n", "\\\n".repeat(1900));
    assert!(continued.len() <= 4096);
    assert_eq!(
        SshPublicKey::parse(&continued).unwrap(),
        SshPublicKey::parse(ED25519).unwrap()
    );
    // Far over the limit: refused by length, in one pass.
    for text in [
        format!("{BEGIN}\n{}{b64}\n{END}\n", "Comment: x\n".repeat(BIG / 11)),
        format!("ssh-ed25519 {b64} {}", "é".repeat(BIG)),
        format!("ssh-ed25519 {}", "A".repeat(BIG)),
        "\n".repeat(BIG),
    ] {
        assert!(matches!(
            SshPublicKey::parse(&text),
            Err(KeyError::Length(_))
        ));
    }
}
