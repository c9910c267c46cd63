//! Console reconnection: a console that closes as soon as it opens is reopened with backoff,
//! not in a loop, and the user is told what is happening.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;

/// A console that accepts and closes every connection at once is reopened with backoff (100 ms
/// doubling to 5 s), not in a loop: its first 8 opens take at least the 11.3 s of backoff
/// between them, in (paused, simulated) time.
///
/// The console is a real socket under a paused clock: while the gateway's connection is in
/// flight the runtime may be idle, and the clock then jumps to the next timer, the wait below.
/// So a wait that runs out is not a failure by itself, only many in a row.
#[tokio::test(start_paused = true)]
async fn a_console_that_closes_at_once_is_reopened_with_backoff() {
    const OPENS: u32 = 8;
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
    let (mut opens, mut idle_waits) = (0u32, 0u32);
    // The session opens the console; each connection is closed as soon as it is accepted.
    while opens < OPENS {
        match tokio::time::timeout(Duration::from_secs(60), fake.accept_raw()).await {
            Ok(Some(line)) => {
                drop(line);
                opens += 1;
            }
            Ok(None) => panic!("the fake console stopped"),
            Err(_) => {
                idle_waits += 1;
                assert!(
                    idle_waits < 5,
                    "the console was reopened only {opens} times"
                );
            }
        }
    }
    let took = started.elapsed();
    eprintln!("{opens} opens in {took:?}");
    // 100 + 200 + 400 + 800 + 1600 + 3200 + 5000 ms between the 8 opens: no sooner.
    assert!(
        took >= Duration::from_millis(11_300),
        "{opens} opens in {took:?}: the console was reopened without backing off"
    );

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
