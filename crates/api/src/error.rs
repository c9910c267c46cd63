//! Every error the API can return, with its AWS wire name and HTTP status side by side.
//!
//! Statuses follow the current Smithy model of the service (403/404/429/503 where it says so).
//! The client sees `{"__type": CODE, "Message": TEXT}`; an internal cause is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use console::{Busy, ConsoleError, Denial, NotFound};

/// The wire codes this service produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    // Modelled exceptions of EC2 Instance Connect.
    AuthException,
    EC2InstanceNotFoundException,
    EC2InstanceStateInvalidException,
    EC2InstanceTypeInvalidException,
    EC2InstanceUnavailableException,
    InvalidArgsException,
    SerialConsoleAccessDisabledException,
    SerialConsoleSessionLimitExceededException,
    SerialConsoleSessionUnavailableException,
    SerialConsoleSessionUnsupportedException,
    ServiceException,
    ThrottlingException,
    // serialgate's session control, in the names AWS services use for these cases.
    /// The caller's policies refuse a session control call.
    AccessDeniedException,
    /// No live session on the named serial port.
    ResourceNotFoundException,
    // Front-door errors common to all AWS JSON services.
    MissingAuthenticationTokenException,
    IncompleteSignatureException,
    InvalidSignatureException,
    UnrecognizedClientException,
    UnknownOperationException,
    SerializationException,
    RequestEntityTooLargeException,
    /// The request was not completed within `[api] request_timeout_seconds`; SDKs retry it.
    RequestTimeoutException,
}

impl ErrorCode {
    /// (`__type`, HTTP status, AWS's documented message).
    fn spec(self) -> (&'static str, StatusCode, &'static str) {
        use ErrorCode::*;
        match self {
            AuthException => (
                "AuthException",
                StatusCode::FORBIDDEN,
                "Either your AWS credentials are not valid or you do not have access to the EC2 instance.",
            ),
            EC2InstanceNotFoundException => (
                "EC2InstanceNotFoundException",
                StatusCode::NOT_FOUND,
                "The specified instance was not found.",
            ),
            EC2InstanceStateInvalidException => (
                "EC2InstanceStateInvalidException",
                StatusCode::BAD_REQUEST,
                "Unable to connect because the instance is not in a valid state. Connecting to a stopped or terminated instance is not supported. If the instance is stopped, start your instance, and try to connect again.",
            ),
            EC2InstanceTypeInvalidException => (
                "EC2InstanceTypeInvalidException",
                StatusCode::BAD_REQUEST,
                "The instance type is not supported for connecting via the serial console. Only Nitro instance types are currently supported.",
            ),
            EC2InstanceUnavailableException => (
                "EC2InstanceUnavailableException",
                StatusCode::SERVICE_UNAVAILABLE,
                "The instance is currently unavailable. Wait a few minutes and try again.",
            ),
            InvalidArgsException => (
                "InvalidArgsException",
                StatusCode::BAD_REQUEST,
                "One of the parameters is not valid.",
            ),
            SerialConsoleAccessDisabledException => (
                "SerialConsoleAccessDisabledException",
                StatusCode::FORBIDDEN,
                "Your account is not authorized to use the EC2 Serial Console. To authorize your account, run the EnableSerialConsoleAccess API.",
            ),
            SerialConsoleSessionLimitExceededException => (
                "SerialConsoleSessionLimitExceededException",
                StatusCode::BAD_REQUEST,
                "The instance currently has 1 active serial console session. Only 1 session is supported at a time.",
            ),
            SerialConsoleSessionUnavailableException => (
                "SerialConsoleSessionUnavailableException",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Unable to start a serial console session. Please try again.",
            ),
            SerialConsoleSessionUnsupportedException => (
                "SerialConsoleSessionUnsupportedException",
                StatusCode::BAD_REQUEST,
                "Your instance's BIOS version is unsupported for serial console connection. Reboot your instance to update its BIOS, and then try again to connect.",
            ),
            ServiceException => (
                "ServiceException",
                StatusCode::INTERNAL_SERVER_ERROR,
                "The service encountered an error. Follow the instructions in the error message and try again.",
            ),
            ThrottlingException => (
                "ThrottlingException",
                StatusCode::TOO_MANY_REQUESTS,
                "The requests were made too frequently and have been throttled. Wait a while and try again. To increase the limit on your request frequency, contact AWS Support.",
            ),
            AccessDeniedException => (
                "AccessDeniedException",
                StatusCode::FORBIDDEN,
                "You do not have sufficient access to perform this action.",
            ),
            ResourceNotFoundException => (
                "ResourceNotFoundException",
                StatusCode::BAD_REQUEST,
                "The specified resource was not found.",
            ),
            MissingAuthenticationTokenException => (
                "MissingAuthenticationTokenException",
                StatusCode::FORBIDDEN,
                "Missing Authentication Token",
            ),
            IncompleteSignatureException => (
                "IncompleteSignatureException",
                StatusCode::BAD_REQUEST,
                "The request signature does not conform to AWS standards.",
            ),
            InvalidSignatureException => (
                "InvalidSignatureException",
                StatusCode::BAD_REQUEST,
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
            ),
            UnrecognizedClientException => (
                "UnrecognizedClientException",
                StatusCode::BAD_REQUEST,
                "The security token included in the request is invalid.",
            ),
            UnknownOperationException => (
                "UnknownOperationException",
                StatusCode::BAD_REQUEST,
                "The requested operation is not supported by this service.",
            ),
            SerializationException => (
                "SerializationException",
                StatusCode::BAD_REQUEST,
                "The request body could not be parsed.",
            ),
            RequestEntityTooLargeException => (
                "RequestEntityTooLargeException",
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request entity too large.",
            ),
            RequestTimeoutException => (
                "RequestTimeoutException",
                StatusCode::REQUEST_TIMEOUT,
                "The request timed out.",
            ),
        }
    }

