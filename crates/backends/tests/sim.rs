//! `sim:` through the public API: boot, login, echo, commands, BREAK + SysRq, and backpressure
//! (a flood waits for its reader).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use backends::{Console, ConsoleUri};
use common::{contains, opts, read_until, send, within};

async fn logged_in(uri: &str) -> Console {
    let uri: ConsoleUri = uri.parse().unwrap();
    let mut console = backends::open(&uri, &opts()).await.unwrap();
    let boot = read_until(&mut console.output, b"\r\nsim login: ").await;
    assert!(
        boot.starts_with(b"[    0.000000] Linux version"),
        "{}",
        String::from_utf8_lossy(&boot)
    );
    send(&console, b"root\r").await;
    assert_eq!(
        read_until(&mut console.output, b"Password: ").await,
        b"root\r\nPassword: "
    );
    send(&console, b"secret\r").await;
    let out = read_until(&mut console.output, b"root@sim:~# ").await;
    assert!(!contains(&out, b"secret"), "password echoed");
    console
}

/// Runs a command line and returns what it printed up to the next prompt.
async fn run(console: &mut Console, line: &str) -> String {
    send(console, format!("{line}\r").as_bytes()).await;
    let out = read_until(&mut console.output, b"root@sim:~# ").await;
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn login_and_commands() {
    let mut console = logged_in("sim:").await;
    assert_eq!(console.capabilities.kind, "sim");
    assert!(console.capabilities.can_break);
    assert_eq!(
        run(&mut console, "uname -r").await,
        "uname -r\r\n6.1.0-sim\r\nroot@sim:~# "
    );
    assert_eq!(
        run(&mut console, "hostname").await,
        "hostname\r\nsim\r\nroot@sim:~# "
    );
    assert_eq!(
        run(&mut console, "echo a  b").await,
        "echo a  b\r\na b\r\nroot@sim:~# "
    );
    assert_eq!(
        run(&mut console, "whoami").await,
        "whoami\r\nroot\r\nroot@sim:~# "
    );
    assert_eq!(
        run(&mut console, "ls").await,
        "ls\r\n-sh: ls: not found\r\nroot@sim:~# "
    );
    assert!(run(&mut console, "help").await.contains("sysrq-count"));
    assert_eq!(
        run(&mut console, "seq 3").await,
        "seq 3\r\n1\r\n2\r\n3\r\nroot@sim:~# "
    );
    send(&console, b"logout\r").await;
    read_until(
        &mut console.output,
        b"logout\r\n\r\nSim Linux 6.1 sim ttyS0\r\n\r\nsim login: ",
    )
    .await;
}

#[tokio::test]
async fn the_name_appears_in_the_banner() {
    let mut console = backends::open(&"sim:lab-7".parse().unwrap(), &opts())
        .await
        .unwrap();
    read_until(
        &mut console.output,
        b"Sim Linux 6.1 lab-7 ttyS0\r\n\r\nsim login: ",
    )
    .await;
}

#[tokio::test]
async fn editing_keys() {
    let mut console = logged_in("sim:").await;
    // Backspace, DEL, Ctrl-U, then Ctrl-C for a fresh prompt.
    send(&console, b"ecxo\x7f\x7fho hi\r").await;
    let out = read_until(&mut console.output, b"root@sim:~# ").await;
    assert!(
        contains(&out, b"\r\nhi\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    send(&console, b"junk\x15whoami\r").await;
    let out = read_until(&mut console.output, b"root@sim:~# ").await;
    assert!(
        contains(&out, b"\r\nroot\r\n"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    send(&console, b"abc\x03").await;
    assert_eq!(
        read_until(&mut console.output, b"root@sim:~# ").await,
        b"abc^C\r\nroot@sim:~# "
    );
}

#[tokio::test]
async fn break_then_h_prints_sysrq_help_and_is_counted() {
    let mut console = logged_in("sim:").await;
    assert_eq!(
        run(&mut console, "sysrq-count").await,
        "sysrq-count\r\n0\r\nroot@sim:~# "
    );

    console.input.send_break().await.unwrap();
    send(&console, b"h").await;
    let out = read_until(&mut console.output, b"dump-ftrace-buffer(z)\r\n").await;
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("\r\n["), "{out}");
    assert!(
        out.contains("] sysrq: HELP : loglevel(0-9) reboot(b) crash(c)"),
        "{out}"
    );

    // The SysRq key did not reach the shell's line.
    assert_eq!(
        run(&mut console, "sysrq-count").await,
        "sysrq-count\r\n1\r\nroot@sim:~# "
    );
}

#[tokio::test]
async fn plain_h_without_break_is_typed() {
    let mut console = logged_in("sim:").await;
    assert_eq!(
        run(&mut console, "h").await,
        "h\r\n-sh: h: not found\r\nroot@sim:~# "
    );
}

#[tokio::test]
async fn sysrq_b_reboots_to_login() {
    let mut console = logged_in("sim:").await;
    console.input.send_break().await.unwrap();
    send(&console, b"b").await;
    let out = read_until(&mut console.output, b"sim login: ").await;
    assert!(contains(
        &out,
        b"sysrq: Resetting\r\n[    0.000000] Linux version"
    ));
}

/// The numbers `seq` printed in `text` (the command's echo and the prompt are not numbers).
fn numbers(text: &str) -> Vec<u32> {
    text.split("\r\n")
        .filter_map(|line| line.parse().ok())
        .collect()
}

/// A flood nobody reads fills the output channel and then waits: the machine generates output
/// only as it is taken. Shown by interrupting it — a machine that had produced the whole flood
/// ahead of the reader would print all 100000 numbers before the `^C`.
#[tokio::test]
async fn a_flood_waits_for_its_reader_and_can_be_interrupted() {
    let mut console = logged_in("sim:").await;
    let capacity = opts().output_buffer;
    send(&console, b"seq 100000\r").await;
    within("the output channel to fill", async {
        while console.output.len() < capacity {
            tokio::task::yield_now().await;
        }
    })
    .await;
    send(&console, b"\x03").await;
    let out = read_until(&mut console.output, b"^C\r\nroot@sim:~# ").await;
    let text = String::from_utf8(out).unwrap();
    let printed = numbers(text.strip_prefix("seq 100000\r\n").unwrap());
    eprintln!("interrupted after {} numbers", printed.len());
    assert_eq!(
        printed,
        (1..=printed.len() as u32).collect::<Vec<u32>>(),
        "numbers lost or reordered"
    );
    // What was waiting when the ^C came: the channel, the chunk being sent, the machine's
    // backlog — a few chunks of ~7-byte lines, nowhere near the whole flood.
    let bound = (capacity + 8) * opts().read_chunk / 6;
    assert!(
        printed.len() < bound,
        "{} numbers printed before the interrupt took effect (bound {bound}): the flood ran \
         ahead of its reader",
        printed.len()
    );
}

#[tokio::test]
async fn a_flood_arrives_complete_and_in_order() {
    let mut console = logged_in("sim:").await;
    send(&console, b"seq 100000\r").await;
    let out = read_until(&mut console.output, b"100000\r\nroot@sim:~# ").await;
    let text = String::from_utf8(out).unwrap();
    let printed = numbers(text.strip_prefix("seq 100000\r\n").unwrap());
    assert_eq!(printed, (1..=100_000).collect::<Vec<u32>>());
}

#[tokio::test]
async fn dropping_the_console_ends_the_machine() {
    let console = backends::open(&ConsoleUri::Sim, &opts()).await.unwrap();
    let input = console.input.clone();
    drop(console.output);
    within("sim task to end", async {
        while !input.is_closed() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}
