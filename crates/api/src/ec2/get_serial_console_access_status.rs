//! `GetSerialConsoleAccessStatus`: `DryRun` → `serialConsoleAccessEnabled`, `managedBy`.
//! serialgate has no declarative policies, so the setting is always managed by the account.

use console::Action;

use crate::ec2::Call;
use crate::ec2::error::Ec2Error;
use crate::ec2::xml::Xml;

const ACTION: &str = "GetSerialConsoleAccessStatus";

/// Handle + encode (the only parameter is `DryRun`).
pub async fn handle(call: &Call<'_>) -> Result<String, Ec2Error> {
    if call.params.flag("DryRun")? {
        return Err(call.dry_run(Action::GetSerialConsoleAccessStatus, &[]));
    }
    let enabled = call
        .service
        .get_serial_console_access_status(call.ctx)
        .await?;
    let mut x = Xml::response(ACTION, &call.ctx.request_id);
    x.leaf_display("serialConsoleAccessEnabled", enabled);
    x.leaf("managedBy", "account");
    Ok(x.finish(ACTION))
}
