//! The console: a unix-socket echo server standing in for a serial line whose guest echoes input.
//!
//! On connect it prints [`BANNER`] (as a serial line shows output nobody asked for); after that
//! every byte comes straight back, except ENQ (`0x05`), which it answers with [`ANSWER`]. The
//! open benchmarks send ENQ as the session's first keystroke and stop the clock at the answer:
//! "the first console byte" is then the same event whether the server connects to the console
//! for the session (sshd + socat) or keeps one connection open between sessions (serialgate's
//! console hubs, which swallow the connect-time banner into the console history). A pty's local
//! echo cannot fake it: the pty echoes ENQ as `^E`, never as the answer.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::Res;
use crate::cli::ConsoleArgs;

/// Written on connect.
pub const BANNER: &[u8] = b"console ready\r\n";
/// The enquiry byte the console answers instead of echoing.
pub const ENQ: u8 = 0x05;
/// The answer to ENQ.
pub const ANSWER: &[u8] = b"ok\r\n";
/// What a client looks for to know the answer arrived (a pty may turn `\n` into `\r\n`).
pub const ANSWER_MARK: &[u8] = b"ok\r";
/// The first keystroke of a session: ENQ, then Enter (a pty in canonical mode passes the line
/// on at the Enter).
pub const PROBE: &[u8] = b"\x05\r";

pub async fn run(args: ConsoleArgs) -> Res<()> {
    match std::fs::remove_file(&args.socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {}: {e}", args.socket.display()).into()),
    }
    let listener = UnixListener::bind(&args.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", args.socket.display()))?;
    eprintln!("bench-ssh console: listening on {}", args.socket.display());
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(async move {
                    let _ = serve(stream).await;
                });
            }
            Err(e) => {
                eprintln!("bench-ssh console: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve(mut stream: UnixStream) -> std::io::Result<()> {
    stream.write_all(BANNER).await?;
    let mut buf = [0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        let input = buf.get(..n).unwrap_or_default();
        if input.contains(&ENQ) {
            out.clear();
            for &b in input {
                if b == ENQ {
                    out.extend_from_slice(ANSWER);
                } else {
                    out.push(b);
                }
            }
            stream.write_all(&out).await?;
        } else {
            stream.write_all(input).await?;
        }
    }
}
