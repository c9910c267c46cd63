//! Benchmark 1, session-open rate: the time from TCP connect to the first console byte
//! (handshake, authentication, session channel, pty, shell, then the first keystroke and the
//! console's answer to it: see [`crate::console`]), one session at a time and with parallel
//! workers, serialgate against OpenSSH's sshd on the same console.
//!
//! For serialgate every iteration pushes its key first (untimed: it is the API's cost, measured
//! by `scripts/bench-api.sh`; its CPU still competes with the other workers' timed opens). Each
//! parallel worker rotates over its own instances, so no two workers share a slot.
//!
//! Rate: each worker's sessions divided by its timed time, summed over workers (for one worker,
//! sessions / total open time). The wall-clock rate, which includes pushes and closes, is
//! printed alongside, and so is the server's CPU time per session (serialgate: the process,
//! pushes included; sshd: the listener and its exited children — per-connection sshd
//! processes, shells, socat), which no timer or TCP stall can inflate.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::OpenRateArgs;
use crate::config::{instance_id, username};
use crate::procfs::cpu_seconds;
use crate::push::Pusher;
use crate::ssh::{self, ClientKey, Endpoint};
use crate::stats::{Samples, summary_row};
use crate::{BoxError, Res};

/// Which server, and how to log in to it.
#[derive(Debug)]
pub enum Target {
    Gateway {
        ep: Endpoint,
        api: std::net::SocketAddr,
        instances: usize,
        pid: Option<u32>,
    },
    Sshd {
        ep: Endpoint,
        user: String,
        pid: Option<u32>,
    },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Gateway { ep, .. } | Target::Sshd { ep, .. } => ep.name,
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Target::Gateway { pid, .. } | Target::Sshd { pid, .. } => *pid,
        }
    }
}

/// What one run (one server, one concurrency) measured.
#[derive(Debug, Default)]
pub struct RunResult {
    pub workers: usize,
    pub open: Samples,
    pub handshake: Samples,
    pub auth: Samples,
    pub channel: Samples,
    pub answer: Samples,
    /// Sum over workers of sessions / timed seconds.
    pub rate: f64,
    pub wall: Duration,
    /// Server CPU milliseconds per session, when its pid is known.
    pub cpu_ms: Option<f64>,
    pub errors: usize,
    pub first_error: Option<String>,
    pub busy_retries: u64,
    pub unavailable_retries: u64,
}

#[derive(Debug, Default)]
struct WorkerResult {
    open: Samples,
    handshake: Samples,
    auth: Samples,
    channel: Samples,
    answer: Samples,
    errors: usize,
    first_error: Option<String>,
    busy_retries: u64,
    unavailable_retries: u64,
}

