//! `RebootInstances`: `InstanceId.N` (required), `DryRun` → `<return>true</return>`.

use console::{Action, InstanceId};

use crate::ec2::Call;
use crate::ec2::error::Ec2Error;
use crate::ec2::params::Params;
use crate::ec2::start_instances::required_ids;
use crate::ec2::xml::Xml;

const ACTION: &str = "RebootInstances";

/// The validated request.
#[derive(Debug)]
pub struct Request {
    pub ids: Vec<InstanceId>,
    pub dry_run: bool,
}

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
        return Err(call.dry_run(Action::RebootInstances, &req.ids));
    }
    call.service.reboot_instances(call.ctx, &req.ids).await?;
    let mut x = Xml::response(ACTION, &call.ctx.request_id);
    x.leaf_display("return", true);
    Ok(x.finish(ACTION))
}
