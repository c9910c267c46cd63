//! [`SlotStore`] on Redis: the steps that change a grant together with its port's session slot,
//! each one Lua script over keys that share the instance's hash tag.

use std::time::Duration;

use async_trait::async_trait;
use console::leases::Slot;
use console::{
    Grant, GrantKey, InstanceId, Lease, OpenDenied, OpenOutcome, PushOutcome, SlotState, SlotStore,
    StoreError,
};

use crate::leases::parse_token;
use crate::{RedisStore, millis};

/// Grants and session slots in Redis, shared by every node. Implements
/// [`GrantStore`](console::GrantStore) (`grants.rs`), [`SessionLeases`](console::SessionLeases)
/// (`leases.rs`) and [`SlotStore`].
#[derive(Debug, Clone)]
pub struct RedisSlots {
    pub(crate) store: RedisStore,
    pub(crate) teardown_ms: u64,
    /// How long an instance's slots stay closed after Redis is found to have lost its data:
    /// the longest lease any node hands out (see `scripts.rs`, `epoch_end`).
    pub(crate) epoch_wait_ms: u64,
}

impl RedisSlots {
    pub(crate) fn new(store: RedisStore, teardown: Duration, lease_ttl: Duration) -> Self {
        Self {
            store,
            teardown_ms: millis(teardown),
            epoch_wait_ms: millis(lease_ttl),
        }
    }

    /// Starts the epoch of each instance this Redis has no record of (a new Redis, or one that
    /// lost its data) and returns the latest time (ms) at which a slot of `instances` opens.
    /// A node calls it at startup, so the wait after a data loss starts then, not at the first
    /// push, and it can say when sessions open.
    pub async fn open_epochs(
        &self,
        instances: &[InstanceId],
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let mut latest = 0;
        for instance in instances {
            let mut conn = self.store.conn.clone();
            let key = self.store.keys.epoch(instance);
            let script = &self.store.scripts.epoch;
            let opens: String = self
                .store
                .bounded("open epoch", async move {
                    script
                        .key(&key)
                        .arg(now_ms)
                        .arg(self.epoch_wait_ms)
                        .invoke_async(&mut conn)
                        .await
                })
                .await?;
            let opens: u64 = opens
                .parse()
                .map_err(|_| StoreError::new(format!("redis returned a bad epoch {opens:?}")))?;
            latest = latest.max(opens);
        }
        Ok(latest)
    }

    /// The state of a slot that refused, from the raw fields after the script's verdict.
    fn refused_state(&self, fields: Vec<Option<String>>, now_ms: u64) -> SlotState {
        let mut f = fields.into_iter();
        let (holder, exp, until) = (f.next().flatten(), f.next().flatten(), f.next().flatten());
        self.state_from(holder, exp, until, now_ms)
    }
}

/// A script's reply: a verdict, then raw fields.
type Reply = Vec<Option<String>>;

fn verdict(reply: &mut Reply) -> Result<String, StoreError> {
    if reply.is_empty() {
        return Err(StoreError::new("redis returned an empty reply"));
    }
    reply
        .remove(0)
        .ok_or_else(|| StoreError::new("redis returned a reply without a verdict"))
}

#[async_trait]
impl SlotStore for RedisSlots {
    async fn push_grant(
        &self,
        key: &GrantKey,
        grant: Grant,
        now_ms: u64,
    ) -> Result<PushOutcome, StoreError> {
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let mut invocation = self.store.scripts.push.key(keys.grant(key));
        if let Some(slot) = key.slot() {
            invocation
                .key(keys.lease(&slot))
                .key(keys.teardown(&slot))
                .key(keys.epoch(&slot.instance));
        }
        invocation
            .arg(now_ms)
            .arg(self.teardown_ms)
            // PEXPIREAT needs a positive time; a grant that old is dead anyway.
            .arg(grant.expires_at_ms.max(1))
            .arg(grant.key.to_openssh())
            .arg(&grant.principal_arn)
            .arg(&grant.request_id)
            .arg(self.epoch_wait_ms);
        let mut reply: Reply = self
            .store
            .bounded("push grant", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        match verdict(&mut reply)?.as_str() {
            "stored" => return Ok(PushOutcome::Stored),
            "refused" => {}
            other => {
                return Err(StoreError::new(format!(
                    "redis answered a push with {other:?}"
                )));
            }
        }
        let state = self.refused_state(reply, now_ms);
        // The script and `slot_state` apply the same rule to the same fields at the same time,
        // so a refused push always reads held or tearing down.
        PushOutcome::refusal(state).ok_or_else(|| {
            StoreError::new("redis refused a push for a slot that reads as free".to_owned())
        })
    }

    async fn open_with_grant(
        &self,
        slot: &Slot,
        request_id: &str,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Result<OpenOutcome, StoreError> {
        let mut conn = self.store.conn.clone();
        let keys = &self.store.keys;
        let grant = keys.grant(&GrantKey::serial(slot.instance.clone(), slot.port));
        let (lease, teardown, fence) = (keys.lease(slot), keys.teardown(slot), keys.fence(slot));
        let epoch = keys.epoch(&slot.instance);
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        let lifetime = self.key_lifetime(ttl_ms);
        let script = &self.store.scripts.open;
        let mut reply: Reply = self
            .store
            .bounded("open session", async move {
                script
                    .key(&grant)
                    .key(&lease)
                    .key(&teardown)
                    .key(&fence)
                    .key(&epoch)
                    .arg(now_ms)
                    .arg(request_id)
                    .arg(holder)
                    .arg(expires_at_ms)
                    .arg(lifetime)
                    .arg(self.teardown_ms)
                    .arg(self.epoch_wait_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let denied = match verdict(&mut reply)?.as_str() {
            "opened" => {
                let token = reply
                    .into_iter()
                    .next()
                    .flatten()
                    .ok_or_else(|| StoreError::new("redis opened a session without a token"))?;
                return Ok(OpenOutcome::Opened(Lease {
                    slot: slot.clone(),
                    token: parse_token(&token)?,
                    holder: holder.to_owned(),
                    expires_at_ms,
                }));
            }
            "gone" => OpenDenied::GrantGone,
            "spent" => OpenDenied::GrantSpent(self.refused_state(reply, now_ms)),
            "busy" => OpenDenied::SlotBusy(self.refused_state(reply, now_ms)),
            other => {
                return Err(StoreError::new(format!(
                    "redis answered an open with {other:?}"
                )));
            }
        };
        Ok(OpenOutcome::Denied(denied))
    }
}
