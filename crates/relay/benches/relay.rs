//! Echo through the relay against echo through an in-process console pair, in the same run:
//! round-trip latency (p50, p99) of a 64-byte write, and echo throughput in MB/s.
//!
//! Both sides of the relay run in this process over 127.0.0.1, so the figures are the relay's
//! own cost (framing, two sockets, two more tasks) without a network. Run with
//! `cargo bench -p relay`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backends::{Capabilities, Console, ConsoleOptions, Input, TaskEnds};
use bytes::Bytes;
use relay::{ClusterSecret, ConsoleProvider, RelayClient, RelayLimits, RelayServer};

const ROUND_TRIPS: usize = 5_000;
const PROBE: usize = 64;
const VOLUME: usize = 256 << 20;
const CHUNK: usize = 16 << 10;

/// Sends back whatever it is given.
fn echo(ends: TaskEnds) {
    let TaskEnds { mut input, output } = ends;
    tokio::spawn(async move {
        while let Some(message) = input.recv().await {
            if let Input::Data(bytes) = message
                && output.send(bytes).await.is_err()
            {
                break;
            }
        }
    });
}

fn echo_console() -> Console {
    let caps = Capabilities {
        can_break: false,
        kind: "echo",
    };
    let (console, ends) = Console::pair(caps, &ConsoleOptions::default());
    echo(ends);
    console
}

struct EchoProvider;

#[async_trait]
impl ConsoleProvider for EchoProvider {
    async fn attach(&self, _instance: &str, _replay_lines: u32) -> Result<Console, String> {
        Ok(echo_console())
    }

    fn history(&self, _instance: &str) -> Option<(Vec<u8>, u64)> {
        None
    }
}

/// Reads until `n` bytes have come back.
async fn take(console: &mut Console, n: usize) {
    let mut got = 0;
    while got < n {
        got += console.output.recv().await.unwrap().len();
    }
}

/// p50 and p99 of round trips, in microseconds.
async fn latency(console: &mut Console) -> (f64, f64) {
    let probe = Bytes::from(vec![b'x'; PROBE]);
    for _ in 0..ROUND_TRIPS / 10 {
        console.input.write(probe.clone()).await.unwrap();
        take(console, PROBE).await;
    }
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let start = Instant::now();
        console.input.write(probe.clone()).await.unwrap();
        take(console, PROBE).await;
        samples.push(start.elapsed());
    }
    samples.sort();
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    (
        micros(samples[samples.len() / 2]),
        micros(samples[samples.len() * 99 / 100]),
    )
}

/// Echo throughput in MB/s: writing and reading back `VOLUME` bytes at once.
async fn throughput(console: Console) -> f64 {
    let Console {
        mut output, input, ..
    } = console;
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        let chunk = Bytes::from(vec![b'y'; CHUNK]);
        for _ in 0..VOLUME / CHUNK {
            input.write(chunk.clone()).await.unwrap();
        }
        input
    });
    let mut got = 0;
    while got < VOLUME {
        got += output.recv().await.unwrap().len();
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(writer.await.unwrap());
    VOLUME as f64 / elapsed / 1e6
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let secret = ClusterSecret::from_bytes(&[42; 32]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let server = RelayServer::new(
            secret.clone(),
            Arc::new(EchoProvider),
            RelayLimits::default(),
        );
        tokio::spawn(server.serve(listener, std::future::pending()));
        let client = RelayClient::new(secret, "bench", RelayLimits::default());

        let (direct_p50, direct_p99) = latency(&mut echo_console()).await;
        let mut relayed = client.attach(&address, "i-bench").await.unwrap();
        let (relay_p50, relay_p99) = latency(&mut relayed).await;
        drop(relayed);
        let direct_mbs = throughput(echo_console()).await;
        let relay_mbs = throughput(client.attach(&address, "i-bench").await.unwrap()).await;

        println!("echo round trip of {PROBE} bytes, {ROUND_TRIPS} samples:");
        println!("  direct: p50 {direct_p50:>8.1} us   p99 {direct_p99:>8.1} us");
        println!("  relay:  p50 {relay_p50:>8.1} us   p99 {relay_p99:>8.1} us");
        println!(
            "  relay/direct: p50 x{:.1}, p99 x{:.1}",
            relay_p50 / direct_p50,
            relay_p99 / direct_p99
        );
        println!(
            "echo throughput, {} MiB in {} KiB writes:",
            VOLUME >> 20,
            CHUNK >> 10
        );
        println!("  direct: {direct_mbs:>8.0} MB/s");
        println!("  relay:  {relay_mbs:>8.0} MB/s");
        println!("  relay/direct: {:.2}", relay_mbs / direct_mbs);
    });
}
