//! Sessions whose page lost its connection without closing it (a dropped network, a laptop
//! lid): kept for [`RECONNECT_GRACE`], so the page's reconnection (with the same cookie) takes
//! its session back, slot and all, instead of a new link. Output the page had not acknowledged
//! is sent again on the new connection, so nothing is lost in between (a few KiB the page wrote
//! but had not acknowledged yet may show twice). A session nobody takes back within the grace
//! ends as if its client had left.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use console::browser::BrowserSession;
use console::{InstanceId, SerialPort};

/// How long a page has to come back.
pub const RECONNECT_GRACE: Duration = Duration::from_secs(30);

/// A session and the output its page had not acknowledged.
#[derive(Debug)]
pub(super) struct Detached {
    pub(super) session: BrowserSession,
    pub(super) unacked: VecDeque<Bytes>,
}

#[derive(Debug)]
struct Entry {
    instance: InstanceId,
    port: SerialPort,
    detached: Detached,
    /// Tells this entry from a later one under the same key.
    generation: u64,
}

#[derive(Debug, Default)]
pub(super) struct Parked {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
    generations: std::sync::atomic::AtomicU64,
}

impl Parked {
    /// Keeps `detached` for the holder of `key` for [`RECONNECT_GRACE`]; then drops it, which
    /// ends the session.
    pub(super) fn park(
        self: &Arc<Self>,
        key: [u8; 32],
        instance: InstanceId,
        port: SerialPort,
        detached: Detached,
    ) {
        let generation = self
            .generations
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(
            key,
            Entry {
                instance,
                port,
                detached,
                generation,
            },
        );
        let parked = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(RECONNECT_GRACE).await;
            let mut entries = parked.lock();
            if entries
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                entries.remove(&key);
            }
        });
    }

    /// The session parked for `key` on this console, if any.
    pub(super) fn take(
        &self,
        key: &[u8; 32],
        instance: &InstanceId,
        port: SerialPort,
    ) -> Option<Detached> {
        let mut entries = self.lock();
        let matches = entries
            .get(key)
            .is_some_and(|e| e.instance == *instance && e.port == port);
        matches
            .then(|| entries.remove(key))
            .flatten()
            .map(|e| e.detached)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;

    fn detached() -> (Detached, mpsc::Receiver<console::browser::BrowserInput>) {
        let (input, input_rx) = mpsc::channel(1);
        let (_output_tx, output) = mpsc::channel(1);
        let session = BrowserSession {
            input,
            output,
            ends_at_ms: 0,
            principal: "arn:aws:iam::111122223333:user/alice".into(),
        };
        let unacked = VecDeque::from([Bytes::from_static(b"unseen")]);
        (Detached { session, unacked }, input_rx)
    }

    #[tokio::test(start_paused = true)]
    async fn a_parked_session_is_taken_back_by_its_key_and_console_only() {
        let parked = Arc::new(Parked::default());
        let inst = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let other = InstanceId::parse("i-0123456789abcdef1").unwrap();
        let (d, _rx) = detached();
        parked.park([1; 32], inst.clone(), SerialPort::new(0), d);
        assert!(parked.take(&[2; 32], &inst, SerialPort::new(0)).is_none());
        assert!(parked.take(&[1; 32], &other, SerialPort::new(0)).is_none());
        assert!(parked.take(&[1; 32], &inst, SerialPort::new(1)).is_none());
        let back = parked.take(&[1; 32], &inst, SerialPort::new(0)).unwrap();
        assert_eq!(back.unacked, [Bytes::from_static(b"unseen")]);
        assert!(parked.take(&[1; 32], &inst, SerialPort::new(0)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_nobody_takes_back_ends_after_the_grace() {
        let parked = Arc::new(Parked::default());
        let inst = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let (d, mut input_rx) = detached();
        parked.park([1; 32], inst.clone(), SerialPort::new(0), d);
        tokio::time::sleep(RECONNECT_GRACE - Duration::from_millis(1)).await;
        assert!(
            input_rx
                .try_recv()
                .is_err_and(|e| e == mpsc::error::TryRecvError::Empty)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
        // Dropped: the session's input is closed, which ends it as a client that left.
        assert_eq!(
            input_rx.recv().await,
            None,
            "the parked session must be dropped"
        );
        assert!(parked.take(&[1; 32], &inst, SerialPort::new(0)).is_none());
    }
}
