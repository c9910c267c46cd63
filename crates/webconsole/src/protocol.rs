#![doc = include_str!("../PROTOCOL.md")]

use std::fmt;

/// Message types the server sends.
pub mod to_browser {
    /// Console output bytes.
    pub const OUTPUT: u8 = 0x00;
    /// UTF-8 text for the terminal and the status bar.
    pub const NOTICE: u8 = 0x01;
    /// UTF-8 JSON describing the session.
    pub const STATUS: u8 = 0x02;
    /// UTF-8 text saying why the session ended.
    pub const END: u8 = 0x03;
}

/// Message types the page sends.
pub mod from_browser {
    /// Bytes typed or pasted.
    pub const INPUT: u8 = 0x00;
    /// Columns and rows, big-endian `u16` each.
    pub const RESIZE: u8 = 0x01;
    /// A BREAK, optionally followed by a SysRq letter.
    pub const BREAK: u8 = 0x02;
    /// Output bytes written since the previous ack, big-endian `u32`.
    pub const ACK: u8 = 0x03;
}

/// The most input one message carries; the page splits longer input.
pub const MAX_INPUT: usize = 64 * 1024;

/// The largest message the page sends, so a server can refuse larger ones unread.
pub const MAX_FROM_BROWSER: usize = 1 + MAX_INPUT;

/// The most columns or rows a resize may ask for.
pub const MAX_DIMENSION: u16 = 1000;

/// A message from the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FromBrowser<'a> {
    /// Bytes for the console.
    Input(&'a [u8]),
    /// The terminal's new size, each in `1..=MAX_DIMENSION`.
    Resize { cols: u16, rows: u16 },
    /// A BREAK, then the SysRq letter if there is one (ASCII alphanumeric).
    Break(Option<u8>),
    /// Output bytes the page has written since its previous ack.
    Ack(u32),
}

/// Why a message from the page was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolError {
    /// The message had no type byte.
    Empty,
    /// The type byte is not one of [`from_browser`]'s.
    UnknownType(u8),
    /// The payload's length is wrong for its type.
    BadLength { kind: u8, len: usize },
    /// A resize to zero or more than [`MAX_DIMENSION`] columns or rows.
    BadSize { cols: u16, rows: u16 },
    /// A SysRq letter that is not an ASCII letter or digit.
    BadSysrq(u8),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtocolError::Empty => f.write_str("empty message"),
            ProtocolError::UnknownType(kind) => write!(f, "unknown message type {kind:#04x}"),
            ProtocolError::BadLength { kind, len } => {
                write!(f, "message type {kind:#04x} with a {len}-byte payload")
            }
            ProtocolError::BadSize { cols, rows } => {
                write!(
                    f,
                    "terminal size of {cols} columns by {rows} rows out of range"
                )
            }
            ProtocolError::BadSysrq(letter) => write!(f, "SysRq letter {letter:#04x} refused"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Reads one message from the page.
pub fn parse(msg: &[u8]) -> Result<FromBrowser<'_>, ProtocolError> {
    let (&kind, payload) = msg.split_first().ok_or(ProtocolError::Empty)?;
    let bad_length = ProtocolError::BadLength {
        kind,
        len: payload.len(),
    };
    match kind {
        from_browser::INPUT => {
            if payload.is_empty() || payload.len() > MAX_INPUT {
                return Err(bad_length);
            }
            Ok(FromBrowser::Input(payload))
        }
        from_browser::RESIZE => {
            let &[c0, c1, r0, r1] = payload else {
                return Err(bad_length);
            };
            let (cols, rows) = (u16::from_be_bytes([c0, c1]), u16::from_be_bytes([r0, r1]));
            let range = 1..=MAX_DIMENSION;
            if !range.contains(&cols) || !range.contains(&rows) {
                return Err(ProtocolError::BadSize { cols, rows });
            }
            Ok(FromBrowser::Resize { cols, rows })
        }
        from_browser::BREAK => match *payload {
            [] => Ok(FromBrowser::Break(None)),
            [letter] if letter.is_ascii_alphanumeric() => Ok(FromBrowser::Break(Some(letter))),
            [letter] => Err(ProtocolError::BadSysrq(letter)),
            _ => Err(bad_length),
        },
        from_browser::ACK => {
            let &[a, b, c, d] = payload else {
                return Err(bad_length);
            };
            Ok(FromBrowser::Ack(u32::from_be_bytes([a, b, c, d])))
        }
        _ => Err(ProtocolError::UnknownType(kind)),
    }
}

fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(1 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(payload);
    frame
}

/// An output message: console bytes for the terminal.
pub fn output_frame(bytes: &[u8]) -> Vec<u8> {
    frame(to_browser::OUTPUT, bytes)
}

/// A notice message: text the page writes to the terminal as it is (end lines with `\r\n`).
pub fn notice_frame(text: &str) -> Vec<u8> {
    frame(to_browser::NOTICE, text.as_bytes())
}

/// A status message: `{"instance":…,"port":…,"ends_at_ms":…,"principal":…}`.
pub fn status_frame(json: &str) -> Vec<u8> {
    frame(to_browser::STATUS, json.as_bytes())
}

