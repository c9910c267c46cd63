//! The console of the console-log benchmark: a unix-socket console that prints on command, as
//! a guest does, so the output side of the gateway (console → hub → log and user) is measured.
//!
//! ENQ (`0x05`) is answered with [`ANSWER`] as by the echo console (sessions open the same way);
//! `B` prints `bulk_bytes` of 80-byte text lines as fast as the line takes them; `T` prints a
//! trickle, writes of 1 to 16 bytes at `trickle_rate` bytes per second for `trickle_ms`. Both end
//! with [`DONE`], so the client knows when all of it has arrived.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::Res;
use crate::cli::SourceConsoleArgs;
use crate::console::{ANSWER, ENQ};

/// Ends every burst of output.
pub const DONE: &[u8] = b"#done#\r\n";
/// The command bytes.
pub const BULK: u8 = b'B';
pub const TRICKLE: u8 = b'T';

pub async fn run(args: SourceConsoleArgs) -> Res<()> {
    match std::fs::remove_file(&args.socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove {}: {e}", args.socket.display()).into()),
    }
    let listener = UnixListener::bind(&args.socket)
        .map_err(|e| format!("cannot listen on {}: {e}", args.socket.display()))?;
    eprintln!(
        "bench-ssh source-console: listening on {}",
        args.socket.display()
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let args = args.clone();
        tokio::spawn(async move {
            let _ = serve(stream, args).await;
        });
    }
}

/// 80-byte lines of text: what a bulk burst prints.
pub fn bulk_line(i: u64) -> [u8; 80] {
    let mut line = [b' '; 80];
    let head = format!("{i:>10} ");
    line[..head.len()].copy_from_slice(head.as_bytes());
    for (j, b) in line
        .iter_mut()
        .enumerate()
        .skip(head.len())
        .take(78 - head.len())
    {
        *b = b'a' + ((i as usize + j) % 26) as u8;
    }
    line[78] = b'\r';
    line[79] = b'\n';
    line
}

async fn serve(mut stream: UnixStream, args: SourceConsoleArgs) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        for &b in buf.get(..n).unwrap_or_default() {
            match b {
                ENQ => stream.write_all(ANSWER).await?,
                BULK => bulk(&mut stream, args.bulk_bytes).await?,
                TRICKLE => trickle(&mut stream, &args).await?,
                _ => {}
            }
        }
    }
}

async fn bulk(stream: &mut UnixStream, total: u64) -> std::io::Result<()> {
    let mut chunk = Vec::with_capacity(64 * 1024);
    let mut sent = 0u64;
    let mut i = 0u64;
    while sent < total {
        chunk.clear();
        while chunk.len() + 80 <= 64 * 1024 && sent + (chunk.len() as u64) < total {
            chunk.extend_from_slice(&bulk_line(i));
            i += 1;
        }
        let take = usize::try_from(total - sent)
            .unwrap_or(usize::MAX)
            .min(chunk.len());
        stream.write_all(&chunk[..take]).await?;
        sent += take as u64;
    }
    stream.write_all(DONE).await
}

/// Writes of 1 to 16 bytes, paced each millisecond to `trickle_rate` bytes per second.
async fn trickle(stream: &mut UnixStream, args: &SourceConsoleArgs) -> std::io::Result<()> {
    let per_ms = (args.trickle_rate / 1000).max(1);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let text = b"trickle of console output, a few bytes at a time\r\n";
    let mut at = 0usize;
    for _ in 0..args.trickle_ms {
        tick.tick().await;
        let mut left = per_ms;
        while left > 0 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let n = (1 + (seed % 16)).min(left) as usize;
            let mut piece = Vec::with_capacity(n);
            for _ in 0..n {
                piece.push(text[at % text.len()]);
                at += 1;
            }
            stream.write_all(&piece).await?;
            left -= n as u64;
        }
    }
    stream.write_all(DONE).await
}
