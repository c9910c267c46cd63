//! Console reconnection: a console that closes as soon as it opens is reopened with backoff,
//! not in a loop, and the user is told what is happening.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

/// A console that accepts and closes every connection at once, over a minute of (paused,
/// simulated) time: with 100 ms doubling to 5 s it is opened about 18 times, not thousands.
#[tokio::test(start_paused = true)]
async fn a_console_that_closes_at_once_is_reopened_with_backoff() {
    let mut fake = FakeConsole::new();
    let gw = GatewayBuilder::new()
        .instance(INST_A, &fake.uri())
        .config(|c| {
            c.reconnect_min = Duration::from_millis(100);
            c.reconnect_max = Duration::from_secs(5);
            c.reconnect_reset = Duration::from_secs(10);
        })
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;

    let started = tokio::time::Instant::now();
    let mut opens = 0u32;
    // The session opens the console; each connection is closed as soon as it is accepted.
    // While the gateway waits out its backoff, the paused clock jumps to the next retry.
    while started.elapsed() < Duration::from_secs(60) {
        let accepted = tokio::time::timeout(Duration::from_secs(60), fake.accept_raw()).await;
        let Ok(Some(line)) = accepted else { break };
        drop(line);
        opens += 1;
        assert!(
            opens <= 20,
            "the console was opened {opens} times in {:?} of simulated time",
            started.elapsed()
        );
    }
    eprintln!("{opens} opens in {:?}", started.elapsed());
    assert!(opens >= 5, "the console was reopened only {opens} times");

    // The user was told the console is away, and the session is still up.
    s.out
        .expect("Lost the connection to the console; reconnecting")
        .await;
    assert!(!s.out.closed);
    gw.assert_held(INST_A).await;
}

/// An `exec:` command that exits at once is restarted with backoff, and each restart says so
/// with its delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exiting_console_command_is_restarted_with_backoff_and_says_so() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "exec:/bin/true")
        .config(|c| {
            c.reconnect_min = Duration::from_millis(100);
            c.reconnect_max = Duration::from_millis(400);
            c.reconnect_reset = Duration::from_secs(10);
        })
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    for delay in ["0.1", "0.2", "0.4", "0.4"] {
        s.out
            .expect(&format!(
                "[serialgate: the console command exited; restarting in {delay} s]"
            ))
            .await;
    }
    assert!(!s.out.closed);
    gw.assert_held(INST_A).await;
}
