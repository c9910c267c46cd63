//! `SpectateSerialConsole` (serialgate's own): `{"InstanceId", "SerialPort"?, "SSHPublicKey"}`,
//! the same members and answer as `SendSerialConsoleSSHPublicKey`; the key may then watch the
//! port read-only, once, within the key lifetime, whether or not a session holds it.

use axum::response::Response;
use console::ConsoleService;
use console::service::RequestContext;

use crate::error::ApiError;
use crate::ops::send_serial_console_ssh_public_key::parse;
use crate::ops::{TargetMember, refused_by_parse, success};

const OPERATION: &str = "SpectateSerialConsole";

/// Handle + encode.
pub async fn handle(
    service: &ConsoleService,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Response, ApiError> {
    let req = match parse(body) {
        Ok(req) => req,
        Err(e) => {
            let target = TargetMember::SerialPort;
            return Err(refused_by_parse(service, ctx, OPERATION, body, target, e).await);
        }
    };
    // The domain operation records the call from here on, whatever its outcome.
    let receipt = service.push_spectator_key(ctx, req).await?;
    Ok(success(&receipt.request_id))
}
