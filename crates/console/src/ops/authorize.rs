//! The IAM decision for one request: the request's condition keys on top of the caller's and
//! the instance's, evaluated against the caller's policies.

use std::sync::Arc;

use crate::error::{ConsoleError, Denial};
use crate::ids::InstanceId;
use crate::policy::{Action, instance_arn};
use crate::service::{ConsoleService, RequestContext};

/// What a request is about, beyond its action.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Target<'a> {
    /// The instance an instance-level action names; `None` for an account-level action.
    pub instance: Option<&'a InstanceId>,
    /// `ec2:osuser` (SendSSHPublicKey).
    pub os_user: Option<&'a str>,
}

/// What [`ConsoleService::simulate`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed by this statement (`policy "NAME" Statement[I] (Sid "S")`), on this resource.
    Allowed {
        statement: String,
        resource: String,
    },
    Denied(Denial),
}

impl ConsoleService {
    /// Decides `action` on `target` for the caller. An instance-level action is decided on the
    /// ARN of the named instance in the caller's own account, with that instance's tags, type
    /// and zone when it is the caller's (another account's instance, like an unknown id, brings
    /// no keys: a policy cannot learn anything about it). An account-level action is decided
    /// on `*`.
    pub(crate) fn decide(
        &self,
        ctx: &RequestContext,
        action: Action,
        target: Target<'_>,
    ) -> Result<(), ConsoleError> {
        self.judge(ctx, action, target, &[], |_, decision, denial| {
            if decision.is_allowed() {
                Ok(())
            } else {
                Err(ConsoleError::Auth(Box::new(denial())))
            }
        })
    }

    /// What [`decide`](Self::decide) would find for `ctx` performing `action` on `instance`
    /// (`None`: `*`), with `extra` condition keys set over the request's own (a key given
    /// here replaces the request's). For `serialgate policy simulate`.
    pub fn simulate(
        &self,
        ctx: &RequestContext,
        action: Action,
        instance: Option<&InstanceId>,
        os_user: Option<&str>,
        extra: &[(String, Vec<String>)],
    ) -> Verdict {
        let target = Target { instance, os_user };
        self.judge(
            ctx,
            action,
            target,
            extra,
            |resource, decision, denial| match (decision.is_allowed(), decision.statement()) {
                (true, Some(statement)) => Verdict::Allowed {
                    statement: statement.to_string(),
                    resource: resource.to_owned(),
                },
                _ => Verdict::Denied(denial()),
            },
        )
    }

    /// Evaluates the caller's policies and hands the resource and the decision to `then`,
    /// with a way to build the [`Denial`] (allocated only for a refusal).
    fn judge<R>(
        &self,
        ctx: &RequestContext,
        action: Action,
        target: Target<'_>,
        extra: &[(String, Vec<String>)],
        then: impl FnOnce(&str, iam::Decision<'_>, &dyn Fn() -> Denial) -> R,
    ) -> R {
        let principal = &ctx.principal;
        let (resource, instance) = match (action.is_account_level(), target.instance) {
            (false, Some(id)) => (
                instance_arn(&self.settings.region, &principal.account, id),
                self.registry
                    .instance(id)
                    .filter(|i| i.account == principal.account),
            ),
            _ => ("*".to_owned(), None),
        };
        let mut context = iam::Context::new();
        let now_ms = self.now_ms();
        if let Some(ip) = ctx.source_ip {
            context.insert("aws:SourceIp", ip.to_string());
        }
        context
            .insert("aws:CurrentTime", crate::clock::iso8601(now_ms))
            .insert("aws:EpochTime", (now_ms / 1000).to_string())
            .insert(
                "aws:SecureTransport",
                if ctx.secure_transport {
                    "true"
                } else {
                    "false"
                },
            )
            .insert("aws:RequestedRegion", self.settings.region.clone())
            .insert("ec2:Region", self.settings.region.clone());
        if let Some(user) = target.os_user {
            context.insert("ec2:osuser", user);
        }
        context
            .inherit(Arc::clone(&principal.context))
            .inherit(Arc::clone(&self.iam_context));
        for (key, values) in extra {
            context.insert_all(key, values.iter().cloned());
        }
        if let Some(instance) = instance {
            context.inherit(Arc::clone(&instance.iam_context));
        }
        let request = iam::Request {
            principal: &principal.arn,
            action: action.iam_name(),
            resource: &resource,
            context: &context,
        };
        let decision = principal.policies.evaluate(&request);
        let denial = || Denial {
            principal_arn: principal.arn.clone(),
            action,
            resource: resource.clone(),
            denied_by: decision.statement().map(|s| s.to_string()),
        };
        then(&resource, decision, &denial)
    }
}
