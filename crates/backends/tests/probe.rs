//! `probe` for every scheme: reachable consoles pass, unreachable ones fail quickly with a cause.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use backends::{ConsoleOptions, ConsoleUri, OpenError};
use common::{opts, socket_path};
use tokio::net::{TcpListener, UnixListener};

/// A plain, non-executable file.
fn plain_file() -> common::TempPath {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path("plain.txt");
    std::fs::write(&path, b"not a console").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    path
}

fn uri(s: &str) -> ConsoleUri {
    s.parse().unwrap()
}

/// Probes and checks the failure came quickly (well inside the connect timeout).
async fn fails_fast(uri: &ConsoleUri) -> OpenError {
    let options = ConsoleOptions {
        connect_timeout: Duration::from_secs(5),
        ..opts()
    };
    let started = Instant::now();
    let err = backends::probe(uri, &options).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{uri}: took {:?}",
        started.elapsed()
    );
    err
}

#[tokio::test]
async fn unix_sockets() {
    let path = socket_path("probe.sock");
    let _listener = UnixListener::bind(&path).unwrap();
    backends::probe(&ConsoleUri::Unix(path.to_path_buf()), &opts())
        .await
        .unwrap();
    backends::probe(&ConsoleUri::UnixTelnet(path.to_path_buf()), &opts())
        .await
        .unwrap();

    let absent = socket_path("absent.sock");
    let err = fails_fast(&ConsoleUri::Unix(absent.to_path_buf())).await;
    assert!(matches!(err, OpenError::Io { .. }), "{err}");
    assert!(err.to_string().contains("absent.sock"), "{err}");
}

#[tokio::test]
async fn tcp_ports() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    backends::probe(&uri(&format!("tcp:{addr}")), &opts())
        .await
        .unwrap();
    backends::probe(&uri(&format!("telnet:{addr}")), &opts())
        .await
        .unwrap();

    drop(listener);
    let err = fails_fast(&uri(&format!("tcp:{addr}"))).await;
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    fails_fast(&uri(&format!("telnet:{addr}"))).await;
}

#[tokio::test]
async fn ttys() {
    // /dev/null is a character device: as good as a serial port for this check.
    backends::probe(&uri("tty:/dev/null"), &opts())
        .await
        .unwrap();
    let plain = plain_file();
    let err = fails_fast(&uri(&format!("tty:{}", plain.display()))).await;
    assert!(err.to_string().contains("not a character device"), "{err}");
    assert!(matches!(
        fails_fast(&uri("tty:/dev/no-such-tty")).await,
        OpenError::Io { .. }
    ));
}

#[tokio::test]
async fn exec_programs() {
    backends::probe(&uri("exec:sh -c true"), &opts())
        .await
        .unwrap();
    backends::probe(&uri("exec:/bin/sh"), &opts())
        .await
        .unwrap();
    let err = fails_fast(&uri("exec:no-such-program-serialgate --flag")).await;
    assert!(err.to_string().contains("not found on PATH"), "{err}");
    let plain = plain_file();
    let err = fails_fast(&uri(&format!("exec:{}", plain.display()))).await;
    assert!(err.to_string().contains("not an executable file"), "{err}");
}

#[tokio::test]
async fn sim_is_always_reachable() {
    backends::probe(&ConsoleUri::Sim, &opts()).await.unwrap();
    backends::probe(&uri("sim:x"), &opts()).await.unwrap();
}
