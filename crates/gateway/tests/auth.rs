//! Authentication: which key opens which console, key expiry, one push for one session, and
//! fifty clients racing for one slot.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use console::SlotState;
use russh::MethodKind;
use russh::client::{AuthResult, KeyboardInteractiveAuthResponse};

/// Asserts a plain authentication failure that offers only `publickey`; returns its shape so
/// callers can check every failure looks the same.
fn assert_rejected(case: &str, result: &AuthResult) -> String {
    match result {
        AuthResult::Failure {
            remaining_methods,
            partial_success,
        } => {
            assert!(!partial_success, "{case}: partial success");
            assert_eq!(
                remaining_methods.to_vec(),
                vec![MethodKind::PublicKey],
                "{case}: the server must offer publickey only"
            );
        }
        AuthResult::Success => panic!("{case}: authentication succeeded"),
    }
    format!("{result:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_matrix_rejects_uniformly_and_the_right_key_gets_the_console() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .instance(INST_B, "sim:")
        .start()
        .await;
    let key = test_key("ed25519");
    let rsa = test_key("rsa2048");
    let key_b = random_key();
    let mut shapes = Vec::new();

    // Before any push, the right username and key do not work.
    let (_h, r) = gw.auth(&user(INST_A), &key).await;
    shapes.push(assert_rejected("no push at all", &r));

    gw.push_ok(INST_A, &key).await;
    gw.push_ok(INST_B, &key_b).await;

    let cases: Vec<(&str, String, &russh::keys::PrivateKey)> = vec![
        ("unknown instance", user(UNKNOWN), &key),
        ("wrong port", format!("{INST_A}.port1"), &key),
        ("wrong key", user(INST_A), &rsa),
        ("key pushed for another instance", user(INST_A), &key_b),
        ("username root", "root".into(), &key),
        ("bare instance id", INST_A.into(), &key),
        ("empty port", format!("{INST_A}.port"), &key),
        ("upper-case id", user(&INST_A.to_uppercase()), &key),
        ("other instance with A's key", user(INST_B), &key),
    ];
    for (case, username, k) in &cases {
        let (_h, r) = gw.auth(username, k).await;
        shapes.push(assert_rejected(case, &r));
    }
    assert!(
        shapes.windows(2).all(|w| w[0] == w[1]),
        "failures differ: {shapes:?}"
    );

    // Other methods: none, password and keyboard-interactive fail and point at publickey.
    let mut h = gw.connect().await;
    let r = bounded("none auth", h.authenticate_none(user(INST_A)))
        .await
        .unwrap();
    assert_rejected("none", &r);
    let r = bounded("password auth", h.authenticate_password(user(INST_A), "x"))
        .await
        .unwrap();
    assert_rejected("password", &r);
    let r = bounded(
        "keyboard-interactive auth",
        h.authenticate_keyboard_interactive_start(user(INST_A), None),
    )
    .await
    .unwrap();
    match r {
        KeyboardInteractiveAuthResponse::Failure {
            remaining_methods,
            partial_success,
        } => {
            assert!(!partial_success);
            assert_eq!(remaining_methods.to_vec(), vec![MethodKind::PublicKey]);
        }
        other => panic!("keyboard-interactive was not refused: {other:?}"),
    }
    drop(h);

    // None of the failures took the slot or spent the grant: the right key still works.
    assert_eq!(gw.slot_state(INST_A, 0).await, SlotState::Free);
    let mut s = gw.login_ok(INST_A, &key).await;
    gw.assert_held(INST_A).await;
    s.out.expect("login: ").await;
    s.send(b"\r").await;
    s.out.expect("login: ").await;
}

#[tokio::test]
async fn an_rsa_key_works_too() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let rsa = test_key("rsa2048");
    gw.push_ok(INST_A, &rsa).await;
    let mut s = gw.login_ok(INST_A, &rsa).await;
    s.send(b"\r").await;
    s.out.expect("login: ").await;
}

