//! RFC 854 telnet client codec: strips commands from console output, answers option
//! negotiation, escapes 0xFF in user input, and provides `IAC BRK` as the BREAK.
//!
//! The parser is a byte-at-a-time state machine, so sequences split across reads need no
//! buffering. Negotiation follows RFC 1143 in spirit: we never initiate, we answer a request only
//! when it would change an option's state (or to refuse it), so two peers cannot loop.

use bytes::{BufMut, BytesMut};

use crate::stream::Codec;

const IAC: u8 = 255;
const DONT: u8 = 254;
const DO: u8 = 253;
const WONT: u8 = 252;
const WILL: u8 = 251;
const SB: u8 = 250;
const BRK: u8 = 243;
const SE: u8 = 240;

const CR: u8 = b'\r';
const NUL: u8 = 0;

const OPT_BINARY: u8 = 0;
const OPT_ECHO: u8 = 1;
const OPT_SGA: u8 = 3;

/// Where the parser is within the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    /// After a CR in NVT (non-binary) mode, where CR NUL stands for a bare CR.
    Cr,
    Iac,
    /// After `IAC WILL|WONT|DO|DONT`, waiting for the option byte.
    Negotiate(u8),
    /// Inside `IAC SB ... IAC SE`, whose content is skipped.
    Sb,
    SbIac,
}

/// The options that can be on, as bits: the only ones we ever accept.
#[derive(Debug, Default, Clone, Copy)]
struct Enabled(u8);

impl Enabled {
    fn bit(option: u8) -> u8 {
        match option {
            OPT_BINARY => 1,
            OPT_ECHO => 2,
            OPT_SGA => 4,
            _ => 0,
        }
    }

    fn get(self, option: u8) -> bool {
        self.0 & Self::bit(option) != 0
    }

    fn set(&mut self, option: u8, on: bool) {
        if on {
            self.0 |= Self::bit(option);
        } else {
            self.0 &= !Self::bit(option);
        }
    }
}

/// Telnet client state for one connection.
#[derive(Debug)]
pub(crate) struct Telnet {
    state: State,
    /// Options the server performs (it sent WILL and we agreed).
    him: Enabled,
    /// Options we perform (it sent DO and we agreed).
    us: Enabled,
}

impl Default for Telnet {
    fn default() -> Self {
        Self {
            state: State::Data,
            him: Enabled::default(),
            us: Enabled::default(),
        }
    }
}

impl Telnet {
    /// Whether we accept the server performing `option`: it echoes (the console's own echo),
    /// suppresses go-ahead, and may send binary.
    fn accept_him(option: u8) -> bool {
        matches!(option, OPT_ECHO | OPT_SGA | OPT_BINARY)
    }

    /// Whether we agree to perform `option`: only 8-bit clean sending and no go-ahead.
    fn accept_us(option: u8) -> bool {
        matches!(option, OPT_BINARY | OPT_SGA)
    }

    fn step(&mut self, byte: u8, data: &mut Vec<u8>, replies: &mut BytesMut) {
        match self.state {
            State::Data => self.data_byte(byte, data),
            State::Cr => {
                self.state = State::Data;
                // CR NUL is how NVT sends a bare CR: keep the CR (already delivered), drop NUL.
                if byte != NUL {
                    self.data_byte(byte, data);
                }
            }
            State::Iac => self.command(byte, data),
            State::Negotiate(verb) => {
                self.state = State::Data;
                self.negotiate(verb, byte, replies);
            }
            State::Sb => {
                if byte == IAC {
                    self.state = State::SbIac;
                }
            }
            State::SbIac => match byte {
                SE => self.state = State::Data,
                // An escaped 0xFF inside the subnegotiation: still skipping.
                IAC => self.state = State::Sb,
                // A command inside SB means the peer never ended it; treat it as a command.
                other => self.command(other, data),
            },
        }
    }

    fn data_byte(&mut self, byte: u8, data: &mut Vec<u8>) {
        if byte == IAC {
            self.state = State::Iac;
            return;
        }
        data.push(byte);
        if byte == CR && !self.him.get(OPT_BINARY) {
            self.state = State::Cr;
        }
    }

    /// The byte after IAC.
    fn command(&mut self, byte: u8, data: &mut Vec<u8>) {
        self.state = match byte {
            IAC => {
                data.push(IAC);
                State::Data
            }
            WILL | WONT | DO | DONT => State::Negotiate(byte),
            SB => State::Sb,
            // NOP, DM, BRK, IP, AO, AYT, EC, EL, GA, a stray SE: nothing for a console to show.
            _ => State::Data,
        };
    }

