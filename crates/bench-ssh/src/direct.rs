//! The baseline of the output benchmarks: the source console's bulk burst read straight from
//! its socket, with no gateway in between, the same number of rounds as through a session.

use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::Res;
use crate::cli::DirectArgs;
use crate::source::{BULK, DONE};

pub async fn run(args: DirectArgs) -> Res<()> {
    let mut stream = UnixStream::connect(&args.socket)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", args.socket.display()))?;
    let want = args.bulk_bytes + DONE.len() as u64;
    let mut buf = vec![0u8; 64 * 1024];
    let mut secs = 0.0;
    for round in 0..=args.rounds {
        let t0 = Instant::now();
        stream.write_all(&[BULK]).await?;
        let mut got = 0u64;
        while got < want {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Err(format!("the console closed after {got} of {want} bytes").into());
            }
            got += n as u64;
        }
        if round > 0 {
            secs += t0.elapsed().as_secs_f64();
        }
    }
    let mbs = (args.bulk_bytes * args.rounds) as f64 / 1e6 / secs;
    println!("direct: bulk {mbs:.1} MB/s read straight from the console socket");
    println!("RESULT\tdirect\t{mbs:.3}\t0\t0");
    Ok(())
}
