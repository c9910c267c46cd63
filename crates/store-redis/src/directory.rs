//! [`SessionDirectory`] on Redis: one hash of live sessions per namespace, and end requests
//! published on one channel per namespace.
//!
//! Each field is a session slot (`i-…:PORT`), its value a small JSON object whose numbers are
//! strings, so the scripts can decode and re-encode it without losing digits. Entries carry
//! their lease's expiry; `list` drops the lapsed ones (a dead node's) in the same script that
//! reads them. End requests are marked in the entry and published in one script; every node
//! listens on the channel from a task of its own, which resubscribes after a Redis outage (a
//! request made meanwhile is found by the holder at its next lease renewal).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use console::directory::END_REQUEST_BACKLOG;
use console::leases::Slot;
use console::{EndRequest, InstanceId, SerialPort, SessionDirectory, SessionEntry, StoreError};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::RedisStore;

/// Between attempts to subscribe while Redis is away.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(1);

/// The session directory in Redis, shared by every node.
#[derive(Debug, Clone)]
pub struct RedisDirectory {
    store: RedisStore,
    notify: broadcast::Sender<EndRequest>,
}

/// An entry as stored: numbers as strings (see the module docs).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    token: String,
    exp: String,
    principal: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    started: String,
    node: String,
    spectators: String,
}

/// A published end request.
#[derive(Debug, Deserialize)]
struct Notice {
    field: String,
    token: String,
    by: String,
    reason: String,
}

fn field(slot: &Slot) -> String {
    format!("{}:{}", slot.instance, slot.port.get())
}

fn parse_field(field: &str) -> Option<Slot> {
    let (instance, port) = field.split_once(':')?;
    Some(Slot {
        instance: InstanceId::parse(instance).ok()?,
        port: SerialPort::new(port.parse().ok()?),
    })
}

fn number(s: &str) -> Option<u64> {
    s.parse().ok()
}

fn decode(field: &str, value: &str) -> Option<SessionEntry> {
    let s: Stored = serde_json::from_str(value).ok()?;
    Some(SessionEntry {
        slot: parse_field(field)?,
        token: number(&s.token)?,
        principal_arn: s.principal,
        source_address: s.source,
        started_ms: number(&s.started)?,
        node: s.node,
        spectators: s.spectators.parse().ok()?,
        expires_at_ms: number(&s.exp)?,
    })
}

impl RedisDirectory {
    pub(crate) fn new(store: RedisStore) -> Self {
        let notify = broadcast::channel(END_REQUEST_BACKLOG).0;
        // The listener lives as long as the runtime: one directory is made per node.
        tokio::spawn(listen(store.clone(), notify.clone()));
        Self { store, notify }
    }
}

/// Forwards the namespace's end requests to this node's sessions, subscribing again whenever
/// the subscription is lost.
async fn listen(store: RedisStore, notify: broadcast::Sender<EndRequest>) {
    let channel = store.keys.end_channel();
    let mut warned = false;
    loop {
        match store.client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    warned = false;
                    let mut messages = pubsub.into_on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        if let Some(request) = notice(&payload) {
                            // No session watching on this node: nothing to do.
                            let _ = notify.send(request);
                        }
                    }
                    tracing::warn!("session end requests: subscription lost; subscribing again");
                }
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(error = %e, "session end requests: cannot subscribe; retrying");
                }
                Err(_) => {}
            },
            Err(e) if !warned => {
                warned = true;
                tracing::warn!(error = %e, "session end requests: cannot reach redis; retrying");
            }
            Err(_) => {}
        }
        tokio::time::sleep(RESUBSCRIBE_EVERY).await;
    }
}

fn notice(payload: &str) -> Option<EndRequest> {
    let n: Notice = serde_json::from_str(payload).ok()?;
    Some(EndRequest {
        slot: parse_field(&n.field)?,
        token: number(&n.token)?,
        by: n.by,
        reason: n.reason,
    })
}

/// A spectator's field in the watchers hash: the slot's field, `|`, its id.
fn watcher_field(slot: &Slot, id: &str) -> String {
    format!("{}|{id}", field(slot))
}

