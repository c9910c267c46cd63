//! Property tests of the client's keyboard side: its escape parser never panics and does not
//! care how reads are split, `--escape` values parse or are refused, and what the in-band
//! encoder writes is read back by the gateway's own escape parser as exactly the data and
//! BREAKs the user meant, terminal replies among the keys included.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use client::escape::{EscapeParser, Key, parse_escape, show};
use client::inband::{InBand, NoBreak};
use gateway::escape::{Action, EscapeParser as ServerParser};
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

/// What the console should get: data bytes and BREAKs, adjacent data merged.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    Data(Vec<u8>),
    Break,
}

fn push(events: &mut Vec<Event>, e: Event) {
    match (events.last_mut(), e) {
        (_, Event::Data(d)) if d.is_empty() => {}
        (Some(Event::Data(prev)), Event::Data(d)) => prev.extend_from_slice(&d),
        (_, e) => events.push(e),
    }
}

/// Bytes rich in what both parsers look at.
fn bytes_for(escape: u8) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(vec![escape, b'\r', b'\n', b'B', b'.', b'?', b'~']),
            1 => any::<u8>(),
        ],
        0..24,
    )
}

/// What a user's terminal sends: keys rich in escapes and newlines, and the terminal's own
/// replies and markers (cursor position, focus, bracketed paste, device attributes) whole or in
/// pieces, among keys that are escape sequences too (arrows).
fn keyboard(escape: u8) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => bytes_for(escape),
        2 => prop::sample::select(vec![
            &b"\x1b[24;1R"[..],
            b"\x1b[?24;1;1R",
            b"\x1b[I",
            b"\x1b[O",
            b"\x1b[200~",
            b"\x1b[201~",
            b"\x1b[?62;22c",
            b"\x1b[A",
            b"\x1b[5~",
            b"\x1b",
            b"\x1b[",
            b"\x1b[24;",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

/// The client's own escape (`--escape`): usually `~`, sometimes another character or `^]`.
fn local_escape() -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(b'~'), 1 => Just(0x1d), 1 => 0x21u8..0x7f]
}

/// The escape characters `[ssh] escape` accepts: one printable ASCII character other than the
/// command letters `.`, `B` and `?`.
fn server_escape() -> impl Strategy<Value = u8> {
    prop_oneof![3 => Just(b'~'), 1 => (0x21u8..0x7f).prop_filter("a command letter", |c| !b".B?".contains(c))]
}

/// What the user asks for: data to deliver, and BREAKs.
#[derive(Debug, Clone)]
enum Intent {
    Data(Vec<u8>),
    Break,
}

fn intents(escape: u8) -> impl Strategy<Value = Vec<Intent>> {
    prop::collection::vec(
        prop_oneof![
            4 => keyboard(escape).prop_map(Intent::Data),
            1 => Just(Intent::Break),
        ],
        0..8,
    )
}

/// Encodes `intents` with the client's in-band encoder (a BREAK it cannot send in-band is
/// dropped, as the client tells the user instead), returning the wire bytes and what the
/// console should receive.
fn encode(escape: u8, intents: &[Intent]) -> (Vec<u8>, Vec<Event>) {
    let mut inband = InBand::new(Some(escape));
    let (mut wire, mut want) = (Vec::new(), Vec::new());
    for intent in intents {
        match intent {
            Intent::Data(d) => {
                wire.extend(inband.data(d));
                push(&mut want, Event::Data(d.clone()));
            }
            Intent::Break => match inband.brk() {
                Ok(bytes) => {
                    wire.extend(bytes);
                    push(&mut want, Event::Break);
                }
                Err(NoBreak::MidLine) => {}
                Err(NoBreak::NoEscape) => unreachable!("the server has an escape"),
            },
        }
    }
    (wire, want)
}

