//! Session lifecycle: the teardown block, and every way a session ends releasing its slot —
//! client close, `~.`, a dead network, the maximum duration, shutdown — plus surviving the
//! loss of the console backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use console::SlotState;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;

const LIMIT_EXCEEDED: &str = "SerialConsoleSessionLimitExceededException";

#[tokio::test]
async fn teardown_blocks_pushes_until_the_clock_passes_it() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let key = random_key();
    let next = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;

    // While connected, a push is refused.
    let e = gw.push(INST_A, 0, next.public_key()).await.unwrap_err();
    assert_eq!(e.code(), LIMIT_EXCEEDED);

    s.handle
        .disconnect(russh::Disconnect::ByApplication, "bye", "")
        .await
        .unwrap();
    drop(s);
    let state = gw.wait_released(INST_A).await;
    let SlotState::TearingDown { until_ms } = state else {
        panic!("expected a teardown block, got {state:?}");
    };
    let now = gw.service.clock().now_ms();
    assert_eq!(until_ms - now, 30_000, "default teardown is 30 s");
    let e = gw.push(INST_A, 0, next.public_key()).await.unwrap_err();
    assert_eq!(e.code(), LIMIT_EXCEEDED);

    // One millisecond before the end of the teardown: still refused. At the end: accepted.
    gw.clock.advance(Duration::from_millis(29_999));
    let e = gw.push(INST_A, 0, next.public_key()).await.unwrap_err();
    assert_eq!(e.code(), LIMIT_EXCEEDED);
    gw.clock.advance(Duration::from_millis(1));
    gw.push_ok(INST_A, &next).await;
    let mut s = gw.login_ok(INST_A, &next).await;
    s.send(b"\r").await;
    s.out.expect("login: ").await;
}

#[tokio::test]
async fn closing_the_channel_releases_the_slot() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;
    gw.assert_held(INST_A).await;
    // (russh's client forgets a channel it closed itself, so there is no Close to wait for.)
    s.out.channel.close().await.unwrap();
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
}

#[tokio::test]
async fn dropping_the_client_releases_the_slot() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;
    gw.assert_held(INST_A).await;
    drop(s);
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
}

#[tokio::test]
async fn tilde_dot_after_a_newline_ends_the_session() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;

    // Not after a newline, `~.` is just text (echoed by the login prompt).
    s.send(b"x~.").await;
    s.out.expect("x~.").await;
    gw.assert_held(INST_A).await;

    s.send(b"\r~.").await;
    assert!(
        s.out.wait_closed(WAIT).await,
        "`~.` after a newline did not close the channel"
    );
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_network_is_found_by_keepalive_and_releases_the_slot() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .config(|c| {
            c.keepalive_interval = Duration::from_millis(200);
            c.keepalive_max = 2;
        })
        .start()
        .await;
    let proxy = Proxy::start(gw.addr).await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut handle = connect_to(proxy.addr, &gw.host_key, client_config()).await;
    assert!(
        authenticate(&mut handle, &user(INST_A), &key)
            .await
            .success()
    );
    let mut out = open_shell(&handle).await;
    out.expect("login: ").await;

    // A healthy client answers the keepalives: still connected after several of them. The
    // session is idle, so what crosses the proxy now is keepalives and their answers. (Real
    // time, not paused: on paused time a packet late on a loaded machine would let the clock
    // run through the keepalive limit.)
    let (up, down) = proxy.forwarded();
    eventually("four keepalives answered", WAIT, || {
        let (u, d) = proxy.forwarded();
        std::future::ready(u >= up + 4 && d >= down + 4)
    })
    .await;
    out.send(b"\r").await;
    out.expect("login: ").await;
    gw.assert_held(INST_A).await;

    // Pull the cable: nothing moves, nothing closes.
    proxy.freeze();
    let frozen_at = Instant::now();
    let state = gw
        .wait_released_within(INST_A, Duration::from_secs(5))
        .await;
    assert!(matches!(state, SlotState::TearingDown { .. }), "{state:?}");
    eprintln!("dead peer released after {:?}", frozen_at.elapsed());
    drop(out);
    drop(handle);
}

#[tokio::test(start_paused = true)]
async fn the_maximum_duration_warns_then_closes() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .settings(|s| s.max_session = Duration::from_secs(3))
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;
    s.out.expect("This session will be closed in").await;
    gw.assert_held(INST_A).await;
    s.out
        .expect("The session reached its maximum duration and is closed.")
        .await;
    assert!(s.out.wait_closed(WAIT).await, "channel not closed");
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
}

#[tokio::test]
async fn shutdown_says_goodbye_and_releases_the_slot() {
    let mut gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;

    gw.shutdown();
    s.out.expect("The gateway is shutting down").await;
    assert!(s.out.wait_closed(WAIT).await, "channel not closed");
    gw.join(WAIT).await.unwrap();
    // Released before `run` returned: nothing is waited for.
    let state = gw.slot_state(INST_A, 0).await;
    assert!(matches!(state, SlotState::TearingDown { .. }), "{state:?}");
    // No longer accepting.
    assert!(tokio::net::TcpStream::connect(gw.addr).await.is_err());
}