/// An end message: why the session ended. The page shows it and does not reconnect.
pub fn end_frame(text: &str) -> Vec<u8> {
    frame(to_browser::END, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input() {
        assert_eq!(parse(b"\x00a"), Ok(FromBrowser::Input(b"a")));
        assert_eq!(
            parse("\x00é\r\x1b[A".as_bytes()),
            Ok(FromBrowser::Input("é\r\x1b[A".as_bytes()))
        );
        // Raw bytes from the terminal's binary reports need not be UTF-8.
        assert_eq!(parse(b"\x00\xff\x80"), Ok(FromBrowser::Input(b"\xff\x80")));
        let mut largest = vec![0u8; MAX_FROM_BROWSER];
        largest[1..].fill(b'x');
        assert_eq!(parse(&largest), Ok(FromBrowser::Input(&largest[1..])));
    }

    #[test]
    fn input_length() {
        assert_eq!(
            parse(b"\x00"),
            Err(ProtocolError::BadLength { kind: 0, len: 0 })
        );
        let too_long = vec![0u8; MAX_FROM_BROWSER + 1];
        assert_eq!(
            parse(&too_long),
            Err(ProtocolError::BadLength {
                kind: 0,
                len: MAX_INPUT + 1
            })
        );
    }

    #[test]
    fn resize() {
        assert_eq!(
            parse(&[1, 0, 80, 0, 24]),
            Ok(FromBrowser::Resize { cols: 80, rows: 24 })
        );
        // Big-endian: 0x0100 is 256.
        assert_eq!(
            parse(&[1, 1, 0, 0, 1]),
            Ok(FromBrowser::Resize { cols: 256, rows: 1 })
        );
        let [m0, m1] = MAX_DIMENSION.to_be_bytes();
        assert_eq!(
            parse(&[1, m0, m1, m0, m1]),
            Ok(FromBrowser::Resize {
                cols: MAX_DIMENSION,
                rows: MAX_DIMENSION
            })
        );
    }

    #[test]
    fn resize_out_of_range() {
        let [o0, o1] = (MAX_DIMENSION + 1).to_be_bytes();
        for (msg, cols, rows) in [
            ([1, 0, 0, 0, 24], 0, 24),
            ([1, 0, 80, 0, 0], 80, 0),
            ([1, 0, 0, 0, 0], 0, 0),
            ([1, o0, o1, 0, 24], 1001, 24),
            ([1, 0, 80, o0, o1], 80, 1001),
            ([1, 0xff, 0xff, 0xff, 0xff], u16::MAX, u16::MAX),
        ] {
            assert_eq!(parse(&msg), Err(ProtocolError::BadSize { cols, rows }));
        }
    }

    #[test]
    fn resize_length() {
        for msg in [&[1][..], &[1, 0, 80, 0], &[1, 0, 80, 0, 24, 0]] {
            assert_eq!(
                parse(msg),
                Err(ProtocolError::BadLength {
                    kind: 1,
                    len: msg.len() - 1
                })
            );
        }
    }

    #[test]
    fn break_() {
        assert_eq!(parse(&[2]), Ok(FromBrowser::Break(None)));
        for letter in [b'b', b's', b'z', b'A', b'0', b'9'] {
            assert_eq!(parse(&[2, letter]), Ok(FromBrowser::Break(Some(letter))));
        }
    }

    #[test]
    fn break_with_a_bad_letter() {
        for letter in [b' ', b'\r', b'\0', b'~', b'.', 0x7f, 0x80, 0xff] {
            assert_eq!(parse(&[2, letter]), Err(ProtocolError::BadSysrq(letter)));
        }
        assert_eq!(
            parse(b"\x02sb"),
            Err(ProtocolError::BadLength { kind: 2, len: 2 })
        );
    }

    #[test]
    fn ack() {
        assert_eq!(parse(&[3, 0, 0, 0x40, 0]), Ok(FromBrowser::Ack(16384)));
        assert_eq!(parse(&[3, 0, 0, 0, 0]), Ok(FromBrowser::Ack(0)));
        assert_eq!(
            parse(&[3, 0xff, 0xff, 0xff, 0xff]),
            Ok(FromBrowser::Ack(u32::MAX))
        );
        for msg in [&[3][..], &[3, 0, 0, 1], &[3, 0, 0, 0, 1, 0]] {
            assert_eq!(
                parse(msg),
                Err(ProtocolError::BadLength {
                    kind: 3,
                    len: msg.len() - 1
                })
            );
        }
    }

    #[test]
    fn empty_and_unknown() {
        assert_eq!(parse(&[]), Err(ProtocolError::Empty));
        for kind in [4, 0x10, 0x7f, 0xff] {
            assert_eq!(parse(&[kind]), Err(ProtocolError::UnknownType(kind)));
            assert_eq!(parse(&[kind, 0, 0]), Err(ProtocolError::UnknownType(kind)));
        }
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(ProtocolError::Empty.to_string(), "empty message");
        assert_eq!(
            ProtocolError::UnknownType(9).to_string(),
            "unknown message type 0x09"
        );
        assert_eq!(
            ProtocolError::BadLength { kind: 1, len: 3 }.to_string(),
            "message type 0x01 with a 3-byte payload"
        );
        assert_eq!(
            ProtocolError::BadSize { cols: 0, rows: 24 }.to_string(),
            "terminal size of 0 columns by 24 rows out of range"
        );
        assert_eq!(
            ProtocolError::BadSysrq(b' ').to_string(),
            "SysRq letter 0x20 refused"
        );
    }

    #[test]
    fn frames() {
        assert_eq!(output_frame(b"\x1b[1mhi\xe2"), b"\x00\x1b[1mhi\xe2");
        assert_eq!(output_frame(b""), [0]);
        assert_eq!(notice_frame("port busy\r\n"), b"\x01port busy\r\n");
        assert_eq!(status_frame(r#"{"port":0}"#), b"\x02{\"port\":0}");
        assert_eq!(end_frame("session expired"), b"\x03session expired");
        assert_eq!(
            end_frame("é"),
            [to_browser::END, 0xc3, 0xa9],
            "UTF-8 as it is"
        );
    }
}
