//! [`AccountSettings`] on Redis: run-time overrides of the account switch, read by every node;
//! an account without one keeps its configured value.

use async_trait::async_trait;
use console::{AccountId, AccountSettings, StoreError};

use crate::RedisStore;

#[derive(Debug, Clone)]
pub struct RedisAccounts {
    store: RedisStore,
}

impl RedisAccounts {
    pub(crate) fn new(store: RedisStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl AccountSettings for RedisAccounts {
    async fn serial_console_access(&self, account: &AccountId) -> Result<Option<bool>, StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.serial_console_access(account);
        let v: Option<String> = self
            .store
            .bounded("GET account switch", async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            })
            .await?;
        Ok(v.map(|v| v == "1"))
    }

    async fn set_serial_console_access(
        &self,
        account: &AccountId,
        on: bool,
    ) -> Result<(), StoreError> {
        let mut conn = self.store.conn.clone();
        let key = self.store.keys.serial_console_access(account);
        self.store
            .bounded("SET account switch", async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(if on { "1" } else { "0" })
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await
    }
}