/// After `run` returns, no client may still be connected: the drain deadline is supposed to
/// close what is left. Three kinds of leftover: a session the client keeps open after its
/// channel closed, an authenticated connection without a shell (holding a slot), and a
/// connection that never authenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_every_connection_after_the_grace() {
    let mut gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .instance(INST_B, "sim:")
        .config(|c| c.shutdown_grace = Duration::from_millis(500))
        .start()
        .await;
    let ka = random_key();
    let kb = random_key();
    gw.push_ok(INST_A, &ka).await;
    gw.push_ok(INST_B, &kb).await;
    let mut session = gw.login_ok(INST_A, &ka).await;
    session.out.expect("login: ").await;
    let (no_shell, r) = gw.auth(&user(INST_B), &kb).await;
    assert!(r.success());
    gw.assert_held(INST_B).await;
    let unauthenticated = gw.connect().await;

    gw.shutdown();
    session.out.expect("The gateway is shutting down").await;
    gw.join(Duration::from_secs(5)).await.unwrap();

    let within = Duration::from_secs(3);
    let deadline = Instant::now() + within;
    while Instant::now() < deadline
        && !(session.handle.is_closed() && no_shell.is_closed() && unauthenticated.is_closed())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        session.handle.is_closed() && no_shell.is_closed() && unauthenticated.is_closed(),
        "connections still open {within:?} after gateway::run returned: \
         session client {}, authenticated-without-shell {}, unauthenticated {}",
        !session.handle.is_closed(),
        !no_shell.is_closed(),
        !unauthenticated.is_closed()
    );
    let state = gw.slot_state(INST_B, 0).await;
    assert!(
        !matches!(state, SlotState::Held { .. }),
        "the authenticated connection's slot is still held after shutdown: {state:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_backend_reconnects_and_says_so() {
    let mut fake = FakeConsole::new();
    let gw = GatewayBuilder::new()
        .instance(INST_A, &fake.uri())
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    let mut line = fake.accept().await;
    line.write_all(b"first boot\r\n").await.unwrap();
    s.out.expect("first boot\r\n").await;
    s.send(b"ping").await;
    assert_eq!(read_exact_within(&mut line, 4).await, b"ping");

    // The console goes away (and is not there to reconnect to).
    fake.stop_listening().await;
    drop(line);
    s.out
        .expect("Lost the connection to the console; reconnecting")
        .await;
    assert!(!s.out.closed, "the session must survive the console loss");
    gw.assert_held(INST_A).await;

    // It comes back: the gateway reconnects and says so, and bytes flow both ways again.
    fake.listen();
    let mut line = fake.accept().await;
    s.out.expect("Console connection restored").await;
    line.write_all(b"second boot\r\n").await.unwrap();
    s.out.expect("second boot\r\n").await;
    s.send(b"pong").await;
    assert_eq!(read_exact_within(&mut line, 4).await, b"pong");
    gw.assert_held(INST_A).await;

    // Disconnecting releases the slot and closes the console connection.
    s.out.channel.close().await.unwrap();
    drop(s);
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
    let mut rest = Vec::new();
    let n = bounded("console connection close", line.read_to_end(&mut rest))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

/// An authenticated connection that has not asked for a shell yet does not renew its lease.
/// Once that lease has lapsed and someone else holds the slot, a late shell request must not
/// open a second session on the same console. (With `teardown_seconds = 5` the slot reads free
/// 20 s after X authenticated — lease 15 s + teardown — while the login grace, 30 s by default,
/// still lets X open its shell. The manual clock plays those 21 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_admission_cannot_open_a_second_session() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .settings(|s| s.teardown = Duration::from_secs(5))
        .start()
        .await;
    let kx = random_key();
    let ky = random_key();
    gw.push_ok(INST_A, &kx).await;
    let (x, r) = gw.auth(&user(INST_A), &kx).await;
    assert!(r.success());
    gw.assert_held(INST_A).await;

    // X idles past its lease and the teardown; the slot reads free and Y takes it.
    gw.clock.advance(Duration::from_secs(21));
    assert_eq!(gw.slot_state(INST_A, 0).await, SlotState::Free);
    gw.push_ok(INST_A, &ky).await;
    let mut y = gw.login_ok(INST_A, &ky).await;
    y.out.expect("login: ").await;
    let SlotState::Held { holder, .. } = gw.slot_state(INST_A, 0).await else {
        panic!("Y should hold the slot");
    };

    // Now X asks for a shell.
    let channel = bounded("channel open", x.channel_open_session()).await;
    if let Ok(channel) = channel {
        let mut out = Output::new(channel);
        out.channel
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .unwrap();
        let _ = out.reply().await;
        out.channel.request_shell(true).await.unwrap();
        if out.reply().await == Some(true) {
            let saw_console = out
                .try_expect("login: ", Duration::from_secs(3))
                .await
                .is_some();
            assert!(
                !saw_console,
                "a second session opened on {INST_A} while another holds the slot; X saw: {:?}",
                out.all_text()
            );
        }
    }
    // Y still holds the slot.
    let SlotState::Held { holder: now, .. } = gw.slot_state(INST_A, 0).await else {
        panic!("Y lost the slot");
    };
    assert_eq!(now, holder);
}

/// An authenticated client that never opens a shell must not sit on the slot: the login grace
/// closes it and the slot is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_connection_without_a_shell_is_closed_by_the_grace() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .config(|c| c.login_grace = Duration::from_secs(1))
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let (handle, r) = gw.auth(&user(INST_A), &key).await;
    assert!(r.success());
    gw.assert_held(INST_A).await;
    eventually(
        "the shell-less connection is closed",
        Duration::from_secs(5),
        || async { handle.is_closed() },
    )
    .await;
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
}
