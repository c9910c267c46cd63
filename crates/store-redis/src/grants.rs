//! [`GrantStore`] on Redis: one JSON string per grant, expiring with the grant (`PXAT`).

use async_trait::async_trait;
use console::{Grant, GrantKey, GrantStore, SshPublicKey, StoreError};
use serde::{Deserialize, Serialize};

use crate::RedisStore;

/// A grant as stored. The key is kept in OpenSSH form (public material, not a secret).
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    key: String,
    principal_arn: String,
    request_id: String,
    expires_at_ms: u64,
    #[serde(default)]
    used: bool,
}

impl Stored {
    fn from_grant(g: &Grant) -> Self {
        Self {
            key: g.key.to_openssh(),
            principal_arn: g.principal_arn.clone(),
            request_id: g.request_id.clone(),
            expires_at_ms: g.expires_at_ms,
            used: g.used,
        }
    }

    fn into_grant(self) -> Result<Grant, StoreError> {
        let key = SshPublicKey::parse(&self.key)
            .map_err(|e| StoreError::new(format!("stored grant has an unusable key: {e}")))?;
        Ok(Grant {
            key,
            principal_arn: self.principal_arn,
            request_id: self.request_id,
            expires_at_ms: self.expires_at_ms,
            used: self.used,
        })
    }
}

/// Grants in Redis, shared by every node.
#[derive(Debug, Clone)]
pub struct RedisGrants {
    store: RedisStore,
}

impl RedisGrants {
    pub(crate) fn new(store: RedisStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl GrantStore for RedisGrants {
    async fn put(&self, key: &GrantKey, grant: Grant) -> Result<(), StoreError> {
        let json = serde_json::to_string(&Stored::from_grant(&grant))
            .map_err(|e| StoreError::new(format!("cannot encode grant: {e}")))?;
        let mut conn = self.store.conn.clone();
        let name = self.store.keys.grant(key);
        self.store
            .bounded("SET grant", async move {
                redis::cmd("SET")
                    .arg(&name)
                    .arg(json)
                    .arg("PXAT")
                    .arg(grant.expires_at_ms.max(1))
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
    }

    async fn find(&self, key: &GrantKey, now_ms: u64) -> Result<Option<Grant>, StoreError> {
        let mut conn = self.store.conn.clone();
        let name = self.store.keys.grant(key);
        let json: Option<String> = self
            .store
            .bounded("GET grant", async move {
                redis::cmd("GET")
                    .arg(&name)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            })
            .await?;
        let Some(json) = json else {
            return Ok(None);
        };
        let stored: Stored = serde_json::from_str(&json)
            .map_err(|e| StoreError::new(format!("stored grant is not readable: {e}")))?;
        let grant = stored.into_grant()?;
        // Redis expires on its own clock; the domain's clock decides.
        Ok(Some(grant).filter(|g| g.is_live(now_ms)))
    }

    async fn take(&self, key: &GrantKey, request_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.store.conn.clone();
        let name = self.store.keys.grant(key);
        let script = &self.store.scripts.take;
        let removed: i64 = self
            .store
            .bounded("take grant", async move {
                script
                    .key(&name)
                    .arg(request_id)
                    .invoke_async(&mut conn)
                    .await
            })
            .await?;
        Ok(removed == 1)
    }

    async fn purge_expired(&self, _now_ms: u64) -> Result<usize, StoreError> {
        // Redis drops grants at their expiry (PXAT).
        Ok(0)
    }
}
