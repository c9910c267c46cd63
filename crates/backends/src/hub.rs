//! A console that stays connected whether or not anyone is attached: it keeps the latest output
//! (the console history `GetConsoleOutput` serves) and lends the line to one user at a time.
//!
//! Consoles such as QEMU's telnet socket accept a single client, and output produced while
//! nobody watches would otherwise be lost, so the hub owns the only connection. While nobody is
//! attached the output only feeds the history and is never held up; while someone is attached,
//! a slow reader slows the console down (one chunk in flight, as in the gateway) rather than
//! losing bytes.
//!
//! The output side is a fan-out on the hub's task, one sequence for all: each chunk goes to the
//! history, then to every [`OutputTap`] (the console log; consumers that never wait), then to
//! the spectators (read-only viewers who never slow anyone down, see [`Hub::spectate`]), then
//! to the attached user. A user or a spectator may ask for the last lines of the history first
//! ([`Hub::attach_replaying`]): the cut is made here, between two chunks, so the replay and the
//! live output meet without a gap or a repeat. The attached user is told, in its output, when a
//! spectator joins or leaves.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::backoff::Backoff;
use crate::console::{BreakError, Capabilities, Console, ConsoleOptions, Input, TaskEnds};
use crate::error::OpenError;
use crate::history::{History, MAX_REPLAY_LINES};
use crate::spectate::{Change, SpectateError, SpectateRequest, Spectators};
use crate::tap::{HubSetup, OutputTap};
use crate::uri::ConsoleUri;

/// Reconnect backoff bounds while the console is unreachable or keeps closing.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// Spectator notices kept for an attached user that is not reading.
const MAX_NOTICES: usize = 16;
/// A connection that lasted this long is retried at once when it ends, and resets the backoff.
const RETRY_STABLE: Duration = Duration::from_secs(10);

/// Where a hub's connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubState {
    /// Not tried yet (the hub just started).
    Connecting,
    Connected,
    /// The last attempt failed, or the connection ended; retried with backoff.
    Down {
        reason: String,
    },
}

/// The kept output of a hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubSnapshot {
    /// The latest output, at most the history size.
    pub bytes: Vec<u8>,
    /// When the last byte arrived, ms since the Unix epoch; 0 if none yet.
    pub updated_ms: u64,
}

/// A user asking for the console, and how many lines of history it wants first.
struct AttachRequest {
    replay_lines: u32,
    reply: oneshot::Sender<Result<Console, OpenError>>,
}

/// What the hub's task is asked for.
enum Request {
    Attach(AttachRequest),
    Spectate(
        SpectateRequest,
        oneshot::Sender<Result<Console, SpectateError>>,
    ),
}

impl Request {
    /// Answers a request the hub cannot serve now (the console is not connected).
    fn refuse(self, uri: &ConsoleUri) {
        match self {
            Request::Attach(req) => {
                let _ = req.reply.send(Err(OpenError::Unusable {
                    uri: uri.to_string(),
                    reason: "console not connected".to_owned(),
                }));
            }
            Request::Spectate(_, reply) => {
                let _ = reply.send(Err(SpectateError::NotConnected));
            }
        }
    }
}

/// A permanently connected console. Cheap to clone; the connection task ends when every clone
/// is dropped.
#[derive(Debug, Clone)]
pub struct Hub {
    history: Arc<Mutex<History>>,
    attach_tx: mpsc::Sender<Request>,
    /// Spectators watching now.
    watching: Arc<AtomicU32>,
    /// Total bytes received since the hub started; watchers learn that the console is alive.
    activity: watch::Receiver<u64>,
    state: watch::Receiver<HubState>,
    kick: Arc<Notify>,
    stop: Arc<watch::Sender<bool>>,
}

impl Hub {
    /// Starts a hub for `uri`, keeping `history_bytes` of output. Must be called within a tokio
    /// runtime.
    pub fn start(uri: ConsoleUri, opts: ConsoleOptions, history_bytes: usize) -> Hub {
        Self::start_with(uri, opts, HubSetup::new(history_bytes))
    }

