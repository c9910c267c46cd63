//! Spectators through a russh client: a read-only view audited on every exit path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use console::{SessionEvent, SessionPhase};

const LONG: Duration = Duration::from_secs(600);

fn spectator_user(instance: &str) -> String {
    format!("{instance}.port0.spectate")
}

/// Waits (on paused time, so for free) for the end record of the spectator view on
/// `instance`, and returns it.
async fn spectator_end(gw: &Gateway) -> SessionEvent {
    let find = || {
        gw.audit
            .sessions()
            .into_iter()
            .find(|e| e.target == "spectate:port0" && matches!(e.phase, SessionPhase::Ended { .. }))
    };
    eventually("the spectator's end record", LONG, || {
        std::future::ready(find().is_some())
    })
    .await;
    find().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_spectator_sees_the_console_read_only_and_its_view_is_audited() {
    let gw = GatewayBuilder::new()
        .hubs()
        .instance(INST_A, "sim:")
        .start()
        .await;
    let (writer_key, spectator_key) = (random_key(), random_key());
    gw.push_ok(INST_A, &writer_key).await;
    let mut w = gw.login_ok(INST_A, &writer_key).await;
    w.send(b"\r").await;
    w.out.expect("sim login: ").await;

    gw.push_spectator_ok(INST_A, &spectator_key).await;
    let mut s = gw
        .login(&spectator_user(INST_A), &spectator_key)
        .await
        .unwrap();
    // The history first, then live output.
    s.out.expect("sim login: ").await;
    w.out.expect("is now watching this console").await;
    w.send(b"root\r").await;
    s.out.expect("Password: ").await;
    // What it types goes nowhere but into one notice.
    s.send(b"typed\r").await;
    s.out.expect("You are watching read-only").await;
    drop(s);

    let end = spectator_end(&gw).await;
    match end.phase {
        SessionPhase::Ended {
            reason,
            bytes_in,
            bytes_out,
            ..
        } => {
            assert!(
                matches!(reason, "client-closed" | "client-gone"),
                "{reason}"
            );
            assert_eq!(bytes_in, 0);
            assert!(
                bytes_out >= "sim login: Password: ".len() as u64,
                "{bytes_out}"
            );
        }
        SessionPhase::Started => unreachable!(),
    }
    assert!(gw.audit.started().contains(&end.session_id));
}

/// A spectator task that panics (here noting its presence in the session directory) closes its
/// channel and writes its end record; the writer's session is not disturbed.
#[tokio::test(start_paused = true)]
async fn a_panicking_spectator_closes_its_channel_and_records_its_end() {
    let gw = GatewayBuilder::new()
        .hubs()
        .instance(INST_A, "sim:")
        .start()
        .await;
    let (writer_key, spectator_key) = (random_key(), random_key());
    gw.push_ok(INST_A, &writer_key).await;
    let mut w = gw.login_ok(INST_A, &writer_key).await;
    w.send(b"\r").await;
    w.out.expect("sim login: ").await;

    gw.directory.panic_on_watch(true);
    gw.push_spectator_ok(INST_A, &spectator_key).await;
    let mut s = gw
        .login(&spectator_user(INST_A), &spectator_key)
        .await
        .unwrap();
    assert!(
        s.out.wait_closed(LONG).await,
        "the panicked spectator's channel stayed open"
    );
    let end = spectator_end(&gw).await;
    assert!(
        matches!(
            end.phase,
            SessionPhase::Ended {
                reason: "aborted",
                ..
            }
        ),
        "{:?}",
        end.phase
    );
    gw.directory.panic_on_watch(false);
    w.send(b"root\r").await;
    w.out.expect("Password: ").await;
    gw.assert_held(INST_A).await;
}

/// With `max_spectators = 0` a spectator is told that watching is off, not that a limit of 0
/// is reached, and its view is audited as refused.
#[tokio::test(start_paused = true)]
async fn a_server_without_spectators_says_so() {
    let gw = GatewayBuilder::new()
        .hubs()
        .instance(INST_A, "sim:")
        .config(|c| c.max_spectators = 0)
        .start()
        .await;
    let key = random_key();
    gw.push_spectator_ok(INST_A, &key).await;
    let mut s = gw.login(&spectator_user(INST_A), &key).await.unwrap();
    s.out
        .expect("This server does not allow spectators ([sessions] max_spectators = 0).")
        .await;
    assert!(s.out.wait_closed(LONG).await);
    assert_eq!(s.out.exit_status, Some(1));
    let end = spectator_end(&gw).await;
    assert!(
        matches!(
            end.phase,
            SessionPhase::Ended {
                reason: "refused",
                ..
            }
        ),
        "{:?}",
        end.phase
    );
}
