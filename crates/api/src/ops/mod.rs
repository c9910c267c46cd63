//! One module per API operation: parse the body into a domain request, call the domain, encode.
//! A request refused by its parse is recorded here; once the domain operation runs, it records
//! the call itself, whatever the outcome.

pub mod end_serial_console_session;
pub mod list_serial_console_sessions;
pub mod send_serial_console_ssh_public_key;
pub mod send_ssh_public_key;
pub mod spectate_serial_console;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use console::service::RequestContext;
use console::{
    CallSubject, ConsoleError, ConsoleService, InstanceId, OsUser, SerialPort, SshPublicKey,
};

use crate::error::{ApiError, ErrorCode, denial_sentence};
use crate::json::Members;

/// The success shape of the key pushes and `EndSerialConsoleSession`: `{"RequestId": …,
/// "Success": true}`, with the same id in `x-amzn-RequestId`.
pub(crate) fn success(request_id: &str) -> Response {
    let body = serde_json::json!({"RequestId": request_id, "Success": true});
    json_success(request_id, &body)
}

/// A JSON answer with the request id in `x-amzn-RequestId`.
pub(crate) fn json_success(request_id: &str, body: &serde_json::Value) -> Response {
    let mut resp = (StatusCode::OK, body.to_string()).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

/// Records a session control call answered with success; a record that cannot be written
/// turns the answer into `ServiceException` (no call is acknowledged without its record).
pub(crate) async fn answered(
    service: &ConsoleService,
    ctx: &RequestContext,
    operation: &'static str,
    subject: CallSubject,
) -> Result<(), ApiError> {
    service
        .record_answered(ctx, operation, subject)
        .await
        .map_err(ApiError::from)
}

/// Records a session control call refused with `error` (no policy decision involved).
pub(crate) async fn refused(
    service: &ConsoleService,
    ctx: &RequestContext,
    operation: &'static str,
    subject: CallSubject,
    error: ApiError,
) -> ApiError {
    let code = error.code.wire_name();
    service
        .record_refused(ctx, operation, subject, code, None)
        .await;
    error
}

/// Records and words a session control call the domain refused. These operations are
/// serialgate's own, so a policy refusal is `AccessDeniedException`, as in AWS's newer
/// services, rather than Instance Connect's `AuthException`.
pub(crate) async fn failed(
    service: &ConsoleService,
    ctx: &RequestContext,
    operation: &'static str,
    subject: CallSubject,
    e: ConsoleError,
) -> ApiError {
    let (error, denial) = match e {
        ConsoleError::Auth(denial) => (
            ApiError::new(ErrorCode::AccessDeniedException, denial_sentence(&denial)),
            Some(denial),
        ),
        other => (ApiError::from(other), None),
    };
    let code = error.code.wire_name();
    service
        .record_refused(ctx, operation, subject, code, denial.as_deref())
        .await;
    error
}

/// Maps a model validation failure to `InvalidArgsException`.
pub(crate) fn invalid<T>(r: Result<T, impl std::fmt::Display>) -> Result<T, crate::ApiError> {
    r.map_err(|e| crate::ApiError::invalid_args(e.to_string()))
}

/// The member naming what on the instance a push is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TargetMember {
    /// `SerialPort` (absent: port 0).
    SerialPort,
    /// `InstanceOSUser`.
    OsUser,
}

/// What a push refused by its parse was about, as far as its body says: each member only when
/// it is valid, so the trail holds no client junk.
pub(crate) fn subject(body: &[u8], target: TargetMember) -> CallSubject {
    let Ok(m) = Members::parse(body) else {
        return CallSubject::default();
    };
    let text = |name: &str| m.optional_string(name).ok().flatten();
    CallSubject {
        instance_id: text("InstanceId")
            .and_then(|id| InstanceId::parse(id).ok())
            .map(|id| id.to_string()),
        target: match target {
            TargetMember::SerialPort => m
                .optional_integer("SerialPort")
                .ok()
                .and_then(|port| SerialPort::from_api(port.unwrap_or(0)).ok())
                .map(|port| format!("port{port}")),
            TargetMember::OsUser => text("InstanceOSUser")
                .and_then(|user| OsUser::parse(user).ok())
                .map(|user| format!("user:{user}")),
        },
        key_fingerprint: text("SSHPublicKey")
            .and_then(|key| SshPublicKey::parse(key).ok())
            .map(|key| key.fingerprint().to_owned()),
    }
}

/// Records a push its parse refused, and passes the error on.
pub(crate) async fn refused_by_parse(
    service: &ConsoleService,
    ctx: &RequestContext,
    operation: &'static str,
    body: &[u8],
    target: TargetMember,
    error: ApiError,
) -> ApiError {
    service
        .record_refused(
            ctx,
            operation,
            subject(body, target),
            error.code.wire_name(),
            None,
        )
        .await;
    error
}
