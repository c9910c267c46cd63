//! The OpenSSH-style escape: one state machine for both ends of a serialgate session.
//!
//! After a newline (or at the very start), the escape character (`~` by default) followed by
//! `.` disconnects, `B` asks for a BREAK, `?` asks for help, and the escape character again
//! sends one escape character. Anything else passes with the escape character in front of it.
//! The gateway runs this on the bytes its SSH clients send; `serialgate connect` runs it on the
//! user's keystrokes, and models the gateway's parser with it to encode what it sends.
//!
//! Input that nobody typed does not end the start of a line: a terminal answers the guest's
//! queries (busybox ash asks for the cursor position at every prompt) in the same stream as the
//! keys, so the answer lands between the user's Enter and the escape. Such replies and markers
//! (the list is in `reply.rs`) at the start of a line pass through as data, unchanged and at
//! once, and the line start survives them; any other escape sequence (an arrow key) is a key
//! and ends it. The parser never holds data back, so a lone `ESC` key is not delayed; only an
//! escape character waits for the byte after it.

mod reply;

pub use reply::MAX_SEQUENCE;

/// A command typed after the escape character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `B`: send a BREAK.
    Break,
    /// `.`: end the session.
    Disconnect,
    /// `?`: list the escapes.
    Help,
}

impl Command {
    /// The letter typed after the escape character.
    pub fn letter(self) -> u8 {
        match self {
            Command::Break => b'B',
            Command::Disconnect => b'.',
            Command::Help => b'?',
        }
    }

    fn from_letter(b: u8) -> Option<Self> {
        match b {
            b'B' => Some(Command::Break),
            b'.' => Some(Command::Disconnect),
            b'?' => Some(Command::Help),
            _ => None,
        }
    }
}

/// What the input asks for, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes for the console, never empty.
    Data(Vec<u8>),
    Command(Command),
}

/// What the escape character typed twice means when it is also a command letter (`.`, `B`,
/// `?`); for any other escape character it is one literal escape character either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doubled {
    /// One literal escape character: any byte can be sent, which is what the client's in-band
    /// encoder relies on. The gateway's rule.
    Literal,
    /// The command: OpenSSH's rule, which `serialgate connect` follows for the user's keys.
    CommandFirst,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line: the escape character here is special.
    LineStart,
    Normal,
    /// Saw the escape character at the start of a line.
    Escape,
    /// Inside an escape sequence that began at the start of a line: if it is a terminal reply
    /// the line start survives it.
    Sequence(reply::Sequence),
}

const ESC: u8 = 0x1b;

fn is_newline(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// A streaming escape parser: anything may be split across `feed` calls at any byte. Work is
/// constant per byte and memory is bounded.
#[derive(Debug, Clone)]
pub struct Parser {
    escape: Option<u8>,
    doubled: Doubled,
    state: State,
}

impl Parser {
    /// `escape = None` passes everything through.
    pub fn new(escape: Option<u8>, doubled: Doubled) -> Self {
        Self {
            escape,
            doubled,
            state: State::LineStart,
        }
    }

    pub fn escape(&self) -> Option<u8> {
        self.escape
    }

    /// Whether the escape character would begin an escape if it came next.
    pub fn at_line_start(&self) -> bool {
        self.escape.is_some() && self.state == State::LineStart
    }

    /// Splits `input` into data and commands. Every byte that is not the escape character
    /// comes out once, in order, as data or as a command's letter; an escape character is
    /// dropped only when it begins a command, when it is the second of a doubled pair, and
    /// (until the next byte decides) when it ends the input at the start of a line.
    pub fn feed(&mut self, input: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut data = Vec::with_capacity(input.len());
        for &b in input {
            if let Some(command) = self.step(b, &mut data) {
                if !data.is_empty() {
                    events.push(Event::Data(std::mem::take(&mut data)));
                }
                events.push(Event::Command(command));
            }
        }
        if !data.is_empty() {
            events.push(Event::Data(data));
        }
        events
    }

    /// One byte: appends what it delivers to `data` and returns the command it completes.
    pub fn step(&mut self, b: u8, data: &mut Vec<u8>) -> Option<Command> {
        let Some(esc) = self.escape else {
            data.push(b);
            return None;
        };
        match self.state {
            State::Escape => {
                self.state = State::Normal;
                let literal = b == esc && self.doubled == Doubled::Literal;
                if let Some(command) = Command::from_letter(b).filter(|_| !literal) {
                    self.state = State::LineStart;
                    return Some(command);
                }
                data.push(esc);
                if b != esc {
                    self.typed(b, data);
                }
            }
            State::LineStart if b == esc => self.state = State::Escape,
            State::LineStart if b == ESC => {
                data.push(b);
                self.state = State::Sequence(reply::Sequence::new());
            }
            State::Sequence(mut seq) => match seq.push(b) {
                reply::Step::More => {
                    data.push(b);
                    self.state = State::Sequence(seq);
                }
                reply::Step::Reply => {
                    data.push(b);
                    self.state = State::LineStart;
                }
                reply::Step::Key => {
                    data.push(b);
                    self.state = State::Normal;
                }
                // The sequence was a key; this byte is read as the next one.
                reply::Step::NotPart => self.typed(b, data),
            },
            State::LineStart | State::Normal => self.typed(b, data),
        }
        None
    }

    /// A byte typed in the middle of a line.
    fn typed(&mut self, b: u8, data: &mut Vec<u8>) {
        data.push(b);
        self.state = if is_newline(b) {
            State::LineStart
        } else {
            State::Normal
        };
    }
}

#[cfg(test)]
mod tests;