    /// Starts a hub for `uri` with a seeded history and taps on its output (see
    /// [`HubSetup`]). Must be called within a tokio runtime.
    pub fn start_with(uri: ConsoleUri, opts: ConsoleOptions, setup: HubSetup) -> Hub {
        let mut kept = History::new(setup.history_bytes);
        if let Some(seed) = &setup.seed {
            kept.seed(&seed.bytes, seed.updated_ms);
        }
        let history = Arc::new(Mutex::new(kept));
        let (attach_tx, attach_rx) = mpsc::channel(4);
        let (activity_tx, activity) = watch::channel(0u64);
        let (state_tx, state) = watch::channel(HubState::Connecting);
        let kick = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let spectators = Spectators::new();
        let watching = spectators.counter();
        let task = HubTask {
            kick: Arc::clone(&kick),
            stopped,
            uri,
            opts,
            history: Arc::clone(&history),
            attach_rx,
            activity: activity_tx,
            state: state_tx,
            total: 0,
            resume_from: None,
            taps: setup.taps,
            spectators,
            notices: VecDeque::new(),
        };
        tokio::spawn(task.run());
        Hub {
            history,
            attach_tx,
            watching,
            activity,
            state,
            kick,
            stop: Arc::new(stop),
        }
    }

    /// Closes the console connection, whoever else holds this hub, and returns once it is
    /// closed (the connection task has ended). The attached user sees its output end; every
    /// later attachment fails. For a node that must let go of a console before another may
    /// connect to it.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let mut state = self.state.clone();
        // The task owns the sending half: the channel closes when the task has ended.
        while state.changed().await.is_ok() {}
    }

    /// Retries the connection now instead of at the end of the backoff: the console has just
    /// appeared (a VM was started).
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// The kept output.
    pub fn snapshot(&self) -> HubSnapshot {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        HubSnapshot {
            bytes: h.bytes(),
            updated_ms: h.updated_ms,
        }
    }

    /// Whether the console is connected right now.
    pub fn is_connected(&self) -> bool {
        *self.state.borrow() == HubState::Connected
    }

    /// Where the connection stands.
    pub fn state(&self) -> HubState {
        self.state.borrow().clone()
    }

    /// The state once the first attempt has ended (or `wait` has passed, then `Connecting`):
    /// what startup reports about each console.
    pub async fn first_attempt(&self, wait: Duration) -> HubState {
        let mut rx = self.state.clone();
        let settled = rx.wait_for(|s| *s != HubState::Connecting);
        match tokio::time::timeout(wait, settled).await {
            Ok(Ok(state)) => state.clone(),
            _ => self.state(),
        }
    }

    /// Total bytes received so far; `changed()` on the receiver wakes on new output.
    pub fn activity(&self) -> watch::Receiver<u64> {
        self.activity.clone()
    }

    /// Lends the console to a user. A previous attachment is detached (its output ends). Fails
    /// when the console is not connected right now.
    pub async fn attach(&self) -> Result<Console, OpenError> {
        self.attach_replaying(0).await
    }

    /// As [`attach`](Self::attach), and the console's output starts with the last
    /// `replay_lines` lines of the history (at most [`MAX_REPLAY_LINES`]), then goes on live:
    /// the cut is made on the hub's task, where history and live output are one sequence, so
    /// nothing is missing or repeated at the seam.
    pub async fn attach_replaying(&self, replay_lines: u32) -> Result<Console, OpenError> {
        let (tx, rx) = oneshot::channel();
        let gone = || OpenError::Unusable {
            uri: "hub".to_owned(),
            reason: "console hub stopped".to_owned(),
        };
        let request = AttachRequest {
            replay_lines: replay_lines.min(MAX_REPLAY_LINES),
            reply: tx,
        };
        self.attach_tx
            .send(Request::Attach(request))
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Lets a read-only viewer watch the console: its output starts with the last
    /// `replay_lines` lines of the history, cut as for [`attach_replaying`](Self::attach_replaying),
    /// then goes on live, whoever is attached. Its input is dropped. It never slows the console
    /// or the attached user: one that falls behind skips ahead, with a notice in its output.
    /// The attached user is told when it joins and leaves. Refused when `max` are watching
    /// already or the console is not connected.
    pub async fn spectate(&self, mut req: SpectateRequest) -> Result<Console, SpectateError> {
        req.replay_lines = req.replay_lines.min(MAX_REPLAY_LINES);
        let (tx, rx) = oneshot::channel();
        self.attach_tx
            .send(Request::Spectate(req, tx))
            .await
            .map_err(|_| SpectateError::NotConnected)?;
        rx.await.map_err(|_| SpectateError::NotConnected)?
    }

    /// How many spectators are watching now.
    pub fn spectators(&self) -> u32 {
        self.watching.load(Ordering::SeqCst)
    }
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

struct HubTask {
    kick: Arc<Notify>,
    /// Turns true when the hub must stop ([`Hub::stop`]).
    stopped: watch::Receiver<bool>,
    uri: ConsoleUri,
    opts: ConsoleOptions,
    history: Arc<Mutex<History>>,
    attach_rx: mpsc::Receiver<Request>,
    activity: watch::Sender<u64>,
    state: watch::Sender<HubState>,
    total: u64,
    /// Set when the console went away under an attached user: the byte count at that moment.
    /// The next attachment first gets what arrived since, so a session that reattaches after
    /// the console comes back (a VM starting again) misses none of the boot.
    resume_from: Option<u64>,
    /// Every other consumer of the output (the console log): handed each chunk, never waited on.
    taps: Vec<Box<dyn OutputTap>>,
    /// Read-only viewers; they outlive a connection, so a reboot does not drop them.
    spectators: Spectators,
    /// Notices for the attached user (spectators joining and leaving), sent between chunks.
    notices: VecDeque<Bytes>,
}

impl HubTask {
    async fn run(mut self) {
        let mut backoff = Backoff::new(RETRY_MIN, RETRY_MAX, RETRY_STABLE);
        loop {
            let mut stopped = self.stopped.clone();
            let opened = tokio::select! {
                opened = crate::open(&self.uri, &self.opts) => opened,
                _ = stopped.wait_for(|s| *s) => return,
            };
            let wait = match opened {
                Ok(console) => {
                    backoff.opened(tokio::time::Instant::now());
                    let _ = self.state.send(HubState::Connected);
                    let keep_going = self.serve(console).await;
                    let _ = self.state.send(HubState::Down {
                        reason: "the console closed the connection".to_owned(),
                    });
                    if !keep_going {
                        return;
                    }
                    // A console that accepts and closes at once is paced like one that refuses.
                    backoff.closed(tokio::time::Instant::now())
                }
                Err(e) => {
                    tracing::debug!(console = %self.uri, error = %e, "hub: console unreachable");
                    let _ = self.state.send(HubState::Down {
                        reason: e.to_string(),
                    });
                    backoff.failed()
                }
            };
            // Refuse attachments while disconnected; wait for the next try.
            let retry = tokio::time::sleep(wait);
            tokio::pin!(retry);
            loop {
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return,
                    () = &mut retry => break,
                    () = self.kick.notified() => {
                        // The console is (about to be) there: keep trying at the fastest pace.
                        backoff.reset();
                        break;
                    }
                    req = self.attach_rx.recv() => match req {
                        Some(req) => req.refuse(&self.uri),
                        None => return,
                    },
                    // A spectator left while disconnected: nobody is attached to be told.
                    _ = self.spectators.left.recv() => {}
                }
            }
        }
    }

    /// Serves one connection until it ends. Returns false when every `Hub` handle is gone.
    async fn serve(&mut self, mut console: Console) -> bool {
        let caps: Capabilities = console.capabilities;
        let mut user: Option<TaskEnds> = None;
        let mut to_user: Option<BoxFut<bool>> = None;
        let mut to_console: Option<BoxFut<bool>> = None;
        let mut stopped = self.stopped.clone();
        self.notices.clear();
        loop {
            // Notices go to the attached user between two chunks of output.
            if to_user.is_none()
                && let Some(u) = &user
                && let Some(notice) = self.notices.pop_front()
            {
                let tx = u.output.clone();
                to_user = Some(Box::pin(async move { tx.send(notice).await.is_ok() }));
            }
            tokio::select! {
                _ = stopped.wait_for(|s| *s) => return false,
                req = self.attach_rx.recv() => match req {
                    Some(Request::Attach(req)) => {
                        // The newest user wins; the old one sees its output end.
                        drop(to_user.take());
                        self.notices.clear();
                        let (c, ends) = Console::pair(caps, &self.opts);
                        let backlog = self.backlog(req.replay_lines);
                        if !backlog.is_empty() {
                            let tx = ends.output.clone();
                            to_user = Some(Box::pin(async move { tx.send(backlog).await.is_ok() }));
                        }
                        user = Some(ends);
                        let _ = req.reply.send(Ok(c));
                    }
                    Some(Request::Spectate(req, reply)) => {
                        let backlog = self.replay(req.replay_lines);
                        let joined = self.spectators.join(&req, backlog, caps, &self.opts);
                        let answer = joined.map(|(console, change)| {
                            self.tell_user(user.is_some(), &change);
                            console
                        });
                        let _ = reply.send(answer);
                    }
                    None => return false,
                },
                Some(who) = self.spectators.left.recv() => {
                    let change = self.spectators.departed(who);
                    self.tell_user(user.is_some(), &change);
                }
                ok = async { match to_user.as_mut() { Some(f) => f.as_mut().await, None => std::future::pending().await } }, if to_user.is_some() => {
                    to_user = None;
                    if !ok {
                        user = None;
                    }
                }
                ok = async { match to_console.as_mut() { Some(f) => f.as_mut().await, None => std::future::pending().await } }, if to_console.is_some() => {
                    to_console = None;
                    if !ok {
                        if user.is_some() {
                            self.resume_from = Some(self.total);
                        }
                        return true;
                    }
                }
                out = console.output.recv(), if to_user.is_none() => match out {
                    Some(bytes) => {
                        self.history
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(&bytes);
                        self.total += bytes.len() as u64;
                        let _ = self.activity.send(self.total);
                        for tap in &mut self.taps {
                            tap.offer(&bytes);
                        }
                        self.spectators.offer(&bytes);
                        if let Some(u) = &user {
                            let tx = u.output.clone();
                            to_user = Some(Box::pin(async move { tx.send(bytes).await.is_ok() }));
                        }
                    }
                    // The console went away; the attached user sees its output end.
                    None => {
                        if user.is_some() {
                            self.resume_from = Some(self.total);
                        }
                        return true;
                    }
                },
                req = recv_user(&mut user), if to_console.is_none() => match req {
                    Some(Input::Data(d)) => {
                        let input = console.input.clone();
                        to_console = Some(Box::pin(async move { input.write(d).await.is_ok() }));
                    }
                    Some(Input::Break) => {
                        let input = console.input.clone();
                        to_console = Some(Box::pin(async move {
                            !matches!(input.send_break().await, Err(BreakError::Closed))
                        }));
                    }
                    None => user = None,
                },
            }
        }
    }
}