impl RedisDirectory {
    /// Live spectators per slot field; the lapsed ones (a dead node's) are dropped.
    async fn watchers(&self, now_ms: u64) -> Result<HashMap<String, u32>, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.watchers();
        let all: HashMap<String, u64> = self
            .store
            .bounded("list spectators", {
                let key = key.clone();
                let mut conn = conn.clone();
                async move { redis::cmd("HGETALL").arg(&key).query_async(&mut conn).await }
            })
            .await?;
        let mut counts = HashMap::new();
        let mut lapsed = Vec::new();
        for (f, expires) in all {
            if expires <= now_ms {
                lapsed.push(f);
            } else if let Some((slot, _)) = f.split_once('|') {
                *counts.entry(slot.to_owned()).or_insert(0u32) += 1;
            }
        }
        if !lapsed.is_empty() {
            // Best effort: a field left behind is dropped by the next listing.
            let _ = self
                .store
                .bounded("drop lapsed spectators", async move {
                    redis::cmd("HDEL")
                        .arg(&key)
                        .arg(&lapsed)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await;
        }
        Ok(counts)
    }
}

#[async_trait]
impl SessionDirectory for RedisDirectory {
    async fn publish(&self, entry: &SessionEntry) -> Result<(), StoreError> {
        let stored = Stored {
            token: entry.token.to_string(),
            exp: entry.expires_at_ms.to_string(),
            principal: entry.principal_arn.clone(),
            source: entry.source_address.clone(),
            started: entry.started_ms.to_string(),
            node: entry.node.clone(),
            spectators: entry.spectators.to_string(),
        };
        let value = serde_json::to_string(&stored)
            .map_err(|e| StoreError::new(format!("session entry: {e}")))?;
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.sessions();
        let f = field(&entry.slot);
        self.store
            .bounded("publish session", async move {
                redis::cmd("HSET")
                    .arg(&key)
                    .arg(&f)
                    .arg(&value)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn refresh(
        &self,
        slot: &Slot,
        token: u64,
        expires_at_ms: u64,
    ) -> Result<Option<EndRequest>, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.sessions();
        let script = &self.store.scripts.session_refresh;
        let end: Option<(String, String)> = self
            .store
            .bounded("refresh session", async move {
                script
                    .key(&key)
                    .arg(field(slot))
                    .arg(token)
                    .arg(expires_at_ms)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(end.map(|(by, reason)| EndRequest {
            slot: slot.clone(),
            token,
            by,
            reason,
        }))
    }

    async fn remove(&self, slot: &Slot, token: u64) -> Result<(), StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.sessions();
        let script = &self.store.scripts.session_remove;
        self.store
            .bounded("remove session", async move {
                script
                    .key(&key)
                    .arg(field(slot))
                    .arg(token)
                    .invoke_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn list(&self, now_ms: u64) -> Result<Vec<SessionEntry>, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.sessions();
        let script = &self.store.scripts.session_list;
        let flat: Vec<String> = self
            .store
            .bounded("list sessions", async move {
                script.key(&key).arg(now_ms).invoke_async(&mut conn).await
            })
            .await?;
        // An entry this version cannot read (a newer node's) is left out, not an error.
        let mut entries: Vec<SessionEntry> = flat
            .chunks_exact(2)
            .filter_map(|kv| decode(&kv[0], &kv[1]))
            .collect();
        let counts = self.watchers(now_ms).await?;
        for entry in &mut entries {
            entry.spectators = counts.get(&field(&entry.slot)).copied().unwrap_or(0);
        }
        Ok(entries)
    }

    async fn watch(&self, slot: &Slot, id: &str, expires_at_ms: u64) -> Result<(), StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.watchers();
        let f = watcher_field(slot, id);
        self.store
            .bounded("note a spectator", async move {
                redis::cmd("HSET")
                    .arg(&key)
                    .arg(&f)
                    .arg(expires_at_ms)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn unwatch(&self, slot: &Slot, id: &str) -> Result<(), StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.watchers();
        let f = watcher_field(slot, id);
        self.store
            .bounded("remove a spectator", async move {
                redis::cmd("HDEL")
                    .arg(&key)
                    .arg(&f)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn request_end(
        &self,
        slot: &Slot,
        by: &str,
        reason: &str,
        now_ms: u64,
    ) -> Result<Option<EndRequest>, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.sessions();
        let channel = self.store.keys.end_channel();
        let script = &self.store.scripts.session_end;
        let token: Option<String> = self
            .store
            .bounded("end session", async move {
                script
                    .key(&key)
                    .arg(field(slot))
                    .arg(now_ms)
                    .arg(by)
                    .arg(reason)
                    .arg(&channel)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        let Some(token) = token else {
            return Ok(None);
        };
        let token = number(&token)
            .ok_or_else(|| StoreError::new(format!("bad session token {token:?} in redis")))?;
        Ok(Some(EndRequest {
            slot: slot.clone(),
            token,
            by: by.to_owned(),
            reason: reason.to_owned(),
        }))
    }

    fn end_requests(&self) -> broadcast::Receiver<EndRequest> {
        self.notify.subscribe()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_junk_is_skipped() {
        let slot = Slot {
            instance: InstanceId::parse("i-0123456789abcdef0").unwrap(),
            port: SerialPort::new(1),
        };
        assert_eq!(field(&slot), "i-0123456789abcdef0:1");
        assert_eq!(parse_field(&field(&slot)), Some(slot));
        assert_eq!(parse_field("i-nope:0"), None);
        assert_eq!(parse_field("i-0123456789abcdef0"), None);
        assert!(decode("i-0123456789abcdef0:0", "{").is_none());
        assert!(notice(r#"{"field":"x","token":"1","by":"a","reason":""}"#).is_none());
    }
}
