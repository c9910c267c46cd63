//! Read-only views of a console for spectators: the hub's, on the node that holds it, or
//! through the relay from the node that does.

use backends::{Console, SpectateError, SpectateRequest};
use console::Instance;

use crate::{Consoles, FIRST_ATTEMPT_WAIT, Held};

/// The owner's refusal when full, as the relay carries it (see `backends::SpectateError`).
const FULL_PREFIX: &str = "spectator limit reached";

/// Why a spectator cannot watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpectateRefused {
    /// As many spectators as allowed are watching already.
    Full { max: u32 },
    /// The console is opened per session (`exec:`, or no hubs): there is no line to watch.
    PerSession,
    /// The console (or its owner) cannot be reached now; the text is for the log.
    Unavailable(String),
}

impl std::fmt::Display for SpectateRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpectateRefused::Full { max } => write!(f, "{FULL_PREFIX} ({max} watching)"),
            SpectateRefused::PerSession => {
                f.write_str("this console is opened per session and cannot be watched")
            }
            SpectateRefused::Unavailable(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for SpectateRefused {}

impl SpectateRefused {
    /// Reads a refusal that came back as text (from another node).
    pub fn from_text(text: String, max: u32) -> Self {
        if text.contains(FULL_PREFIX) {
            SpectateRefused::Full { max }
        } else {
            SpectateRefused::Unavailable(text)
        }
    }
}

impl Consoles {
    /// A read-only view of `instance`'s console: this node's hub, or the owner's.
    pub async fn spectate(
        &self,
        instance: &Instance,
        req: SpectateRequest,
    ) -> Result<Console, SpectateRefused> {
        match (&self.remote, self.holds(&instance.id)) {
            (Some(remote), false) => {
                let max = req.max;
                remote
                    .spectate(&instance.id, req)
                    .await
                    .map_err(|text| SpectateRefused::from_text(text, max))
            }
            _ => self.spectate_held(instance, req).await,
        }
    }

    /// A read-only view of a console this node holds, for a spectator here or a relayed one.
    pub async fn spectate_held(
        &self,
        instance: &Instance,
        req: SpectateRequest,
    ) -> Result<Console, SpectateRefused> {
        let held = self.read().get(&instance.id).cloned();
        match held {
            Some(Held::Hub(hub)) => {
                hub.first_attempt(FIRST_ATTEMPT_WAIT).await;
                hub.spectate(req).await.map_err(|e| match e {
                    SpectateError::Full { max } => SpectateRefused::Full { max },
                    SpectateError::NotConnected => SpectateRefused::Unavailable(format!(
                        "the console of {} is not connected",
                        instance.id
                    )),
                })
            }
            Some(Held::PerSession) => Err(SpectateRefused::PerSession),
            None if self.remote.is_none() => Err(SpectateRefused::PerSession),
            None => Err(SpectateRefused::Unavailable(format!(
                "this node does not hold the console of {}",
                instance.id
            ))),
        }
    }
}
