//! Ending a session on request: the end requests a session watches for (from the session
//! directory, any node's API), the idle timeout, and what the user is told.
//!
//! Both end the session the same way: the session loop stops, the console is dropped, the user
//! reads one line saying who ended it and why, and only then is the slot freed, without the
//! teardown block (the holder has stopped writing, so freeing it at once keeps one writer).

use std::time::Duration;

use console::leases::Slot;
use console::{EndRequest, Lease};
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep_until};

/// Who the idle timeout's end requests are from.
pub(crate) const IDLE_BY: &str = "serialgate";
/// The idle timeout's reason.
pub(crate) const IDLE_REASON: &str = "idle";

/// Resolves with the first request to end the session holding `lease` (its slot and token: a
/// request for an earlier or later session on the same port is not for it). Cancel-safe.
/// Requests missed because this node fell behind are found at the next lease renewal.
pub(crate) async fn requested(
    rx: &mut broadcast::Receiver<EndRequest>,
    slot: &Slot,
    token: u64,
) -> EndRequest {
    loop {
        match rx.recv().await {
            Ok(req) if req.slot == *slot && req.token == token => return req,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            // The directory is gone (shutdown); the session ends by other means.
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

/// The idle timeout of one session: when it would end if nothing moves either way.
#[derive(Debug)]
pub(crate) struct IdleClock {
    limit: Option<Duration>,
    last: Instant,
}

impl IdleClock {
    /// `limit` `None`: never idle.
    pub(crate) fn new(limit: Option<Duration>) -> Self {
        Self {
            limit,
            last: Instant::now(),
        }
    }

    /// Bytes moved one way or the other.
    pub(crate) fn touch(&mut self) {
        self.last = Instant::now();
    }

    /// Resolves when the session has been idle for the limit; never without one.
    pub(crate) async fn expired(&self) {
        match self.limit {
            Some(limit) => sleep_until(self.last + limit).await,
            None => std::future::pending().await,
        }
    }

    /// The end request the idle timeout makes for the session holding `lease`.
    pub(crate) fn request(lease: &Lease) -> EndRequest {
        EndRequest {
            slot: lease.slot.clone(),
            token: lease.token,
            by: IDLE_BY.to_owned(),
            reason: IDLE_REASON.to_owned(),
        }
    }
}

/// The line the user reads (the reason was checked to be printable when it was asked for).
pub(crate) fn farewell(req: &EndRequest) -> String {
    if req.reason.is_empty() {
        format!("\r\nserialgate: this session was ended by {}.\r\n", req.by)
    } else {
        format!(
            "\r\nserialgate: this session was ended by {}: {}\r\n",
            req.by, req.reason
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use console::{InstanceId, SerialPort};

    fn slot(n: u32) -> Slot {
        Slot {
            instance: InstanceId::parse("i-0123456789abcdef0").unwrap(),
            port: SerialPort::new(n),
        }
    }

    fn req(port: u32, token: u64) -> EndRequest {
        EndRequest {
            slot: slot(port),
            token,
            by: "arn:aws:iam::111122223333:user/ops".to_owned(),
            reason: "maintenance".to_owned(),
        }
    }

    #[tokio::test]
    async fn only_the_sessions_own_request_ends_it() {
        let (tx, mut rx) = broadcast::channel(4);
        tx.send(req(1, 5)).unwrap(); // another port
        tx.send(req(0, 4)).unwrap(); // an earlier session on the port
        tx.send(req(0, 5)).unwrap();
        assert_eq!(requested(&mut rx, &slot(0), 5).await, req(0, 5));
    }

    #[tokio::test]
    async fn a_lagging_receiver_still_gets_later_requests() {
        let (tx, mut rx) = broadcast::channel(1);
        tx.send(req(1, 1)).unwrap();
        tx.send(req(1, 2)).unwrap();
        tx.send(req(0, 5)).unwrap();
        assert_eq!(requested(&mut rx, &slot(0), 5).await, req(0, 5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_idle_clock_restarts_on_traffic() {
        let mut idle = IdleClock::new(Some(Duration::from_secs(10)));
        tokio::time::advance(Duration::from_secs(9)).await;
        idle.touch();
        let started = Instant::now();
        idle.expired().await;
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        let never = IdleClock::new(None);
        let waited = tokio::time::timeout(Duration::from_secs(3600), never.expired()).await;
        assert!(waited.is_err());
    }

    #[test]
    fn the_farewell_names_who_and_why() {
        assert_eq!(
            farewell(&req(0, 1)),
            "\r\nserialgate: this session was ended by arn:aws:iam::111122223333:user/ops: maintenance\r\n"
        );
        let mut r = req(0, 1);
        r.reason.clear();
        assert!(farewell(&r).ends_with("user/ops.\r\n"));
    }
}