impl HubTask {
    /// Queues a notice about a spectator for the attached user, if there is one.
    fn tell_user(&mut self, attached: bool, change: &Change) {
        if attached {
            // A writer that reads nothing while spectators come and go keeps the latest few.
            if self.notices.len() >= MAX_NOTICES {
                self.notices.pop_front();
            }
            self.notices.push_back(change.notice());
        }
    }

    /// The last `replay_lines` lines of the history: what a spectator sees first.
    fn replay(&self, replay_lines: u32) -> Bytes {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        h.suffix(h.lines_len(replay_lines).min(h.len()))
    }

    /// What a new user gets before live output: the output since a console loss under the
    /// previous user (so a reattaching session misses none of a boot), or the last
    /// `replay_lines` lines, whichever is longer (both end at the latest byte), as far as the
    /// history still holds it.
    fn backlog(&mut self, replay_lines: u32) -> Bytes {
        let h = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let since_loss = self.resume_from.take().map_or(0, |from| {
            usize::try_from(self.total.saturating_sub(from)).unwrap_or(usize::MAX)
        });
        let n = since_loss.max(h.lines_len(replay_lines)).min(h.len());
        h.suffix(n)
    }
}

async fn recv_user(user: &mut Option<TaskEnds>) -> Option<Input> {
    match user {
        Some(u) => u.input.recv().await,
        None => std::future::pending().await,
    }
}
