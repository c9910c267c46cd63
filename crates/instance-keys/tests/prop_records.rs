//! Property tests of the instance side's parsers (answers and proofs come off the network):
//! any text parses without a panic, in linear time; formatted records parse back to the same
//! fields and verify, among any junk groups around them; a proof header parses back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use instance_keys::{Record, format_proof, format_record, parse_proof, parse_records};
use proptest::prelude::*;
use proptest::test_runner::Config;
use ssh_key::PrivateKey;
use ssh_key::private::Ed25519Keypair;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";

/// The default case count, unless `PROPTEST_CASES` says otherwise (`scripts/fuzz.sh`).
fn config(cases: u32) -> Config {
    let base = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        Config { cases, ..base }
    }
}

fn signer() -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[5; 32]))
}

/// Lines made of record-like pieces, so the parser's states are all reached.
fn answer_text() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        Just(String::new()),
        Just("#Instance=i-0123456789abcdef0".to_owned()),
        Just("#Timestamp=1".to_owned()),
        Just(KEY.to_owned()),
        Just("AAAA".to_owned()),
        "[#=A-Za-z0-9+/ \r]{0,20}",
        any::<String>(),
    ];
    prop::collection::vec(line, 0..40).prop_map(|lines| lines.join("\n"))
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn prop_answers_never_panic(text in answer_text()) {
        let signer = signer();
        for record in parse_records(&text) {
            // Junk never verifies, and checking it never panics.
            prop_assert!(!record.verify(signer.public_key()));
            let _ = record.check(signer.public_key(), "i-0123456789abcdef0", 0);
            let _ = (record.timestamp(), record.instance(), record.caller(), record.request());
        }
    }

    #[test]
    fn prop_records_survive_junk_around_them(
        before in answer_text(),
        after in answer_text(),
        timestamp in any::<u64>(),
        caller in "[ -~]{0,80}",
        request in "[ -~]{0,40}",
    ) {
        let signer = signer();
        let record = Record { timestamp, instance: "i-0123456789abcdef0", caller: &caller, request: &request, key: KEY };
        let text = format_record(&record, &signer).unwrap();
        // Empty lines keep the junk in its own groups.
        let answer = format!("{before}\n\n{text}\n{after}");
        let verified: Vec<_> = parse_records(&answer)
            .into_iter()
            .filter(|r| r.verify(signer.public_key()))
            .collect();
        prop_assert_eq!(verified.len(), 1);
        prop_assert_eq!(verified[0].timestamp(), Some(timestamp));
        prop_assert_eq!(verified[0].caller(), Some(caller.as_str()));
        prop_assert_eq!(verified[0].request(), Some(request.as_str()));
        prop_assert_eq!(verified[0].key_line(), KEY);
    }

    #[test]
    fn prop_proofs_parse_back_and_junk_never_panics(
        token in prop::collection::vec(any::<u8>(), 0..80),
        user in "[a-z_][a-z0-9_-]{0,31}",
        time in any::<u64>(),
        junk in any::<String>(),
    ) {
        let header = format_proof(&token, "i-0123456789abcdef0", &user, time);
        let proof = parse_proof(&header).unwrap();
        prop_assert_eq!(proof.time, time);
        let _ = parse_proof(&junk);
    }
}

#[test]
fn prop_linear_on_huge_answers() {
    const BIG: usize = 1 << 20;
    let started = Instant::now();
    for text in [
        "\n".repeat(BIG),
        "#A=1\n".repeat(BIG / 5),
        format!("{KEY}\nsig\nextra\n").repeat(BIG / 100),
        "x".repeat(BIG),
        "#Instance=i-1\n".repeat(BIG / 14) + "k\ns\n",
    ] {
        let records = parse_records(&text);
        for r in &records {
            let _ = r.instance();
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}
