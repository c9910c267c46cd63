//! Benchmark 1, session-open rate: the time from TCP connect to the first console byte
//! (handshake, authentication, session channel, pty, shell, first byte), one session at a time
//! and with parallel workers, serialgate against OpenSSH's sshd on the same console.
//!
//! For serialgate every iteration pushes its key first (untimed: it is the API's cost, measured
//! by `scripts/bench-api.sh`; its CPU still competes with the other workers' timed opens). Each
//! parallel worker rotates over its own instances, so no two workers share a slot.
//!
//! Rate: each worker's sessions divided by its timed time, summed over workers (for one worker,
//! sessions / total open time). The wall-clock rate, which includes pushes and closes, is
//! printed alongside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::OpenRateArgs;
use crate::config::{instance_id, username};
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
    },
    Sshd {
        ep: Endpoint,
        user: String,
    },
}

impl Target {
    pub fn name(&self) -> &'static str {
        match self {
            Target::Gateway { ep, .. } | Target::Sshd { ep, .. } => ep.name,
        }
    }
}

/// What one run (one server, one concurrency) measured.
#[derive(Debug, Default)]
pub struct RunResult {
    pub open: Samples,
    pub handshake: Samples,
    pub auth: Samples,
    pub shell: Samples,
    /// Sum over workers of sessions / timed seconds.
    pub rate: f64,
    pub wall: Duration,
    pub errors: usize,
    pub first_error: Option<String>,
    pub busy_retries: u64,
}

#[derive(Debug, Default)]
struct WorkerResult {
    open: Samples,
    handshake: Samples,
    auth: Samples,
    shell: Samples,
    errors: usize,
    first_error: Option<String>,
    busy_retries: u64,
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
    });
    let sshd = Arc::new(Target::Sshd {
        ep: Endpoint::new("sshd", args.sshd.sshd, &args.sshd.sshd_host_key)?,
        user: args.sshd.sshd_user.clone(),
    });
    let pty = args.pty;

    println!(
        "== 1. session open: TCP connect -> first console byte (handshake + auth + channel{} + shell + first byte)",
        if pty { " + pty" } else { "" }
    );
    for t in [&gateway, &sshd] {
        if args.warmup > 0 {
            let w = run_target(t, 1, args.warmup, &key, pty).await?;
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

    let seq_g = run_target(&gateway, 1, args.sessions, &key, pty).await?;
    let seq_s = run_target(&sshd, 1, args.sessions, &key, pty).await?;
    let per = args.per_worker;
    let par_g = run_target(&gateway, args.parallel, per, &key, pty).await?;
    let par_s = run_target(&sshd, args.parallel, per, &key, pty).await?;

    println!(
        "{:<11} {:>9} {:>8} {:>6} {:>11} {:>9} {:>8} {:>8} {:>8} | {:>9} {:>7} {:>7}",
        "server",
        "workers",
        "sessions",
        "errors",
        "sessions/s",
        "wall s/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "handshake",
        "auth",
        "shell"
    );
    for (name, workers, r) in [
        ("serialgate", 1, &seq_g),
        ("sshd", 1, &seq_s),
        ("serialgate", args.parallel, &par_g),
        ("sshd", args.parallel, &par_s),
    ] {
        let mut r2 = RunResult {
            open: r.open.clone(),
            handshake: r.handshake.clone(),
            auth: r.auth.clone(),
            shell: r.shell.clone(),
            ..Default::default()
        };
        println!(
            "{:<11} {:>9} {:>8} {:>6} {:>11.1} {:>9.1} {:>8.2} {:>8.2} {:>8.2} | {:>9.2} {:>7.2} {:>7.2}",
            name,
            workers,
            r.open.len(),
            r.errors,
            r.rate,
            r.open.len() as f64 / r.wall.as_secs_f64().max(1e-9),
            r2.open.pct_ms(50.0),
            r2.open.pct_ms(99.0),
            r2.open.max_ms(),
            r2.handshake.pct_ms(50.0),
            r2.auth.pct_ms(50.0),
            r2.shell.pct_ms(50.0),
        );
    }
    println!("  (phase columns are p50 ms; 'wall s/s' includes the untimed pushes and closes)");
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
    let seq_ratio = seq_g.rate / seq_s.rate.max(1e-9);
    let par_ratio = par_g.rate / par_s.rate.max(1e-9);
    println!(
        "ratio serialgate/sshd sessions/s: {seq_ratio:.2} one at a time, {par_ratio:.2} with {} workers; target >= 1.00: {}",
        args.parallel,
        verdict(seq_ratio >= 1.0 && par_ratio >= 1.0)
    );
    println!();

    for (label, g, s, ratio) in [
        ("open rate, 1 at a time", seq_g, seq_s, seq_ratio),
        (
            &*format!("open rate, {} parallel", args.parallel),
            par_g,
            par_s,
            par_ratio,
        ),
    ] {
        let (mut go, mut so) = (g.open, s.open);
        summary_row(
            &format!("{label} (sessions/s)"),
            &format!("{:.1}", g.rate),
            &format!("{:.1} sshd", s.rate),
            &format!("x{ratio:.2}"),
            &format!(">= x1.00 {}", verdict(ratio >= 1.0)),
        );
        summary_row(
            &format!("{label} (p50/p99 ms)"),
            &format!("{:.2}/{:.2}", go.pct_ms(50.0), go.pct_ms(99.0)),
            &format!("{:.2}/{:.2}", so.pct_ms(50.0), so.pct_ms(99.0)),
            "",
            "",
        );
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
) -> Res<RunResult> {
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let target = Arc::clone(target);
        let key = key.clone();
        set.spawn(async move { worker(&target, w, workers, per_worker, &key, pty).await });
    }
    let mut out = RunResult::default();
    while let Some(joined) = set.join_next().await {
        let r = joined.map_err(|e| BoxError::from(format!("worker task: {e}")))??;
        let timed = r.open.total().as_secs_f64();
        if timed > 0.0 {
            out.rate += r.open.len() as f64 / timed;
        }
        out.open.extend(&r.open);
        out.handshake.extend(&r.handshake);
        out.auth.extend(&r.auth);
        out.shell.extend(&r.shell);
        out.errors += r.errors;
        out.busy_retries += r.busy_retries;
        if out.first_error.is_none() {
            out.first_error = r.first_error;
        }
    }
    out.wall = started.elapsed();
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
            Target::Sshd { ep, user } => (ep, user.clone()),
        };
        match ssh::open(ep, &user, key, pty).await {
            Ok(session) => {
                let ph = session.phases;
                r.open.push(ph.total());
                r.handshake.push(ph.handshake);
                r.auth.push(ph.auth);
                r.shell.push(ph.shell);
                session.close().await;
            }
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
    }
    Ok(r)
}
