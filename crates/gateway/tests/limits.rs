//! Connection limits: unauthenticated connections per address and the login grace.
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
    tokio::time::sleep(Duration::from_millis(1500)).await;
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
