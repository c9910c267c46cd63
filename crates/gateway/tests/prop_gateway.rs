//! Property tests of what a client sends before and around a session: the SSH username
//! (`<instance-id>.port<N>`) and the in-band escape parser. Neither panics on any input, both
//! are linear, a username that parses has exactly one spelling, and the escape parser gives the
//! same answer however its input is split.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::{Bytes, BytesMut};
use gateway::escape::{Action, EscapeParser};
use gateway::username;
use proptest::prelude::*;
use proptest::test_runner::Config;

/// The default case count, unless `PROPTEST_CASES` says otherwise (`scripts/fuzz.sh`).
fn config(cases: u32) -> Config {
    let base = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        Config { cases, ..base }
    }
}

// --- usernames ------------------------------------------------------------------------------

/// Usernames that are almost right: an id-like part, a port-like part, and noise.
fn username() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        "i-[0-9a-f]{8,30}",
        "i-[0-9a-fA-F.]{0,34}",
        "[a-z0-9.-]{0,12}",
        ".{0,8}",
    ];
    let port = prop_oneof![
        "[0-9]{1,3}",
        "0[0-9]{0,3}",
        "[0-9+ -]{0,5}",
        "[0-9]{4,12}",
        ".{0,4}",
    ];
    let sep = prop_oneof![
        8 => Just(".port"),
        1 => Just(".Port"),
        1 => Just("port"),
        1 => Just(".port.port"),
        1 => Just(""),
    ];
    let suffix = prop_oneof![
        4 => Just(String::new()),
        2 => "\\.replay-lines=[0-9]{0,6}",
        1 => "\\.replay-lines=0[0-9]{0,3}",
        1 => "\\.replay[a-z=+ -]{0,14}[0-9]{0,3}",
    ];
    prop_oneof![
        (id, sep, port, suffix)
            .prop_map(|(id, sep, port, suffix)| format!("{id}{sep}{port}{suffix}")),
        ".{0,80}",
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    /// Any username: `None`, or an instance and port whose canonical spelling is the username
    /// itself (so `port00`, `port+1`, ` port1` are all refused), never longer than the cap.
    #[test]
    fn prop_username_parses_only_its_canonical_spelling(user in username()) {
        if let Some(t) = username::parse(&user) {
            let suffix = t.replay_lines.map(|n| format!(".replay-lines={n}")).unwrap_or_default();
            prop_assert_eq!(format!("{}.port{}{suffix}", t.instance, t.port), user.clone());
            prop_assert!(user.len() <= 64, "{} bytes", user.len());
        }
    }

    /// Every instance id and port the gateway serves round-trips through its username.
    #[test]
    fn prop_username_round_trip(hex in "[0-9a-f]{8,30}", port in 0u32..1000) {
        let user = format!("i-{hex}.port{port}");
        let t = username::parse(&user).unwrap();
        prop_assert_eq!(t.instance.as_str(), &user[..user.len() - format!(".port{port}").len()]);
        prop_assert_eq!(t.port.get(), port);
    }

    /// A replay suffix round-trips and leaves the slot (instance and port) as it is.
    #[test]
    fn prop_username_replay_keeps_the_slot(hex in "[0-9a-f]{8,17}", port in 0u32..1000, lines in 0u32..=10_000) {
        let plain = format!("i-{hex}.port{port}");
        let user = format!("{plain}.replay-lines={lines}");
        let t = username::parse(&user).unwrap();
        let p = username::parse(&plain).unwrap();
        prop_assert_eq!((t.instance, t.port), (p.instance, p.port));
        prop_assert_eq!(t.replay_lines, Some(lines));
    }
}

#[test]
fn prop_linear_huge_usernames_are_refused() {
    // A megabyte of the separator, of digits, and of a valid-looking id: linear scans, refused.
    const BIG: usize = 1 << 20;
    for user in [
        ".port".repeat(BIG / 5),
        format!("i-0123456789abcdef0.port{}", "0".repeat(BIG)),
        format!("i-{}.port0", "0".repeat(BIG)),
        format!("{}i-0123456789abcdef0.port0", ".".repeat(BIG)),
        format!("i-0123456789abcdef0.port0.replay-lines={}", "1".repeat(BIG)),
        ".replay-lines=".repeat(BIG / 14),
        "é".repeat(BIG / 2),
    ] {
        assert!(username::parse(&user).is_none());
    }
}

// --- the escape parser -----------------------------------------------------------------------

/// Typed bytes, rich in what the parser looks at: newlines, the escape character, and the
/// command letters.
fn typed() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(b"~\r\nB.?%".to_vec()),
            1 => any::<u8>(),
        ],
        0..64,
    )
}

/// Cut points that split `len` bytes into feeds.
fn splits(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    at.push(0);
    at.push(len);
    at.sort_unstable();
    at
}

/// Feeds `input` in pieces and merges adjacent data, so results can be compared.
fn run(escape: Option<u8>, input: &[u8], cuts: &[usize]) -> Vec<Action> {
    let mut p = EscapeParser::new(escape);
    let mut merged: Vec<Action> = Vec::new();
    for w in cuts.windows(2) {
        for action in p.feed(&input[w[0]..w[1]]) {
            match (merged.last_mut(), action) {
                (Some(Action::Data(prev)), Action::Data(d)) => {
                    let mut m = BytesMut::from(&prev[..]);
                    m.extend_from_slice(&d);
                    *prev = m.freeze();
                }
                (_, Action::Data(d)) if d.is_empty() => {}
                (_, a) => merged.push(a),
            }
        }
    }
    merged
}

fn escape_char() -> impl Strategy<Value = Option<u8>> {
    prop_oneof![
        4 => Just(Some(b'~')),
        2 => (0x21u8..0x7f).prop_map(Some),
        1 => Just(None),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// Any bytes, split anywhere: the same data and commands as in one feed, and no byte is
    /// lost or invented (the data is the input less what the commands consumed).
    #[test]
    fn prop_escape_parser_split_invariant(
        escape in escape_char(),
        input in typed(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let whole = run(escape, &input, &[0, input.len()]);
        let split = run(escape, &input, &splits(input.len(), &cuts));
        prop_assert_eq!(&split, &whole);
        let data: usize = whole
            .iter()
            .map(|a| match a { Action::Data(d) => d.len(), _ => 0 })
            .sum();
        let commands = whole.iter().filter(|a| !matches!(a, Action::Data(_))).count();
        // Each command consumes two bytes; a doubled escape one; nothing is ever added.
        prop_assert!(data + 2 * commands <= input.len());
        if escape.is_none() {
            let want: Vec<Action> = if input.is_empty() {
                vec![]
            } else {
                vec![Action::Data(Bytes::from(input.clone()))]
            };
            prop_assert_eq!(whole, want);
        }
    }

    /// Without a newline or the escape character in it, input passes through untouched.
    #[test]
    fn prop_escape_parser_passes_plain_text(input in "[a-zA-Z0-9 ]{1,64}") {
        let got = run(Some(b'~'), input.as_bytes(), &[0, input.len()]);
        prop_assert_eq!(got, vec![Action::Data(Bytes::from(input.into_bytes()))]);
    }
}

#[test]
fn prop_linear_escape_parser_on_a_megabyte_of_commands() {
    const BIG: usize = 1 << 20;
    for unit in [&b"\r~B"[..], b"~~", b"\n~", b"~", b"\r\r"] {
        let input = unit.repeat(BIG / unit.len());
        let mut p = EscapeParser::new(Some(b'~'));
        let actions = p.feed(&input);
        assert!(actions.len() <= input.len());
    }
}
