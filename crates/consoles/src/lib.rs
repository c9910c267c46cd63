//! Where sessions get their consoles: a permanently connected hub per instance this node holds
//! (which also keeps the console history), a fresh connection per session, or, in a cluster,
//! the node that holds the console.
//!
//! Hubs are the default under `serialgate serve` for every console except `exec:` (holding a
//! command such as `ipmitool sol activate` open between sessions would lock others out). A
//! console without a hub is opened when a session starts and closed when it ends.
//!
//! Each hub also keeps its console's log on disk (`state_dir/console/<instance>/`, see the
//! `console-log` crate) when [`LogSettings`] are given, and its history starts with the log's
//! tail, so what the console printed before a restart is still served.
//!
//! Every console address is parsed once, when the registry is read.
//!
//! In a cluster a node holds only the consoles it owns ([`Consoles::own`], [`Consoles::disown`]),
//! and reaches the others through [`RemoteConsoles`] (the relay to their owner).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use backends::{
    Console, ConsoleOptions, ConsoleUri, Hub, HubSetup, HubSnapshot, OutputTap, SpectateRequest,
};
use console::control::{ConsoleHistory, ConsoleSnapshot};
use console::{ConsoleProbe, Instance, InstanceId, Registry};

mod spectate;
pub use spectate::SpectateRefused;

/// History kept per console: what `GetConsoleOutput` returns (as EC2: the latest 64 KiB).
pub const HISTORY_BYTES: usize = 64 * 1024;

/// How long a push waits for a hub that has just started to make its first connection.
const FIRST_ATTEMPT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The consoles this node does not hold, reached through the node that does.
#[async_trait]
pub trait RemoteConsoles: Send + Sync + std::fmt::Debug {
    /// A console for a session, from the node that owns it, starting with the last
    /// `replay_lines` lines of its history (0: none). The error is for the log.
    async fn open(&self, id: &InstanceId, replay_lines: u32) -> Result<Console, String>;
    /// A read-only view of the console, from the node that owns it. The error is the owner's
    /// refusal or the log's text.
    async fn spectate(&self, id: &InstanceId, req: SpectateRequest) -> Result<Console, String>;
    /// The console history kept by the owner.
    async fn history(&self, id: &InstanceId) -> Option<ConsoleSnapshot>;
    /// Whether some node holds the console and has it connected.
    async fn probe(&self, id: &InstanceId) -> Result<(), String>;
    /// The node that owns the console now, as the cluster's store has it.
    async fn owner(&self, id: &InstanceId) -> Option<String>;
}

/// Where and how hubs keep their consoles' logs.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// The state directory; each console's log is in `console/<instance>/` under it.
    pub state_dir: PathBuf,
    pub config: console_log::LogConfig,
}

/// What this node holds of one console it owns.
#[derive(Debug, Clone)]
enum Held {
    /// A permanent connection.
    Hub(Hub),
    /// An `exec:` console: opened per session, here.
    PerSession,
}

/// The consoles of all instances.
#[derive(Debug, Default)]
pub struct Consoles {
    /// Every instance's console, parsed once.
    uris: HashMap<InstanceId, ConsoleUri>,
    options: ConsoleOptions,
    /// The consoles this node holds now.
    held: RwLock<HashMap<InstanceId, Held>>,
    /// How to reach the others; `None` for a node on its own, which holds every console.
    remote: Option<Arc<dyn RemoteConsoles>>,
    /// The console logs hubs keep; `None`: no logs.
    log: Option<LogSettings>,
}

impl Consoles {
    /// Every console opened per session; no history.
    pub fn direct(options: ConsoleOptions) -> Self {
        Self {
            options,
            ..Self::default()
        }
    }

    /// A node on its own: a hub for every instance whose console is not `exec:`, each keeping
    /// its console's log if `log` says so. Must run inside a tokio runtime.
    pub fn with_hubs(
        registry: &Registry,
        options: ConsoleOptions,
        log: Option<LogSettings>,
    ) -> Self {
        let consoles = Self {
            uris: parse_all(registry),
            options,
            log,
            ..Self::default()
        };
        for id in consoles.uris.keys() {
            consoles.start(id);
        }
        consoles
    }

