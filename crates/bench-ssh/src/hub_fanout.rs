//! The hub's own share of the output side, in process, without SSH: a `backends::Hub` on the
//! source console, its attached writer drained as fast as it reads, in five set-ups: the writer
//! alone; the writer recording every chunk (`recordings::Recorder`, as a session does); 1 and 8
//! spectators draining; 8 of which one never reads. For each, bulk MB/s at the writer and this
//! process's CPU per MB (the hub, the spectators' tasks, the recorder's writer and the reading
//! itself). Compared with `log-cost`, which measures the same through serialgate's SSH
//! sessions, it tells how much of a spectator's or a recording's cost is the fan-out and how
//! much is SSH.

use std::time::Instant;

use backends::{ConsoleOptions, ConsoleUri, Hub, SpectateRequest};
use bytes::Bytes;
use recordings::{NewRecording, Recordings, RecordingsConfig};

use crate::Res;
use crate::cli::HubFanoutArgs;
use crate::procfs::cpu_seconds;
use crate::source::{BULK, DONE};

struct SetUp {
    label: &'static str,
    record: bool,
    spectators: u32,
    stalled: bool,
}

const SET_UPS: [SetUp; 5] = [
    SetUp {
        label: "hub",
        record: false,
        spectators: 0,
        stalled: false,
    },
    SetUp {
        label: "hub+recording",
        record: true,
        spectators: 0,
        stalled: false,
    },
    SetUp {
        label: "hub+1-spectator",
        record: false,
        spectators: 1,
        stalled: false,
    },
    SetUp {
        label: "hub+8-spectators",
        record: false,
        spectators: 8,
        stalled: false,
    },
    SetUp {
        label: "hub+7+1-stalled",
        record: false,
        spectators: 7,
        stalled: true,
    },
];

pub async fn run(args: HubFanoutArgs) -> Res<()> {
    let recordings_dir =
        std::env::temp_dir().join(format!("bench-hub-fanout-{}", std::process::id()));
    let result = run_all(&args, &recordings_dir).await;
    let _ = std::fs::remove_dir_all(&recordings_dir);
    result
}

async fn run_all(args: &HubFanoutArgs, recordings_dir: &std::path::Path) -> Res<()> {
    let recordings = Recordings::new(
        recordings_dir.to_owned(),
        RecordingsConfig {
            max_recording_bytes: u64::MAX,
            ..RecordingsConfig::default()
        },
    );
    let pid = std::process::id();
    for set_up in &SET_UPS {
        let mut options = ConsoleOptions::default();
        if let Some(n) = args.read_chunk {
            options.read_chunk = n;
        }
        let hub = Hub::start(ConsoleUri::Unix(args.socket.clone()), options, 64 * 1024);
        let mut writer = hub
            .attach()
            .await
            .map_err(|e| format!("cannot attach to the hub: {e}"))?;
        let mut recorder = if set_up.record {
            Some(recordings.start(new_recording()).await?)
        } else {
            None
        };
        let mut watchers = Vec::new();
        let total = set_up.spectators + u32::from(set_up.stalled);
        for n in 0..total {
            let request = SpectateRequest {
                replay_lines: 0,
                who: format!("bench-{n}"),
                max: 64,
            };
            let mut view = hub
                .spectate(request)
                .await
                .map_err(|e| format!("cannot spectate: {e:?}"))?;
            if set_up.stalled && n == total - 1 {
                // Kept, never read: its queue fills and the hub skips it ahead.
                watchers.push(tokio::spawn(async move {
                    std::future::pending::<()>().await;
                    drop(view);
                }));
            } else {
                watchers.push(tokio::spawn(async move {
                    while view.output.recv().await.is_some() {}
                }));
            }
        }
        let (mut secs, mut cpu) = (0.0, 0.0);
        // One unmeasured burst first (it also takes the writer's join notices).
        for round in 0..=args.rounds {
            let cpu0 = cpu_seconds(pid)?;
            let t0 = Instant::now();
            writer
                .input
                .write(Bytes::from_static(&[BULK]))
                .await
                .map_err(|_| "the console closed")?;
            let mut tail: Vec<u8> = Vec::with_capacity(2 * DONE.len());
            loop {
                let Some(chunk) = writer.output.recv().await else {
                    return Err("the console closed during a burst".into());
                };
                if let Some(r) = &mut recorder {
                    r.output(&chunk);
                }
                tail.extend_from_slice(&chunk[chunk.len().saturating_sub(DONE.len())..]);
                let keep = tail.len().saturating_sub(DONE.len());
                tail.drain(..keep);
                if tail.ends_with(DONE) {
                    break;
                }
            }
            if round > 0 {
                secs += t0.elapsed().as_secs_f64();
                cpu += cpu_seconds(pid)? - cpu0;
            }
        }
        if let Some(r) = recorder.take() {
            r.finish().await;
        }
        for w in &watchers {
            w.abort();
        }
        drop(writer);
        drop(hub);
        let mb = (args.bulk_bytes * args.rounds) as f64 / 1e6;
        let (mbs, cpu_ms_per_mb) = (mb / secs, cpu * 1000.0 / mb);
        println!(
            "{}: bulk {mbs:.1} MB/s, {cpu_ms_per_mb:.2} ms CPU per MB",
            set_up.label
        );
        println!("RESULT\t{}\t{mbs:.3}\t{cpu_ms_per_mb:.3}\t0", set_up.label);
    }
    Ok(())
}

fn new_recording() -> NewRecording {
    NewRecording {
        instance: "i-00be0000000000000".to_owned(),
        port: 0,
        session: "bench/1".to_owned(),
        principal: "arn:aws:iam::111122223333:root".to_owned(),
        spectator: false,
        size: (80, 24),
        term: None,
    }
}
