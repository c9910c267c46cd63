//! Recordings written through the public API and read back as asciicast v2.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bytes::Bytes;
use recordings::{NewRecording, Recordings, RecordingsConfig, list, parse_event, parse_header};

fn new_recording(spectator: bool) -> NewRecording {
    NewRecording {
        instance: "i-0123456789abcdef0".into(),
        port: 0,
        session: "node-a/7".into(),
        principal: "arn:aws:iam::111122223333:user/alice".into(),
        spectator,
        size: (120, 40),
        term: Some("xterm-256color".into()),
    }
}

/// The header and the `(seconds, code, data)` events of the recording `id` in `dir`.
fn read(dir: &std::path::Path, id: &str) -> (recordings::Header, Vec<(f64, String, String)>) {
    let text = std::fs::read_to_string(dir.join(format!("{id}.cast"))).unwrap();
    let mut lines = text.lines();
    let header = parse_header(lines.next().unwrap()).expect("an asciicast v2 header");
    let events = lines
        .map(|l| parse_event(l).unwrap_or_else(|| panic!("not an event: {l}")))
        .map(|e| (e.seconds, e.code, e.data))
        .collect();
    (header, events)
}

#[tokio::test(start_paused = true)]
async fn output_resizes_and_times_are_recorded_and_input_only_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("recordings");
    let recs = Recordings::new(dir.clone(), RecordingsConfig::default());
    let mut r = recs.start(new_recording(false)).await.unwrap();
    let id = r.id().to_owned();
    let euro = "€".as_bytes();
    r.output(&Bytes::from_static(b"login: "));
    r.input(&Bytes::from_static(b"root\r"));
    tokio::time::advance(Duration::from_millis(1500)).await;
    r.output(&Bytes::copy_from_slice(&euro[..1]));
    r.output(&Bytes::copy_from_slice(&euro[1..]));
    r.resize(100, 30);
    tokio::time::advance(Duration::from_millis(250)).await;
    r.output(&Bytes::from_static(b"\xffdone\r\n"));
    r.finish().await;

    let (header, events) = read(&dir, &id);
    assert_eq!((header.version, header.width, header.height), (2, 120, 40));
    let info = header.serialgate.unwrap();
    assert_eq!(info.id, id);
    assert_eq!(info.instance, "i-0123456789abcdef0");
    assert_eq!(info.principal, "arn:aws:iam::111122223333:user/alice");
    assert!(!info.input && !info.spectator);
    assert_eq!(header.env.unwrap().term.as_deref(), Some("xterm-256color"));
    assert_eq!(
        events,
        vec![
            (0.0, "o".into(), "login: ".into()),
            // The split character is one event, at the time its last byte came.
            (1.5, "o".into(), "€".into()),
            (1.5, "r".into(), "100x30".into()),
            (1.75, "o".into(), "\u{fffd}done\r\n".into()),
        ]
    );
    assert!(
        list(&dir)
            .unwrap()
            .iter()
            .any(|l| l.id == id && l.duration == 1.75)
    );

    // With input kept, what the user typed is there too.
    let keep = Recordings::new(
        dir.clone(),
        RecordingsConfig {
            input: true,
            ..RecordingsConfig::default()
        },
    );
    let mut r = keep.start(new_recording(true)).await.unwrap();
    let id = r.id().to_owned();
    assert!(id.contains("-port0-spectator-"), "{id}");
    r.input(&Bytes::from_static(b"secret\r"));
    r.finish().await;
    let (header, events) = read(&dir, &id);
    assert!(header.serialgate.unwrap().input);
    assert_eq!(events, vec![(0.0, "i".into(), "secret\r".into())]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_disk_that_falls_behind_costs_events_and_leaves_a_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let recs = Recordings::new(tmp.path().to_owned(), RecordingsConfig::default());
    let mut r = recs.start(new_recording(false)).await.unwrap();
    let id = r.id().to_owned();
    // The writer cannot run until this task yields: the queue fills and the rest is dropped.
    for i in 0..1100 {
        r.output(&Bytes::from(format!("line {i}\n")));
    }
    // Room again: the marker goes first, then output flows.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    r.output(&Bytes::from_static(b"after\n"));
    r.finish().await;
    let (_, events) = read(tmp.path(), &id);
    let text: String = events.iter().map(|e| e.2.as_str()).collect();
    assert!(text.starts_with("line 0\nline 1\n"), "{}", &text[..40]);
    assert!(text.contains("line 1023\n"));
    assert!(!text.contains("line 1024\n"));
    // Lines 1024..1099 were dropped: 76 lines of 10 bytes.
    assert!(
        text.contains("[serialgate: 760 bytes not recorded here]"),
        "{}",
        &text[text.len() - 200..]
    );
    assert!(text.ends_with("after\n"));
}

#[tokio::test]
async fn a_recording_stops_at_its_size_limit_with_a_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RecordingsConfig {
        max_recording_bytes: 4096,
        ..RecordingsConfig::default()
    };
    let recs = Recordings::new(tmp.path().to_owned(), cfg);
    let mut r = recs.start(new_recording(false)).await.unwrap();
    let id = r.id().to_owned();
    for i in 0..200 {
        r.output(&Bytes::from(format!("output line {i:04}\r\n")));
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }
    r.finish().await;
    let path = tmp.path().join(format!("{id}.cast"));
    let size = std::fs::metadata(&path).unwrap().len();
    // At most the limit, plus the marker line.
    assert!(size <= 4096 + 300, "{size}");
    let (_, events) = read(tmp.path(), &id);
    let last = events.last().unwrap();
    assert!(last.2.contains("the recording stops here"), "{last:?}");
    assert!(events.len() > 5);
}

#[tokio::test]
async fn sweeping_keeps_recordings_being_written() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RecordingsConfig {
        max_total_bytes: 0,
        ..RecordingsConfig::default()
    };
    let recs = std::sync::Arc::new(Recordings::new(tmp.path().to_owned(), cfg));
    let mut done = recs.start(new_recording(false)).await.unwrap();
    done.output(&Bytes::from_static(b"finished\n"));
    let done_id = done.id().to_owned();
    done.finish().await;
    let mut live = recs.start(new_recording(false)).await.unwrap();
    live.output(&Bytes::from_static(b"still going\n"));
    let live_id = live.id().to_owned();
    let swept = {
        let recs = std::sync::Arc::clone(&recs);
        tokio::task::spawn_blocking(move || recs.sweep())
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(swept.files, 1);
    let left: Vec<String> = list(tmp.path())
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(left, vec![live_id.clone()]);
    assert!(!tmp.path().join(format!("{done_id}.cast")).exists());
    live.finish().await;
    // Finished, it is no longer protected.
    let recs2 = std::sync::Arc::clone(&recs);
    let swept = tokio::task::spawn_blocking(move || recs2.sweep())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(swept.files, 1);
    assert!(list(tmp.path()).unwrap().is_empty());
}
