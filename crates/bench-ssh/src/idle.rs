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
use crate::procfs::mem;
use crate::push::Pusher;
use crate::ssh::{self, ClientKey, Endpoint, Session};
use crate::stats::summary_row;
use crate::{BoxError, Res};

/// Target: an idle session costs the gateway less than this, KiB.
const TARGET_KIB: f64 = 64.0;
/// Parallel API connections used to push the keys.
const PUSHERS: usize = 4;

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

    // At rest: started, consoles connected (serialgate's hubs connect right after it starts).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let at_rest = mem(&pid)?;

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

    // A second round on the same process: if closed sessions left memory behind, the gateway
    // grows again by about as much; if it only kept freed memory for reuse, it barely grows.
    push_all(g.gateway_api, &key, 0..n).await?;
    let sessions = open_all(&ep, &key, 0..n, concurrency).await?;
    tokio::time::sleep(settle).await;
    let again = mem(&pid)?;
    for s in sessions {
        s.close().await;
    }
    tokio::time::sleep(settle).await;
    let again_closed = mem(&pid)?;

    let per_kib = (after.rss_kib as f64 - before.rss_kib as f64) / n as f64;
    println!(
        "== 3. memory per idle connected session: {n} sessions, opened {concurrency} at a time"
    );
    let per_instance = args.baseline_rss_kib.map(|base| {
        let extra = g.instances.saturating_sub(args.baseline_instances).max(1);
        (at_rest.rss_kib as f64 - base as f64) / extra as f64
    });
    if let (Some(base), Some(per)) = (args.baseline_rss_kib, per_instance) {
        println!(
            "  serialgate at rest: {} KiB with {} instances, {base} KiB with {}: {per:.1} KiB per configured instance (registry entry, console connection and history)",
            at_rest.rss_kib, g.instances, args.baseline_instances,
        );
    } else {
        println!(
            "  serialgate at rest: {} KiB with {} instances",
            at_rest.rss_kib, g.instances
        );
    }
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
    println!(
        "  second round ({n} more sessions opened, idled, closed): VmRSS with them {} KiB ({:+.1} KiB/session vs the first round), after closing {} KiB",
        again.rss_kib,
        (again.rss_kib as f64 - after.rss_kib as f64) / n as f64,
        again_closed.rss_kib
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
    if let Some(per) = per_instance {
        summary_row(
            &format!("memory per instance at rest ({}, KiB)", g.instances),
            &format!("{per:.1}"),
            "",
            "",
            "",
        );
    }
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