    /// A node of a cluster: holds nothing until it [owns](Self::own) a console, and reaches
    /// the rest through `remote`.
    pub fn clustered(
        registry: &Registry,
        options: ConsoleOptions,
        remote: Arc<dyn RemoteConsoles>,
        log: Option<LogSettings>,
    ) -> Self {
        Self {
            uris: parse_all(registry),
            options,
            held: RwLock::default(),
            remote: Some(remote),
            log,
        }
    }

    /// Starts holding `id`'s console: its hub connects (an `exec:` console is opened per
    /// session). No-op if held already. Must run inside a tokio runtime.
    pub fn own(&self, id: &InstanceId) {
        if self.read().contains_key(id) {
            return;
        }
        self.start(id);
    }

    /// Stops holding `id`'s console and returns once its connection is closed: attached users
    /// see their output end (and reconnect through the new owner).
    pub async fn disown(&self, id: &InstanceId) {
        let held = self
            .held
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if let Some(Held::Hub(hub)) = held {
            hub.stop().await;
        }
    }

    /// In a cluster, the node that owns `id`'s console now (possibly this one); `None` on a
    /// node alone, or when no node owns it.
    pub async fn owner(&self, id: &InstanceId) -> Option<String> {
        match &self.remote {
            Some(remote) => remote.owner(id).await,
            None => None,
        }
    }

    /// Whether this node holds `id`'s console.
    pub fn holds(&self, id: &InstanceId) -> bool {
        self.remote.is_none() || self.read().contains_key(id)
    }

