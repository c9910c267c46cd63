//! `StopInstances`: `InstanceId.N` (required), `Force`, `DryRun` → `instancesSet` of state
//! changes. `Hibernate` and `SkipOsShutdown` are accepted and ignored (nothing to hibernate).

use console::{Action, InstanceId};

use crate::ec2::Call;
use crate::ec2::error::Ec2Error;
use crate::ec2::params::Params;
use crate::ec2::start_instances::{encode_state_changes, required_ids};

const ACTION: &str = "StopInstances";

/// The validated request.
#[derive(Debug)]
pub struct Request {
    pub ids: Vec<InstanceId>,
    /// Stop without a clean shutdown.
    pub force: bool,
    pub dry_run: bool,
}

pub fn parse(p: &Params) -> Result<Request, Ec2Error> {
    Ok(Request {
        ids: required_ids(p)?,
        force: p.flag("Force")?,
        dry_run: p.flag("DryRun")?,
    })
}

/// Handle + encode.
pub async fn handle(call: &Call<'_>) -> Result<String, Ec2Error> {
    let req = parse(call.params)?;
    if req.dry_run {
        return Err(call.dry_run(Action::StopInstances, &req.ids));
    }
    let changes = call
        .service
        .stop_instances(call.ctx, &req.ids, req.force)
        .await?;
    Ok(encode_state_changes(ACTION, &call.ctx.request_id, &changes))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn parses_force() {
        let r = parse(&Params::parse(b"InstanceId.1=i-0000000001&Force=true")).unwrap();
        assert!(r.force && !r.dry_run);
        assert!(parse(&Params::parse(b"InstanceId.1=i-0000000001&Force=maybe")).is_err());
    }
}