pub async fn run(args: OpenRateArgs) -> Res<()> {
    let key = ClientKey::load(&args.key.key)?;
    let g = &args.gateway;
    if g.instances < args.parallel {
        return Err(format!(
            "{} instances cannot serve {} parallel workers",
            g.instances, args.parallel
        )
        .into());
    }
    let gateway = Arc::new(Target::Gateway {
        ep: Endpoint::new("serialgate", g.gateway_ssh, &g.gateway_host_key)?,
        api: g.gateway_api,
        instances: g.instances,
        pid: args.gateway_pid,
    });
    let sshd = Arc::new(Target::Sshd {
        ep: Endpoint::new("sshd", args.sshd.sshd, &args.sshd.sshd_host_key)?,
        user: args.sshd.sshd_user.clone(),
        pid: args.sshd_pid,
    });
    let pty = args.pty;

    println!(
        "== 1. session open: TCP connect -> first console byte (handshake + auth + channel{} + shell + first keystroke answered)",
        if pty { " + pty" } else { "" }
    );
    for t in [&gateway, &sshd] {
        if args.warmup > 0 {
            let w = run_target(t, 1, args.warmup, &key, pty, true).await?;
            if w.errors > 0 {
                return Err(format!(
                    "{}: warm-up failed: {}",
                    t.name(),
                    w.first_error.unwrap_or_default()
                )
                .into());
            }
        }
    }

    let mut seq_g = run_target(&gateway, 1, args.sessions, &key, pty, false).await?;
    let mut seq_s = run_target(&sshd, 1, args.sessions, &key, pty, false).await?;
    let per = args.per_worker;
    let mut par_g = run_target(&gateway, args.parallel, per, &key, pty, false).await?;
    let mut par_s = run_target(&sshd, args.parallel, per, &key, pty, false).await?;

    println!(
        "{:<11} {:>7} {:>8} {:>6} {:>10} {:>8} {:>7} {:>7} {:>7} {:>7} | {:>9} {:>6} {:>7} {:>7}",
        "server",
        "workers",
        "sessions",
        "errors",
        "sessions/s",
        "wall s/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "cpu ms",
        "handshake",
        "auth",
        "channel",
        "answer"
    );
    for (name, r) in [
        ("serialgate", &mut seq_g),
        ("sshd", &mut seq_s),
        ("serialgate", &mut par_g),
        ("sshd", &mut par_s),
    ] {
        println!(
            "{:<11} {:>7} {:>8} {:>6} {:>10.1} {:>8.1} {:>7.2} {:>7.2} {:>7.2} {:>7} | {:>9.2} {:>6.2} {:>7.2} {:>7.2}",
            name,
            r.workers,
            r.open.len(),
            r.errors,
            r.rate,
            r.open.len() as f64 / r.wall.as_secs_f64().max(1e-9),
            r.open.pct_ms(50.0),
            r.open.pct_ms(99.0),
            r.open.max_ms(),
            r.cpu_ms.map_or("-".to_owned(), |c| format!("{c:.2}")),
            r.handshake.pct_ms(50.0),
            r.auth.pct_ms(50.0),
            r.channel.pct_ms(50.0),
            r.answer.pct_ms(50.0),
        );
    }
    println!(
        "  sessions/s: timed opens only (per worker, summed); wall s/s: including the untimed pushes and closes;"
    );
    println!(
        "  cpu ms: server CPU per session (serialgate: whole process, its pushes included; sshd: listener + exited"
    );
    println!(
        "  children: per-connection sshd, shell, socat); handshake..answer: p50 ms of each phase"
    );
    for (label, g, s) in [
        ("1 at a time", &seq_g, &seq_s),
        ("parallel", &par_g, &par_s),
    ] {
        if let Some(e) = &g.first_error {
            println!("  serialgate {label}: {} errors, first: {e}", g.errors);
        }
        if let Some(e) = &s.first_error {
            println!("  sshd {label}: {} errors, first: {e}", s.errors);
        }
    }
    if seq_g.busy_retries + par_g.busy_retries > 0 {
        println!(
            "  pushes retried because the slot was still held by the previous session: {} (1 at a time), {} (parallel)",
            seq_g.busy_retries, par_g.busy_retries
        );
    }
    if seq_g.unavailable_retries + par_g.unavailable_retries > 0 {
        println!(
            "  pushes retried because the console was not connected (EC2InstanceUnavailableException): {} (1 at a time), {} (parallel)",
            seq_g.unavailable_retries, par_g.unavailable_retries
        );
    }
    let seq_ratio = seq_g.rate / seq_s.rate.max(1e-9);
    let par_ratio = par_g.rate / par_s.rate.max(1e-9);
    println!(
        "ratio serialgate/sshd sessions/s: {seq_ratio:.2} one at a time, {par_ratio:.2} with {} workers; target >= 1.00: {}",
        args.parallel,
        verdict(seq_ratio >= 1.0 && par_ratio >= 1.0)
    );
    println!();

    let par_label = format!("{} parallel", args.parallel);
    for (label, g, s, ratio) in [
        ("1 at a time", &mut seq_g, &mut seq_s, seq_ratio),
        (par_label.as_str(), &mut par_g, &mut par_s, par_ratio),
    ] {
        summary_row(
            &format!("open rate, {label} (sessions/s)"),
            &format!("{:.1}", g.rate),
            &format!("{:.1} sshd", s.rate),
            &format!("x{ratio:.2}"),
            &format!(">= x1.00 {}", verdict(ratio >= 1.0)),
        );
        summary_row(
            &format!("open latency, {label} (p50/p99 ms)"),
            &format!("{:.2}/{:.2}", g.open.pct_ms(50.0), g.open.pct_ms(99.0)),
            &format!("{:.2}/{:.2} sshd", s.open.pct_ms(50.0), s.open.pct_ms(99.0)),
            "",
            "",
        );
        if let (Some(gc), Some(sc)) = (g.cpu_ms, s.cpu_ms) {
            let less = if gc > 0.0 {
                format!("x{:.1} less", sc / gc)
            } else {
                "-".to_owned()
            };
            summary_row(
                &format!("server CPU/session, {label} (ms)"),
                &format!("{gc:.2}"),
                &format!("{sc:.2} sshd"),
                &less,
                "",
            );
        }
    }
    Ok(())
}

pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// Runs `workers` workers of `per_worker` sessions each against `target`.
async fn run_target(
    target: &Arc<Target>,
    workers: usize,
    per_worker: usize,
    key: &ClientKey,
    pty: bool,
    fail_fast: bool,
) -> Res<RunResult> {
    let cpu_before = target.pid().map(cpu_seconds).transpose()?;
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let target = Arc::clone(target);
        let key = key.clone();
        set.spawn(
            async move { worker(&target, w, workers, per_worker, &key, pty, fail_fast).await },
        );
    }
    let mut out = RunResult {
        workers,
        ..Default::default()
    };
    while let Some(joined) = set.join_next().await {
        let r = joined.map_err(|e| BoxError::from(format!("worker task: {e}")))??;
        let timed = r.open.total().as_secs_f64();
        if timed > 0.0 {
            out.rate += r.open.len() as f64 / timed;
        }
        out.open.extend(&r.open);
        out.handshake.extend(&r.handshake);
        out.auth.extend(&r.auth);
        out.channel.extend(&r.channel);
        out.answer.extend(&r.answer);
        out.errors += r.errors;
        out.busy_retries += r.busy_retries;
        out.unavailable_retries += r.unavailable_retries;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
    }
    out.wall = started.elapsed();
    // Let the servers finish tearing the last sessions down (sshd reaps its children).
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let (Some(pid), Some(before)) = (target.pid(), cpu_before) {
        let used = cpu_seconds(pid)? - before;
        let n = out.open.len() + out.errors;
        if n > 0 {
            out.cpu_ms = Some(used * 1000.0 / n as f64);
        }
    }
    if out.open.len() == 0 && out.errors > 0 {
        return Err(format!(
            "{}: every session failed; first error: {}",
            target.name(),
            out.first_error.unwrap_or_default()
        )
        .into());
    }
    Ok(out)
}

async fn worker(
    target: &Target,
    w: usize,
    workers: usize,
    n: usize,
    key: &ClientKey,
    pty: bool,
    fail_fast: bool,
) -> Res<WorkerResult> {
    let mut r = WorkerResult {
        open: Samples::with_capacity(n),
        ..Default::default()
    };
    let mut pusher = match target {
        Target::Gateway { api, .. } => Some(Pusher::new(*api, &key.public_openssh)),
        Target::Sshd { .. } => None,
    };
    for k in 0..n {
        let (ep, user) = match target {
            Target::Gateway { ep, instances, .. } => {
                // This worker's instances: w, w + workers, w + 2 workers, …
                let pool = (instances - w).div_ceil(workers).max(1);
                let idx = w + (k % pool) * workers;
                if let Some(p) = pusher.as_mut() {
                    p.push(&instance_id(idx)).await?;
                }
                (ep, username(idx))
            }
            Target::Sshd { ep, user, .. } => (ep, user.clone()),
        };
        match ssh::open(ep, &user, key, pty).await {
            Ok(session) => {
                let ph = session.phases;
                r.open.push(ph.total());
                r.handshake.push(ph.handshake);
                r.auth.push(ph.auth);
                r.channel.push(ph.channel);
                r.answer.push(ph.answer);
                session.close().await;
            }
            Err(e) if fail_fast => return Err(e),
            Err(e) => {
                r.errors += 1;
                if r.first_error.is_none() {
                    r.first_error = Some(e.to_string());
                }
            }
        }
    }
    if let Some(p) = pusher {
        r.busy_retries = p.busy_retries;
        r.unavailable_retries = p.unavailable_retries;
    }
    Ok(r)
}