    /// Answers `IAC verb option`. WILL/WONT concern the server's side (`him`), DO/DONT ours
    /// (`us`); both follow the same rule.
    fn negotiate(&mut self, verb: u8, option: u8, replies: &mut BytesMut) {
        // For each verb: which side's table, whether we would agree, and our yes/no answers.
        let (table, acceptable, yes, no) = match verb {
            WILL | WONT => (&mut self.him, Self::accept_him(option), DO, DONT),
            DO | DONT => (&mut self.us, Self::accept_us(option), WILL, WONT),
            _ => return,
        };
        let mut reply = |answer: u8| replies.put_slice(&[IAC, answer, option]);
        let asks_on = matches!(verb, WILL | DO);
        if asks_on && !acceptable {
            // Refusing leaves the option off, so the peer's next move cannot loop back to us.
            reply(no);
        } else if asks_on != table.get(option) {
            table.set(option, asks_on);
            reply(if asks_on { yes } else { no });
        }
        // Otherwise the option is already in the requested state: answering would start a loop.
    }
}

impl Codec for Telnet {
    fn decode(&mut self, wire: &[u8], data: &mut Vec<u8>, replies: &mut BytesMut) {
        for &byte in wire {
            self.step(byte, data, replies);
        }
    }

    fn encode(&mut self, data: &[u8], wire: &mut BytesMut) {
        let binary = self.us.get(OPT_BINARY);
        wire.reserve(data.len());
        for &byte in data {
            match byte {
                IAC => wire.put_slice(&[IAC, IAC]),
                // NVT mode: a bare CR must be followed by NUL (RFC 854).
                CR if !binary => wire.put_slice(&[CR, NUL]),
                _ => wire.put_u8(byte),
            }
        }
    }

    fn break_sequence(&self) -> Option<&'static [u8]> {
        Some(&[IAC, BRK])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// QEMU's `telnet=on` greeting: WILL ECHO, WILL SGA, WILL BINARY, DO BINARY.
    const QEMU_HELLO: &[u8] = &[
        0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00,
    ];
    /// Our answer: DO ECHO, DO SGA, DO BINARY, WILL BINARY.
    const QEMU_REPLY: &[u8] = &[
        0xff, 0xfd, 0x01, 0xff, 0xfd, 0x03, 0xff, 0xfd, 0x00, 0xff, 0xfb, 0x00,
    ];

    fn decode(codec: &mut Telnet, wire: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut data = Vec::new();
        let mut replies = BytesMut::new();
        codec.decode(wire, &mut data, &mut replies);
        (data, replies.to_vec())
    }

    fn encode(codec: &mut Telnet, data: &[u8]) -> Vec<u8> {
        let mut wire = BytesMut::new();
        codec.encode(data, &mut wire);
        wire.to_vec()
    }

    /// A stream exercising every state: negotiation, refused options, SB with an escaped IAC,
    /// an IAC-escaped 0xFF in data, other commands, and text.
    fn mixed_stream() -> Vec<u8> {
        let mut s = Vec::new();
        s.extend_from_slice(QEMU_HELLO);
        s.extend_from_slice(b"login:");
        s.extend_from_slice(&[IAC, DO, 24, IAC, WILL, 5]); // TTYPE, STATUS: refused
        s.extend_from_slice(&[IAC, SB, 24, 1, IAC, IAC, 7, IAC, SE]);
        s.extend_from_slice(&[b'a', IAC, IAC, b'b', IAC, 241, IAC, 249, b'\r', b'\n']);
        s.extend_from_slice(&[IAC, DO, 31, 0xfe, 0x00]);
        s
    }

    #[test]
    fn qemu_greeting_gets_agreement_and_no_data() {
        let mut t = Telnet::default();
        let (data, replies) = decode(&mut t, QEMU_HELLO);
        assert!(data.is_empty());
        assert_eq!(replies, QEMU_REPLY);
        // The same offers again change nothing, so they get no answer: no negotiation loop.
        let (data, replies) = decode(&mut t, QEMU_HELLO);
        assert!(data.is_empty());
        assert!(replies.is_empty(), "{replies:x?}");
    }

    #[test]
    fn unknown_options_are_refused() {
        let mut t = Telnet::default();
        let (_, replies) = decode(&mut t, &[IAC, WILL, 24, IAC, DO, 31, IAC, DO, OPT_ECHO]);
        assert_eq!(
            replies,
            [IAC, DONT, 24, IAC, WONT, 31, IAC, WONT, OPT_ECHO],
            "WILL x -> DONT x, DO x -> WONT x, and we never echo"
        );
    }

    #[test]
    fn wont_and_dont_are_answered_only_when_they_change_state() {
        let mut t = Telnet::default();
        // Not enabled yet: nothing to acknowledge.
        let (_, replies) = decode(&mut t, &[IAC, WONT, OPT_ECHO, IAC, DONT, OPT_BINARY]);
        assert!(replies.is_empty());
        decode(&mut t, QEMU_HELLO);
        let (_, replies) = decode(&mut t, &[IAC, WONT, OPT_ECHO, IAC, DONT, OPT_BINARY]);
        assert_eq!(replies, [IAC, DONT, OPT_ECHO, IAC, WONT, OPT_BINARY]);
        let (_, replies) = decode(&mut t, &[IAC, WONT, OPT_ECHO, IAC, DONT, OPT_BINARY]);
        assert!(replies.is_empty());
        // And it can be turned on again.
        let (_, replies) = decode(&mut t, &[IAC, WILL, OPT_ECHO]);
        assert_eq!(replies, [IAC, DO, OPT_ECHO]);
    }

