//! `EnableSerialConsoleAccess`: `DryRun` → `serialConsoleAccessEnabled` (true). The account is
//! the caller's; the switch is what `SendSerialConsoleSSHPublicKey` checks.

use console::Action;

use crate::ec2::Call;
use crate::ec2::error::Ec2Error;
use crate::ec2::xml::Xml;

const ACTION: &str = "EnableSerialConsoleAccess";

/// Handle + encode (the only parameter is `DryRun`).
pub async fn handle(call: &Call<'_>) -> Result<String, Ec2Error> {
    switch(call, true, ACTION, Action::EnableSerialConsoleAccess).await
}

/// Enable and Disable differ only in the value they set.
pub(super) async fn switch(
    call: &Call<'_>,
    on: bool,
    name: &str,
    action: Action,
) -> Result<String, Ec2Error> {
    if call.params.flag("DryRun")? {
        return Err(call.dry_run(action, &[]));
    }
    let enabled = call
        .service
        .switch_serial_console_access(call.ctx, on)
        .await?;
    let mut x = Xml::response(name, &call.ctx.request_id);
    x.leaf_display("serialConsoleAccessEnabled", enabled);
    Ok(x.finish(name))
}
