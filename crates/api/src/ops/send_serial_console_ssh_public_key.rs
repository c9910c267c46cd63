//! `SendSerialConsoleSSHPublicKey`: `{"InstanceId", "SerialPort"?, "SSHPublicKey"}`.

use axum::response::Response;
use console::ops::PushSerialKey;
use console::service::RequestContext;
use console::{ConsoleService, InstanceId, SerialPort, SshPublicKey};

use crate::error::ApiError;
use crate::json::Members;
use crate::ops::{TargetMember, invalid, refused_by_parse, success};

const OPERATION: &str = "SendSerialConsoleSSHPublicKey";

/// Parse: JSON body → validated domain request.
pub fn parse(body: &[u8]) -> Result<PushSerialKey, ApiError> {
    let m = Members::parse(body)?;
    let instance_id = m.required_string("InstanceId")?;
    let key = m.required_string("SSHPublicKey")?;
    let port = m.optional_integer("SerialPort")?.unwrap_or(0);
    Ok(PushSerialKey {
        instance_id: invalid(InstanceId::parse(instance_id))?,
        port: invalid(SerialPort::from_api(port))?,
        key: invalid(SshPublicKey::parse(key))?,
    })
}

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
    let receipt = service.push_serial_key(ctx, req).await?;
    Ok(success(&receipt.request_id))
}
