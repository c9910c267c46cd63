//! One open console session, shared by the interactive and the scripted modes: typed bytes go
//! through the escape parser and the in-band encoding to the channel; the channel's messages
//! come back as console output, server messages and the end of the session.

use std::collections::VecDeque;

use bytes::Bytes;
use russh::client::Msg;
use russh::{ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::AsyncWriteExt as _;

use crate::escape::{self, EscapeParser, Key};
use crate::inband::{InBand, NoBreak};

/// What typing led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Typed {
    Continue,
    /// The user typed the escape then `.`.
    Disconnect,
}

/// What the session produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Console output (stdout).
    Data(Bytes),
    /// Server messages on the extended stream (stderr).
    Stderr(Bytes),
    /// The server closed the session, with its exit status if it sent one.
    Closed(Option<u32>),
}

/// Which server is at the other end, for what a BREAK needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// AWS: a BREAK needs the SSH `break` request, which this client cannot send yet.
    Aws,
    /// A serialgate: a BREAK goes in-band with its escape character, if it has one.
    Serialgate,
}

#[derive(Debug)]
pub struct Console {
    read: ChannelReadHalf,
    write: ChannelWriteHalf<Msg>,
    early: VecDeque<ChannelMsg>,
    keys: EscapeParser,
    inband: InBand,
    server: Server,
    exit_status: Option<u32>,
}

impl Console {
    pub fn new(
        channel: russh::Channel<Msg>,
        early: Vec<ChannelMsg>,
        escape: Option<u8>,
        server: Server,
        remote_escape: Option<u8>,
    ) -> Self {
        let (read, write) = channel.split();
        Self {
            read,
            write,
            early: early.into(),
            keys: EscapeParser::new(escape),
            inband: InBand::new(remote_escape),
            server,
            exit_status: None,
        }
    }

    /// Handles typed bytes: console data is sent, escapes are acted on.
    pub async fn type_keys(&mut self, input: &[u8]) -> Typed {
        for key in self.keys.feed(input) {
            match key {
                Key::Data(data) => {
                    let wire = self.inband.data(&data);
                    self.send(wire).await;
                }
                Key::Break => match self.inband.brk() {
                    Ok(wire) => self.send(wire).await,
                    Err(why) => {
                        notice(&format!("\r\n{}\r\n", no_break_text(self.server, why))).await
                    }
                },
                Key::Help => {
                    if let Some(e) = self.keys.escape() {
                        notice(&escape::help_text(e)).await;
                    }
                }
                Key::Disconnect => return Typed::Disconnect,
            }
        }
        Typed::Continue
    }

    /// Types text that must arrive as it is, such as a password that starts with `~`: the
    /// client's escapes do not apply (the server's in-band escape is still doubled). Text that
    /// ends with Enter leaves the escape parser where it was, at the start of a line.
    pub async fn type_text(&mut self, text: &[u8]) {
        let wire = self.inband.data(text);
        self.send(wire).await;
    }

    async fn send(&self, wire: Vec<u8>) {
        // A failed send means the channel is closing; `next` reports the end.
        if let Err(e) = self.write.data_bytes(Bytes::from(wire)).await {
            tracing::debug!(error = %e, "sending to the console failed");
        }
    }

    /// Tells the server the terminal's new size.
    pub async fn resize(&self, (cols, rows): (u32, u32)) {
        let _ = self.write.window_change(cols, rows, 0, 0).await;
    }

    /// Tells the server no more input will come (stdin ended).
    pub async fn eof(&self) {
        let _ = self.write.eof().await;
    }

    /// The next output (cancel-safe: nothing is lost if the future is dropped).
    pub async fn next(&mut self) -> Output {
        loop {
            let msg = match self.early.pop_front() {
                Some(m) => Some(m),
                None => self.read.wait().await,
            };
            match msg {
                Some(ChannelMsg::Data { data }) => return Output::Data(data),
                Some(ChannelMsg::ExtendedData { data, .. }) => return Output::Stderr(data),
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    self.exit_status = Some(exit_status);
                }
                Some(ChannelMsg::Close) | None => return Output::Closed(self.exit_status),
                Some(_) => {}
            }
        }
    }

    /// Ends the session from this side.
    pub async fn close(&self) {
        let _ = self.write.eof().await;
        let _ = self.write.close().await;
    }
}

/// Why no BREAK was sent, in one line.
pub fn no_break_text(server: Server, why: NoBreak) -> &'static str {
    match (server, why) {
        (Server::Aws, _) => {
            "[serialgate] This client cannot send an SSH break request yet; to send a BREAK to \
             AWS, connect with OpenSSH and type Enter ~B."
        }
        (Server::Serialgate, NoBreak::NoEscape) => {
            "[serialgate] No BREAK sent: the server's in-band escape is off (--remote-escape none)."
        }
        (Server::Serialgate, NoBreak::MidLine) => {
            "[serialgate] No BREAK sent: a BREAK must follow a newline."
        }
    }
}

/// A line for the user on stderr, in the session (raw-mode line endings included by callers).
pub async fn notice(text: &str) {
    let mut err = tokio::io::stderr();
    let _ = err.write_all(text.as_bytes()).await;
    let _ = err.flush().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn break_notices() {
        let aws = no_break_text(Server::Aws, NoBreak::NoEscape);
        assert!(
            aws.contains("cannot send an SSH break request yet"),
            "{aws}"
        );
        assert!(aws.contains("OpenSSH") && aws.contains("Enter ~B"), "{aws}");
        assert!(!aws.contains('\n'));
        assert!(
            no_break_text(Server::Serialgate, NoBreak::NoEscape).contains("--remote-escape none")
        );
        assert!(no_break_text(Server::Serialgate, NoBreak::MidLine).contains("newline"));
    }
}