#[tokio::test]
async fn key_expires_exactly_at_the_ttl() {
    let gw = GatewayBuilder::new()
        .instance(INST_C, "sim:")
        .instance(INST_D, "sim:")
        .start()
        .await;
    let kc = random_key();
    let kd = random_key();
    gw.push_ok(INST_C, &kc).await;
    gw.push_ok(INST_D, &kd).await;

    // 59.999 s after the push the key still opens a session...
    gw.clock.advance(Duration::from_millis(59_999));
    let mut s = gw.login_ok(INST_C, &kc).await;
    s.send(b"\r").await;
    s.out.expect("login: ").await;

    // ...and at 60 s it no longer does.
    gw.clock.advance(Duration::from_millis(1));
    let (_h, r) = gw.auth(&user(INST_D), &kd).await;
    assert_rejected("expired key", &r);
    assert_eq!(gw.slot_state(INST_D, 0).await, SlotState::Free);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_open_only_their_own_instance_and_sessions_do_not_block_each_other() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .instance(INST_B, "sim:")
        .start()
        .await;
    let ka = test_key("ed25519");
    let kb = test_key("rsa2048");
    gw.push_ok(INST_A, &ka).await;
    gw.push_ok(INST_B, &kb).await;

    for (case, username, key) in [
        ("A's key on B", user(INST_B), &ka),
        ("B's key on A", user(INST_A), &kb),
        ("A's key on A port 1", format!("{INST_A}.port1"), &ka),
        ("B's key on B port 1", format!("{INST_B}.port1"), &kb),
    ] {
        let (_h, r) = gw.auth(&username, key).await;
        assert_rejected(case, &r);
    }

    let mut a = gw.login_ok(INST_A, &ka).await;
    gw.assert_held(INST_A).await;
    assert_eq!(gw.slot_state(INST_B, 0).await, SlotState::Free);
    a.out.expect("login: ").await;

    // A session on A does not block B.
    let mut b = gw.login_ok(INST_B, &kb).await;
    gw.assert_held(INST_B).await;
    b.out.expect("login: ").await;

    // Each sees only its own console.
    a.send(b"alpha\r").await;
    a.out.expect("alpha\r\nPassword: ").await;
    b.send(b"bravo\r").await;
    b.out.expect("bravo\r\nPassword: ").await;
    assert!(!b.out.all_text().contains("alpha"));
    assert!(!a.out.all_text().contains("bravo"));

    // Ending A leaves B running.
    a.out.channel.close().await.unwrap();
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
    gw.assert_held(INST_B).await;
    b.send(b"\r").await;
    b.out.expect("bravo@sim:~$ ").await;
}

#[tokio::test]
async fn one_push_opens_one_session() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .settings(|s| s.teardown = Duration::from_secs(5))
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;
    s.out.channel.close().await.unwrap();
    drop(s);
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));

    // Past the teardown and well inside the key's 60 s, the slot is free but the grant is spent.
    gw.clock.advance(Duration::from_secs(6));
    assert_eq!(gw.slot_state(INST_A, 0).await, SlotState::Free);
    let (_h, r) = gw.auth(&user(INST_A), &key).await;
    assert_rejected("reused key", &r);

    // A new push of the same key opens a new session.
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.send(b"\r").await;
    s.out.expect("login: ").await;
}

enum Outcome {
    AuthRejected,
    Busy,
    Console(Box<Session>),
}

async fn contender(
    addr: std::net::SocketAddr,
    host_key: russh::keys::PublicKey,
    key: Arc<russh::keys::PrivateKey>,
    start: Arc<tokio::sync::Barrier>,
) -> Outcome {
    let mut handle = connect_to(addr, &host_key, client_config()).await;
    // Everyone has finished the key exchange: authenticate at the same moment.
    bounded("the start barrier", start.wait()).await;
    let r = authenticate(&mut handle, &user(INST_A), &key).await;
    if !r.success() {
        assert_rejected("race loser", &r);
        return Outcome::AuthRejected;
    }
    let mut out = open_shell(&handle).await;
    match out
        .expect_any(&["login: ", SESSION_LIMIT], Duration::from_secs(15))
        .await
    {
        Some(0) => Outcome::Console(Box::new(Session { handle, out })),
        Some(_) => {
            assert!(
                out.wait_closed(WAIT).await,
                "a refused client's channel was not closed"
            );
            assert!(
                !out.all_text().contains("login: "),
                "a refused client saw the console"
            );
            Outcome::Busy
        }
        None => panic!(
            "a client saw neither the console nor the limit message: {:?}",
            out.all_text()
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_race_for_one_slot_and_exactly_one_wins() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let key = Arc::new(random_key());
    gw.push_ok(INST_A, &key).await;

    let start = Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        tasks.spawn(contender(
            gw.addr,
            gw.host_key.clone(),
            Arc::clone(&key),
            Arc::clone(&start),
        ));
    }
    let mut winners = Vec::new();
    let (mut busy, mut rejected) = (0, 0);
    let all = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(r) = tasks.join_next().await {
            match r.expect("a contender panicked") {
                Outcome::Console(s) => winners.push(s),
                Outcome::Busy => busy += 1,
                Outcome::AuthRejected => rejected += 1,
            }
        }
    })
    .await;
    assert!(all.is_ok(), "some clients hung");
    eprintln!(
        "race: {} console, {busy} told busy, {rejected} refused at authentication",
        winners.len()
    );
    assert_eq!(winners.len(), 1, "exactly one client must get the console");
    // Every loser holds the pushed key, so each is told the slot is busy (AWS's text) rather
    // than refused like a stranger.
    assert_eq!((busy, rejected), (49, 0));
    gw.assert_held(INST_A).await;

    // The winner's console works.
    let s = &mut winners[0];
    s.send(b"\r").await;
    s.out.expect("login: ").await;
}

