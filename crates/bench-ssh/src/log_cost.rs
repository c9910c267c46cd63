//! The output side's cost: through one SSH session on the source console, a bulk burst (MB/s
//! and serialgate's CPU per MB) and a trickle (serialgate's CPU share), with `--spectators N`
//! read-only viewers draining their own sessions meanwhile and, with `--stalled`, one more that
//! never reads; against a serialgate whose `[console_log]` is on or off (the script,
//! `scripts/bench-fanout.sh`, runs each combination). One `RESULT` line per run for the script
//! to compare.

use std::time::Instant;

use russh::ChannelMsg;
use russh::client::Msg;

use crate::Res;
use crate::cli::LogCostArgs;
use crate::config::{instance_id, username};
use crate::procfs::cpu_seconds;
use crate::push::Pusher;
use crate::source::{BULK, DONE, TRICKLE};
use crate::ssh::{self, ClientKey, Endpoint};

pub async fn run(args: LogCostArgs) -> Res<()> {
    let key = ClientKey::load(&args.key.key)?;
    let g = &args.gateway;
    let gateway = Endpoint::new("serialgate", g.gateway_ssh, &g.gateway_host_key)?;
    let mut pusher = Pusher::new(g.gateway_api, &key.public_openssh);
    pusher.push(&instance_id(0)).await?;
    let mut session = ssh::open(&gateway, &username(0), &key, false).await?;

    // Spectators: each pushed and opened in turn (a grant opens one view), then drained by a
    // task of its own; the stalled one is opened and never read, so its client stops taking
    // data and its SSH window closes.
    let mut watchers = Vec::new();
    let mut spectator_pusher = Pusher::spectator(g.gateway_api, &key.public_openssh);
    let spectate_user = format!("{}.spectate.replay-lines=0", username(0));
    for _ in 0..args.spectators {
        spectator_pusher.push(&instance_id(0)).await?;
        let mut s = ssh::open_spectator(&gateway, &spectate_user, &key).await?;
        watchers.push(tokio::spawn(async move {
            while let Some(msg) = s.channel.wait().await {
                if matches!(msg, ChannelMsg::Eof | ChannelMsg::Close) {
                    break;
                }
            }
        }));
    }
    let stalled = if args.stalled {
        spectator_pusher.push(&instance_id(0)).await?;
        Some(ssh::open_spectator(&gateway, &spectate_user, &key).await?)
    } else {
        None
    };

    // Warm-up: one small burst, unmeasured.
    let (mut bulk_secs, mut bulk_cpu) = (0.0, 0.0);
    for round in 0..=args.rounds {
        let cpu0 = cpu_seconds(args.pid)?;
        let t0 = Instant::now();
        session.channel.data(&[BULK][..]).await?;
        read_bytes(&mut session.channel, args.bulk_bytes + DONE.len() as u64).await?;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds(args.pid)? - cpu0;
        if round > 0 {
            bulk_secs += secs;
            bulk_cpu += cpu;
        }
    }
    let mb = (args.bulk_bytes * args.rounds) as f64 / 1e6;
    let mbs = mb / bulk_secs;
    let cpu_ms_per_mb = bulk_cpu * 1000.0 / mb;

    let cpu0 = cpu_seconds(args.pid)?;
    let t0 = Instant::now();
    session.channel.data(&[TRICKLE][..]).await?;
    read_until_done(&mut session.channel).await?;
    let trickle_secs = t0.elapsed().as_secs_f64();
    let trickle_cpu = (cpu_seconds(args.pid)? - cpu0) / trickle_secs * 100.0;
    session.close().await;
    drop(stalled);
    for w in watchers {
        w.abort();
    }

    println!(
        "log {}: bulk {mbs:.1} MB/s, {cpu_ms_per_mb:.2} ms CPU per MB; trickle {trickle_cpu:.2}% CPU",
        args.label
    );
    println!(
        "RESULT\t{}\t{mbs:.3}\t{cpu_ms_per_mb:.3}\t{trickle_cpu:.3}",
        args.label
    );
    Ok(())
}

async fn read_bytes(channel: &mut russh::Channel<Msg>, want: u64) -> Res<()> {
    let mut got = 0u64;
    while got < want {
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) => got += data.len() as u64,
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                return Err(format!("the session ended after {got} of {want} bytes").into());
            }
            Some(_) => {}
        }
    }
    Ok(())
}

async fn read_until_done(channel: &mut russh::Channel<Msg>) -> Res<()> {
    let mut tail: Vec<u8> = Vec::new();
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) => {
                tail.extend_from_slice(&data);
                if tail.ends_with(DONE) {
                    return Ok(());
                }
                let keep = tail.len().saturating_sub(DONE.len());
                tail.drain(..keep);
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                return Err("the session ended during the trickle".into());
            }
            Some(_) => {}
        }
    }
}
