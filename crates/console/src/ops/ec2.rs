//! The EC2 calls around the serial console: describe, start, stop, reboot, console output and
//! the account's serial console switch. The domain speaks in `ConsoleError`; the API maps it to
//! EC2's error codes and records each call, with the code its caller received, through
//! [`ConsoleService::record_answered`] and [`ConsoleService::record_refused`].

use std::sync::Arc;

use crate::control::ConsoleSnapshot;
use crate::error::{ConsoleError, NotFound, StateInvalid};
use crate::ids::InstanceId;
use crate::ops::authorize::Target;
use crate::policy::Action;
use crate::registry::{Instance, InstanceState};
use crate::service::{ConsoleService, RequestContext};

/// One instance's state before and after a start or stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub instance_id: InstanceId,
    pub previous: InstanceState,
    pub current: InstanceState,
}

impl ConsoleService {
    /// Whether the caller's policies allow `action`: for an instance-level action, on every
    /// named instance's ARN (in the caller's account); for an account-level action
    /// (`DescribeInstances` included, whatever ids it names), on `*`, as EC2 has no
    /// resource-level permissions for it. Existence is not checked here. Also what `DryRun`
    /// answers.
    pub fn authorize_ec2(
        &self,
        ctx: &RequestContext,
        action: Action,
        instances: &[InstanceId],
    ) -> Result<(), ConsoleError> {
        if action.is_account_level() {
            return self.decide(ctx, action, Target::default());
        }
        for id in instances {
            self.decide(
                ctx,
                action,
                Target {
                    instance: Some(id),
                    os_user: None,
                },
            )?;
        }
        Ok(())
    }

