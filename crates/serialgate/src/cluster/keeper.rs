//! One console's ownership, as this node sees it: take the lease when it is free, renew it,
//! and close the console before the lease can pass to another node.
//!
//! A VM runs where its console is held: it starts when the console is taken and is killed
//! before the console is let go ([`ClusterVms`]), under the same rule.
//!
//! The rule that keeps two nodes off one console: a node holds the console only while its
//! latest successful renewal, counted from when that renewal was *sent*, is younger than the
//! lease minus a margin. The store gives the lease to another node only once it has expired,
//! a full lease after that same renewal reached it. So the holder has closed its connection
//! (and waited for the close, [`Consoles::disown`]) at least the margin before any other node
//! may open one, whatever happened to the store or the network meanwhile — provided the
//! nodes' clocks agree within the margin (the store compares expiry times written by one node
//! with the clock of another).

use std::sync::Arc;
use std::time::Duration;

use console::InstanceId;
use consoles::Consoles;
use tokio::sync::watch;
use tokio::time::Instant;

use super::{ClusterVms, Node, millis};

/// How long a node that does not hold a console waits before asking again, at most: failover
/// takes the lease plus at most this. While another node holds the console, the next ask is
/// at the end of its lease (never later than this); while none does, sooner ([`TAKE_SOON`]).
const TAKE_EVERY: Duration = Duration::from_secs(1);
/// The next ask while no node holds the console (a new cluster, or the store's epoch wait).
const TAKE_SOON: Duration = Duration::from_millis(250);

/// Keeps one console.
#[derive(Debug)]
pub struct Keeper {
    node: Node,
    instance: InstanceId,
    consoles: Arc<Consoles>,
    /// The VM, if the instance is one: it runs where the console is held.
    vms: Arc<ClusterVms>,
    /// The lease held: its fencing token and when its latest renewal was sent.
    held: Option<(u64, Instant)>,
}

impl Keeper {
    pub fn new(
        node: Node,
        instance: InstanceId,
        consoles: Arc<Consoles>,
        vms: Arc<ClusterVms>,
    ) -> Self {
        Self {
            node,
            instance,
            consoles,
            vms,
            held: None,
        }
    }

    /// The time a holder keeps the console after its latest successful renewal was sent.
    fn keep_for(&self) -> Duration {
        let lease = self.node.lease;
        // A margin for clock disagreement and for closing the connection; never more than
        // half the lease.
        let margin = self
            .node
            .store_timeout
            .max(Duration::from_secs(1))
            .min(lease / 2);
        lease.saturating_sub(margin)
    }

    /// Runs until `stopped`, then lets the console go and releases the lease.
    pub async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        loop {
            let next = self.step().await;
            tokio::select! {
                () = tokio::time::sleep_until(next) => {}
                _ = stopped.wait_for(|s| *s) => break,
            }
        }
        if let Some((token, _)) = self.held.take() {
            self.vms.let_go(&self.instance).await;
            self.consoles.disown(&self.instance).await;
            let release = self
                .node
                .ownership
                .release(&self.instance, &self.node.def.node, token);
            if let Ok(Err(e)) | Err(e) = tokio::time::timeout(self.node.store_timeout, release)
                .await
                .map_err(|_| console::StoreError::new("timed out"))
            {
                tracing::warn!(instance = %self.instance, error = %e, "cluster: releasing the console lease failed; it expires by itself");
            }
        }
    }

    /// One take or renewal; returns when to try the next.
    async fn step(&mut self) -> Instant {
        let sent = Instant::now();
        // A renewal never runs past the time the console must be let go.
        let mut bound = self.node.store_timeout;
        if let Some((_, renewed)) = self.held {
            let deadline = renewed + self.keep_for();
            if sent >= deadline {
                self.let_go("its lease could not be renewed in time").await;
                return Instant::now() + TAKE_EVERY;
            }
            bound = bound.min(deadline - sent);
        }
        let call = self.node.ownership.hold(
            &self.instance,
            &self.node.def.node,
            self.held.map(|(token, _)| token),
            millis(self.node.lease),
            self.node.clock.now_ms(),
        );
        let answer = match tokio::time::timeout(bound, call).await {
            Ok(Ok(answer)) => Some(answer),
            Ok(Err(e)) => {
                tracing::debug!(instance = %self.instance, error = %e, "cluster: lease call failed");
                None
            }
            Err(_) => {
                tracing::debug!(instance = %self.instance, "cluster: lease call timed out");
                None
            }
        };
        match (answer, self.held) {
            (Some(Some(token)), held) => {
                if held.is_none() {
                    self.consoles.own(&self.instance);
                    self.vms.took(&self.instance);
                    tracing::info!(instance = %self.instance, token, "cluster: this node now owns the console");
                }
                self.held = Some((token, sent));
                sent + self.node.lease / 3
            }
            (Some(None), Some(_)) => {
                // The store says another lease is current: ours lapsed (the store was
                // unreachable too long, or lost its data).
                self.let_go("the store no longer has this node's lease")
                    .await;
                Instant::now() + TAKE_EVERY
            }
            (Some(None), None) => self.next_take().await,
            (None, Some((_, renewed))) => {
                let deadline = renewed + self.keep_for();
                if Instant::now() >= deadline {
                    self.let_go("its lease could not be renewed in time").await;
                    Instant::now() + TAKE_EVERY
                } else {
                    // Try again soon, and wake at the deadline at the latest.
                    (Instant::now() + TAKE_EVERY).min(deadline)
                }
            }
            (None, None) => Instant::now() + TAKE_EVERY,
        }
    }

    /// When to ask again after another node kept the console: at the end of its lease.
    async fn next_take(&self) -> Instant {
        let now = Instant::now();
        let now_ms = self.node.clock.now_ms();
        let owner = tokio::time::timeout(
            self.node.store_timeout,
            self.node.ownership.owner(&self.instance, now_ms),
        )
        .await;
        match owner {
            Ok(Ok(Some(o))) => {
                let left = Duration::from_millis(o.expires_ms.saturating_sub(now_ms));
                now + left.clamp(Duration::from_millis(10), TAKE_EVERY)
            }
            Ok(Ok(None)) => now + TAKE_SOON,
            _ => now + TAKE_EVERY,
        }
    }

    async fn let_go(&mut self, why: &str) {
        self.held = None;
        self.vms.let_go(&self.instance).await;
        self.consoles.disown(&self.instance).await;
        tracing::warn!(instance = %self.instance, "cluster: this node let the console go: {why}");
    }
}
