//! Channel requests (what a serial console accepts and refuses) and the in-band escape:
//! BREAK on consoles that can and cannot carry one, `~~`, and `~?`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use console::SlotState;
use tokio::io::AsyncReadExt as _;

/// What a refused exec or subsystem looks like: either a channel failure, or (so OpenSSH shows
/// the reason) success, the reason on stderr, exit status 1 and the channel closed. Never a
/// command's output. Returns whether the channel is still open.
async fn assert_refused(out: &mut Output, what: &str) -> bool {
    let reply = out.reply().await;
    let open = match reply {
        Some(false) => true,
        Some(true) | None => {
            assert!(out.wait_closed(WAIT).await, "{what}: channel left open");
            assert_eq!(out.exit_status, Some(1), "{what}: exit status");
            false
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr.contains("not supported"),
        "{what}: stderr {stderr:?}"
    );
    assert!(out.data.is_empty(), "{what}: stdout {:?}", out.all_text());
    open
}

/// Authenticates on `instance` and opens a session channel (no pty, no shell yet).
async fn bare_channel(gw: &Gateway, instance: &str) -> (russh::client::Handle<Client>, Output) {
    let key = random_key();
    gw.push_ok(instance, &key).await;
    let (handle, r) = gw.auth(&user(instance), &key).await;
    assert!(r.success());
    let channel = bounded("channel open", handle.channel_open_session())
        .await
        .unwrap();
    (handle, Output::new(channel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_and_subsystem_are_refused_with_a_reason() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .instance(INST_B, "sim:")
        .start()
        .await;

    // `ssh host uname -a`
    let (_a, mut out) = bare_channel(&gw, INST_A).await;
    out.channel.exec(true, "uname -a").await.unwrap();
    assert_refused(&mut out, "exec").await;

    // `sftp host`
    let (_b, mut out) = bare_channel(&gw, INST_B).await;
    out.channel.request_subsystem(true, "sftp").await.unwrap();
    assert_refused(&mut out, "subsystem sftp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_requests_are_answered_and_only_a_shell_is_accepted() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let (handle, mut out) = bare_channel(&gw, INST_A).await;

    // X11: refused.
    out.channel
        .request_x11(true, false, "MIT-MAGIC-COOKIE-1", "00", 0)
        .await
        .unwrap();
    assert_eq!(out.reply().await, Some(false), "x11 must be refused");

    // env and pty: accepted; then the shell.
    out.channel.set_env(true, "LANG", "C.UTF-8").await.unwrap();
    assert_eq!(out.reply().await, Some(true), "env must be accepted");
    out.channel
        .request_pty(true, "xterm-256color", 80, 24, 0, 0, &[])
        .await
        .unwrap();
    assert_eq!(out.reply().await, Some(true), "pty must be accepted");
    out.channel.request_shell(true).await.unwrap();
    assert_eq!(out.reply().await, Some(true), "shell must be accepted");
    out.expect("login: ").await;

    // window-change (no reply wanted) and env after the shell: the session still works.
    out.channel.window_change(132, 50, 0, 0).await.unwrap();
    out.channel.set_env(true, "TZ", "UTC").await.unwrap();
    assert_eq!(out.reply().await, Some(true), "env must be accepted");
    out.send(b"\r").await;
    out.expect("login: ").await;

    // A second session channel on the same connection is refused.
    let second = bounded("second channel open", handle.channel_open_session()).await;
    match second {
        Err(russh::Error::ChannelOpenFailure(reason)) => assert_eq!(
            reason,
            russh::ChannelOpenFailure::AdministrativelyProhibited
        ),
        Err(e) => panic!("unexpected error for a second channel: {e}"),
        Ok(_) => panic!("a second session channel was accepted"),
    }
    // Port forwarding is refused too.
    let fwd = bounded(
        "direct-tcpip open",
        handle.channel_open_direct_tcpip("127.0.0.1", 22, "127.0.0.1", 5555),
    )
    .await;
    assert!(fwd.is_err(), "direct-tcpip was accepted");
    let fwd = bounded("tcpip-forward", handle.tcpip_forward("127.0.0.1", 0)).await;
    assert!(fwd.is_err(), "tcpip-forward was accepted: {fwd:?}");

    // The first session is unaffected by all of that.
    out.send(b"\r").await;
    out.expect("login: ").await;
    gw.assert_held(INST_A).await;
}

/// `ssh host command`: authenticated (so holding the slot), exec refused, client leaves.
#[tokio::test]
async fn a_refused_exec_then_disconnect_releases_the_slot() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let (handle, mut out) = bare_channel(&gw, INST_A).await;
    gw.assert_held(INST_A).await;
    out.channel.exec(true, "reboot").await.unwrap();
    assert_refused(&mut out, "exec").await;
    handle
        .disconnect(russh::Disconnect::ByApplication, "", "")
        .await
        .unwrap();
    drop(out);
    drop(handle);
    assert!(matches!(
        gw.wait_released(INST_A).await,
        SlotState::TearingDown { .. }
    ));
}

/// Logs in to the simulator as root and waits for the shell prompt.
async fn sim_root_shell(s: &mut Session) {
    s.out.expect("login: ").await;
    s.send(b"root\r").await;
    s.out.expect("Password: ").await;
    s.send(b"secret\r").await;
    s.out.expect("root@sim:~# ").await;
}

async fn sysrq_count(s: &mut Session) -> String {
    s.send(b"sysrq-count\r").await;
    let text = s.out.expect("root@sim:~# ").await;
    let after = text
        .split("sysrq-count\r\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no sysrq-count output in {text:?}"));
    after.trim_end_matches("root@sim:~# ").trim().to_owned()
}

#[tokio::test]
async fn break_escape_on_the_simulator() {
    let gw = GatewayBuilder::new().instance(INST_A, "sim:").start().await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    sim_root_shell(&mut s).await;

    // A plain `h` is just a character.
    s.send(b"h").await;
    s.out.expect("h").await;
    s.send(b"\x03").await;
    let text = s.out.expect("root@sim:~# ").await;
    assert!(!text.contains("sysrq"), "{text:?}");
    assert_eq!(sysrq_count(&mut s).await, "0");

    // Enter ~B sends a BREAK; the next key is the SysRq command.
    s.send(b"\r~B").await;
    s.send(b"h").await;
    s.out.expect("sysrq: HELP").await;
    s.out.expect("\r\n").await;
    assert_eq!(sysrq_count(&mut s).await, "1");

    // Enter ~~B sends a literal ~B and no BREAK.
    s.send(b"\r~~B").await;
    let text = s.out.expect("~B").await;
    assert!(!text.contains("sysrq"), "{text:?}");
    s.send(b"\x03").await;
    s.out.expect("root@sim:~# ").await;
    assert_eq!(sysrq_count(&mut s).await, "1");

    // ~B not after a newline is text too.
    s.send(b"x~B").await;
    s.out.expect("x~B").await;
    s.send(b"\x03").await;
    s.out.expect("root@sim:~# ").await;
    assert_eq!(sysrq_count(&mut s).await, "1");

    // ~? at the start of a line (we just pressed Enter) shows the escape help.
    s.send(b"~?").await;
    s.out.expect("Supported escape sequences").await;
    s.out.expect("send a BREAK").await;
    s.out.expect("ssh -e none.)\r\n").await;
    assert_eq!(sysrq_count(&mut s).await, "1");
    assert_eq!(s.out.all_text().matches("sysrq: HELP").count(), 1);
}

#[tokio::test]
async fn escape_none_passes_everything_through() {
    let gw = GatewayBuilder::new()
        .instance(INST_A, "sim:")
        .config(|c| c.escape = None)
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    sim_root_shell(&mut s).await;
    s.send(b"\r~B").await;
    s.out.expect("~B").await;
    s.send(b"\x03").await;
    s.out.expect("root@sim:~# ").await;
    s.send(b"\r~.").await;
    s.out.expect("~.").await;
    s.send(b"\x03").await;
    s.out.expect("root@sim:~# ").await;
    assert_eq!(sysrq_count(&mut s).await, "0");
    gw.assert_held(INST_A).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_on_a_raw_socket_is_refused_and_nothing_is_sent() {
    let mut fake = FakeConsole::new();
    let gw = GatewayBuilder::new()
        .instance(INST_A, &fake.uri())
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    let mut line = fake.accept().await;

    s.send(b"\r~B").await;
    s.out.expect("cannot carry a BREAK").await;
    s.send(b"x").await;
    // The console got the newline and the next key, and nothing for the BREAK.
    assert_eq!(read_exact_within(&mut line, 2).await, b"\rx");
    s.send(b"\r~~B").await;
    assert_eq!(read_exact_within(&mut line, 3).await, b"\r~B");
    assert!(!s.out.closed);
    gw.assert_held(INST_A).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_on_a_telnet_socket_is_iac_brk() {
    let mut fake = FakeConsole::new();
    let uri = format!("unix+telnet:{}", fake.path.display());
    let gw = GatewayBuilder::new().instance(INST_A, &uri).start().await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    let mut line = fake.accept().await;

    s.send(b"\r~B").await;
    s.send(b"x").await;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    bounded("telnet bytes", async {
        while !got.ends_with(b"x") {
            let n = line.read(&mut buf).await.unwrap();
            assert!(n > 0, "console connection closed");
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    // CR (NVT: CR NUL), then IAC BRK, then the key.
    assert!(
        got.windows(3).any(|w| w == [0xff, 0xf3, b'x']),
        "no IAC BRK before the key: {got:?}"
    );
    assert!(got.starts_with(b"\r"), "{got:?}");
    s.out.drain_for(Duration::from_millis(100)).await;
    assert!(
        !s.out.all_text().contains("cannot carry a BREAK"),
        "{:?}",
        s.out.all_text()
    );
}