    /// The caller's instances named by `ids`, or all of them. Instances of other accounts do not
    /// exist for the caller, as in EC2.
    pub fn find_instances(
        &self,
        ctx: &RequestContext,
        ids: &[InstanceId],
    ) -> Result<Vec<Arc<Instance>>, ConsoleError> {
        let mine = |i: &Arc<Instance>| i.account == ctx.principal.account;
        if ids.is_empty() {
            let mut all: Vec<_> = self
                .registry
                .instances()
                .filter(|i| mine(i))
                .cloned()
                .collect();
            all.sort_by(|a, b| a.id.cmp(&b.id));
            return Ok(all);
        }
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.registry.instance(id).filter(|i| mine(i)) {
                Some(i) => found.push(Arc::clone(i)),
                None => missing.push(id.clone()),
            }
        }
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(ConsoleError::InstanceNotFound(NotFound {
                ids: missing,
                availability_zone: None,
            }))
        }
    }

    /// `DescribeInstances`.
    pub async fn describe_instances(
        &self,
        ctx: &RequestContext,
        ids: &[InstanceId],
    ) -> Result<Vec<Arc<Instance>>, ConsoleError> {
        self.throttle(ctx).await?;
        self.authorize_ec2(ctx, Action::DescribeInstances, ids)?;
        self.find_instances(ctx, ids)
    }

    /// `StartInstances`.
    pub async fn start_instances(
        &self,
        ctx: &RequestContext,
        ids: &[InstanceId],
    ) -> Result<Vec<StateChange>, ConsoleError> {
        self.change_states(ctx, Action::StartInstances, ids, false)
            .await
    }

    /// `StopInstances` (`force`: no clean shutdown).
    pub async fn stop_instances(
        &self,
        ctx: &RequestContext,
        ids: &[InstanceId],
        force: bool,
    ) -> Result<Vec<StateChange>, ConsoleError> {
        self.change_states(ctx, Action::StopInstances, ids, force)
            .await
    }

    async fn change_states(
        &self,
        ctx: &RequestContext,
        action: Action,
        ids: &[InstanceId],
        force: bool,
    ) -> Result<Vec<StateChange>, ConsoleError> {
        self.throttle(ctx).await?;
        self.authorize_ec2(ctx, action, ids)?;
        let instances = self.find_instances(ctx, ids)?;
        let starting = action == Action::StartInstances;
        // EC2 refuses the whole call when one instance cannot make the transition.
        for i in &instances {
            if i.state() == InstanceState::Terminated
                || (starting && i.state() == InstanceState::ShuttingDown)
            {
                return Err(ConsoleError::InstanceStateInvalid(StateInvalid {
                    instance: i.id.clone(),
                    state: i.state(),
                    change: Some(action),
                }));
            }
        }
        let mut changes = Vec::with_capacity(instances.len());
        for i in instances {
            let previous = i.state();
            let wanted = if starting {
                InstanceState::Running
            } else {
                InstanceState::Stopped
            };
            let already = if starting {
                matches!(previous, InstanceState::Running | InstanceState::Pending)
            } else {
                matches!(previous, InstanceState::Stopped | InstanceState::Stopping)
            };
            if !already || (force && !starting) {
                let r = if starting {
                    self.control.start(&i).await
                } else {
                    self.control.stop(&i, force).await
                };
                r.map_err(|e| ConsoleError::Internal(format!("{}: {e}", i.id)))?;
            }
            // Remember what the caller asked for, so a restart brings the instance back to it.
            self.persistence
                .save_instance_state(&i.id, wanted)
                .await
                .map_err(|e| ConsoleError::Internal(format!("state store: {e}")))?;
            changes.push(StateChange {
                instance_id: i.id.clone(),
                previous,
                current: i.state(),
            });
        }
        Ok(changes)
    }

    /// `RebootInstances`.
    pub async fn reboot_instances(
        &self,
        ctx: &RequestContext,
        ids: &[InstanceId],
    ) -> Result<(), ConsoleError> {
        self.throttle(ctx).await?;
        self.authorize_ec2(ctx, Action::RebootInstances, ids)?;
        let instances = self.find_instances(ctx, ids)?;
        for i in &instances {
            if i.state() != InstanceState::Running && i.state() != InstanceState::Pending {
                return Err(ConsoleError::InstanceStateInvalid(StateInvalid {
                    instance: i.id.clone(),
                    state: i.state(),
                    change: Some(Action::RebootInstances),
                }));
            }
        }
        for i in &instances {
            self.control
                .reboot(i)
                .await
                .map_err(|e| ConsoleError::Internal(format!("{}: {e}", i.id)))?;
        }
        Ok(())
    }

    /// `GetSerialConsoleAccessStatus`.
    pub async fn get_serial_console_access_status(
        &self,
        ctx: &RequestContext,
    ) -> Result<bool, ConsoleError> {
        self.throttle(ctx).await?;
        self.authorize_ec2(ctx, Action::GetSerialConsoleAccessStatus, &[])?;
        self.serial_console_access(&ctx.principal.account).await
    }

    /// `EnableSerialConsoleAccess` / `DisableSerialConsoleAccess`; returns the new setting.
    pub async fn switch_serial_console_access(
        &self,
        ctx: &RequestContext,
        on: bool,
    ) -> Result<bool, ConsoleError> {
        let action = if on {
            Action::EnableSerialConsoleAccess
        } else {
            Action::DisableSerialConsoleAccess
        };
        self.throttle(ctx).await?;
        self.authorize_ec2(ctx, action, &[])?;
        let account = &ctx.principal.account;
        self.persistence
            .save_serial_console_access(account, on)
            .await
            .map_err(|e| ConsoleError::Internal(format!("state store: {e}")))?;
        self.set_serial_console_access(account, on).await?;
        Ok(on)
    }

    /// `GetConsoleOutput`: the latest console output kept for the instance.
    pub async fn console_output(
        &self,
        ctx: &RequestContext,
        id: &InstanceId,
    ) -> Result<ConsoleSnapshot, ConsoleError> {
        self.throttle(ctx).await?;
        self.authorize_ec2(ctx, Action::GetConsoleOutput, std::slice::from_ref(id))?;
        self.find_instances(ctx, std::slice::from_ref(id))?;
        Ok(self.history.snapshot(id).await.unwrap_or(ConsoleSnapshot {
            bytes: Vec::new(),
            updated_ms: 0,
        }))
    }
}
