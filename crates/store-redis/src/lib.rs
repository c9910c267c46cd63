//! serialgate's shared state on Redis, so that many nodes act as one service.
//!
//! [`RedisStore`] is one connection (a `redis` [`ConnectionManager`]: multiplexed, cloneable,
//! reconnecting by itself) from which the store traits of `console` are built: [`RedisSlots`]
//! ([`console::SlotStore`] with its [`console::GrantStore`] and [`console::SessionLeases`]),
//! [`RedisThrottle`] ([`console::Throttle`]), [`RedisAccounts`] ([`console::AccountSettings`]),
//! [`RedisOwnership`] ([`console::ConsoleOwnership`]) and [`RedisDirectory`]
//! ([`console::SessionDirectory`], with end requests on the pub/sub channel
//! `sg:sessions:end`).
//!
//! Invariants:
//! - Every step that reads and then writes is one Lua script (`EVALSHA`), so it is atomic on the
//!   server; no lock is ever held across round trips. That includes the two steps that change a
//!   grant together with its port's slot: a push stores its grant only while the slot is free,
//!   and a session open takes the slot and marks used exactly the grant (by request id) it
//!   authenticated with, each in one script over the instance's keys.
//! - The slot rule (held, tearing down, free) is decided by `console::slot_state` on the raw
//!   fields the scripts return; the scripts' own check (`slot_free`) is written once and shared
//!   by every script that takes a slot or stores a grant.
//! - Every call is bounded by [`RedisConfig::timeout`] and turns into a [`StoreError`] when Redis
//!   is slow or away; nothing waits for Redis without a bound. The connection manager
//!   reconnects in the background, so the stores recover by themselves when Redis returns.
//! - Time is the caller's: scripts compare the `now_ms` the domain passes in (its injected
//!   clock), and Redis expiry (`PX`, `PXAT`) only collects keys that no one can use any more.
//!   Nodes therefore need synchronised clocks (NTP), as the absolute expiries they share assume.
//!
//! # Key layout
//!
//! Every key starts with the namespace (`sg` by default, [`RedisConfig::namespace`]) and carries
//! a Redis Cluster hash tag, so that everything one script touches lives in one hash slot:
//!
//! | key | type | what | expiry |
//! |---|---|---|---|
//! | `sg:{i-…}:grant:port0` | hash `key principal_arn request_id exp used` | the pushed key for a serial port | `PEXPIREAT` the grant's expiry |
//! | `sg:{i-…}:grant:user:NAME` | hash, as above | the pushed key for an OS user | `PEXPIREAT` the grant's expiry |
//! | `sg:{i-…}:grant:spectate:port0:SHA256:…` | hash, as above | a spectator's pushed key (one per key) | `PEXPIREAT` the grant's expiry |
//! | `sg:{i-…}:port0:lease` | hash `token holder exp` | the session holding the port | lease + teardown |
//! | `sg:{i-…}:port0:teardown` | string (ms) | end of the teardown block after a release | teardown |
//! | `sg:{i-…}:port0:fence` | counter | last fencing token handed out for the port | none |
//! | `sg:{i-…}:epoch` | string (ms) | when this Redis first saw the instance | none |
//! | `sg:{i-…}:owner` | hash `node token exp` | the node that owns the instance's console | the lease |
//! | `sg:{i-…}:owner_fence` | counter | last fencing token handed out for the console | none |
//! | `sg:{nodes}:node:NAME` | hash `address version renewed exp` | a node's announcement | the announcement |
//! | `sg:{nodes}:names` | set | names of announced nodes (pruned when their hash is gone) | none |
//! | `sg:{sessions}:live` | hash `i-…:PORT → entry (JSON)` | every live session: token, principal, source, start, node, spectators, expiry, end request | none (lapsed entries dropped when listed) |
//! | `sg:{sessions}:watchers` | hash `i-…:PORT\|ID → expiry (ms)` | spectators present, each refreshed as a lease is | none (lapsed fields dropped when listed) |
//! | `sg:{states}:instances` | hash `i-… → state seq order` | every instance's EC2 state in a cluster, and the latest order for the node running its VM | none |
//! | `sg:{acct:ID}:bucket` | hash `tokens ts` | the account's API token bucket | time to refill |
//! | `sg:{acct:ID}:serial-console-access` | `1` / `0` | the account switch, when changed at run time | none |
//!
//! The hash tag is per instance (`{i-…}`) or per account (`{acct:ID}`): the scripts of one
//! session slot (a push and an open included: grant, lease, teardown and fence of one port)
//! and of a console's ownership touch only its instance's keys and the throttle only its
//! account's, so the layout already spreads over a Redis Cluster's slots. The node registry,
//! a handful of small keys, shares one tag (`{nodes}`), and the instance states, one small field
//! per instance read whole by every node, share another (`{states}`). Fencing tokens increase per port, and per
//! instance for console ownership (each counter starts at the current time in ms, so they keep
//! increasing even when Redis loses the counter), which is all fencing needs: tokens are only
//! ever compared for the same port or console.
//!
//! # When Redis loses its data
//!
//! A Redis restarted without persistence (or flushed, or evicting keys) forgets every lease,
//! while the nodes that held them may still be writing to their consoles. Those holders find
//! out at their next renewal (the lease and its fence are gone: "lost") or fail to renew and
//! close before their lease would have expired; either way they are gone one lease time after
//! the loss. The epoch key makes every other node wait that long: it never expires, so it is
//! missing only after a loss (or on a new Redis), and the scripts that open a slot or take a
//! console's ownership write it as now and keep the instance's slots closed (they read as
//! tearing down) and its console untaken for one lease time after it. The remaining assumption
//! is the one the leases already make: node clocks agree to well within the renewal margin. Eviction must be off (`maxmemory-policy
//! noeviction`, Redis's default), since an evicted lease with a surviving epoch is not seen as
//! a loss.

