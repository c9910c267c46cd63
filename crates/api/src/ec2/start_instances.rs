//! `StartInstances`: `InstanceId.N` (required), `DryRun` → `instancesSet` of state changes.

use console::ops::ec2::StateChange;
use console::{Action, InstanceId, InstanceState};

use crate::ec2::Call;
use crate::ec2::error::Ec2Error;
use crate::ec2::params::Params;
use crate::ec2::xml::Xml;

const ACTION: &str = "StartInstances";

/// The validated request.
#[derive(Debug)]
pub struct Request {
    pub ids: Vec<InstanceId>,
    pub dry_run: bool,
}

/// Parse: at least one `InstanceId.N`, each well formed.
pub fn parse(p: &Params) -> Result<Request, Ec2Error> {
    Ok(Request {
        ids: required_ids(p)?,
        dry_run: p.flag("DryRun")?,
    })
}

/// Handle + encode.
pub async fn handle(call: &Call<'_>) -> Result<String, Ec2Error> {
    let req = parse(call.params)?;
    if req.dry_run {
        return Err(call.dry_run(Action::StartInstances, &req.ids));
    }
    let changes = call.service.start_instances(call.ctx, &req.ids).await?;
    Ok(encode_state_changes(ACTION, &call.ctx.request_id, &changes))
}

/// `InstanceId.N` for the actions that need at least one.
pub(super) fn required_ids(p: &Params) -> Result<Vec<InstanceId>, Ec2Error> {
    let ids = p.instance_ids()?;
    if ids.is_empty() {
        return Err(Ec2Error::missing_parameter("InstanceId"));
    }
    Ok(ids)
}

/// The `instancesSet` shared by `StartInstances` and `StopInstances`.
pub(super) fn encode_state_changes(
    action: &str,
    request_id: &str,
    changes: &[StateChange],
) -> String {
    let state = |x: &mut Xml, name: &'static str, s: InstanceState| {
        x.open(name);
        x.leaf_display("code", s.code());
        x.leaf("name", s.as_str());
        x.close(name);
    };
    let mut x = Xml::response(action, request_id);
    x.open("instancesSet");
    for c in changes {
        x.open("item");
        x.leaf("instanceId", c.instance_id.as_str());
        state(&mut x, "currentState", c.current);
        state(&mut x, "previousState", c.previous);
        x.close("item");
    }
    x.close("instancesSet");
    x.finish(action)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ec2::error::Ec2Code;

    #[test]
    fn requires_an_instance_id() {
        let e = parse(&Params::parse(b"DryRun=true")).unwrap_err();
        assert_eq!(e.code, Ec2Code::MissingParameter);
        assert_eq!(
            e.message,
            "The request must contain the parameter InstanceId"
        );
    }

    #[test]
    fn encodes_current_then_previous_state() {
        let xml = encode_state_changes(
            ACTION,
            "r",
            &[StateChange {
                instance_id: InstanceId::parse("i-0000000001").unwrap(),
                previous: InstanceState::Stopped,
                current: InstanceState::Running,
            }],
        );
        assert!(xml.contains(
            "<instancesSet><item><instanceId>i-0000000001</instanceId><currentState><code>16</code>\
             <name>running</name></currentState><previousState><code>80</code><name>stopped</name>\
             </previousState></item></instancesSet></StartInstancesResponse>"
        ));
    }
}
