//! [`SessionLeases`] on Redis: the slot's lease hash, its teardown key and its fencing counter,
//! changed only by the scripts in `scripts.rs`.

use std::time::Duration;

use async_trait::async_trait;
use console::leases::Slot;
use console::{Lease, SessionLeases, SlotState, StoreError};

use crate::{RedisStore, millis};

/// Session slots in Redis, shared by every node.
#[derive(Debug, Clone)]
pub struct RedisLeases {
    store: RedisStore,
    teardown_ms: u64,
}

impl RedisLeases {
    pub(crate) fn new(store: RedisStore, teardown: Duration) -> Self {
        Self {
            store,
            teardown_ms: millis(teardown),
        }
    }

    /// How long Redis keeps a lease key: its lifetime plus the teardown it imposes after a
    /// lapse, so a dead node's slot reads "tearing down" until then.
    fn key_lifetime(&self, ttl_ms: u64) -> u64 {
        ttl_ms.saturating_add(self.teardown_ms).max(1)
    }
}

fn parse_ms(v: Option<String>) -> Option<u64> {
    v.and_then(|s| s.parse().ok())
}

/// Interprets a slot's keys at `now_ms`, as `console::MemorySessionLeases` does its entries.
fn state_of(
    holder: Option<String>,
    exp: Option<u64>,
    teardown_until: Option<u64>,
    teardown_ms: u64,
    now_ms: u64,
) -> SlotState {
    if let (Some(holder), Some(exp)) = (holder, exp) {
        if now_ms < exp {
            return SlotState::Held {
                holder,
                expires_at_ms: exp,
            };
        }
        let until_ms = exp.saturating_add(teardown_ms);
        if now_ms < until_ms {
            return SlotState::TearingDown { until_ms };
        }
    }
    match teardown_until {
        Some(until_ms) if now_ms < until_ms => SlotState::TearingDown { until_ms },
        _ => SlotState::Free,
    }
}

#[async_trait]
impl SessionLeases for RedisLeases {
    async fn state(&self, slot: &Slot, now_ms: u64) -> Result<SlotState, StoreError> {
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let (lease, teardown) = (keys.lease(slot), keys.teardown(slot));
        let script = &self.store.scripts.state;
        let (holder, exp, until): (Option<String>, Option<String>, Option<String>) = self
            .store
            .bounded("slot state", async move {
                script
                    .key(&lease)
                    .key(&teardown)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(state_of(
            holder,
            parse_ms(exp),
            parse_ms(until),
            self.teardown_ms,
            now_ms,
        ))
    }

    async fn acquire(
        &self,
        slot: &Slot,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let (lease, teardown, fence) = (keys.lease(slot), keys.teardown(slot), keys.fence(slot));
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let lifetime = self.key_lifetime(ttl_ms);
        let script = &self.store.scripts.acquire;
        let token: Option<String> = self
            .store
            .bounded("acquire lease", async move {
                script
                    .key(&lease)
                    .key(&teardown)
                    .key(&fence)
                    .arg(now_ms)
                    .arg(holder)
                    .arg(expires_at_ms)
                    .arg(lifetime)
                    .arg(self.teardown_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let Some(token) = token else {
            return Ok(None);
        };
        let token = token.parse().map_err(|_| {
            StoreError::new(format!("redis returned a bad fencing token {token:?}"))
        })?;
        Ok(Some(Lease {
            slot: slot.clone(),
            token,
            holder: holder.to_owned(),
            expires_at_ms,
        }))
    }

    async fn renew(
        &self,
        lease: &Lease,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<Option<Lease>, StoreError> {
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let (key, fence) = (keys.lease(&lease.slot), keys.fence(&lease.slot));
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let lifetime = self.key_lifetime(ttl_ms);
        let script = &self.store.scripts.renew;
        let renewed: i64 = self
            .store
            .bounded("renew lease", async move {
                script
                    .key(&key)
                    .key(&fence)
                    .arg(lease.token)
                    .arg(&lease.holder)
                    .arg(expires_at_ms)
                    .arg(lifetime)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok((renewed == 1).then(|| Lease {
            expires_at_ms,
            ..lease.clone()
        }))
    }

    async fn release(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError> {
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let (key, teardown, fence) = (
            keys.lease(&lease.slot),
            keys.teardown(&lease.slot),
            keys.fence(&lease.slot),
        );
        let until_ms = now_ms.saturating_add(self.teardown_ms);
        let script = &self.store.scripts.release;
        let _released: i64 = self
            .store
            .bounded("release lease", async move {
                script
                    .key(&key)
                    .key(&teardown)
                    .key(&fence)
                    .arg(lease.token)
                    .arg(&lease.holder)
                    .arg(until_ms)
                    .arg(self.teardown_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapsed_lease_tears_down_then_frees() {
        let h = || Some("n/1".to_owned());
        assert!(matches!(
            state_of(h(), Some(100), None, 30, 99),
            SlotState::Held { .. }
        ));
        assert_eq!(
            state_of(h(), Some(100), None, 30, 100),
            SlotState::TearingDown { until_ms: 130 }
        );
        assert_eq!(state_of(h(), Some(100), None, 30, 130), SlotState::Free);
        assert_eq!(
            state_of(None, None, Some(50), 30, 49),
            SlotState::TearingDown { until_ms: 50 }
        );
        assert_eq!(state_of(None, None, Some(50), 30, 50), SlotState::Free);
    }
}