    pub fn wire_name(self) -> &'static str {
        self.spec().0
    }

    pub fn status(self) -> StatusCode {
        self.spec().1
    }

    /// AWS's documented text for this error.
    pub fn documented_message(self) -> &'static str {
        self.spec().2
    }

    /// Front-door errors use a lowercase `message` member, as AWS's own front door does.
    fn message_member(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MissingAuthenticationTokenException
            | IncompleteSignatureException
            | InvalidSignatureException
            | UnrecognizedClientException
            | UnknownOperationException
            | SerializationException
            | RequestEntityTooLargeException
            | RequestTimeoutException => "message",
            _ => "Message",
        }
    }
}

/// An error response in the making.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    /// Sent to the client.
    pub message: String,
    /// Logged only.
    pub cause: Option<String>,
    pub request_id: String,
}

impl ApiError {
    /// The documented message, followed by `detail` when there is one.
    pub fn new(code: ErrorCode, detail: impl AsRef<str>) -> Self {
        let detail = detail.as_ref();
        let base = code.documented_message();
        let message = if detail.is_empty() {
            base.to_owned()
        } else {
            format!("{base} {detail}")
        };
        Self {
            code,
            message,
            cause: None,
            request_id: String::new(),
        }
    }

    /// Exactly `message`, without the documented prefix (front-door texts are already AWS's).
    pub fn verbatim(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            cause: None,
            request_id: String::new(),
        }
    }

    pub fn internal(cause: impl Into<String>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(ErrorCode::ServiceException, "")
        }
    }

    pub fn with_request_id(mut self, id: &str) -> Self {
        id.clone_into(&mut self.request_id);
        self
    }

    pub fn invalid_args(reason: impl AsRef<str>) -> Self {
        Self::new(ErrorCode::InvalidArgsException, reason)
    }
}

/// AWS's sentence for a request the caller's policies refused (both APIs word it alike; EC2
/// puts its own sentence in front).
pub(crate) fn denial_sentence(denial: &Denial) -> String {
    iam::denial_sentence(
        &denial.principal_arn,
        denial.action.iam_name(),
        &denial.resource,
        denial.denied_by.is_some(),
    )
}

