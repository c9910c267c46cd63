//! Property tests of the validated identifiers (every request member and username part that
//! names something) and of the `*`/`?` glob used by policies and `DescribeInstances` filters:
//! each accepts exactly what the service model's pattern accepts, prints back as given, and
//! never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use console::policy::glob_match;
use console::{AccountId, AvailabilityZone, InstanceId, OsUser, SerialPort};
use proptest::prelude::*;
use proptest::test_runner::Config;
use regex_lite::Regex;

/// The default case count, unless `PROPTEST_CASES` says otherwise (`scripts/fuzz.sh`).
fn config(cases: u32) -> Config {
    let base = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        Config { cases, ..base }
    }
}

/// Text near each id's shape: its own alphabet in and around the allowed lengths, plus noise.
fn id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "i-[0-9a-f]{0,34}",
        "i-[0-9a-fA-Fg\\-]{0,34}",
        "[0-9]{10,14}",
        "[a-z]{2}-[a-z]{3,9}-[0-9]{1,2}[a-z]{0,2}",
        "[a-z0-9]{1,4}(-[a-z0-9]{1,6}){1,4}",
        "[A-Za-z_0-9][A-Za-z0-9@._$-]{0,34}",
        "[0-9]{1,33}[A-Za-z@._-]?[A-Za-z0-9@._$-]{0,4}",
        "[-@.$][a-z]{0,4}",
        ".{0,40}",
    ]
}

/// The `InstanceOSUser` pattern of the service model, whose look-ahead `(?=.{2,32}$)` becomes
/// a length check on the second alternative.
fn os_user_model(s: &str) -> bool {
    let first = Regex::new(r"^[A-Za-z_][A-Za-z0-9@._-]{0,30}[A-Za-z0-9$_-]?$").unwrap();
    let second = Regex::new(r"^[0-9]{1,32}[A-Za-z@._-][A-Za-z0-9@._-]*[A-Za-z0-9$_-]?$").unwrap();
    (1..=32).contains(&s.len())
        && (first.is_match(s) || ((2..=32).contains(&s.len()) && second.is_match(s)))
}

proptest! {
    #![proptest_config(config(1024))]

    /// Each parser accepts exactly its model pattern and length, and prints the value back as
    /// it was given.
    #[test]
    fn prop_ids_accept_exactly_the_model(text in id_text()) {
        let instance = Regex::new("^i-[a-f0-9]+$").unwrap();
        let ok = InstanceId::parse(&text);
        prop_assert_eq!(ok.is_ok(), (10..=32).contains(&text.len()) && instance.is_match(&text), "{:?}", text);
        if let Ok(id) = ok {
            prop_assert_eq!(id.to_string(), text.clone());
            prop_assert_eq!(id.as_str(), text.as_str());
        }

        let ok = AccountId::parse(&text);
        prop_assert_eq!(ok.is_ok(), text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit()));
        if let Ok(id) = ok {
            prop_assert_eq!(id.to_string(), text.clone());
        }

        let ok = OsUser::parse(&text);
        prop_assert_eq!(ok.is_ok(), os_user_model(&text), "{:?}", text);
        if let Ok(user) = ok {
            prop_assert_eq!(user.as_str(), text.as_str());
        }

        if let Ok(az) = AvailabilityZone::parse(&text) {
            prop_assert!((6..=32).contains(&text.len()));
            prop_assert_eq!(az.to_string(), text.clone());
        }
    }

    /// `SerialPort` on the API: only 0.
    #[test]
    fn prop_serial_port_only_zero(n in prop_oneof![Just(0i64), any::<i64>()]) {
        prop_assert_eq!(SerialPort::from_api(n).is_ok(), n == 0);
    }

    /// The glob agrees with a reference matcher (dynamic programming over both strings).
    #[test]
    fn prop_glob_matches_like_the_reference(
        pattern in "[ab*?]{0,10}",
        text in "[ab]{0,12}",
    ) {
        prop_assert_eq!(
            glob_match(pattern.as_bytes(), text.as_bytes()),
            reference_glob(pattern.as_bytes(), text.as_bytes()),
            "{:?} {:?}", pattern, text
        );
    }
}

/// `matches[i][j]`: the first `i` pattern bytes match the first `j` text bytes.
fn reference_glob(pattern: &[u8], text: &[u8]) -> bool {
    let mut m = vec![vec![false; text.len() + 1]; pattern.len() + 1];
    m[0][0] = true;
    for i in 1..=pattern.len() {
        for j in 0..=text.len() {
            m[i][j] = match pattern[i - 1] {
                b'*' => m[i - 1][j] || (j > 0 && m[i][j - 1]),
                b'?' => j > 0 && m[i - 1][j - 1],
                c => j > 0 && text[j - 1] == c && m[i - 1][j - 1],
            };
        }
    }
    m[pattern.len()][text.len()]
}

#[test]
fn prop_linear_huge_ids_and_globs() {
    const BIG: usize = 1 << 20;
    let huge = "1".repeat(BIG);
    assert!(InstanceId::parse(&format!("i-{}", "0".repeat(BIG))).is_err());
    assert!(AccountId::parse(&huge).is_err());
    assert!(OsUser::parse(&huge).is_err());
    assert!(AvailabilityZone::parse(&huge).is_err());
    // The glob's worst shape is a star before a long near-match: bounded by pattern × text,
    // and both are short in practice (ARNs and instance fields); this checks it stays
    // usable at the largest pattern a body could carry.
    let pattern = format!("*{}b", "a".repeat(64 * 1024));
    assert!(!glob_match(pattern.as_bytes(), "a".repeat(256).as_bytes()));
    assert!(glob_match("*".repeat(BIG).as_bytes(), huge.as_bytes()));
}
