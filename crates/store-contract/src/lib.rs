//! The contract every store implementation passes: one async function per property, written
//! once against the traits of `console` and run against each implementation (memory here in
//! `tests/memory.rs`, Redis in `crates/store-redis/tests/contract.rs`) through
//! [`contract_tests!`].
//!
//! Time is passed in, as the domain does: each property starts at the current wall-clock time
//! (Redis expires grants on its own clock, so the base must be real) and moves forward by
//! arithmetic, never by sleeping. Each property builds its own stores from a [`Backend`], so a
//! shared server needs a fresh namespace per call.
//!
//! This crate is test support: a failed property panics, which is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod directory;
mod grants;
mod leases;
mod ownership;
pub mod redis_server;
mod slots;
mod states;
mod throttle;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use console::{
    AccountSettings, ConsoleOwnership, InstanceId, Registry, SerialPort, SessionDirectory,
    SharedStates, SlotStore, Throttle, ThrottleConfig,
};

pub use accounts::*;
pub use directory::*;
pub use grants::*;
pub use leases::*;
pub use ownership::*;
pub use slots::*;
pub use states::*;
pub use throttle::*;

/// Builds fresh stores of one implementation.
pub trait Backend: Send + Sync {
    /// Grants and session slots (one store); a slot's teardown block lasts `teardown`.
    fn slots(&self, teardown: Duration) -> Arc<dyn SlotStore>;
    fn throttle(&self, config: ThrottleConfig) -> Arc<dyn Throttle>;
    /// The account switch store for accounts configured in `registry`.
    fn accounts(&self, registry: Arc<Registry>) -> Arc<dyn AccountSettings>;
    /// Console ownership and the node registry.
    fn ownership(&self) -> Arc<dyn ConsoleOwnership>;
    /// Shared instance states.
    fn states(&self) -> Arc<dyn SharedStates>;
    /// The session directory. Every call of one backend shares the same data, as the nodes
    /// of a cluster do.
    fn directory(&self) -> Arc<dyn SessionDirectory>;
}

/// The in-memory implementations from `console`.
#[derive(Debug, Default, Clone)]
pub struct Memory {
    directory: Arc<console::MemoryDirectory>,
}

impl Backend for Memory {
    fn slots(&self, teardown: Duration) -> Arc<dyn SlotStore> {
        Arc::new(console::MemorySlotStore::new(ms(teardown)))
    }

    fn throttle(&self, config: ThrottleConfig) -> Arc<dyn Throttle> {
        Arc::new(console::MemoryThrottle::new(config))
    }

    fn accounts(&self, registry: Arc<Registry>) -> Arc<dyn AccountSettings> {
        registry
    }

    fn ownership(&self) -> Arc<dyn ConsoleOwnership> {
        Arc::new(console::MemoryOwnership::new())
    }

    fn states(&self) -> Arc<dyn SharedStates> {
        Arc::new(console::MemoryStates::new())
    }

    fn directory(&self) -> Arc<dyn SessionDirectory> {
        Arc::clone(&self.directory) as Arc<dyn SessionDirectory>
    }
}

/// Now, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    ms(SystemTime::now().duration_since(UNIX_EPOCH).unwrap())
}

pub(crate) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

pub(crate) fn instance(n: u32) -> InstanceId {
    InstanceId::parse(&format!("i-0c0ffee{n:010x}")).unwrap()
}

pub(crate) const PORT: SerialPort = SerialPort::ZERO;

/// Expands to one `#[tokio::test]` per property, each calling the property with `$backend`
/// (an expression evaluated inside the test, on its runtime).
#[macro_export]
macro_rules! contract_tests {
    ($backend:expr) => {
        $crate::contract_tests!(@each $backend;
            grants_push_then_find,
            grants_expire_at_the_window_edge,
            grants_a_new_push_replaces_the_old,
            grants_take_needs_the_request_id,
            grants_are_per_instance_and_target,
            spectator_grants_are_per_key_and_ignore_the_slot,
            leases_one_holder_at_a_time,
            leases_one_winner_among_concurrent_acquirers,
            leases_fencing_tokens_increase,
            leases_a_stale_holder_cannot_renew_or_release,
            leases_release_starts_the_teardown,
            leases_release_now_frees_at_once,
            leases_a_released_lease_cannot_be_renewed,
            leases_an_unrenewed_lease_tears_down_then_frees,
            leases_a_slow_renewal_keeps_an_untaken_lease,
            leases_renewal_extends_the_lease,
            leases_slots_are_independent,
            slots_a_push_lands_only_on_a_free_slot,
            slots_os_user_pushes_have_no_slot,
            slots_an_open_spends_exactly_its_grant,
            slots_an_open_after_a_newer_push_changes_nothing,
            slots_an_open_needs_a_live_grant,
            slots_an_open_on_a_busy_slot_spends_nothing,
            slots_an_opened_lease_is_a_lease,
            slots_one_winner_among_concurrent_opens,
            slots_a_push_racing_an_open_one_wins,
            throttle_burst_then_refuse,
            throttle_refills_at_the_rate,
            throttle_buckets_are_per_account,
            accounts_switch_is_shared_and_falls_back_to_config,
            ownership_one_owner_at_a_time,
            ownership_one_winner_among_concurrent_takes,
            ownership_fencing_tokens_increase,
            ownership_renewal_keeps_the_token,
            ownership_a_stale_token_cannot_renew,
            ownership_expires_at_the_edge,
            ownership_release_by_the_holder_only,
            ownership_node_names_are_checked,
            nodes_lists_the_announced_and_drops_the_expired,
            states_records_raise_the_sequence,
            states_publish_needs_the_latest_sequence,
            states_concurrent_records_get_distinct_sequences,
            directory_entries_live_as_long_as_their_lease,
            directory_refresh_and_remove_need_the_token,
            directory_end_requests_reach_the_holder,
            directory_counts_spectators_while_present,
        );
    };
    (@each $backend:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::$name(&$backend).await;
            }
        )*
    };
}
