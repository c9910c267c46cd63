//! `EndSerialConsoleSession` (serialgate's own): `{"InstanceId", "SerialPort"?, "Reason"?}` →
//! `{"RequestId", "Success": true}`. The answer means the holder was asked: the session closes
//! on its node within a second or so.

use axum::response::Response;
use console::ops::EndSessionRequest;
use console::service::RequestContext;
use console::{CallSubject, ConsoleService, InstanceId, SerialPort};

use crate::error::ApiError;
use crate::json::Members;
use crate::ops::{TargetMember, answered, failed, invalid, refused, subject, success};

const OPERATION: &str = "EndSerialConsoleSession";

/// Parse: JSON body → validated request (the reason bounded and printable).
pub fn parse(body: &[u8]) -> Result<EndSessionRequest, ApiError> {
    let m = Members::parse(body)?;
    let instance_id = invalid(InstanceId::parse(m.required_string("InstanceId")?))?;
    let port = invalid(SerialPort::from_api(
        m.optional_integer("SerialPort")?.unwrap_or(0),
    ))?;
    let reason = m.optional_string("Reason")?.unwrap_or("");
    invalid(EndSessionRequest::new(instance_id, port, reason))
}

/// Handle + encode; the call is recorded here, whatever its outcome.
pub async fn handle(
    service: &ConsoleService,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Response, ApiError> {
    let req = match parse(body) {
        Ok(req) => req,
        Err(e) => {
            let about = subject(body, TargetMember::SerialPort);
            return Err(refused(service, ctx, OPERATION, about, e).await);
        }
    };
    let about = CallSubject {
        instance_id: Some(req.instance_id.to_string()),
        target: Some(format!("port{}", req.port)),
        key_fingerprint: None,
    };
    match service.request_session_end(ctx, &req).await {
        Ok(_) => {
            answered(service, ctx, OPERATION, about).await?;
            Ok(success(&ctx.request_id))
        }
        Err(e) => Err(failed(service, ctx, OPERATION, about, e).await),
    }
}
