//! Connection limits: open connections in total and per address, unauthenticated connections
//! per address, and the login grace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_per_address_are_capped() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .config(|c| c.max_unauthenticated_per_ip = 3)
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;

    // Three silent connections, each accepted (the server speaks first).
    let mut idle = Vec::new();
    for _ in 0..3 {
        let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
        let banner = read_banner(&mut tcp).await;
        assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
        idle.push(tcp);
    }

    // A fourth is closed at once, without a banner.
    let mut fourth = TcpStream::connect(gw.addr).await.unwrap();
    let mut buf = [0u8; 256];
    let started = Instant::now();
    match tokio::time::timeout(Duration::from_secs(2), fourth.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!(
            "the fourth connection got {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
        Err(_) => panic!("the fourth connection was left open"),
    }
    eprintln!("fourth connection closed after {:?}", started.elapsed());

    // So is an SSH client, while the three are there.
    assert!(
        try_connect_to(gw.addr, &gw.host_key, client_config())
            .await
            .is_err(),
        "an SSH client got through the cap"
    );

    // Once one of the idle ones goes away, a legitimate client gets in.
    drop(idle.remove(0));
    let deadline = Instant::now() + WAIT;
    let mut handle = loop {
        match try_connect_to(gw.addr, &gw.host_key, client_config()).await {
            Ok(h) => break h,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no place freed after an idle connection closed: {e}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(
        authenticate(&mut handle, &user(INST_A), &key)
            .await
            .success()
    );
    let mut out = open_shell(&handle).await;
    out.send(b"\r").await;
    out.expect("login: ").await;

    // Authenticated, it no longer counts: with two silent connections left, exactly one more
    // fits.
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let banner = read_banner(&mut tcp).await;
    assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
    idle.push(tcp);
    let mut over = TcpStream::connect(gw.addr).await.unwrap();
    assert!(
        matches!(
            tokio::time::timeout(Duration::from_secs(2), over.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        ),
        "a fourth unauthenticated connection was served"
    );
    gw.assert_held(INST_A).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_grace_closes_connections_that_do_not_authenticate() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .config(|c| c.login_grace = Duration::from_secs(1))
        .start()
        .await;

    // A TCP connection that never sends its identification line.
    let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
    let started = Instant::now();
    read_banner(&mut tcp).await;
    assert!(
        closed_within(&mut tcp, Duration::from_secs(5)).await,
        "a silent connection outlived the login grace"
    );
    let took = started.elapsed();
    eprintln!("silent connection closed after {took:?}");
    assert!(
        took >= Duration::from_millis(900),
        "closed too early: {took:?}"
    );

    // An SSH client that completes the key exchange but never authenticates.
    let handle = gw.connect().await;
    let started = Instant::now();
    eventually(
        "an unauthenticated SSH client is disconnected",
        Duration::from_secs(5),
        || async { handle.is_closed() },
    )
    .await;
    let took = started.elapsed();
    eprintln!("unauthenticated SSH client closed after {took:?}");
    assert!(
        took >= Duration::from_millis(800),
        "closed too early: {took:?}"
    );

    // An authenticated session is not cut by the grace.
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    s.out.expect("login: ").await;
    // The grace of a silent connection opened after the session's has run out once the
    // gateway closes it: so has the session's.
    let mut witness = TcpStream::connect(gw.addr).await.unwrap();
    read_banner(&mut witness).await;
    assert!(
        closed_within(&mut witness, Duration::from_secs(5)).await,
        "the witness connection outlived the login grace"
    );
    s.send(b"\r").await;
    s.out.expect("login: ").await;
    assert!(!s.handle.is_closed());
    gw.assert_held(INST_A).await;
}

/// A peer that completed the key exchange and then vanished (cable pulled, NAT entry dropped)
/// never authenticates. The login grace must end its connection and give its place back, even
/// though the peer never answers the disconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_unauthenticated_peer_gives_its_place_back() {
    let gw = GatewayBuilder::new()
        .config(|c| {
            c.login_grace = Duration::from_millis(500);
            c.max_unauthenticated_per_ip = 1;
        })
        .start()
        .await;
    let proxy = Proxy::start(gw.addr).await;
    let _client = connect_to(proxy.addr, &gw.host_key, client_config()).await;
    proxy.freeze();

    // While the vanished peer holds the only place, new connections are dropped; after the
    // grace, a new connection must be served.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut tcp = TcpStream::connect(gw.addr).await.unwrap();
        let mut buf = [0u8; 8];
        let served = matches!(
            tokio::time::timeout(Duration::from_millis(500), tcp.read(&mut buf)).await,
            Ok(Ok(n)) if n > 0
        );
        if served {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the vanished peer still holds the only unauthenticated place 5 s later \
             (login grace 500 ms)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A raw TCP connection to the gateway from `source` (any 127.0.0.0/8 address works on
/// loopback), so a test can tell per-address caps from the global one.
async fn connect_from(source: &str, gw: std::net::SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(std::net::SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    bounded("TCP connect", socket.connect(gw)).await.unwrap()
}

/// Whether the gateway served this connection (sent its banner) rather than closing it.
async fn served(tcp: &mut TcpStream) -> bool {
    let mut buf = [0u8; 8];
    match bounded("the gateway's answer", tcp.read(&mut buf)).await {
        Ok(n) => n > 0,
        Err(_) => false,
    }
}

/// Waits until a new connection from `source` is served again, within [`WAIT`].
async fn wait_served(source: &str, gw: std::net::SocketAddr) -> TcpStream {
    let deadline = Instant::now() + WAIT;
    loop {
        let mut tcp = connect_from(source, gw).await;
        if served(&mut tcp).await {
            return tcp;
        }
        assert!(
            Instant::now() < deadline,
            "no place was freed after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn assert_echoes(s: &mut Session) {
    s.send(b"\r").await;
    s.out.expect("login: ").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped_authenticated_or_not() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .config(|c| c.max_connections_per_ip = 2)
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;

    // An open session and an idle connection from 127.0.0.1 fill its two places.
    let mut session = gw.login_ok(INST_A, &key).await;
    assert_echoes(&mut session).await;
    let mut idle = connect_from("127.0.0.1", gw.addr).await;
    assert!(served(&mut idle).await);

    // A third from that address is closed at once; the session keeps working.
    let mut third = connect_from("127.0.0.1", gw.addr).await;
    assert!(!served(&mut third).await, "a third connection was served");
    assert_echoes(&mut session).await;

    // Another address is not affected.
    let mut other = connect_from("127.0.0.2", gw.addr).await;
    assert!(served(&mut other).await);

    // Closing the idle connection frees its place.
    drop(idle);
    let _again = wait_served("127.0.0.1", gw.addr).await;
    assert_echoes(&mut session).await;
    gw.assert_held(INST_A).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_in_total_are_capped() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .config(|c| c.max_connections = 2)
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;

    // A session from 127.0.0.1 and an idle connection from 127.0.0.2 fill both places.
    let mut session = gw.login_ok(INST_A, &key).await;
    assert_echoes(&mut session).await;
    let mut idle = connect_from("127.0.0.2", gw.addr).await;
    assert!(served(&mut idle).await);

    // A connection from a third address is closed at once, and so are more of them.
    for _ in 0..3 {
        let mut over = connect_from("127.0.0.3", gw.addr).await;
        assert!(
            !served(&mut over).await,
            "a connection beyond the cap was served"
        );
    }
    assert_echoes(&mut session).await;

    // Closing one frees its place for anyone.
    drop(idle);
    let _again = wait_served("127.0.0.3", gw.addr).await;
    assert_echoes(&mut session).await;
}

/// Finite-field Diffie-Hellman is not offered: russh computes it with full-size exponents, so a
/// client choosing `diffie-hellman-group18-sha512` would make the server spend hundreds of
/// milliseconds of CPU before authentication. Clients that offer curve25519 connect as before.
#[tokio::test]
async fn only_elliptic_curve_key_exchange_is_offered() {
    use std::borrow::Cow;

    use russh::{Preferred, kex};

    let gw = GatewayBuilder::new().start().await;
    for k in [
        kex::DH_G18_SHA512,
        kex::DH_G16_SHA512,
        kex::DH_G14_SHA256,
        kex::DH_GEX_SHA256,
    ] {
        let mut cfg = client_config();
        cfg.preferred = Preferred {
            kex: Cow::Owned(vec![k]),
            ..Preferred::default()
        };
        assert!(
            try_connect_to(gw.addr, &gw.host_key, cfg).await.is_err(),
            "{k:?} was negotiated"
        );
    }
    for k in [kex::CURVE25519, kex::MLKEM768X25519_SHA256] {
        let mut cfg = client_config();
        cfg.preferred = Preferred {
            kex: Cow::Owned(vec![k]),
            ..Preferred::default()
        };
        assert!(
            try_connect_to(gw.addr, &gw.host_key, cfg).await.is_ok(),
            "{k:?} was refused"
        );
    }
}
