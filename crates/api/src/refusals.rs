//! Requests refused before their signature verified. The caller is unknown, so they are not
//! recorded one by one (junk traffic must not fill the audit store): they are counted per
//! source, reason and error code, and each window's counts become one audit record each
//! ([`RefusalEvent`], `kind = "api-refused"`), written when the window ends and when the server
//! stops.
//!
//! Bounded: a window holds at most [`MAX_ENTRIES`] counts; a source first seen after that is
//! counted with every other such source (no address) under its reason and code.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::header;
use axum::http::request::Parts;
use console::{ConsoleService, RefusalEvent};
use sigv4::SigErrorKind;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long refusals are counted before the counts are written.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Counts (source, reason, code) one window holds at most.
pub(crate) const MAX_ENTRIES: usize = 1000;

/// AWS's access key ids are 16 to 128 characters.
const KEY_ID_LEN: std::ops::RangeInclusive<usize> = 16..=128;

/// The counts of the window in progress.
#[derive(Debug)]
pub(crate) struct RefusalTally {
    max_entries: usize,
    open: Mutex<HashMap<Key, Count>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    /// `None`: the sources past the window's limit.
    source: Option<IpAddr>,
    reason: &'static str,
    code: &'static str,
}

#[derive(Debug)]
struct Count {
    first_ms: u64,
    last_ms: u64,
    count: u64,
    key_id: KeyId,
}

/// The access key ids the counted requests named.
#[derive(Debug)]
enum KeyId {
    /// None well formed so far.
    Unseen,
    One(String),
    Several,
}

impl Default for RefusalTally {
    fn default() -> Self {
        Self::new(MAX_ENTRIES)
    }
}

impl RefusalTally {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            max_entries,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one refusal. `key_id` must already be known to be well formed
    /// ([`claimed_key_id`]).
    pub(crate) fn count(
        &self,
        source: Option<IpAddr>,
        reason: &'static str,
        code: &'static str,
        key_id: Option<&str>,
        now_ms: u64,
    ) {
        // A poisoned lock only means a panic elsewhere while counting; the counts stay usable.
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let mut key = Key {
            source,
            reason,
            code,
        };
        if open.len() >= self.max_entries && !open.contains_key(&key) {
            key.source = None;
        }
        let c = open.entry(key).or_insert(Count {
            first_ms: now_ms,
            last_ms: now_ms,
            count: 0,
            key_id: KeyId::Unseen,
        });
        c.count += 1;
        c.last_ms = c.last_ms.max(now_ms);
        if let Some(id) = key_id {
            c.key_id = match std::mem::replace(&mut c.key_id, KeyId::Several) {
                KeyId::Unseen => KeyId::One(id.to_owned()),
                KeyId::One(seen) if seen == id => KeyId::One(seen),
                KeyId::One(_) | KeyId::Several => KeyId::Several,
            };
        }
    }

    /// Ends the window: its counts, oldest first, and a new empty window.
    pub(crate) fn take(&self) -> Vec<RefusalEvent> {
        let counts = std::mem::take(&mut *self.open.lock().unwrap_or_else(PoisonError::into_inner));
        let mut events: Vec<RefusalEvent> = counts
            .into_iter()
            .map(|(k, c)| RefusalEvent {
                first_ms: c.first_ms,
                last_ms: c.last_ms,
                source_ip: k.source,
                reason: k.reason,
                code: k.code,
                count: c.count,
                access_key_id: match c.key_id {
                    KeyId::One(id) => Some(id),
                    KeyId::Unseen | KeyId::Several => None,
                },
            })
            .collect();
        events.sort_by(|a, b| {
            (a.first_ms, a.source_ip, a.reason, a.code).cmp(&(
                b.first_ms,
                b.source_ip,
                b.reason,
                b.code,
            ))
        });
        events
    }

    /// Ends the window and writes its counts. A write that fails loses them, with a warning:
    /// the requests were refused either way.
    pub(crate) async fn flush(&self, service: &ConsoleService) {
        let events = self.take();
        if events.is_empty() {
            return;
        }
        if let Err(e) = service.record_refusals(&events).await {
            let requests: u64 = events.iter().map(|e| e.count).sum();
            tracing::warn!(
                error = %e,
                records = events.len(),
                requests,
                "audit records of unauthenticated refusals failed; their counts are lost"
            );
        }
    }
}

