//! [`SharedStates`] on Redis: one hash for every instance (field: the instance id; value:
//! `state seq order`, order `-` for none), changed only by the scripts in `scripts.rs` and read
//! whole by every node.

use std::collections::HashMap;

use async_trait::async_trait;
use console::{InstanceId, InstanceState, Order, SharedState, SharedStates, StoreError};

use crate::RedisStore;

#[derive(Debug, Clone)]
pub struct RedisStates {
    store: RedisStore,
}

impl RedisStates {
    pub(crate) fn new(store: RedisStore) -> Self {
        Self { store }
    }
}

/// One field of the hash; `None` for a value this version does not understand (written by a
/// newer one, or by hand): the instance then reads as never recorded, and the next record
/// replaces it.
fn parse(value: &str) -> Option<SharedState> {
    let mut parts = value.split(' ');
    let state = InstanceState::parse(parts.next()?)?;
    let seq = parts.next()?.parse().ok()?;
    let order = match parts.next()? {
        "-" => None,
        o => Some(Order::parse(o)?),
    };
    parts
        .next()
        .is_none()
        .then_some(SharedState { state, seq, order })
}

#[async_trait]
impl SharedStates for RedisStates {
    async fn record(
        &self,
        instance: &InstanceId,
        state: InstanceState,
        order: Option<Order>,
    ) -> Result<u64, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.instance_states();
        let script = &self.store.scripts.record;
        self.store
            .bounded("record instance state", async move {
                script
                    .key(&key)
                    .arg(instance.as_str())
                    .arg(state.as_str())
                    .arg(order.map_or("-", Order::as_str))
                    .invoke_async(&mut conn)
                    .await
            })
            .await
    }

    async fn publish(
        &self,
        instance: &InstanceId,
        state: InstanceState,
        seen: u64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.instance_states();
        let script = &self.store.scripts.publish;
        let written: i64 = self
            .store
            .bounded("publish instance state", async move {
                script
                    .key(&key)
                    .arg(instance.as_str())
                    .arg(state.as_str())
                    .arg(seen)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(written == 1)
    }

    async fn states(&self) -> Result<HashMap<InstanceId, SharedState>, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.instance_states();
        let all: HashMap<String, String> = self
            .store
            .bounded("read instance states", async move {
                redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await
            })
            .await?;
        let mut out = HashMap::with_capacity(all.len());
        for (id, value) in all {
            match (InstanceId::parse(&id), parse(&value)) {
                (Ok(id), Some(state)) => {
                    out.insert(id, state);
                }
                _ => tracing::warn!(
                    field = %id.escape_debug(),
                    "instance states: ignoring a record this version cannot read"
                ),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse_and_garbage_does_not() {
        assert_eq!(
            parse("running 3 start"),
            Some(SharedState {
                state: InstanceState::Running,
                seq: 3,
                order: Some(Order::Start)
            })
        );
        assert_eq!(
            parse("stopped 0 -").map(|s| (s.seq, s.order)),
            Some((0, None))
        );
        for bad in [
            "",
            "running",
            "running x -",
            "running 1 fly",
            "running 1 - extra",
            "up 1 -",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
