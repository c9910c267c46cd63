//! `connect --wait`: while the port's one session is open or tearing down after the previous
//! one, wait and push again once it frees, for a bounded time, with a countdown on stderr.
//!
//! The wait is never unbounded (`--wait` is 60 s, `--wait=SECONDS` at most an hour, the longest
//! an AWS session lasts). Ctrl-C, SIGTERM and SIGHUP end it with 128 + the signal; the terminal
//! is not in raw mode yet, so only the countdown line needs clearing.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::errors::{Failure, exit};
use crate::signals::{Event, Signals};
use crate::terminal;

/// `--wait` without a value.
pub const DEFAULT_SECS: u64 = 60;
/// The largest `--wait=SECONDS`.
pub const MAX_SECS: u64 = 3600;
/// How often to push again when the service gives no time: a session is still connected, or
/// the service is AWS, whose message says nothing about when.
const POLL: Duration = Duration::from_secs(5);
/// Added to the service's "try again in N s": N is rounded to whole seconds of its clock.
const MARGIN: Duration = Duration::from_millis(250);

/// How long to wait before the next push, with `left` of the bound remaining; `None` when the
/// port is known to free only after the bound (or the bound is spent).
pub fn next_delay(retry_in: Option<Duration>, left: Duration) -> Option<Duration> {
    match retry_in {
        Some(frees) => (frees <= left).then_some(frees + MARGIN),
        None => (!left.is_zero()).then(|| POLL.min(left)),
    }
}

/// The countdown line on a terminal (rewritten in place each second).
fn countdown_line(what: &str, next_in: u64, left: u64) -> String {
    format!(
        "serialgate: {what} is busy; trying again in {next_in} s ({left} s left of --wait, \
         Ctrl-C stops)"
    )
}

/// The line per attempt when stderr is not a terminal.
fn attempt_line(what: &str, reason: &str, attempt: u32, next_in: u64, left: u64) -> String {
    format!(
        "serialgate: {what} is busy ({reason}); attempt {attempt} in {next_in} s ({left} s left \
         of --wait)"
    )
}

/// Whole seconds, rounded up (a countdown shows 1 s until it is over).
fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The waiting state of one `connect --wait`.
#[derive(Debug)]
pub struct Wait {
    what: String,
    bound: Duration,
    deadline: Instant,
    attempts: u32,
    /// Created at the first pause: from then on a signal ends the wait instead of the process.
    signals: Option<Signals>,
    tty: bool,
}

impl Wait {
    /// A wait of at most `secs` from now, for `what` (e.g. "i-0123456789abcdef0 port 0").
    pub fn new(secs: u64, what: String) -> Self {
        let bound = Duration::from_secs(secs);
        Self {
            what,
            bound,
            deadline: Instant::now() + bound,
            attempts: 1,
            signals: None,
            tty: terminal::stderr_is_tty(),
        }
    }

    /// After a busy refusal (`failure`, with the service's `retry_in`): waits until the next
    /// attempt is due, or gives up with a failure saying why.
    pub async fn pause(
        &mut self,
        retry_in: Option<Duration>,
        failure: Failure,
    ) -> Result<(), Failure> {
        let now = Instant::now();
        let left = self.deadline.saturating_duration_since(now);
        let Some(delay) = next_delay(retry_in, left) else {
            return Err(self.gave_up(retry_in, left, failure));
        };
        if self.signals.is_none() {
            let signals = Signals::new()
                .map_err(|e| Failure::other(format!("cannot handle signals: {e}")))?;
            self.signals = Some(signals);
        }
        self.attempts += 1;
        let due = now + delay;
        if !self.tty {
            let reason = match retry_in {
                Some(_) => "the previous session is being torn down",
                None => "a session is open, or one just ended",
            };
            eprintln!(
                "{}",
                attempt_line(
                    &self.what,
                    reason,
                    self.attempts,
                    secs_up(delay),
                    secs_up(left)
                )
            );
        }
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            if self.tty {
                let line = countdown_line(
                    &self.what,
                    secs_up(due - now),
                    secs_up(self.deadline.saturating_duration_since(now)),
                );
                eprint!("\r\x1b[K{line}");
            }
            // Wake at the next whole second of the countdown, or when the attempt is due.
            let step = (due - now).subsec_nanos();
            let tick = if step == 0 {
                Duration::from_secs(1)
            } else {
                Duration::from_nanos(step.into())
            };
            let wake = (now + tick).min(due);
            let signals = self.signals.as_mut();
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                sig = terminated(signals) => return Err(self.interrupted(sig)),
            }
        }
        self.clear_line();
        Ok(())
    }

    /// Runs one attempt (reconnect, push), unless a signal comes first once waiting has begun.
    pub async fn guard<T>(
        &mut self,
        attempt: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        tokio::select! {
            result = attempt => result,
            sig = terminated(self.signals.as_mut()) => Err(self.interrupted(sig)),
        }
    }

    /// The signal handlers, if the wait made them, for the session to go on with.
    pub fn into_signals(self) -> Option<Signals> {
        self.signals
    }

    fn clear_line(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }

    fn interrupted(&self, sig: i32) -> Failure {
        self.clear_line();
        Failure::new(
            exit::SIGNAL_BASE + sig,
            format!("stopped waiting for {}; no session was opened", self.what),
        )
    }

    fn gave_up(&self, retry_in: Option<Duration>, left: Duration, failure: Failure) -> Failure {
        let first = failure.message.lines().next().unwrap_or_default();
        let why = match retry_in {
            Some(frees) if frees > left => format!(
                "{} frees in {} s, later than the {} s left of --wait={}; wait longer with \
                 --wait=SECONDS.",
                self.what,
                secs_up(frees),
                secs_up(left),
                self.bound.as_secs()
            ),
            _ => format!(
                "{} was still busy after --wait={} s ({} attempts). Close the other session \
                 (Enter ~.) or wait longer with --wait=SECONDS.",
                self.what,
                self.bound.as_secs(),
                self.attempts
            ),
        };
        Failure::new(failure.code, format!("{first}\n{why}"))
    }
}

