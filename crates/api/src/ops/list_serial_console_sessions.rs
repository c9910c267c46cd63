//! `ListSerialConsoleSessions` (serialgate's own): `{"InstanceId"?}` → `{"Sessions": [{"InstanceId",
//! "SerialPort", "Principal", "SourceAddress", "StartTime", "Node", "Spectators"}]}`.

use axum::response::Response;
use console::service::RequestContext;
use console::{CallSubject, ConsoleService, InstanceId, SessionEntry};
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::json::Members;
use crate::ops::{answered, failed, invalid, json_success, refused};

const OPERATION: &str = "ListSerialConsoleSessions";

/// Parse: the optional instance filter.
pub fn parse(body: &[u8]) -> Result<Option<InstanceId>, ApiError> {
    let m = Members::parse(body)?;
    m.optional_string("InstanceId")?
        .map(|id| invalid(InstanceId::parse(id)))
        .transpose()
}

/// One session as the answer lists it; `StartTime` in epoch seconds, as AWS JSON timestamps.
fn encode(e: &SessionEntry) -> Value {
    json!({
        "InstanceId": e.slot.instance.as_str(),
        "SerialPort": e.slot.port.get(),
        "Principal": e.principal_arn,
        "SourceAddress": e.source_address,
        "StartTime": e.started_ms as f64 / 1000.0,
        "Node": e.node,
        "Spectators": e.spectators,
    })
}

/// Handle + encode; the call is recorded here, whatever its outcome.
pub async fn handle(
    service: &ConsoleService,
    ctx: &RequestContext,
    body: &[u8],
) -> Result<Response, ApiError> {
    let filter = match parse(body) {
        Ok(f) => f,
        Err(e) => return Err(refused(service, ctx, OPERATION, CallSubject::default(), e).await),
    };
    let subject = CallSubject {
        instance_id: filter.as_ref().map(ToString::to_string),
        ..CallSubject::default()
    };
    match service.list_sessions(ctx, filter.as_ref()).await {
        Ok(sessions) => {
            answered(service, ctx, OPERATION, subject).await?;
            let list: Vec<Value> = sessions.iter().map(encode).collect();
            Ok(json_success(&ctx.request_id, &json!({ "Sessions": list })))
        }
        Err(e) => Err(failed(service, ctx, OPERATION, subject, e).await),
    }
}
