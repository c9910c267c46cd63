//! `exec:` consoles: a command on a pty, its exit closing the console after its output, and
//! dropping the console killing and reaping it (and whatever it started).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use backends::{BreakError, ConsoleUri};
use common::{opts, read_to_end, read_until, send, within};

#[tokio::test]
async fn cat_echoes_input() {
    let uri: ConsoleUri = "exec:cat".parse().unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    assert_eq!(console.capabilities.kind, "exec");
    assert_eq!(
        console.input.send_break().await,
        Err(BreakError::Unsupported)
    );
    send(&console, b"hello pty\r").await;
    // The pty echoes the line, then cat writes it back.
    let out = read_until(&mut console.output, b"hello pty\r\nhello pty\r\n").await;
    assert!(
        out.starts_with(b"hello pty"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

#[tokio::test]
async fn child_exit_closes_output_after_its_last_bytes() {
    let uri: ConsoleUri = "exec:sh -c 'echo hi; echo there'".parse().unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    let out = read_to_end(&mut console.output).await;
    assert_eq!(out, b"hi\r\nthere\r\n");
}

#[tokio::test]
async fn spawn_failure_is_an_open_error() {
    let uri: ConsoleUri = "exec:/nonexistent/serialgate-console".parse().unwrap();
    assert!(backends::open(&uri, &opts()).await.is_err());
}

/// Pids of processes whose command line contains `marker`.
fn pids_with(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push((pid, cmdline));
        }
    }
    found
}

/// Whether `pid` is gone or only a zombie waiting for someone other than us.
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

#[tokio::test]
async fn dropping_the_console_kills_and_reaps_the_child_and_its_group() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    // Unique sleep lengths mark our processes; a background job shares the child's group.
    let marker = format!("1000.{}{nanos}", std::process::id());
    let uri = ConsoleUri::Exec(vec![
        "sh".into(),
        "-c".into(),
        format!("sleep {marker} & sleep {marker}; echo unreachable"),
    ]);
    let console = backends::open(&uri, &opts()).await.unwrap();

    let procs = within("processes to start", async {
        loop {
            let procs = pids_with(&marker);
            // sh plus two sleeps.
            if procs.len() >= 3 {
                return procs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let shell = procs
        .iter()
        .find(|(_, cmdline)| cmdline.starts_with("sh "))
        .map(|(pid, _)| *pid)
        .expect("the shell");

    drop(console);

    within("processes to die", async {
        while !procs.iter().all(|(pid, _)| dead(*pid)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // Our own child must be reaped, not left a zombie.
    within("the shell to be reaped", async {
        while std::path::Path::new(&format!("/proc/{shell}")).exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// A console command sees only PATH, LANG and TERM, never serialgate's environment (which may
/// hold a secret read from a variable). Cargo sets `CARGO_PKG_NAME` and friends for this test
/// process; none of them may reach the child.
#[tokio::test]
async fn the_command_gets_a_minimal_environment() {
    let canaries = [
        "CARGO_PKG_NAME",
        "CARGO_MANIFEST_DIR",
        "CARGO",
        "HOME",
        "USER",
    ];
    assert!(
        canaries.iter().any(|c| std::env::var_os(c).is_some()),
        "the test process has none of {canaries:?}: nothing to check"
    );
    let uri: ConsoleUri = "exec:/usr/bin/env".parse().unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    let out = String::from_utf8(read_to_end(&mut console.output).await).unwrap();
    let names: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_end_matches('\r').split_once('=').map(|(n, _)| n))
        .collect();
    for name in &names {
        assert!(
            ["PATH", "LANG", "TERM"].contains(name),
            "{name} reached the console command: {out:?}"
        );
    }
    assert!(names.contains(&"PATH"), "{out:?}");
    let term = std::env::var("TERM").unwrap_or_else(|_| "vt100".to_owned());
    assert!(out.contains(&format!("TERM={term}\r\n")), "{out:?}");
}
