//! Interactive mode: the terminal in raw mode attached to the console until Enter `~.`, the
//! server closing the session, or a signal; the terminal is restored on every way out.

use tokio::io::AsyncWriteExt as _;

use crate::console::{Console, Output, Typed, notice};
use crate::errors::{Failure, exit};
use crate::signals::{Event, Signals};
use crate::terminal::{self, RawMode, StdinReader};

/// Runs the session; `Ok` carries the exit code.
pub async fn run(console: &mut Console, signals: &mut Signals, who: &str) -> Result<i32, Failure> {
    let raw = if terminal::stdin_is_tty() {
        Some(
            RawMode::enable()
                .map_err(|e| Failure::other(format!("cannot put the terminal in raw mode: {e}")))?,
        )
    } else {
        None
    };
    let code = bridge(console, signals, who).await;
    drop(raw);
    code
}

async fn bridge(console: &mut Console, signals: &mut Signals, who: &str) -> Result<i32, Failure> {
    let mut input = StdinReader::spawn()
        .map_err(|e| Failure::other(format!("cannot read the terminal: {e}")))?;
    let mut stdin_open = true;
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    loop {
        tokio::select! {
            chunk = input.recv(), if stdin_open => match chunk {
                Some(bytes) => {
                    if console.type_keys(&bytes).await == Typed::Disconnect {
                        console.close().await;
                        notice(&format!("\r\nConnection to {who} closed.\r\n")).await;
                        return Ok(exit::OK);
                    }
                }
                None => {
                    stdin_open = false;
                    console.eof().await;
                }
            },
            out = console.next() => match out {
                Output::Data(d) => {
                    let _ = stdout.write_all(&d).await;
                    let _ = stdout.flush().await;
                }
                Output::Stderr(d) => {
                    let _ = stderr.write_all(&d).await;
                    let _ = stderr.flush().await;
                }
                Output::Closed(status) => {
                    notice(&format!("\r\nConnection to {who} closed by the server.\r\n")).await;
                    return match status {
                        Some(s) if s != 0 => Err(Failure::new(
                            exit::SESSION,
                            format!("the server ended the session with status {s}"),
                        )),
                        _ => Ok(exit::OK),
                    };
                }
            },
            event = signals.recv() => match event {
                Event::Resized => {
                    if let Some(size) = terminal::window_size() {
                        console.resize(size).await;
                    }
                }
                Event::Terminate(sig) => {
                    console.close().await;
                    return Ok(exit::SIGNAL_BASE + sig);
                }
            },
        }
    }
}