/// Instance Connect's detail for an instance that does not exist for the caller.
fn instance_not_found(missing: &NotFound) -> String {
    match &missing.availability_zone {
        Some(az) => format!(
            "Instance {} is not in availability zone {az}.",
            ids(&missing.ids)
        ),
        None => format!("Instance {} does not exist.", ids(&missing.ids)),
    }
}

/// Why a port takes no push: a session on it, or the last one tearing down.
pub(crate) fn port_busy(busy: &Busy) -> String {
    match busy.tearing_down_for_s {
        Some(secs) => format!(
            "The previous session on {}.port{} is being torn down; try again in {secs} s.",
            busy.instance, busy.port
        ),
        None => format!(
            "A session is connected to {}.port{}.",
            busy.instance, busy.port
        ),
    }
}

/// Instance ids as EC2 lists them in one message: `i-1, i-2`.
pub(crate) fn ids(ids: &[console::InstanceId]) -> String {
    let list: Vec<&str> = ids.iter().map(console::InstanceId::as_str).collect();
    list.join(", ")
}

impl From<ConsoleError> for ApiError {
    fn from(e: ConsoleError) -> Self {
        use ErrorCode::*;
        match e {
            ConsoleError::Auth(denial) => ApiError::new(AuthException, denial_sentence(&denial)),
            ConsoleError::SerialConsoleAccessDisabled(acct) => ApiError::new(
                SerialConsoleAccessDisabledException,
                format!("Serial console access is disabled for account {acct}."),
            ),
            ConsoleError::InvalidArgs(r) => ApiError::new(InvalidArgsException, r),
            ConsoleError::InstanceNotFound(missing) => {
                ApiError::new(EC2InstanceNotFoundException, instance_not_found(&missing))
            }
            ConsoleError::InstanceTypeInvalid(t) => ApiError::new(
                EC2InstanceTypeInvalidException,
                format!("Instance type {t} is not built on the Nitro System."),
            ),
            ConsoleError::InstanceStateInvalid(s) => ApiError::new(
                EC2InstanceStateInvalidException,
                format!("The instance is {}.", s.state),
            ),
            ConsoleError::InstanceUnavailable(r) => ApiError {
                cause: Some(r),
                ..ApiError::new(EC2InstanceUnavailableException, "")
            },
            ConsoleError::SessionUnsupported(r) => ApiError {
                cause: Some(r),
                ..ApiError::new(SerialConsoleSessionUnsupportedException, "")
            },
            ConsoleError::SessionLimitExceeded(busy) => {
                ApiError::new(SerialConsoleSessionLimitExceededException, port_busy(&busy))
            }
            ConsoleError::SessionUnavailable(r) => ApiError {
                cause: Some(r),
                ..ApiError::new(SerialConsoleSessionUnavailableException, "")
            },
            ConsoleError::Throttling(r) => ApiError {
                cause: Some(r),
                ..ApiError::new(ThrottlingException, "")
            },
            ConsoleError::SessionNotFound(port) => ApiError::new(
                ResourceNotFoundException,
                format!("There is no serial console session on {port}."),
            ),
            ConsoleError::Internal(r) => ApiError::internal(r),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        if status.is_server_error() {
            tracing::warn!(code = self.code.wire_name(), request_id = %self.request_id, cause = self.cause.as_deref().unwrap_or("-"), "request failed");
        } else {
            // Debug, not info: every refusal is in the audit trail (authenticated ones one by one,
            // the others counted per source), so junk traffic does not grow the log.
            tracing::debug!(code = self.code.wire_name(), request_id = %self.request_id, cause = self.cause.as_deref().unwrap_or("-"), message = %self.message, "request refused");
        }
        let mut body = serde_json::Map::with_capacity(2);
        body.insert("__type".into(), self.code.wire_name().into());
        body.insert(self.code.message_member().into(), self.message.into());
        let body = serde_json::Value::Object(body).to_string();
        let mut resp = (status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert("x-amzn-requestid", v);
        }
        resp
    }
}
