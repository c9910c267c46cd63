//! Where sessions get their consoles: a permanently connected hub per instance (which also
//! keeps the console history), or a fresh connection per session.
//!
//! Hubs are the default under `serialgate serve` for every console except `exec:` (holding a
//! command such as `ipmitool sol activate` open between sessions would lock others out). A
//! console without a hub is opened when a session starts and closed when it ends.

use std::collections::HashMap;

use async_trait::async_trait;
use backends::{Console, ConsoleOptions, ConsoleUri, Hub};
use console::control::{ConsoleHistory, ConsoleSnapshot};
use console::{ConsoleProbe, Instance, InstanceId, Registry};

/// History kept per console: what `GetConsoleOutput` returns (as EC2: the latest 64 KiB).
pub const HISTORY_BYTES: usize = 64 * 1024;

/// The consoles of all instances.
#[derive(Debug, Clone, Default)]
pub struct Consoles {
    hubs: HashMap<InstanceId, Hub>,
    options: ConsoleOptions,
}

impl Consoles {
    /// Every console opened per session; no history.
    pub fn direct(options: ConsoleOptions) -> Self {
        Self {
            hubs: HashMap::new(),
            options,
        }
    }

    /// A hub for every instance whose console is not `exec:`. Must run inside a tokio runtime.
    pub fn with_hubs(registry: &Registry, options: ConsoleOptions) -> Self {
        let mut hubs = HashMap::new();
        for instance in registry.instances() {
            match instance.console.parse::<ConsoleUri>() {
                Ok(ConsoleUri::Exec(_)) => {}
                Ok(uri) => {
                    hubs.insert(
                        instance.id.clone(),
                        Hub::start(uri, options.clone(), HISTORY_BYTES),
                    );
                }
                Err(e) => {
                    tracing::error!(instance = %instance.id, error = %e, "invalid console URI")
                }
            }
        }
        Self { hubs, options }
    }

    /// Waits (at most `wait` in all) until every hub has made its first connection attempt,
    /// so startup can report a console that is missing rather than the first push.
    pub async fn first_attempts(&self, wait: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        for hub in self.hubs.values() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            hub.first_attempt(left).await;
        }
    }

    /// The hub of an instance, if it has one.
    pub fn hub(&self, id: &InstanceId) -> Option<&Hub> {
        self.hubs.get(id)
    }

    /// A console for a session. The error is for the operator's log.
    pub async fn open(&self, instance: &Instance) -> Result<Console, String> {
        if let Some(hub) = self.hubs.get(&instance.id) {
            return hub.attach().await.map_err(|e| e.to_string());
        }
        let uri: ConsoleUri = instance
            .console
            .parse()
            .map_err(|e: backends::UriError| e.to_string())?;
        backends::open(&uri, &self.options)
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl ConsoleProbe for Consoles {
    async fn probe(&self, instance: &Instance) -> Result<(), String> {
        // A hub holds the only connection: ask it instead of connecting a second time.
        if let Some(hub) = self.hubs.get(&instance.id) {
            return if hub.is_connected() {
                Ok(())
            } else {
                Err(format!("{}: console not connected", instance.console))
            };
        }
        let uri: ConsoleUri = instance
            .console
            .parse()
            .map_err(|e: backends::UriError| e.to_string())?;
        backends::probe(&uri, &self.options)
            .await
            .map_err(|e| e.to_string())
    }
}

impl ConsoleHistory for Consoles {
    fn snapshot(&self, instance: &InstanceId) -> Option<ConsoleSnapshot> {
        self.hubs.get(instance).map(|h| {
            let s = h.snapshot();
            ConsoleSnapshot {
                bytes: s.bytes,
                updated_ms: s.updated_ms,
            }
        })
    }
}
