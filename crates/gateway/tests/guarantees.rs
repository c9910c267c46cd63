//! What a session guarantees whatever happens around it: its start record is stored before the
//! user sees a console byte, it stops writing before its lease can lapse (the store failing,
//! stalling or answering "lost"), and it releases its slot and writes its end record on every
//! exit path — a shutdown (before `gateway::run` returns) and a panic included.
//!
//! The timing tests run on paused time with a service clock that follows tokio's, so "before
//! the lease lapses" compares the instant the console connection closed with the expiry the
//! store gave the lease.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use console::SlotState;
use tokio::io::AsyncReadExt as _;
use tokio::net::UnixStream;

/// Far longer than any lease here; on paused time waiting costs nothing.
const LONG: Duration = Duration::from_secs(600);

/// The lease-loss notice (`messages::LEASE_LOST`).
const LEASE_LOST: &str = "This session lost its slot (session store); it is closed.";

/// Reads the console side until the gateway closes it; returns the service clock's time then.
async fn closed_at(gw: &Gateway, line: &mut UnixStream) -> u64 {
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(LONG, line.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return gw.service.clock().now_ms(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the console connection is still open {LONG:?} later"),
        }
    }
}

/// Waits (on paused time, so for free) until the end record of `session` is stored.
async fn end_reason(gw: &Gateway, session: &str) -> &'static str {
    let mut reason = None;
    eventually("the end record", LONG, || {
        reason = gw
            .audit
            .ended()
            .into_iter()
            .find(|(id, _)| id == session)
            .map(|(_, r)| r);
        std::future::ready(reason.is_some())
    })
    .await;
    reason.unwrap()
}

