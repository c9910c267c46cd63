//! The account switch EC2 calls `EnableSerialConsoleAccess`, behind a trait so that every node
//! of a cluster reads the same value.
//!
//! Accounts come from configuration; at run time only their serial console switch may change.
//! The embedded implementation is the [`Registry`] itself (an atomic per account); a shared
//! store keeps overrides and falls back to the configured value.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::ids::AccountId;
use crate::registry::Registry;

/// Where an account's serial console switch lives.
#[async_trait]
pub trait AccountSettings: Send + Sync + std::fmt::Debug {
    /// The switch as this store knows it; `None` when the store has no value for the account,
    /// in which case the configured value applies.
    async fn serial_console_access(&self, account: &AccountId) -> Result<Option<bool>, StoreError>;

    /// Turns the switch on or off for every node that reads this store.
    async fn set_serial_console_access(
        &self,
        account: &AccountId,
        on: bool,
    ) -> Result<(), StoreError>;
}

/// The embedded store: the registry's own per-account atomics.
#[async_trait]
impl AccountSettings for Registry {
    async fn serial_console_access(&self, account: &AccountId) -> Result<Option<bool>, StoreError> {
        Ok(self.account(account).map(|a| a.serial_console_access()))
    }

    async fn set_serial_console_access(
        &self,
        account: &AccountId,
        on: bool,
    ) -> Result<(), StoreError> {
        match self.account(account) {
            Some(a) => {
                a.set_serial_console_access(on);
                Ok(())
            }
            None => Err(StoreError::new(format!("no account {account}"))),
        }
    }
}
