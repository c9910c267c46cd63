//! Session control: `ListSerialConsoleSessions` and `EndSerialConsoleSession`, over the session
//! directory every node shares.
//!
//! Ending a session only asks its holder to end it (see [`crate::directory`]): the holding
//! node tells its user why, closes the session and frees the slot without the teardown wait.

use crate::directory::{EndRequest, MAX_END_REASON_CHARS, SessionEntry};
use crate::error::ConsoleError;
use crate::ids::{InstanceId, SerialPort};
use crate::leases::Slot;
use crate::ops::authorize::Target;
use crate::policy::Action;
use crate::service::{ConsoleService, RequestContext};

/// `EndSerialConsoleSession`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndSessionRequest {
    pub instance_id: InstanceId,
    pub port: SerialPort,
    pub reason: String,
}

impl EndSessionRequest {
    /// Checks the reason: at most [`MAX_END_REASON_CHARS`] characters, none of them a control
    /// character (it is shown on the user's terminal).
    pub fn new(instance_id: InstanceId, port: SerialPort, reason: &str) -> Result<Self, String> {
        if reason.chars().count() > MAX_END_REASON_CHARS {
            return Err(format!(
                "Reason is longer than {MAX_END_REASON_CHARS} characters."
            ));
        }
        if reason.chars().any(char::is_control) {
            return Err("Reason must be printable text.".to_owned());
        }
        Ok(Self {
            instance_id,
            port,
            reason: reason.to_owned(),
        })
    }
}

impl ConsoleService {
    /// `ListSerialConsoleSessions`: the live sessions on the caller's instances (all of them,
    /// or `instance`'s), on every node, ordered by instance and port. Decided on `*`: listing
    /// names no resource, and another account's sessions are never shown.
    pub async fn list_sessions(
        &self,
        ctx: &RequestContext,
        instance: Option<&InstanceId>,
    ) -> Result<Vec<SessionEntry>, ConsoleError> {
        self.throttle(ctx).await?;
        self.decide(ctx, Action::ListSerialConsoleSessions, Target::default())?;
        let entries = self
            .directory
            .list(self.now_ms())
            .await
            .map_err(|e| ConsoleError::Internal(format!("session directory: {e}")))?;
        let account = &ctx.principal.account;
        let mut mine: Vec<SessionEntry> = entries
            .into_iter()
            .filter(|e| instance.is_none_or(|id| *id == e.slot.instance))
            .filter(|e| {
                self.registry
                    .instance(&e.slot.instance)
                    .is_some_and(|i| i.account == *account)
            })
            .collect();
        mine.sort_by(|a, b| {
            (&a.slot.instance, a.slot.port.get()).cmp(&(&b.slot.instance, b.slot.port.get()))
        });
        Ok(mine)
    }

    /// `EndSerialConsoleSession`: asks the node holding the session on the port to end it.
    /// Decided on the instance's ARN; an instance that is not the caller's is not found, and a
    /// port without a live session is [`ConsoleError::SessionNotFound`].
    pub async fn request_session_end(
        &self,
        ctx: &RequestContext,
        req: &EndSessionRequest,
    ) -> Result<EndRequest, ConsoleError> {
        self.throttle(ctx).await?;
        let target = Target {
            instance: Some(&req.instance_id),
            os_user: None,
        };
        self.decide(ctx, Action::EndSerialConsoleSession, target)?;
        self.find_instances(ctx, std::slice::from_ref(&req.instance_id))?;
        let slot = Slot {
            instance: req.instance_id.clone(),
            port: req.port,
        };
        self.directory
            .request_end(&slot, &ctx.principal.arn, &req.reason, self.now_ms())
            .await
            .map_err(|e| ConsoleError::Internal(format!("session directory: {e}")))?
            .ok_or_else(|| {
                ConsoleError::SessionNotFound(format!("{}.port{}", req.instance_id, req.port))
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_bounded_printable_text() {
        let id = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let ok = |r: &str| EndSessionRequest::new(id.clone(), SerialPort::ZERO, r).is_ok();
        assert!(ok(""));
        assert!(ok("maintenance window — back at 10:00"));
        assert!(ok(&"é".repeat(MAX_END_REASON_CHARS)));
        assert!(!ok(&"x".repeat(MAX_END_REASON_CHARS + 1)));
        assert!(!ok("line\nbreak"));
        assert!(!ok("bell\u{7}"));
        assert!(!ok("\u{1b}[2J"));
    }
}