/// The next terminating signal (window changes are ignored here); never, without handlers.
async fn terminated(signals: Option<&mut Signals>) -> i32 {
    match signals {
        Some(signals) => loop {
            if let Event::Terminate(sig) = signals.recv().await {
                return sig;
            }
        },
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_the_service_and_stay_within_the_bound() {
        let s = Duration::from_secs;
        assert_eq!(next_delay(Some(s(3)), s(60)), Some(s(3) + MARGIN));
        assert_eq!(next_delay(Some(s(60)), s(60)), Some(s(60) + MARGIN));
        assert_eq!(
            next_delay(Some(s(61)), s(60)),
            None,
            "frees after the bound"
        );
        assert_eq!(next_delay(None, s(60)), Some(POLL));
        assert_eq!(
            next_delay(None, s(2)),
            Some(s(2)),
            "the last attempt at the bound"
        );
        assert_eq!(next_delay(None, Duration::ZERO), None);
    }

    #[test]
    fn lines_say_what_and_when() {
        let line = countdown_line("i-0123456789abcdef0 port 0", 3, 57);
        assert_eq!(
            line,
            "serialgate: i-0123456789abcdef0 port 0 is busy; trying again in 3 s (57 s left of \
             --wait, Ctrl-C stops)"
        );
        assert!(!line.contains('\n'));
        let line = attempt_line("i-1 port 0", "torn down", 2, 3, 57);
        assert!(line.contains("attempt 2 in 3 s") && line.contains("(torn down)"));
        assert_eq!(secs_up(Duration::from_millis(2001)), 3);
        assert_eq!(secs_up(Duration::from_secs(2)), 2);
    }

    fn busy() -> Failure {
        Failure::new(
            exit::API_REFUSED,
            "SerialConsoleSessionLimitExceededException: A session is connected.\nold hint",
        )
    }

    #[tokio::test(start_paused = true)]
    async fn waits_until_due_then_gives_up_at_the_bound() {
        let mut wait = Wait::new(12, "i-1 port 0".into());
        let start = Instant::now();
        wait.pause(Some(Duration::from_secs(3)), busy())
            .await
            .unwrap();
        assert_eq!(Instant::now() - start, Duration::from_secs(3) + MARGIN);
        // A session still connected: polled until the bound, then a failure naming it.
        while wait.pause(None, busy()).await.is_ok() {}
        assert!(Instant::now() - start <= Duration::from_secs(12) + MARGIN);
        let failure = wait.pause(None, busy()).await.unwrap_err();
        assert_eq!(failure.code, exit::API_REFUSED);
        assert!(
            failure
                .message
                .starts_with("SerialConsoleSessionLimitExceededException"),
            "{}",
            failure.message
        );
        assert!(failure.message.contains("still busy after --wait=12 s"));
        assert!(!failure.message.contains("old hint"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_port_that_frees_after_the_bound_fails_at_once() {
        let mut wait = Wait::new(10, "i-1 port 0".into());
        let start = Instant::now();
        let failure = wait
            .pause(Some(Duration::from_secs(25)), busy())
            .await
            .unwrap_err();
        assert_eq!(Instant::now(), start);
        assert!(
            failure.message.contains("frees in 25 s"),
            "{}",
            failure.message
        );
        assert!(failure.message.contains("--wait=SECONDS"));
    }
}