mod accounts;
mod directory;
mod grants;
mod keys;
mod leases;
mod ownership;
mod scripts;
mod slots;
mod states;
mod throttle;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use console::StoreError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use accounts::RedisAccounts;
pub use directory::RedisDirectory;
pub use ownership::RedisOwnership;
pub use slots::RedisSlots;
pub use states::RedisStates;
pub use throttle::RedisThrottle;

use crate::keys::Keys;

/// How to reach Redis (`[store]` in the configuration).
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://HOST:PORT/DB` (or `redis+unix:///path`).
    pub url: String,
    /// Bound on every call, connecting included. Default 2 s.
    pub timeout: Duration,
    /// Prefix of every key, so that deployments (or tests) can share one Redis. Default `sg`.
    pub namespace: String,
}

impl RedisConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            timeout: Duration::from_secs(2),
            namespace: "sg".to_owned(),
        }
    }
}

/// A connection to Redis shared by every store built from it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisStore {
    /// For the pub/sub connection, which cannot share the multiplexed one.
    client: redis::Client,
    conn: ConnectionManager,
    timeout: Duration,
    keys: Keys,
    scripts: Arc<scripts::Scripts>,
}

impl RedisStore {
    /// Sets up the connection without waiting for Redis: a node starts (and answers "store
    /// unavailable") while Redis is down, and connects once it is up. Fails only on a bad URL.
    pub fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StoreError::new(format!("redis URL {:?}: {e}", config.url)))?;
        // One quick retry per connection attempt: the caller's timeout bounds the wait, and the
        // next call starts a new attempt, so a long backoff would only delay recovery.
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| StoreError::new(format!("redis: {e}")))?;
        Ok(Self {
            client,
            conn,
            timeout: config.timeout,
            keys: Keys::new(&config.namespace),
            scripts: Arc::new(scripts::Scripts::new()),
        })
    }

    /// Round trip to Redis, for a readiness check at startup.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.bounded("PING", async move {
            redis::cmd("PING").query_async::<String>(&mut conn).await
        })
        .await
        .map(|_| ())
    }

    /// The grants and session slots; a released or lapsed lease blocks its slot for
    /// `teardown`. `lease_ttl` is the longest lease any node of the cluster hands out: after
    /// Redis lost its data, an instance's slots stay closed that long (see the crate docs).
    pub fn slots(&self, teardown: Duration, lease_ttl: Duration) -> RedisSlots {
        RedisSlots::new(self.clone(), teardown, lease_ttl)
    }

    /// The per-account token buckets.
    pub fn throttle(&self, config: console::ThrottleConfig) -> RedisThrottle {
        RedisThrottle::new(self.clone(), config)
    }

    /// The account switches.
    pub fn accounts(&self) -> RedisAccounts {
        RedisAccounts::new(self.clone())
    }

    /// Console ownership and the node registry. `lease_ttl` is the longest ownership lease any
    /// node of the cluster hands out: after Redis lost its data, an instance's console cannot
    /// be taken for that long (see the crate docs).
    pub fn ownership(&self, lease_ttl: Duration) -> RedisOwnership {
        RedisOwnership::new(self.clone(), lease_ttl)
    }

    /// The session directory, shared by the nodes of a cluster. Starts the task that listens
    /// for end requests (call it on the runtime, once per node).
    pub fn directory(&self) -> RedisDirectory {
        RedisDirectory::new(self.clone())
    }

    /// Every instance's EC2 state, shared by the nodes of a cluster.
    pub fn states(&self) -> RedisStates {
        RedisStates::new(self.clone())
    }

    /// Runs one Redis call within the timeout; `what` names it in errors.
    pub(crate) async fn bounded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::new(format!("redis {what}: {e}"))),
            Err(_) => Err(StoreError::new(format!(
                "redis {what}: no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }
}

/// Milliseconds as a whole number, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
