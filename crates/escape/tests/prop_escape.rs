//! Property tests of the escape state machine: no input makes it panic, no byte is lost or
//! invented, the split of the input into reads does not matter, and `at_line_start` says
//! exactly when the escape character would begin an escape (what the client's in-band encoder
//! relies on).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use escape::{Command, Doubled, Event, Parser};
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

/// Input rich in what the parser looks at: newlines, escape and command letters, terminal
/// replies whole, and the bytes they are made of (so partial and malformed ones too).
fn input(escape: u8) -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        4 => prop::sample::select(vec![
            escape, b'\r', b'\n', b'B', b'.', b'?', b'~', 0x1b, b'[', b'2', b'0', b'1', b';',
            b'R', b'I', b'O', b'c', b'>', b'A',
        ])
        .prop_map(|b| vec![b]),
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
        ])
        .prop_map(<[u8]>::to_vec),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(piece, 0..32).prop_map(|pieces| pieces.concat())
}

fn escape_char() -> impl Strategy<Value = u8> {
    prop_oneof![4 => Just(b'~'), 1 => Just(0x1d), 2 => any::<u8>()]
}

fn doubled() -> impl Strategy<Value = Doubled> {
    prop_oneof![Just(Doubled::Literal), Just(Doubled::CommandFirst)]
}

/// Feeds `input` in the pieces `cuts` marks and merges adjacent data.
fn run(mut p: Parser, input: &[u8], cuts: &[prop::sample::Index]) -> Vec<Event> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
    at.extend([0, input.len()]);
    at.sort_unstable();
    let mut merged: Vec<Event> = Vec::new();
    for w in at.windows(2) {
        for event in p.feed(&input[w[0]..w[1]]) {
            assert_ne!(event, Event::Data(Vec::new()), "empty data");
            match (merged.last_mut(), event) {
                (Some(Event::Data(prev)), Event::Data(d)) => prev.extend_from_slice(&d),
                (_, e) => merged.push(e),
            }
        }
    }
    merged
}

proptest! {
    #![proptest_config(config(1024))]

    /// No byte is lost or invented, byte by byte: each input byte is delivered as itself, except
    /// that an escape character at the start of a line is held, and the byte after it decides:
    /// a command letter is consumed with it (a command, no data), a second escape character
    /// delivers one escape character, anything else is delivered with the escape in front. So
    /// `data = input − 2 × commands − doubled escapes − (1 if an escape is pending at the end)`.
    #[test]
    fn prop_every_byte_is_accounted_for(
        (escape, input) in escape_char().prop_flat_map(|e| (Just(e), input(e))),
        doubled in doubled(),
    ) {
        let mut p = Parser::new(Some(escape), doubled);
        let (mut data, mut commands, mut doubles, mut held) = (Vec::new(), 0, 0, false);
        for &b in &input {
            let opens = p.at_line_start() && b == escape;
            let mut out = Vec::new();
            let command = p.step(b, &mut out);
            let want: &[u8] = match (held, command) {
                (_, Some(c)) => {
                    prop_assert!(held && c.letter() == b, "{:?} from {:?}", c, b);
                    commands += 1;
                    &[]
                }
                (false, None) if opens => &[],
                (false, None) => &[b],
                (true, None) if b == escape => {
                    doubles += 1;
                    &[escape]
                }
                (true, None) => &[escape, b],
            };
            prop_assert_eq!(&out[..], want, "byte {:?} after {:?}", b, data.escape_ascii().to_string());
            held = opens && command.is_none();
            data.extend(out);
        }
        prop_assert_eq!(data.len(), input.len() - 2 * commands - doubles - usize::from(held));
        // The same input in one feed gives the same data and commands.
        let events = run(Parser::new(Some(escape), doubled), &input, &[]);
        let fed: Vec<u8> = events.iter().flat_map(|e| match e {
            Event::Data(d) => d.clone(),
            Event::Command(_) => vec![],
        }).collect();
        prop_assert_eq!(fed, data);
        let fed_commands = events.iter().filter(|e| matches!(e, Event::Command(_))).count();
        prop_assert_eq!(fed_commands, commands);
    }

    /// Without an escape character every byte passes as one piece of data.
    #[test]
    fn prop_no_escape_passes_everything(input in input(b'~')) {
        let events = run(Parser::new(None, Doubled::Literal), &input, &[]);
        let want = if input.is_empty() { vec![] } else { vec![Event::Data(input)] };
        prop_assert_eq!(events, want);
    }

    /// Any input, split anywhere, gives the same data and commands as in one feed.
    #[test]
    fn prop_split_invariant(
        escape in prop::option::of(escape_char()),
        doubled in doubled(),
        input in input(b'~'),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let parser = Parser::new(escape, doubled);
        prop_assert_eq!(run(parser.clone(), &input, &cuts), run(parser, &input, &[]));
    }

    /// After any input, `at_line_start` holds exactly when the escape then `.` would
    /// disconnect (for an escape character that is not itself a command letter).
    #[test]
    fn prop_at_line_start_is_where_an_escape_works(
        escape in escape_char().prop_filter("a command letter", |c| !b".B?".contains(c)),
        doubled in doubled(),
        input in input(b'~'),
    ) {
        let mut p = Parser::new(Some(escape), doubled);
        for &b in &input {
            p.step(b, &mut Vec::new());
            let disconnects = p.clone().feed(&[escape, b'.']);
            prop_assert_eq!(
                p.at_line_start(),
                disconnects == vec![Event::Command(Command::Disconnect)],
                "after {:?}", input.escape_ascii().to_string()
            );
        }
    }
}
