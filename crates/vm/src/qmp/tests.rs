//! The QMP client against scripted QMP servers on a real unix socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::UnixListener;
use tokio::task::JoinHandle;

use super::execute;
use crate::fake::{GREETING, ok, qmp_connection};

/// A socket in a fresh directory; the directory lives as long as the returned guard.
fn socket() -> (tempfile::TempDir, PathBuf, UnixListener) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    (dir, path, listener)
}

/// Serves one connection with `respond`, greeting first; yields the commands received.
fn serve(
    listener: UnixListener,
    greeting: Option<&'static str>,
    respond: impl FnMut(&str) -> Vec<String> + Send + 'static,
) -> JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        qmp_connection(stream, greeting, respond).await
    })
}

#[tokio::test]
async fn negotiates_then_runs_the_command_and_returns_its_value() {
    let (_dir, path, listener) = socket();
    let server = serve(listener, Some(GREETING), |cmd| match cmd {
        "qmp_capabilities" => ok(),
        _ => vec![json!({"return": {"status": "running", "running": true}}).to_string()],
    });
    let got = execute(&path, "query-status").await.unwrap();
    assert_eq!(got, json!({"status": "running", "running": true}));
    assert_eq!(server.await.unwrap(), ["qmp_capabilities", "query-status"]);
}

/// Events can arrive at any time, before the greeting is answered or between a command and
/// its answer; they are not answers.
#[tokio::test]
async fn events_are_skipped() {
    let (_dir, path, listener) = socket();
    let event = || json!({"event": "RESET", "timestamp": {"seconds": 1, "microseconds": 2}});
    let _server = serve(listener, Some(GREETING), move |cmd| match cmd {
        "qmp_capabilities" => vec![event().to_string(), ok().remove(0)],
        _ => vec![
            event().to_string(),
            event().to_string(),
            json!({"return": 7}).to_string(),
        ],
    });
    assert_eq!(execute(&path, "query-x").await.unwrap(), json!(7));
}

#[tokio::test]
async fn an_answer_without_a_value_is_null() {
    let (_dir, path, listener) = socket();
    // Not what QEMU sends, but the client must not invent a value.
    let _server = serve(listener, Some(GREETING), |cmd| match cmd {
        "qmp_capabilities" => ok(),
        _ => vec![json!({"return": null}).to_string()],
    });
    assert_eq!(
        execute(&path, "quit").await.unwrap(),
        serde_json::Value::Null
    );
}

#[tokio::test]
async fn an_error_answer_is_an_error_naming_the_command() {
    let (_dir, path, listener) = socket();
    let _server = serve(listener, Some(GREETING), |cmd| {
        match cmd {
        "qmp_capabilities" => ok(),
        _ => vec![
            json!({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})
                .to_string(),
        ],
    }
    });
    let err = execute(&path, "nope").await.unwrap_err();
    assert!(err.starts_with("QMP nope:"), "{err}");
    assert!(err.contains("has not been found"), "{err}");
}

/// If negotiation fails the command is never sent.
#[tokio::test]
async fn refused_negotiation_stops_before_the_command() {
    let (_dir, path, listener) = socket();
    let server = serve(listener, Some(GREETING), |_| {
        vec![json!({"error": {"class": "GenericError", "desc": "no"}}).to_string()]
    });
    let err = execute(&path, "system_reset").await.unwrap_err();
    assert!(err.starts_with("QMP qmp_capabilities:"), "{err}");
    assert_eq!(server.await.unwrap(), ["qmp_capabilities"]);
}

#[tokio::test]
async fn a_server_that_hangs_up_is_an_error() {
    let (_dir, path, listener) = socket();
    // Greets, reads the negotiation request whole, then closes without answering.
    let _server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        write
            .write_all(format!("{GREETING}\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        BufReader::new(read).read_line(&mut line).await.unwrap();
    });
    let err = execute(&path, "system_reset").await.unwrap_err();
    assert_eq!(err, "QMP connection closed");
}

#[tokio::test]
async fn a_reply_that_is_not_json_is_an_error() {
    let (_dir, path, listener) = socket();
    let _server = serve(listener, Some(GREETING), |_| {
        vec!["Tracing is not JSON".to_owned()]
    });
    let err = execute(&path, "system_reset").await.unwrap_err();
    assert!(err.starts_with("QMP reply:"), "{err}");
}

#[tokio::test]
async fn no_socket_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sock");
    let err = execute(&path, "quit").await.unwrap_err();
    assert!(err.contains(&path.display().to_string()), "{err}");
}

/// A QEMU that accepts the connection and never says a word (hung, or stopped with SIGSTOP)
/// costs the caller the QMP timeout, not forever.
#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_is_bounded() {
    let (_dir, path, listener) = socket();
    let _server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    });
    // The outer bound only turns a missing timeout into a failure instead of a hang.
    let outcome = tokio::time::timeout(Duration::from_secs(3600), execute(&path, "quit")).await;
    let err = outcome.expect("execute had no timeout").unwrap_err();
    assert!(err.contains("no answer within"), "{err}");
}

/// The same when the greeting came but the command's answer never does.
#[tokio::test(start_paused = true)]
async fn an_answer_that_never_comes_is_bounded() {
    let (_dir, path, listener) = socket();
    let _server = serve(listener, Some(GREETING), |cmd| match cmd {
        "qmp_capabilities" => ok(),
        _ => Vec::new(),
    });
    let outcome = tokio::time::timeout(Duration::from_secs(3600), execute(&path, "quit")).await;
    let err = outcome.expect("execute had no timeout").unwrap_err();
    assert!(err.contains("no answer within"), "{err}");
}
