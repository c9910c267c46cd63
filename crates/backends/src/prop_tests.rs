//! Property tests of the byte streams a console (or its operator) controls: the telnet
//! decoder gives the same data and replies however the stream is split, never loops, never
//! panics and is linear; 0xFF (and CR in NVT mode) escaping round-trips; console URIs parse or
//! are refused, and print back to themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::BytesMut;
use proptest::prelude::*;
use proptest::test_runner::Config;

use crate::ConsoleUri;
use crate::stream::Codec;
use crate::telnet::Telnet;

const IAC: u8 = 255;

/// The default case count, unless `PROPTEST_CASES` says otherwise (`scripts/fuzz.sh`).
fn config(cases: u32) -> Config {
    let base = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        Config { cases, ..base }
    }
}

/// Telnet-rich bytes: IAC and every command and option byte the decoder handles, CR and NUL,
/// and anything else.
fn wire() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => any::<u8>().prop_map(|b| vec![b]),
        2 => Just(vec![IAC]),
        2 => (prop::sample::select(vec![251u8, 252, 253, 254]), prop::sample::select(vec![0u8, 1, 3, 5, 24, 31, 255]))
            .prop_map(|(verb, option)| vec![IAC, verb, option]),
        1 => prop::sample::select(vec![240u8, 241, 243, 246, 249, 250, 255]).prop_map(|c| vec![IAC, c]),
        1 => Just(vec![b'\r', 0]),
        1 => Just(vec![b'\r', b'\n']),
        1 => prop::collection::vec(any::<u8>(), 0..6).prop_map(|body| {
            let mut sb = vec![IAC, 250];
            sb.extend(body);
            sb.extend([IAC, 240]);
            sb
        }),
    ];
    prop::collection::vec(token, 0..24).prop_map(|t| t.concat())
}

fn decode_in_pieces(wire: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<u8>) {
    let mut t = Telnet::default();
    let mut data = Vec::new();
    let mut replies = BytesMut::new();
    for w in cuts.windows(2) {
        t.decode(&wire[w[0]..w[1]], &mut data, &mut replies);
    }
    (data, replies.to_vec())
}

/// A telnet peer that has sent `hello` (so options are in a known state).
fn negotiated(hello: &[u8]) -> Telnet {
    let mut t = Telnet::default();
    t.decode(hello, &mut Vec::new(), &mut BytesMut::new());
    t
}