/// Writes the tally's counts every `window` until `stop` turns true. The task is aborted if the
/// guard is dropped first (a server future dropped rather than stopped).
pub(crate) fn flush_every(
    tally: Arc<RefusalTally>,
    service: Arc<ConsoleService>,
    window: Duration,
    mut stop: watch::Receiver<bool>,
) -> AbortOnDrop {
    // A zero period would make `interval` panic; a configured zero means "as often as sensible".
    let window = window.max(Duration::from_millis(100));
    AbortOnDrop(tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        let mut stopped = std::pin::pin!(stopped);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + window, window);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => tally.flush(&service).await,
                () = &mut stopped => return,
            }
        }
    }))
}

/// A task aborted when this is dropped.
#[derive(Debug)]
pub(crate) struct AbortOnDrop(JoinHandle<()>);

impl AbortOnDrop {
    /// Waits for the task to end by itself.
    pub(crate) async fn join(mut self) {
        let _ = (&mut self.0).await;
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The audit vocabulary for why the signature check refused a request.
pub(crate) fn reason(kind: SigErrorKind) -> &'static str {
    match kind {
        SigErrorKind::Missing => "missing-authentication",
        SigErrorKind::Incomplete => "incomplete-signature",
        SigErrorKind::WrongScope => "wrong-scope",
        SigErrorKind::Expired => "expired",
        SigErrorKind::UnknownAccessKey => "unknown-access-key",
        SigErrorKind::InvalidToken => "invalid-token",
        SigErrorKind::SignatureMismatch => "signature-mismatch",
        SigErrorKind::PayloadHashMismatch => "payload-hash-mismatch",
        _ => "other",
    }
}

/// The access key id a refused request names (the `Credential=` of its `Authorization` header,
/// else its `X-Amz-Credential` query parameter), when it is one: a configured id (`known`), or
/// AWS's shape, 16 to 128 upper-case letters and digits. Anything else (junk, a secret pasted
/// into the wrong field: secrets have lower-case letters) is not kept.
pub(crate) fn claimed_key_id(parts: &Parts, known: impl Fn(&str) -> bool) -> Option<String> {
    let from_header = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once("Credential=")?.1.split_once('/'))
        .map(|(id, _)| id.to_owned());
    let id = from_header.or_else(|| {
        form_urlencoded::parse(parts.uri.query()?.as_bytes())
            .find(|(name, _)| name == "X-Amz-Credential")
            .and_then(|(_, v)| Some(v.split_once('/')?.0.to_owned()))
    })?;
    let aws_shape = KEY_ID_LEN.contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    (aws_shape || known(&id)).then_some(id)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use async_trait::async_trait;
    use console::{AuditEvent, AuditSink, Registry, Settings, StoreError, ThrottleConfig};

    use super::*;

    const MISMATCH: &str = "signature-mismatch";
    const CODE: &str = "InvalidSignatureException";

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[derive(Debug, Default)]
    struct Sink(StdMutex<Vec<Vec<RefusalEvent>>>);

    #[async_trait]
    impl AuditSink for Sink {
        async fn record(&self, _: &AuditEvent) -> Result<(), StoreError> {
            Ok(())
        }
        async fn record_refusals(&self, events: &[RefusalEvent]) -> Result<(), StoreError> {
            self.0.lock().unwrap().push(events.to_vec());
            Ok(())
        }
    }

    #[test]
    fn one_count_per_source_reason_and_code() {
        let t = RefusalTally::default();
        for n in 0..5 {
            t.count(
                ip("192.0.2.1"),
                MISMATCH,
                CODE,
                Some("AKIAIOSFODNN7EXAMPLE"),
                100 + n,
            );
        }
        t.count(
            ip("192.0.2.1"),
            "unknown-access-key",
            "UnrecognizedClientException",
            None,
            103,
        );
        t.count(ip("192.0.2.2"), MISMATCH, CODE, None, 101);
        let got = t.take();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(
            got[0],
            RefusalEvent {
                first_ms: 100,
                last_ms: 104,
                source_ip: ip("192.0.2.1"),
                reason: MISMATCH,
                code: CODE,
                count: 5,
                access_key_id: Some("AKIAIOSFODNN7EXAMPLE".into()),
            }
        );
        assert_eq!((got[1].source_ip, got[1].count), (ip("192.0.2.2"), 1));
        assert_eq!(got[1].access_key_id, None);
        assert_eq!(got[2].reason, "unknown-access-key");
        // The window is over: the next one starts empty.
        assert!(t.take().is_empty());
    }

