//! The console: a unix-socket echo server. Every connection first gets the banner, then every
//! byte it sends comes straight back. It stands in for a serial line whose guest echoes input.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::Res;
use crate::cli::ConsoleArgs;

/// Written on connect: the "first console byte" the open benchmarks wait for.
pub const BANNER: &[u8] = b"ok\r\n";
/// What a client looks for to know the banner arrived (a pty may turn `\n` into `\r\n`).
pub const BANNER_MARK: &[u8] = b"ok\r";

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
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(buf.get(..n).unwrap_or_default()).await?;
    }
}
