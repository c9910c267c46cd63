//! Whether an instance's console can be reached right now (checked when a key is pushed).

use async_trait::async_trait;

use crate::registry::Instance;

/// The gateway's backends implement this; the domain only asks yes or no.
#[async_trait]
pub trait ConsoleProbe: Send + Sync + std::fmt::Debug {
    /// `Err(reason)` when the console cannot be reached; the reason goes to the log.
    async fn probe(&self, instance: &Instance) -> Result<(), String>;
}

/// A probe that never fails, for deployments without consoles (and tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct AlwaysReachable;

#[async_trait]
impl ConsoleProbe for AlwaysReachable {
    async fn probe(&self, _instance: &Instance) -> Result<(), String> {
        Ok(())
    }
}