    #[test]
    fn several_key_ids_in_one_count_name_none() {
        let t = RefusalTally::default();
        t.count(
            ip("192.0.2.1"),
            MISMATCH,
            CODE,
            Some("AKIAAAAAAAAAAAAAAAAA"),
            1,
        );
        t.count(ip("192.0.2.1"), MISMATCH, CODE, None, 2);
        t.count(
            ip("192.0.2.1"),
            MISMATCH,
            CODE,
            Some("AKIABBBBBBBBBBBBBBBB"),
            3,
        );
        let got = t.take();
        assert_eq!((got[0].count, got[0].access_key_id.as_deref()), (3, None));
    }

    #[test]
    fn sources_past_the_limit_are_counted_together() {
        let t = RefusalTally::new(3);
        for n in 1..=10u8 {
            t.count(Some(IpAddr::from([192, 0, 2, n])), MISMATCH, CODE, None, 1);
        }
        // A source seen before the limit keeps its own count.
        t.count(ip("192.0.2.1"), MISMATCH, CODE, None, 2);
        let got = t.take();
        assert_eq!(got.len(), 4, "{got:#?}");
        let others: Vec<_> = got.iter().filter(|e| e.source_ip.is_none()).collect();
        assert_eq!(others.len(), 1);
        assert_eq!(others[0].count, 7);
        let first = got.iter().find(|e| e.source_ip == ip("192.0.2.1")).unwrap();
        assert_eq!(first.count, 2);
    }

    /// The window's end writes its counts, on tokio's clock: nothing before, one record with
    /// the whole count after; the stop signal ends the task.
    #[tokio::test(start_paused = true)]
    async fn counts_are_written_when_the_window_ends() {
        let sink = Arc::new(Sink::default());
        let service = Arc::new(
            ConsoleService::new(
                Registry::new(),
                Settings::default(),
                ThrottleConfig::default(),
            )
            .with_audit(Arc::clone(&sink) as Arc<dyn AuditSink>),
        );
        let tally = Arc::new(RefusalTally::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let task = flush_every(Arc::clone(&tally), service, DEFAULT_WINDOW, stop_rx);
        for _ in 0..25 {
            tally.count(ip("198.51.100.7"), MISMATCH, CODE, None, 1);
        }
        tokio::time::sleep(DEFAULT_WINDOW - Duration::from_secs(1)).await;
        assert!(sink.0.lock().unwrap().is_empty());
        tokio::time::sleep(Duration::from_secs(2)).await;
        {
            let written = sink.0.lock().unwrap();
            assert_eq!(written.len(), 1, "{written:#?}");
            assert_eq!(written[0].len(), 1);
            assert_eq!(written[0][0].count, 25);
        }
        // An empty window writes nothing.
        tokio::time::sleep(DEFAULT_WINDOW).await;
        assert_eq!(sink.0.lock().unwrap().len(), 1);
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task.join())
            .await
            .expect("the flusher stops when told");
    }

    #[test]
    fn key_ids_are_kept_only_when_well_formed() {
        let parts = |auth: Option<&str>, uri: &str| {
            let mut b = axum::http::Request::builder().uri(uri);
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, a);
            }
            b.body(()).unwrap().into_parts().0
        };
        let auth = |id: &str| {
            format!(
                "AWS4-HMAC-SHA256 Credential={id}/20260101/us-east-1/ec2/aws4_request, \
                 SignedHeaders=host, Signature=abcd"
            )
        };
        let none = |_: &str| false;
        let aws = "AKIAIOSFODNN7EXAMPLE";
        assert_eq!(
            claimed_key_id(&parts(Some(&auth(aws)), "/"), none).as_deref(),
            Some(aws)
        );
        // A configured id of another shape is known.
        let short = parts(Some(&auth("test")), "/");
        assert_eq!(claimed_key_id(&short, none), None);
        assert_eq!(
            claimed_key_id(&short, |id| id == "test").as_deref(),
            Some("test")
        );
        // A secret pasted as the key id, junk, and no credential at all are not kept.
        for junk in [
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY0",
            "AKIA<script>",
            "",
        ] {
            assert_eq!(
                claimed_key_id(&parts(Some(&auth(junk)), "/"), none),
                None,
                "{junk}"
            );
        }
        assert_eq!(claimed_key_id(&parts(Some("garbage"), "/"), none), None);
        assert_eq!(claimed_key_id(&parts(None, "/"), none), None);
        // Presigned form.
        let q = format!("/?X-Amz-Credential={aws}%2F20260101%2Fus-east-1%2Fec2%2Faws4_request");
        assert_eq!(claimed_key_id(&parts(None, &q), none).as_deref(), Some(aws));
        let long = format!("/?X-Amz-Credential={}%2Fx", "A".repeat(129));
        assert_eq!(claimed_key_id(&parts(None, &long), none), None);
    }
}