/// What the gateway's parser makes of `wire`, fed in the pieces `cuts` marks.
fn server_reads(escape: u8, wire: &[u8], cuts: &[prop::sample::Index]) -> Vec<Event> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
    at.extend([0, wire.len()]);
    at.sort_unstable();
    let mut parser = ServerParser::new(Some(escape));
    let mut got = Vec::new();
    for w in at.windows(2) {
        for action in parser.feed(&wire[w[0]..w[1]]) {
            push(
                &mut got,
                match action {
                    Action::Data(d) => Event::Data(d.to_vec()),
                    Action::Break => Event::Break,
                    other => panic!("the encoder made the server see {other:?}"),
                },
            );
        }
    }
    got
}

proptest! {
    #![proptest_config(config(512))]

    /// The in-band encoding round-trips through the gateway's parser: every data byte arrives
    /// as sent, every BREAK the encoder accepted arrives as a BREAK, and the server never sees
    /// a disconnect or help request the user did not type — for every escape the server may be
    /// configured with, however the wire is split into reads.
    #[test]
    fn prop_inband_encoding_round_trips_through_the_gateway(
        (escape, intents) in server_escape().prop_flat_map(|e| (Just(e), intents(e))),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let (wire, want) = encode(escape, &intents);
        let got = server_reads(escape, &wire, &cuts);
        prop_assert_eq!(got, want, "wire {:?}", String::from_utf8_lossy(&wire));
    }

    /// The whole keyboard path, as `serialgate connect` sends it (`console.rs`): typed keys,
    /// terminal replies among them → client escape parser → in-band encoding of its data and
    /// BREAKs (help is local; a disconnect ends the session, and what follows it is never
    /// sent) → the gateway's parser, fed in any pieces, reads back exactly the client's data
    /// and BREAKs, and nothing else. The two line starts agree: no BREAK the user typed is
    /// refused as mid-line.
    #[test]
    fn prop_typed_keys_reach_the_console(
        (local, typed) in local_escape().prop_flat_map(|e| (Just(e), keyboard(e))),
        remote in server_escape(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut keys = EscapeParser::new(Some(local));
        let mut inband = InBand::new(Some(remote));
        let (mut wire, mut want) = (Vec::new(), Vec::new());
        for key in keys.feed(&typed) {
            match key {
                Key::Data(d) => {
                    wire.extend(inband.data(&d));
                    push(&mut want, Event::Data(d));
                }
                Key::Break => {
                    let bytes = inband.brk();
                    prop_assert!(bytes.is_ok(), "BREAK refused: {:?}", bytes);
                    wire.extend(bytes.unwrap_or_default());
                    push(&mut want, Event::Break);
                }
                Key::Help => {}
                Key::Disconnect => break,
            }
        }
        prop_assert_eq!(server_reads(remote, &wire, &cuts), want);
    }

    /// The client's parser: any bytes, split anywhere, give the same keys as one read.
    #[test]
    fn prop_client_escape_parser_split_invariant(
        escape in prop::option::of(any::<u8>()),
        input in keyboard(b'~'),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
    ) {
        let run = |pieces: &[usize]| {
            let mut p = EscapeParser::new(escape);
            let mut keys: Vec<Key> = Vec::new();
            for w in pieces.windows(2) {
                for key in p.feed(&input[w[0]..w[1]]) {
                    match (keys.last_mut(), key) {
                        (Some(Key::Data(prev)), Key::Data(d)) => prev.extend_from_slice(&d),
                        (_, k) => keys.push(k),
                    }
                }
            }
            keys
        };
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        at.extend([0, input.len()]);
        at.sort_unstable();
        prop_assert_eq!(run(&at), run(&[0, input.len()]));
    }

    /// `--escape`: any text is accepted or refused without panicking, and an accepted
    /// character is shown the way it is typed, which parses back to itself.
    #[test]
    fn prop_escape_flag_round_trips(text in prop_oneof![".{0,3}", "\\^.", Just("none".to_owned())]) {
        if let Ok(Some(e)) = parse_escape(&text) {
            prop_assert_eq!(parse_escape(&show(e)), Ok(Some(e)));
        }
    }
}
