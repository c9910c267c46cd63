//! `DisableSerialConsoleAccess`: `DryRun` → `serialConsoleAccessEnabled` (false). From then on
//! `SendSerialConsoleSSHPublicKey` answers `SerialConsoleAccessDisabledException`.

use console::Action;

use crate::ec2::Call;
use crate::ec2::enable_serial_console_access::switch;
use crate::ec2::error::Ec2Error;

const ACTION: &str = "DisableSerialConsoleAccess";

/// Handle + encode (the only parameter is `DryRun`).
pub async fn handle(call: &Call<'_>) -> Result<String, Ec2Error> {
    switch(call, false, ACTION, Action::DisableSerialConsoleAccess).await
}
