//! Data flow: a client that stops reading stops the console (no unbounded buffering in the
//! gateway), and what a console sends before it goes away arrives complete and in order.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt as _;

/// Byte `i` of the endless stream: consecutive little-endian u64 counters.
fn pattern_byte(i: u64) -> u8 {
    (i / 8).to_le_bytes()[(i % 8) as usize]
}

fn first_mismatch(data: &[u8]) -> Option<usize> {
    data.iter()
        .enumerate()
        .find(|(i, b)| **b != pattern_byte(*i as u64))
        .map(|(i, _)| i)
}

/// On paused time: the clock moves only once no task can, so a sleep returns when the console's
/// writer is blocked — or when it has written its whole cap, which only a gateway buffering
/// without bound would let it.
#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_stops_the_console() {
    const CAP: u64 = 32 << 20;
    let mut fake = FakeConsole::new();
    let gw = GatewayBuilder::new()
        .instance(INST_A, &fake.uri())
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    // A client with a modest window and per-channel queue, so what sits on the client side is
    // small and known; the gateway's own buffering is what this test measures.
    let config = russh::client::Config {
        window_size: 256 * 1024,
        channel_buffer_size: 16,
        ..client_config()
    };
    let mut handle = connect_to(gw.addr, &gw.host_key, config).await;
    assert!(
        authenticate(&mut handle, &user(INST_A), &key)
            .await
            .success()
    );
    let mut out = open_shell(&handle).await;
    let mut line = fake.accept().await;

    // The console writes the counter stream as fast as the socket takes it.
    let written = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&written);
    let writer = tokio::spawn(async move {
        let mut block = vec![0u8; 64 * 1024];
        let mut offset = 0u64;
        while offset < CAP {
            for (k, b) in block.iter_mut().enumerate() {
                *b = pattern_byte(offset + k as u64);
            }
            let mut sent = 0;
            while sent < block.len() {
                match line.write(&block[sent..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        sent += n;
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                    }
                }
            }
            offset += block.len() as u64;
        }
    });

    // The client does not read. The console must stall.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stalled = written.load(Ordering::SeqCst);
    eprintln!(
        "console stalled after {stalled} bytes ({} KiB)",
        stalled / 1024
    );
    assert!(
        !writer.is_finished(),
        "the gateway buffered without bound: the console wrote {stalled} bytes while nobody read"
    );
    assert!(stalled > 0, "nothing was written at all");
    assert!(
        stalled < 4 << 20,
        "{stalled} bytes in flight while the client was not reading"
    );

    // Now read: everything arrives in order, and the console resumes.
    let target = stalled as usize + (1 << 20);
    assert!(
        out.wait_len(target, WAIT).await,
        "only {} of {target} bytes arrived after the client resumed reading",
        out.data.len()
    );
    if let Some(i) = first_mismatch(&out.data) {
        panic!(
            "stream corrupted at byte {i}: got {:02x?}",
            &out.data[i..(i + 16).min(out.data.len())]
        );
    }
    assert!(
        written.load(Ordering::SeqCst) > stalled,
        "the writer never resumed"
    );
    writer.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_the_console_sent_arrives_before_the_loss_notice() {
    let mut fake = FakeConsole::new();
    let gw = GatewayBuilder::new()
        .instance(INST_A, &fake.uri())
        .start()
        .await;
    let key = random_key();
    gw.push_ok(INST_A, &key).await;
    let mut s = gw.login_ok(INST_A, &key).await;
    let mut line = fake.accept().await;
    // Nothing to reconnect to once this connection ends.
    fake.stop_listening().await;

    // 200 KiB of arbitrary bytes (a fixed LCG), then the console closes.
    let mut payload = Vec::with_capacity(200 * 1024);
    let mut x: u32 = 0x1234_5678;
    for _ in 0..200 * 1024 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        payload.push((x >> 24) as u8);
    }
    let sent = payload.clone();
    let writer = tokio::spawn(async move {
        line.write_all(&sent).await.unwrap();
        line.shutdown().await.unwrap();
        drop(line);
    });

    let notice = "\r\n[serialgate] Lost the connection to the console; reconnecting...\r\n";
    s.out.expect(notice).await;
    bounded("console writer", writer).await.unwrap();
    let got = &s.out.data;
    assert!(
        got.len() >= payload.len() + notice.len(),
        "only {} bytes before the notice",
        got.len()
    );
    if got[..payload.len()] != payload[..] {
        let i = got
            .iter()
            .zip(&payload)
            .position(|(a, b)| a != b)
            .unwrap_or(payload.len());
        panic!("console output differs from what was sent at byte {i}");
    }
    assert_eq!(
        &got[payload.len()..payload.len() + notice.len()],
        notice.as_bytes(),
        "the notice must follow the last console byte directly"
    );
    assert!(!s.out.closed, "the session must stay up");
    gw.assert_held(INST_A).await;
}
