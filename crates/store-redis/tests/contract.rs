//! The store contract against Redis: a real `redis-server` on a free loopback port, started by
//! this test binary (and stopped with it). Each test gets its own key namespace.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use console::{
    AccountSettings, ConsoleOwnership, Registry, SessionDirectory, SharedStates, SlotStore,
    Throttle, ThrottleConfig,
};
use store_contract::{Backend, redis_server};
use store_redis::{RedisConfig, RedisStore};

struct Redis(RedisStore);

fn redis() -> Redis {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let server = redis_server::shared();
    let mut config = RedisConfig::new(server.url());
    config.namespace = format!("t{}", NEXT.fetch_add(1, Ordering::SeqCst));
    Redis(RedisStore::connect(&config).unwrap())
}

impl Backend for Redis {
    fn slots(&self, teardown: Duration) -> Arc<dyn SlotStore> {
        // No epoch wait: the contract is about one store's slots, which a fresh namespace would
        // otherwise keep closed for a lease time. The wait has its own test (`faults.rs`).
        Arc::new(self.0.slots(teardown, Duration::ZERO))
    }

    fn throttle(&self, config: ThrottleConfig) -> Arc<dyn Throttle> {
        Arc::new(self.0.throttle(config))
    }

    fn accounts(&self, _registry: Arc<Registry>) -> Arc<dyn AccountSettings> {
        Arc::new(self.0.accounts())
    }

    fn ownership(&self) -> Arc<dyn ConsoleOwnership> {
        // No epoch wait, as for the slots.
        Arc::new(self.0.ownership(Duration::ZERO))
    }

    fn states(&self) -> Arc<dyn SharedStates> {
        Arc::new(self.0.states())
    }

    fn directory(&self) -> Arc<dyn SessionDirectory> {
        Arc::new(self.0.directory())
    }
}

store_contract::contract_tests!(redis());