    #[test]
    fn iac_iac_is_one_ff_byte() {
        let mut t = Telnet::default();
        let (data, replies) = decode(&mut t, &[b'x', IAC, IAC, IAC, IAC, b'y']);
        assert_eq!(data, [b'x', 0xff, 0xff, b'y']);
        assert!(replies.is_empty());
    }

    #[test]
    fn subnegotiation_is_skipped_including_escaped_iac() {
        let mut t = Telnet::default();
        let wire = [b'a', IAC, SB, 24, 1, IAC, IAC, SE, 9, IAC, SE, b'b'];
        let (data, replies) = decode(&mut t, &wire);
        assert_eq!(data, b"ab");
        assert!(replies.is_empty());
    }

    #[test]
    fn command_inside_unterminated_subnegotiation_is_processed() {
        let mut t = Telnet::default();
        let (data, replies) = decode(&mut t, &[IAC, SB, 24, IAC, WILL, OPT_SGA, b'z']);
        assert_eq!(data, b"z");
        assert_eq!(replies, [IAC, DO, OPT_SGA]);
    }

    #[test]
    fn other_commands_are_dropped() {
        let mut t = Telnet::default();
        // NOP, DM, BRK, IP, AO, AYT, EC, EL, GA and a stray SE.
        let mut wire = Vec::new();
        for command in [241, 242, 243, 244, 245, 246, 247, 248, 249, 240] {
            wire.extend_from_slice(&[b'.', IAC, command]);
        }
        let (data, replies) = decode(&mut t, &wire);
        assert_eq!(data, b"..........");
        assert!(replies.is_empty());
    }

    #[test]
    fn cr_nul_is_a_bare_cr_until_binary() {
        let mut t = Telnet::default();
        let (data, _) = decode(&mut t, b"a\r\0b\r\nc");
        assert_eq!(data, b"a\rb\r\nc");
        decode(&mut t, &[IAC, WILL, OPT_BINARY]);
        let (data, _) = decode(&mut t, b"a\r\0b");
        assert_eq!(data, b"a\r\0b", "binary mode passes NUL through");
    }

    #[test]
    fn cr_then_iac_still_parses_the_command() {
        let mut t = Telnet::default();
        let (data, replies) = decode(&mut t, &[CR, IAC, WILL, OPT_ECHO, b'x']);
        assert_eq!(data, b"\rx");
        assert_eq!(replies, [IAC, DO, OPT_ECHO]);
    }

    #[test]
    fn every_split_point_gives_the_same_result() {
        let stream = mixed_stream();
        let (whole_data, whole_replies) = decode(&mut Telnet::default(), &stream);
        assert_eq!(whole_data, b"login:a\xffb\r\n\xfe\x00");
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let mut t = Telnet::default();
                let mut data = Vec::new();
                let mut replies = BytesMut::new();
                for part in [&stream[..i], &stream[i..j], &stream[j..]] {
                    t.decode(part, &mut data, &mut replies);
                }
                assert_eq!(data, whole_data, "split at {i},{j}");
                assert_eq!(replies.to_vec(), whole_replies, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_gives_the_same_result() {
        let stream = mixed_stream();
        let whole = decode(&mut Telnet::default(), &stream);
        let mut t = Telnet::default();
        let mut data = Vec::new();
        let mut replies = BytesMut::new();
        for byte in &stream {
            t.decode(std::slice::from_ref(byte), &mut data, &mut replies);
        }
        assert_eq!((data, replies.to_vec()), whole);
    }

    #[test]
    fn input_ff_is_doubled() {
        let mut t = Telnet::default();
        decode(&mut t, QEMU_HELLO);
        assert_eq!(
            encode(&mut t, &[1, 0xff, 2, 0xff, 0xff]),
            [1, 0xff, 0xff, 2, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn input_cr_gets_nul_until_we_send_binary() {
        let mut t = Telnet::default();
        assert_eq!(encode(&mut t, b"ls\r"), b"ls\r\0");
        decode(&mut t, &[IAC, DO, OPT_BINARY]);
        assert_eq!(encode(&mut t, b"ls\r"), b"ls\r");
    }

    #[test]
    fn all_byte_values_round_trip_in_binary_mode() {
        let mut client = Telnet::default();
        decode(&mut client, QEMU_HELLO);
        let all: Vec<u8> = (0..=255).collect();
        // What we send is what a binary-mode server would echo back to us.
        let wire = encode(&mut client, &all);
        let (data, replies) = decode(&mut client, &wire);
        assert_eq!(data, all);
        assert!(replies.is_empty());
    }

    #[test]
    fn break_is_iac_brk() {
        assert_eq!(Telnet::default().break_sequence(), Some(&[0xff, 0xf3][..]));
    }
}
