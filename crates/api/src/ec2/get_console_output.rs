//! `GetConsoleOutput`: `InstanceId` (required), `Latest`, `DryRun` → `instanceId`, `timestamp`,
//! `output` (base64). serialgate keeps the latest 64 KiB of each console, so the answer is
//! always the latest output and `Latest` changes nothing.

use base64::Engine as _;
use console::{Action, InstanceId};

use crate::ec2::Call;
use crate::ec2::error::Ec2Error;
use crate::ec2::params::{Params, instance_id};
use crate::ec2::xml::{Xml, iso8601};

const ACTION: &str = "GetConsoleOutput";

/// The validated request.
#[derive(Debug)]
pub struct Request {
    pub id: InstanceId,
    pub dry_run: bool,
}

pub fn parse(p: &Params) -> Result<Request, Ec2Error> {
    let id = instance_id(p.required("InstanceId")?)?;
    // Validated so a typo is reported, though every answer is already the latest output.
    p.flag("Latest")?;
    Ok(Request {
        id,
        dry_run: p.flag("DryRun")?,
    })
}

/// Handle + encode.
pub async fn handle(call: &Call<'_>) -> Result<String, Ec2Error> {
    let req = parse(call.params)?;
    if req.dry_run {
        return Err(call.dry_run(Action::GetConsoleOutput, std::slice::from_ref(&req.id)));
    }
    let snapshot = call.service.console_output(call.ctx, &req.id).await?;
    // A console that never printed anything has no time of its own; EC2 then reports now.
    let updated_ms = if snapshot.updated_ms == 0 {
        call.service.clock().now_ms()
    } else {
        snapshot.updated_ms
    };
    let mut x = Xml::response(ACTION, &call.ctx.request_id);
    x.leaf("instanceId", req.id.as_str());
    x.leaf("timestamp", &iso8601(updated_ms));
    x.leaf(
        "output",
        &base64::engine::general_purpose::STANDARD.encode(&snapshot.bytes),
    );
    Ok(x.finish(ACTION))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::ec2::error::Ec2Code;

    #[test]
    fn parse_rules() {
        assert_eq!(
            parse(&Params::parse(b"Latest=true")).unwrap_err().code,
            Ec2Code::MissingParameter
        );
        assert_eq!(
            parse(&Params::parse(b"InstanceId=nope")).unwrap_err().code,
            Ec2Code::InvalidInstanceIdMalformed
        );
        let r = parse(&Params::parse(
            b"InstanceId=i-0000000001&Latest=true&DryRun=false",
        ))
        .unwrap();
        assert_eq!(r.id.as_str(), "i-0000000001");
        assert!(!r.dry_run);
    }
}
