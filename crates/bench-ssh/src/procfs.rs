//! Reading another process's figures from /proc: resident memory and CPU time.

use crate::{BoxError, Res};

/// Clock ticks per second in /proc/PID/stat: Linux's USER_HZ, fixed at 100 for user space.
const USER_HZ: f64 = 100.0;

/// The memory figures of a process, from /proc/PID/status.
#[derive(Debug, Clone, Copy)]
pub struct Mem {
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub threads: u64,
}

/// `pid` is a number or `self`.
pub fn mem(pid: &str) -> Res<Mem> {
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

/// CPU seconds used by `pid` and by its children that have exited and been waited for (sshd's
/// per-connection processes, their shells and socat).
///
/// The process's own time is the sum of its threads' run time in /proc/PID/task/*/schedstat
/// (nanoseconds); /proc/PID/stat's utime + stime (10 ms units) is the fallback. Children's time
/// only exists in 10 ms units (cutime + cstime).
pub fn cpu_seconds(pid: u32) -> Res<f64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    // The command name (field 2) may contain spaces: count fields after its closing paren.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| BoxError::from(format!("{path}: unexpected format")))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14..=17.
    let ticks = |range: std::ops::RangeInclusive<usize>| -> Res<f64> {
        let mut sum = 0u64;
        for i in range {
            let f = fields
                .get(i)
                .ok_or_else(|| BoxError::from(format!("{path}: too few fields")))?;
            sum += f.parse::<u64>()?;
        }
        Ok(sum as f64 / USER_HZ)
    };
    let own = match threads_run_time(pid) {
        Some(s) => s,
        None => ticks(11..=12)?,
    };
    Ok(own + ticks(13..=14)?)
}

/// The summed run time of the live threads of `pid`, seconds; `None` without schedstat.
fn threads_run_time(pid: u32) -> Option<f64> {
    let mut ns = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}