/// The busy path without a race: a session whose lease lapsed in the store (its renewal was
/// late) renews it after a new key was pushed, so the new key authenticates but finds the slot
/// taken. The client is told with AWS's text and the channel closes.
#[tokio::test]
async fn a_busy_slot_is_explained_with_the_aws_message() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .settings(|s| s.lease_ttl = Duration::from_secs(3))
        .start()
        .await;
    let k1 = random_key();
    let k2 = random_key();
    gw.push_ok(INST_A, &k1).await;
    let mut x = gw.login_ok(INST_A, &k1).await;
    x.out.expect("login: ").await;

    // Let the lease and the teardown lapse on the clock, then push a new key while the slot
    // reads free (the holder renews once a second of real time, so retry if it got there first).
    let mut pushed = false;
    for _ in 0..5 {
        gw.clock.advance(Duration::from_secs(34));
        match gw.push(INST_A, 0, k2.public_key()).await {
            Ok(_) => {
                pushed = true;
                break;
            }
            Err(e) => assert_eq!(e.code(), "SerialConsoleSessionLimitExceededException"),
        }
    }
    assert!(pushed, "could not push while the lapsed lease read free");
    // The live session renews its lease and holds the slot again.
    eventually(
        "the holder renews its lease",
        Duration::from_secs(5),
        || async { matches!(gw.slot_state(INST_A, 0).await, SlotState::Held { .. }) },
    )
    .await;

    let (handle, r) = gw.auth(&user(INST_A), &k2).await;
    assert!(r.success(), "a live grant authenticates: {r:?}");
    let mut out = open_shell(&handle).await;
    out.expect(SESSION_LIMIT).await;
    assert!(
        out.wait_closed(WAIT).await,
        "the refused channel stays open"
    );
    assert_eq!(out.exit_status, Some(1));
    assert!(!out.all_text().contains("login: "));

    // The holder is undisturbed.
    x.send(b"\r").await;
    x.out.expect("login: ").await;
}

/// A signer that only records being asked: the server asks for a signature only after
/// accepting the offer (`SSH_MSG_USERAUTH_PK_OK`). It then declines, so nothing is signed.
struct OfferProbe {
    asked: bool,
}

#[derive(Debug)]
struct Declined;

impl From<russh::SendError> for Declined {
    fn from(_: russh::SendError) -> Self {
        Declined
    }
}

impl russh::Signer for OfferProbe {
    type Error = Declined;

    async fn auth_sign(
        &mut self,
        _key: &russh::keys::agent::AgentIdentity,
        _hash_alg: Option<russh::keys::HashAlg>,
        _to_sign: Vec<u8>,
    ) -> Result<Vec<u8>, Declined> {
        self.asked = true;
        Err(Declined)
    }
}

/// Offers `key` for `username` without signing; returns whether the server accepted the offer.
async fn offer_accepted(gw: &Gateway, username: &str, key: &russh::keys::PrivateKey) -> bool {
    let mut handle = gw.connect().await;
    let mut probe = OfferProbe { asked: false };
    let result = bounded(
        "a key offer",
        handle.authenticate_publickey_with(username, key.public_key().clone(), None, &mut probe),
    )
    .await;
    match result {
        // Asked to sign: the offer was accepted.
        Err(Declined) => assert!(probe.asked),
        Ok(r) => {
            assert!(!probe.asked);
            assert_rejected("offer", &r);
        }
    }
    probe.asked
}

/// Holding a public key (they are not secret) must not tell whether it has a live grant: an
/// offer of a granted key and of an unknown key get the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_offer_does_not_tell_whether_the_key_has_a_grant() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .instance(INST_B, "sim:")
        .start()
        .await;
    let granted = random_key();
    let stranger = random_key();
    gw.push_ok(INST_A, &granted).await;

    let answers = [
        offer_accepted(&gw, &user(INST_A), &granted).await,
        offer_accepted(&gw, &user(INST_A), &stranger).await,
        offer_accepted(&gw, &user(INST_B), &granted).await,
        offer_accepted(&gw, &user(UNKNOWN), &stranger).await,
        offer_accepted(&gw, &format!("{INST_A}.port1"), &granted).await,
    ];
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "offers answered differently: {answers:?}"
    );
    // Malformed usernames are public knowledge and may be refused at once.
    assert!(!offer_accepted(&gw, "root", &granted).await);
    assert!(!offer_accepted(&gw, &format!("{INST_A}.port00"), &granted).await);

    // Probing spent nothing: the grant still opens the console.
    let mut s = gw.login_ok(INST_A, &granted).await;
    s.send(b"\r").await;
    s.out.expect("login: ").await;
}

/// A client with several keys (an agent, say) tries them one after the other on one
/// connection, each failure costing an attempt: the right key still gets in after a few wrong
/// ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_key_gets_in_after_wrong_ones_on_the_same_connection() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let right = random_key();
    gw.push_ok(INST_A, &right).await;

    let (mut handle, r) = gw.auth(&user(INST_A), &test_key("rsa2048")).await;
    assert_rejected("first wrong key", &r);
    for _ in 0..3 {
        let r = authenticate(&mut handle, &user(INST_A), &random_key()).await;
        assert_rejected("another wrong key", &r);
    }
    let r = authenticate(&mut handle, &user(INST_A), &right).await;
    assert!(r.success(), "the right key after four wrong ones: {r:?}");
    let mut out = open_shell(&handle).await;
    out.send(b"\r").await;
    out.expect("login: ").await;
}
