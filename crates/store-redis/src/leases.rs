//! [`SessionLeases`] on Redis: the slot's lease hash, its teardown key and its fencing counter,
//! changed only by the scripts in `scripts.rs`.

use async_trait::async_trait;
use console::leases::Slot;
use console::{Lease, SessionLeases, SlotState, StoreError, slot_state};

use crate::RedisSlots;

fn parse_ms(v: Option<String>) -> Option<u64> {
    v.and_then(|s| s.parse().ok())
}

impl RedisSlots {
    /// How long Redis keeps a lease key: its lifetime plus the teardown it imposes after a
    /// lapse, so a dead node's slot reads "tearing down" until then.
    pub(crate) fn key_lifetime(&self, ttl_ms: u64) -> u64 {
        ttl_ms.saturating_add(self.teardown_ms).max(1)
    }

    /// A slot's state from the raw fields a script returned (holder, lease expiry, end of
    /// teardown), by the domain's one rule.
    pub(crate) fn state_from(
        &self,
        holder: Option<String>,
        exp: Option<String>,
        until: Option<String>,
        now_ms: u64,
    ) -> SlotState {
        let lease = holder.as_deref().zip(parse_ms(exp));
        slot_state(lease, parse_ms(until), self.teardown_ms, now_ms)
    }
}

#[async_trait]
impl SessionLeases for RedisSlots {
    async fn state(&self, slot: &Slot, now_ms: u64) -> Result<SlotState, StoreError> {
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let (lease, teardown) = (keys.lease(slot), keys.teardown(slot));
        let epoch = keys.epoch(&slot.instance);
        let script = &self.store.scripts.state;
        let (holder, exp, until): (Option<String>, Option<String>, Option<String>) = self
            .store
            .bounded("slot state", async move {
                script
                    .key(&lease)
                    .key(&teardown)
                    .key(&epoch)
                    .arg(now_ms)
                    .arg(self.epoch_wait_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(self.state_from(holder, exp, until, now_ms))
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
        let epoch = keys.epoch(&slot.instance);
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
                    .key(&epoch)
                    .arg(now_ms)
                    .arg(holder)
                    .arg(expires_at_ms)
                    .arg(lifetime)
                    .arg(self.teardown_ms)
                    .arg(self.epoch_wait_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let Some(token) = token else {
            return Ok(None);
        };
        Ok(Some(Lease {
            slot: slot.clone(),
            token: parse_token(&token)?,
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
        self.release_with(lease, now_ms, self.teardown_ms).await
    }

    async fn release_now(&self, lease: &Lease, now_ms: u64) -> Result<(), StoreError> {
        // The release script writes no teardown block for a zero teardown.
        self.release_with(lease, now_ms, 0).await
    }
}

impl RedisSlots {
    /// Ends `lease` into a teardown block of `teardown_ms` (none for 0).
    async fn release_with(
        &self,
        lease: &Lease,
        now_ms: u64,
        teardown_ms: u64,
    ) -> Result<(), StoreError> {
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let (key, teardown, fence) = (
            keys.lease(&lease.slot),
            keys.teardown(&lease.slot),
            keys.fence(&lease.slot),
        );
        let until_ms = now_ms.saturating_add(teardown_ms);
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
                    .arg(teardown_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(())
    }
}

/// A fencing token as a script returned it.
pub(crate) fn parse_token(token: &str) -> Result<u64, StoreError> {
    token
        .parse()
        .map_err(|_| StoreError::new(format!("redis returned a bad fencing token {token:?}")))
}