proptest! {
    #![proptest_config(config(512))]

    /// Any stream, split at any points (including byte by byte), decodes to the same data and
    /// the same replies as the whole stream; data never grows, and every reply is one
    /// three-byte `IAC verb option` answering one negotiation.
    #[test]
    fn prop_telnet_decoder_split_invariant(
        wire in wire(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let whole = decode_in_pieces(&wire, &[0, wire.len()]);
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
        at.extend([0, wire.len()]);
        at.sort_unstable();
        prop_assert_eq!(&decode_in_pieces(&wire, &at), &whole);
        let bytewise: Vec<usize> = (0..=wire.len()).collect();
        prop_assert_eq!(&decode_in_pieces(&wire, &bytewise), &whole);

        let (data, replies) = whole;
        prop_assert!(data.len() <= wire.len());
        prop_assert_eq!(replies.len() % 3, 0);
        let negotiations = wire.windows(2).filter(|w| w[0] == IAC && (251..=254).contains(&w[1])).count();
        prop_assert!(replies.len() / 3 <= negotiations, "{} replies", replies.len() / 3);
        for r in replies.chunks(3) {
            prop_assert_eq!(r[0], IAC);
            prop_assert!((251..=254).contains(&r[1]));
        }
    }

    /// What the client encodes is what a peer in the same mode decodes: 0xFF is doubled and
    /// undoubled, and in NVT mode CR NUL stands for a bare CR. Checked fresh (NVT both ways)
    /// and after QEMU's greeting (binary both ways).
    #[test]
    fn prop_telnet_escaping_round_trips(
        data in prop::collection::vec(prop_oneof![Just(IAC), Just(b'\r'), Just(0u8), any::<u8>()], 0..64),
        binary in any::<bool>(),
    ) {
        // WILL BINARY and DO BINARY: both directions binary.
        let hello: &[u8] = if binary { &[IAC, 251, 0, IAC, 253, 0] } else { &[] };
        let mut sender = negotiated(hello);
        let mut wire = BytesMut::new();
        sender.encode(&data, &mut wire);
        let escaped = data.iter().filter(|&&b| b == IAC).count();
        let crs = if binary { 0 } else { data.iter().filter(|&&b| b == b'\r').count() };
        prop_assert_eq!(wire.len(), data.len() + escaped + crs);
        let mut receiver = negotiated(hello);
        let mut got = Vec::new();
        let mut replies = BytesMut::new();
        receiver.decode(&wire, &mut got, &mut replies);
        prop_assert_eq!(got, data);
        prop_assert!(replies.is_empty());
    }

    /// Console URIs (from the config file): any text parses or is refused with an error that
    /// stays small, and a parsed URI prints as text that parses back to the same URI.
    #[test]
    fn prop_console_uri_round_trips(text in prop_oneof![
        (
            prop::sample::select(vec!["unix:", "unix+telnet:", "tcp:", "telnet:", "tty:", "exec:", "sim:", "TCP:", "", "x:"]),
            prop_oneof![
                "[ -~]{0,24}",
                "[a-z0-9.]{1,10}:[0-9]{1,6}",
                "\\[[0-9a-f:]{0,8}\\]:[0-9]{1,5}",
                "/dev/tty[A-Z0-9]{1,3}(\\?baud=[0-9]{0,7})?",
                "[a-z]{1,6}( ('[^']{0,6}'|\"[^\"]{0,6}\"|[a-z\\\\-]{1,6})){0,3}",
                ".{0,12}",
            ],
        ).prop_map(|(scheme, rest)| format!("{scheme}{rest}")),
        ".{0,32}",
    ]) {
        match text.parse::<ConsoleUri>() {
            Ok(uri) => {
                let shown = uri.to_string();
                prop_assert_eq!(shown.parse::<ConsoleUri>(), Ok(uri), "{}", shown);
            }
            Err(e) => prop_assert!(e.to_string().len() < 1024),
        }
    }
}

#[test]
fn prop_linear_telnet_decoder_on_a_megabyte() {
    const BIG: usize = 1 << 20;
    for unit in [
        &[IAC, IAC][..],
        &[IAC, 250],
        &[IAC, 253, 1, IAC, 254, 1],
        &[IAC, 251, 24],
        &[b'\r', 0],
        &[IAC],
    ] {
        let wire = unit.repeat(BIG / unit.len());
        let (data, replies) = decode_in_pieces(&wire, &[0, wire.len()]);
        assert!(data.len() <= wire.len() && replies.len() <= wire.len() * 3);
    }
    // A megabyte of escaped 0xFF through the encoder and back.
    let data = vec![IAC; BIG];
    let mut wire = BytesMut::new();
    Telnet::default().encode(&data, &mut wire);
    let (back, _) = decode_in_pieces(&wire, &[0, wire.len()]);
    assert_eq!(back, data);
}

#[test]
fn prop_linear_console_uris() {
    const BIG: usize = 1 << 20;
    for text in [
        format!("tcp:{}:23", "a".repeat(BIG)),
        format!("tty:/dev/ttyS0?{}", "baud=1&".repeat(BIG / 7)),
        format!("exec:{}", "'a' ".repeat(BIG / 4)),
        format!("exec:{}", "\"".repeat(BIG)),
        format!("sim:{}", "a".repeat(BIG)),
        ":".repeat(BIG),
    ] {
        if let Err(e) = text.parse::<ConsoleUri>() {
            assert!(e.to_string().len() < 1024);
        }
    }
}
