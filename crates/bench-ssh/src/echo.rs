//! Benchmark 2, keystroke echo round trip: over an open session, send one byte and wait for its
//! echo, N times; the same directly on the console's unix socket. The difference is what the
//! gateway adds to every keystroke. With `--sshd`, the same through sshd + socat, for reference.
//! The paths take turns, one round trip each, so background noise hits them alike.

use std::time::{Duration, Instant};

use russh::ChannelMsg;
use russh::client::Msg;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::Res;
use crate::cli::EchoArgs;
use crate::config::{instance_id, username};
use crate::console::{ANSWER, ENQ};
use crate::open_rate::verdict;
use crate::push::Pusher;
use crate::ssh::{self, ClientKey, Endpoint};
use crate::stats::{Samples, summary_row};

const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(5);

/// The `i`th keystroke: letters only, so no newline and no escape sequence ever forms.
fn keystroke(i: usize) -> u8 {
    b'a' + (i % 26) as u8
}

pub async fn run(args: EchoArgs) -> Res<()> {
    let key = ClientKey::load(&args.key.key)?;
    let g = &args.gateway;
    let gateway = Endpoint::new("serialgate", g.gateway_ssh, &g.gateway_host_key)?;
    let mut pusher = Pusher::new(g.gateway_api, &key.public_openssh);
    // The last instance: the open-rate benchmark has long finished with it.
    let idx = g.instances.saturating_sub(1);
    pusher.push(&instance_id(idx)).await?;
    let mut gw_session = ssh::open(&gateway, &username(idx), &key, false).await?;
    let mut direct_conn = direct(&args.console).await?;
    let mut sshd_session = match (&args.sshd, &args.sshd_host_key) {
        (Some(addr), Some(hk)) => {
            let ep = Endpoint::new("sshd", *addr, hk)?;
            // No pty: a pty in canonical mode would hold the byte until a newline.
            Some(ssh::open(&ep, &args.sshd_user, &key, false).await?)
        }
        _ => None,
    };

    // Interleaved, one round trip on each path in turn, so that whatever else the machine does
    // meanwhile hits every path alike.
    let mut via_gateway = Samples::with_capacity(args.n);
    let mut direct = Samples::with_capacity(args.n);
    let mut via_sshd = sshd_session
        .as_ref()
        .map(|_| Samples::with_capacity(args.n));
    for i in 0..args.warmup + args.n {
        let b = keystroke(i);
        let measured = i >= args.warmup;
        let t = over_channel(&mut gw_session.channel, b, i).await?;
        if measured {
            via_gateway.push(t);
        }
        let t = over_unix(&mut direct_conn, b, i).await?;
        if measured {
            direct.push(t);
        }
        if let (Some(s), Some(samples)) = (sshd_session.as_mut(), via_sshd.as_mut()) {
            let t = over_channel(&mut s.channel, b, i).await?;
            if measured {
                samples.push(t);
            }
        }
    }
    gw_session.close().await;
    if let Some(s) = sshd_session {
        s.close().await;
    }

    println!(
        "== 2. keystroke echo round trip: 1 byte out, its echo back, {} times per path, paths interleaved ({} unmeasured first)",
        args.n, args.warmup
    );
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "path", "p50 ms", "p99 ms", "max ms", "mean ms"
    );
    let line = |name: &str, s: &mut Samples| {
        println!(
            "{:<34} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            name,
            s.pct_ms(50.0),
            s.pct_ms(99.0),
            s.max_ms(),
            s.mean_ms()
        );
    };
    line("serialgate session (ssh->unix)", &mut via_gateway);
    line("direct (console unix socket)", &mut direct);
    if let Some(s) = via_sshd.as_mut() {
        line("sshd + socat session (reference)", s);
    }
    let added50 = via_gateway.pct_ms(50.0) - direct.pct_ms(50.0);
    let added99 = via_gateway.pct_ms(99.0) - direct.pct_ms(99.0);
    println!(
        "added by the gateway (gateway - direct): p50 {added50:.3} ms, p99 {added99:.3} ms; target p99 added < 1 ms: {}",
        verdict(added99 < 1.0)
    );
    if let Some(s) = via_sshd.as_mut() {
        println!(
            "added by sshd + socat (reference):       p50 {:.3} ms, p99 {:.3} ms",
            s.pct_ms(50.0) - direct.pct_ms(50.0),
            s.pct_ms(99.0) - direct.pct_ms(99.0)
        );
    }
    println!();

    let reference = match via_sshd.as_mut() {
        Some(s) => format!("{:.3}/{:.3} sshd", s.pct_ms(50.0), s.pct_ms(99.0)),
        None => String::new(),
    };
    summary_row(
        "echo round trip (p50/p99 ms)",
        &format!(
            "{:.3}/{:.3}",
            via_gateway.pct_ms(50.0),
            via_gateway.pct_ms(99.0)
        ),
        &reference,
        &format!("{:.3}/{:.3} dir", direct.pct_ms(50.0), direct.pct_ms(99.0)),
        "",
    );
    summary_row(
        "echo added by gateway (p50/p99 ms)",
        &format!("{added50:.3}/{added99:.3}"),
        "",
        "",
        &format!("p99 < 1 ms {}", verdict(added99 < 1.0)),
    );
    Ok(())
}

/// One round trip over an SSH session channel whose first keystroke has been answered.
async fn over_channel(channel: &mut russh::Channel<Msg>, b: u8, i: usize) -> Res<Duration> {
    let t0 = Instant::now();
    channel.data_bytes(vec![b]).await?;
    tokio::time::timeout(ROUND_TRIP_TIMEOUT, async {
        loop {
            match channel.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    if data.contains(&b) {
                        return Ok(());
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                    return Err("the session closed during the echo benchmark");
                }
                Some(_) => {}
            }
        }
    })
    .await
    .map_err(|_| format!("no echo of keystroke {i} within {ROUND_TRIP_TIMEOUT:?}"))??;
    Ok(t0.elapsed())
}

/// A direct connection to the console, past its banner and the answer to a first keystroke.
async fn direct(path: &std::path::Path) -> Res<UnixStream> {
    let mut s = UnixStream::connect(path)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
    // As a session starts: a keystroke (ENQ alone: no pty here), then the console's answer.
    s.write_all(&[ENQ]).await?;
    let mut seen = Vec::new();
    let mut buf = [0u8; 64];
    while !seen.ends_with(ANSWER) {
        let n = tokio::time::timeout(ROUND_TRIP_TIMEOUT, s.read(&mut buf)).await??;
        if n == 0 {
            return Err("the console closed before answering".into());
        }
        seen.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    Ok(s)
}

/// One round trip directly on the console socket.
async fn over_unix(s: &mut UnixStream, b: u8, i: usize) -> Res<Duration> {
    let mut one = [0u8; 1];
    let t0 = Instant::now();
    s.write_all(&[b]).await?;
    tokio::time::timeout(ROUND_TRIP_TIMEOUT, s.read_exact(&mut one))
        .await
        .map_err(|_| format!("no direct echo of keystroke {i} within {ROUND_TRIP_TIMEOUT:?}"))??;
    let elapsed = t0.elapsed();
    if one[0] != b {
        return Err(format!("the console echoed {:?} for {:?}", one[0], b).into());
    }
    Ok(elapsed)
}