/// The holder (session id) of the lease on `instance`.port0.
async fn holder(gw: &Gateway, instance: &str) -> String {
    match gw.slot_state(instance, 0).await {
        SlotState::Held { holder, .. } => holder,
        other => panic!("{instance}.port0 is not held: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The start record

#[tokio::test]
async fn a_session_whose_start_cannot_be_recorded_is_refused_and_frees_the_slot() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    gw.audit.fail_starts();
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    assert!(
        s.out.wait_closed(WAIT).await,
        "the refused session stayed open"
    );
    let text = s.out.all_text();
    assert!(
        text.contains("Unable to start a serial console session"),
        "the user was not told: {text:?}"
    );
    assert!(!text.contains("login: "), "the console was shown: {text:?}");
    assert_eq!(s.out.exit_status, Some(1));
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
    assert!(gw.audit.sessions().is_empty(), "{:?}", gw.audit.sessions());
}

/// The start record takes five (paused) seconds to be stored; the console's first bytes must
/// not reach the client before it is.
#[tokio::test(start_paused = true)]
async fn the_start_record_is_stored_before_the_first_console_byte() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    gw.audit.delay_starts(Duration::from_secs(5));
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    assert!(
        s.out.wait_len(1, WAIT).await,
        "no console output within {WAIT:?}"
    );
    assert_eq!(
        gw.audit.started().len(),
        1,
        "console bytes reached the client before the start record was stored: {:?}",
        s.out.all_text()
    );
    s.out.expect("login: ").await;
}

// ---------------------------------------------------------------------------------------------
// Lease loss

/// A session on a fake console with the default 15 s lease, on paused time; returns the console
/// connection and the session's id.
async fn leased_session(gw: &Gateway, fake: &mut FakeConsole) -> (Session, UnixStream, String) {
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let s = gw.login_ok(INST_A, &key).await;
    let line = bounded("console connection", fake.accept_raw())
        .await
        .unwrap();
    let id = holder(gw, INST_A).await;
    (s, line, id)
}

async fn a_session_closes_before_its_lease_lapses_when_the_store(fault: LeaseFault) {
    let mut fake = FakeConsole::new();
    let gw = GatewayBuilder::new()
        .instance(INST_A, &fake.uri())
        .tokio_clock()
        .start()
        .await;
    let (mut s, mut line, id) = leased_session(&gw, &mut fake).await;
    // A renewal or two succeed first: the rule holds for a renewed lease, not only a new one.
    eventually("two renewals", LONG, || {
        std::future::ready(gw.store.renewals() >= 2)
    })
    .await;
    gw.store.set_fault(fault);
    let closed = closed_at(&gw, &mut line).await;
    let lapses = gw.store.granted_until_ms();
    eprintln!(
        "{fault:?}: console closed {} ms before the lease lapsed",
        lapses as i64 - closed as i64
    );
    assert!(
        closed < lapses,
        "the session still wrote to the console at {closed}, its lease lapsed at {lapses}"
    );
    s.out.expect(LEASE_LOST).await;
    assert!(s.out.wait_closed(WAIT).await, "channel not closed");
    assert_eq!(end_reason(&gw, &id).await, "lease-unrenewed");
}

#[tokio::test(start_paused = true)]
async fn a_session_closes_before_its_lease_lapses_when_the_store_fails() {
    a_session_closes_before_its_lease_lapses_when_the_store(LeaseFault::Fail).await;
}

#[tokio::test(start_paused = true)]
async fn a_session_closes_before_its_lease_lapses_when_the_store_stalls() {
    a_session_closes_before_its_lease_lapses_when_the_store(LeaseFault::Stall).await;
}

#[tokio::test(start_paused = true)]
async fn a_renewal_answering_lost_closes_the_session_at_once() {
    let mut fake = FakeConsole::new();
    let gw = GatewayBuilder::new()
        .instance(INST_A, &fake.uri())
        .tokio_clock()
        .start()
        .await;
    let (mut s, mut line, id) = leased_session(&gw, &mut fake).await;
    gw.store.set_fault(LeaseFault::Lost);
    let before = gw.store.renewals();
    let closed = closed_at(&gw, &mut line).await;
    assert_eq!(gw.store.renewals(), before + 1, "closed by one answer");
    let answered = gw.store.last_answer_ms();
    // Paused time: nothing sleeps between the answer and the close, so they share an instant.
    assert_eq!(
        closed,
        answered,
        "the console closed {} ms after the renewal said the lease was lost",
        closed - answered
    );
    s.out.expect(LEASE_LOST).await;
    assert!(s.out.wait_closed(WAIT).await, "channel not closed");
    assert_eq!(end_reason(&gw, &id).await, "lease-lost");
}

/// A renewal that takes a second must still complete while console output keeps the session
/// busy (a byte every 100 ms): the renewal in flight is kept across the session's events, not
/// started again on each.
#[tokio::test(start_paused = true)]
async fn a_busy_session_keeps_its_lease_through_slow_renewals() {
    let mut fake = FakeConsole::new();
    let gw = GatewayBuilder::new()
        .instance(INST_A, &fake.uri())
        .tokio_clock()
        .start()
        .await;
    let (mut s, line, _) = leased_session(&gw, &mut fake).await;
    gw.store.set_fault(LeaseFault::Slow(Duration::from_secs(1)));
    let answered = gw.store.answered();
    let writer = tokio::spawn(async move {
        let mut line = line;
        loop {
            if tokio::io::AsyncWriteExt::write_all(&mut line, b".")
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // Six renewals: half a minute, twice the lease time.
    eventually("six slow renewals answered", LONG, || {
        std::future::ready(gw.store.answered() >= answered + 6)
    })
    .await;
    s.out.drain_for(Duration::from_millis(100)).await;
    assert!(!s.out.closed, "the session closed: {:?}", s.out.unread());
    assert!(!s.out.all_text().contains(LEASE_LOST));
    gw.assert_held(INST_A).await;
    writer.abort();
}

// ---------------------------------------------------------------------------------------------
// Every exit path

/// End records take 1.5 s — longer than the connections' shutdown linger (1 s with the test
/// grace of 2 s) — so `run` returning before its sessions ended would show.
#[tokio::test(start_paused = true)]
async fn shutdown_ends_every_session_before_run_returns() {
    let mut gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .instance(INST_B, "sim:")
        .instance(INST_C, "sim:")
        .start()
        .await;
    gw.audit.delay_ends(Duration::from_millis(1500));
    let mut sessions = Vec::new();
    for instance in [INST_A, INST_B, INST_C] {
        let key = random_key();
        gw.push_ok(instance, &key).await;
        let mut s = gw.login_ok(instance, &key).await;
        s.out.expect("login: ").await;
        sessions.push((instance, holder(&gw, instance).await, s));
    }

    gw.shutdown();
    gw.join(WAIT).await.unwrap();

    // Nothing is waited for from here on: all of it happened before `run` returned.
    let ended = gw.audit.ended();
    for (instance, id, mut s) in sessions {
        assert!(
            ended.contains(&(id.clone(), "shutdown")),
            "no end record for {id} when run returned: {ended:?}"
        );
        let state = gw.slot_state(instance, 0).await;
        assert!(
            matches!(state, SlotState::TearingDown { .. }),
            "{instance}.port0 not released when run returned: {state:?}"
        );
        s.out.expect("The gateway is shutting down").await;
    }
}

/// A session task that panics (here in a lease renewal) is logged, closes its channel, frees
/// its slot and writes its end record; the gateway serves on and still shuts down in order.
#[tokio::test(start_paused = true)]
async fn a_panicking_session_frees_its_slot_and_records_its_end() {
    let mut gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .instance(INST_B, "sim:")
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;
    let id = holder(&gw, INST_A).await;

    gw.store.set_fault(LeaseFault::Panic);
    assert!(
        s.out.wait_closed(LONG).await,
        "the panicked session's channel stayed open"
    );
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
    assert_eq!(end_reason(&gw, &id).await, "aborted");

    gw.store.set_fault(LeaseFault::None);
    let other = random_key();
    gw.push_ok(INST_B, &other).await;
    let mut b = gw.login_ok(INST_B, &other).await;
    b.out.expect("login: ").await;
    gw.shutdown();
    gw.join(WAIT).await.unwrap();
    b.out.expect("The gateway is shutting down").await;
}
