//! Benchmark 3, memory per idle session: push N keys, read serialgate's VmRSS, open N sessions
//! (each to its own instance, at most `concurrency` authenticating at once), let them sit idle,
//! read VmRSS again. (after - before) / N is what one idle connected session costs the gateway:
//! its SSH connection, its session task, its console connection. The client is this process,
//! separate from serialgate, so its own memory is not in the figure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use crate::cli::IdleArgs;
use crate::config::{instance_id, username};
use crate::open_rate::verdict;
use crate::push::Pusher;
use crate::ssh::{self, ClientKey, Endpoint, Session};
use crate::stats::summary_row;
use crate::{BoxError, Res};

/// Target: an idle session costs the gateway less than this, KiB.
const TARGET_KIB: f64 = 64.0;
/// Parallel API connections used to push the keys.
const PUSHERS: usize = 4;

/// The memory figures of a process, from /proc/PID/status.
#[derive(Debug, Clone, Copy)]
struct Mem {
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
}

fn mem(pid: &str) -> Res<Mem> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let field = |name: &str| -> Res<u64> {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .ok_or_else(|| BoxError::from(format!("{path}: no {name}")))?;
        let value = line
            .split_whitespace()
            .nth(1)
            .ok_or_else(|| BoxError::from(format!("{path}: bad {name} line")))?;
        Ok(value.parse()?)
    };
    Ok(Mem {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        threads: field("Threads:")?,
    })
}

pub async fn run(args: IdleArgs) -> Res<()> {
    let key = ClientKey::load(&args.key.key)?;
    let g = &args.gateway;
    let n = args.sessions;
    if n == 0 || n > g.instances {
        return Err(format!(
            "need 1..={} sessions (one per instance), got {n}",
            g.instances
        )
        .into());
    }
    let ep = Arc::new(Endpoint::new(
        "serialgate",
        g.gateway_ssh,
        &g.gateway_host_key,
    )?);
    let pid = args.pid.to_string();
    let concurrency = args.concurrency.max(1);
    let settle = Duration::from_millis(args.settle_ms);

    // Warm-up: open and close a round of sessions at the same concurrency, so that the runtime's
    // threads and per-thread caches exist before the first reading.
    let warm = concurrency.min(n);
    push_all(g.gateway_api, &key, 0..warm).await?;
    for s in open_all(&ep, &key, 0..warm, concurrency).await? {
        s.close().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let t = Instant::now();
    push_all(g.gateway_api, &key, 0..n).await?;
    let push_time = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = mem(&pid)?;

    let t = Instant::now();
    let sessions = open_all(&ep, &key, 0..n, concurrency).await?;
    let open_time = t.elapsed();
    tokio::time::sleep(settle).await;
    let after = mem(&pid)?;
    let alive = sessions.iter().filter(|s| !s.handle.is_closed()).count();
    let client = mem("self")?;

    for s in sessions {
        s.close().await;
    }
    tokio::time::sleep(settle).await;
    let closed = mem(&pid)?;

    let per_kib = (after.rss_kib as f64 - before.rss_kib as f64) / n as f64;
    println!(
        "== 3. memory per idle connected session: {n} sessions, opened {concurrency} at a time"
    );
    println!(
        "  pushed {n} keys in {:.2} s; opened {n} sessions in {:.2} s; {alive} still connected after {} ms idle",
        push_time.as_secs_f64(),
        open_time.as_secs_f64(),
        args.settle_ms
    );
    println!(
        "  serialgate (pid {pid}) VmRSS: before {} KiB, with {n} idle sessions {} KiB, after closing them {} KiB (VmHWM {} KiB, threads {} -> {})",
        before.rss_kib,
        after.rss_kib,
        closed.rss_kib,
        closed.hwm_kib,
        before.threads,
        after.threads
    );
    println!(
        "  client (this bench-ssh process, pid {}, separate from serialgate): VmRSS {} KiB with {n} sessions",
        std::process::id(),
        client.rss_kib
    );
    println!(
        "  per idle session: {per_kib:.1} KiB; target < {TARGET_KIB:.0} KiB: {}",
        verdict(per_kib < TARGET_KIB)
    );
    if alive < n {
        println!(
            "  WARNING: only {alive} of {n} sessions were still connected at the second reading"
        );
    }
    println!();
    summary_row(
        &format!("memory per idle session ({n}, KiB)"),
        &format!("{per_kib:.1}"),
        "",
        "",
        &format!("< {TARGET_KIB:.0} KiB {}", verdict(per_kib < TARGET_KIB)),
    );
    Ok(())
}

/// Pushes keys for the instances in `range`, over a few keep-alive connections.
async fn push_all(
    api: std::net::SocketAddr,
    key: &ClientKey,
    range: std::ops::Range<usize>,
) -> Res<()> {
    let mut set = tokio::task::JoinSet::new();
    for w in 0..PUSHERS {
        let range = range.clone();
        let public = key.public_openssh.clone();
        set.spawn(async move {
            let mut p = Pusher::new(api, &public);
            for idx in range.skip(w).step_by(PUSHERS) {
                p.push(&instance_id(idx)).await?;
            }
            Ok::<(), BoxError>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| BoxError::from(format!("push task: {e}")))??;
    }
    Ok(())
}

/// Opens one session per instance in `range`, at most `concurrency` at once; all or an error.
async fn open_all(
    ep: &Arc<Endpoint>,
    key: &ClientKey,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> Res<Vec<Session>> {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut set = tokio::task::JoinSet::new();
    for idx in range {
        let permits = Arc::clone(&permits);
        let ep = Arc::clone(ep);
        let key = key.clone();
        set.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            ssh::open(&ep, &username(idx), &key, true).await
        });
    }
    let mut sessions = Vec::new();
    let mut first_error: Option<String> = None;
    let mut errors = 0usize;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(s)) => sessions.push(s),
            Ok(Err(e)) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("open task: {e}"));
            }
        }
    }
    if let Some(e) = first_error {
        return Err(format!("{errors} sessions failed to open; first: {e}").into());
    }
    Ok(sessions)
}