    fn start(&self, id: &InstanceId) {
        let Some(uri) = self.uris.get(id) else {
            return;
        };
        let held = match uri {
            ConsoleUri::Exec(_) => Held::PerSession,
            uri => Held::Hub(Hub::start_with(
                uri.clone(),
                self.options.clone(),
                self.hub_setup(id),
            )),
        };
        self.held
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.clone())
            .or_insert(held);
    }

    /// A hub's history, seeded from the console's log, and the tap that keeps the log. A log
    /// that cannot be opened is reported, and the console runs without one.
    fn hub_setup(&self, id: &InstanceId) -> HubSetup {
        let mut setup = HubSetup::new(HISTORY_BYTES);
        let Some(log) = &self.log else {
            return setup;
        };
        let dir = console_log::dir_for(&log.state_dir, id);
        // A short synchronous read (at most the history size) when the console is taken.
        match console_log::tail(&dir, HISTORY_BYTES) {
            Ok(seed) => {
                setup.seed = seed.map(|(bytes, updated_ms)| HubSnapshot { bytes, updated_ms });
            }
            Err(e) => {
                tracing::warn!(instance = %id, dir = %dir.display(), error = %e, "console log: cannot read its end; the history starts empty");
            }
        }
        match console_log::start(&dir, log.config, id.as_str()) {
            Ok(tap) => setup.taps.push(Box::new(tap) as Box<dyn OutputTap>),
            Err(e) => {
                tracing::warn!(instance = %id, dir = %dir.display(), error = %e, "console log: cannot open; this console is not logged");
            }
        }
        setup
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<InstanceId, Held>> {
        self.held.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (at most `wait` in all) until every hub has made its first connection attempt,
    /// so startup can report a console that is missing rather than the first push.
    pub async fn first_attempts(&self, wait: std::time::Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        let hubs: Vec<Hub> = self.read().values().filter_map(Held::hub).collect();
        for hub in hubs {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            hub.first_attempt(left).await;
        }
    }

    /// The hub of an instance, if this node holds it with one.
    pub fn hub(&self, id: &InstanceId) -> Option<Hub> {
        self.read().get(id).and_then(Held::hub)
    }

    /// A console for a session: this node's, or the owner's, starting with the last
    /// `replay_lines` lines of its history (0: none; a console opened per session has none).
    /// The error is for the log.
    pub async fn open(&self, instance: &Instance, replay_lines: u32) -> Result<Console, String> {
        match (&self.remote, self.holds(&instance.id)) {
            (Some(remote), false) => remote.open(&instance.id, replay_lines).await,
            _ => self.open_held(instance, replay_lines).await,
        }
    }

    /// A console this node holds, for one of its sessions or a relayed one, starting with the
    /// last `replay_lines` lines of its history. The error is for the log.
    pub async fn open_held(
        &self,
        instance: &Instance,
        replay_lines: u32,
    ) -> Result<Console, String> {
        let held = self.read().get(&instance.id).cloned();
        match held {
            Some(Held::Hub(hub)) => {
                // A console this node has just taken gets its first connection attempt first,
                // so a session (local or relayed) right after a takeover finds it connected.
                hub.first_attempt(FIRST_ATTEMPT_WAIT).await;
                hub.attach_replaying(replay_lines)
                    .await
                    .map_err(|e| e.to_string())
            }
            Some(Held::PerSession) => self.open_fresh(instance).await,
            None if self.remote.is_none() => self.open_fresh(instance).await,
            None => Err(format!(
                "this node does not hold the console of {}",
                instance.id
            )),
        }
    }

    async fn open_fresh(&self, instance: &Instance) -> Result<Console, String> {
        let uri = self.uri(instance)?;
        backends::open(&uri, &self.options)
            .await
            .map_err(|e| e.to_string())
    }

    /// `instance`'s console address, as parsed when the registry was read; parsed here only
    /// for an instance this adapter was not built with ([`Consoles::direct`]).
    fn uri(&self, instance: &Instance) -> Result<ConsoleUri, String> {
        match self.uris.get(&instance.id) {
            Some(uri) => Ok(uri.clone()),
            None => instance
                .console
                .parse()
                .map_err(|e: backends::UriError| e.to_string()),
        }
    }

    /// The history of a console this node holds.
    pub fn held_history(&self, id: &InstanceId) -> Option<ConsoleSnapshot> {
        self.hub(id).map(|h| {
            let s = h.snapshot();
            ConsoleSnapshot {
                bytes: s.bytes,
                updated_ms: s.updated_ms,
            }
        })
    }
}

impl Held {
    fn hub(&self) -> Option<Hub> {
        match self {
            Held::Hub(hub) => Some(hub.clone()),
            Held::PerSession => None,
        }
    }
}

/// Every instance's console URI; one that does not parse is logged and left out.
fn parse_all(registry: &Registry) -> HashMap<InstanceId, ConsoleUri> {
    let mut uris = HashMap::new();
    for instance in registry.instances() {
        match instance.console.parse::<ConsoleUri>() {
            Ok(uri) => {
                uris.insert(instance.id.clone(), uri);
            }
            Err(e) => {
                tracing::error!(instance = %instance.id, error = %e, "invalid console URI")
            }
        }
    }
    uris
}

#[async_trait]
impl ConsoleProbe for Consoles {
    async fn probe(&self, instance: &Instance) -> Result<(), String> {
        if let (Some(remote), false) = (&self.remote, self.holds(&instance.id)) {
            return remote.probe(&instance.id).await;
        }
        // A hub holds the only connection: ask it instead of connecting a second time. One
        // that has just started (this node has just taken the console) gets its first attempt.
        if let Some(hub) = self.hub(&instance.id) {
            hub.first_attempt(FIRST_ATTEMPT_WAIT).await;
            return if hub.is_connected() {
                Ok(())
            } else {
                Err(format!("{}: console not connected", instance.console))
            };
        }
        let uri = self.uri(instance)?;
        backends::probe(&uri, &self.options)
            .await
            .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl ConsoleHistory for Consoles {
    async fn snapshot(&self, instance: &InstanceId) -> Option<ConsoleSnapshot> {
        match (&self.remote, self.holds(instance)) {
            (Some(remote), false) => remote.history(instance).await,
            _ => self.held_history(instance),
        }
    }
}
