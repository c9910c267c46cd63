//! The seam through which a relay server reaches the consoles its node owns.

use async_trait::async_trait;

/// The consoles a node lends to other nodes: in the server, its hubs.
#[async_trait]
pub trait ConsoleProvider: Send + Sync + 'static {
    /// The owner's console for a relayed session (its hub's `attach_replaying()`), starting
    /// with the last `replay_lines` lines of its history (0: none). The error text goes back to
    /// the requesting node for its log.
    async fn attach(&self, instance: &str, replay_lines: u32) -> Result<backends::Console, String>;

    /// The owner's console history (GetConsoleOutput): the bytes and the time of the last byte
    /// (ms since the Unix epoch); `None` when this node keeps none for `instance`.
    fn history(&self, instance: &str) -> Option<(Vec<u8>, u64)>;

    /// A read-only view of the owner's console for a relayed spectator (its hub's
    /// `spectate()`). The error text goes back to the requesting node. By default this node
    /// lends no views.
    async fn spectate(
        &self,
        instance: &str,
        req: backends::SpectateRequest,
    ) -> Result<backends::Console, String> {
        let _ = req;
        Err(format!("spectating {instance} is not offered here"))
    }
}
