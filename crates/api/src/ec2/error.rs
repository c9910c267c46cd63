//! EC2's error codes, each with its HTTP status beside it, and the XML error document.
//!
//! EC2 answers every failure with `<Response><Errors><Error><Code/><Message/></Error></Errors>
//! <RequestID/></Response>`. As on the JSON side, the client sees the code and message; an
//! internal cause is logged (5xx at warn, 4xx at info) and never serialised.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use console::{Action, ConsoleError, Denial, InstanceId};

use crate::error::{denial_sentence, ids, port_busy};

use crate::ec2::xml::Xml;

/// The EC2 codes this service produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ec2Code {
    // Front door: signature, protocol, routing.
    AuthFailure,
    MissingParameter,
    IncompleteSignature,
    RequestExpired,
    MissingAction,
    InvalidAction,
    NoSuchVersion,
    RequestEntityTooLarge,
    RequestTimeout,
    // Parameters.
    InvalidParameterValue,
    InvalidInstanceIdMalformed,
    // Outcomes of the domain.
    InvalidInstanceIdNotFound,
    IncorrectInstanceState,
    UnauthorizedOperation,
    DryRunOperation,
    UnsupportedOperation,
    RequestLimitExceeded,
    Unavailable,
    InternalError,
}

impl Ec2Code {
    /// (wire code, HTTP status).
    fn spec(self) -> (&'static str, StatusCode) {
        use Ec2Code::*;
        match self {
            AuthFailure => ("AuthFailure", StatusCode::UNAUTHORIZED),
            MissingParameter => ("MissingParameter", StatusCode::BAD_REQUEST),
            IncompleteSignature => ("IncompleteSignature", StatusCode::BAD_REQUEST),
            RequestExpired => ("RequestExpired", StatusCode::BAD_REQUEST),
            MissingAction => ("MissingAction", StatusCode::BAD_REQUEST),
            InvalidAction => ("InvalidAction", StatusCode::BAD_REQUEST),
            NoSuchVersion => ("NoSuchVersion", StatusCode::BAD_REQUEST),
            RequestEntityTooLarge => ("RequestEntityTooLarge", StatusCode::PAYLOAD_TOO_LARGE),
            RequestTimeout => ("RequestTimeout", StatusCode::BAD_REQUEST),
            InvalidParameterValue => ("InvalidParameterValue", StatusCode::BAD_REQUEST),
            InvalidInstanceIdMalformed => ("InvalidInstanceID.Malformed", StatusCode::BAD_REQUEST),
            InvalidInstanceIdNotFound => ("InvalidInstanceID.NotFound", StatusCode::BAD_REQUEST),
            IncorrectInstanceState => ("IncorrectInstanceState", StatusCode::BAD_REQUEST),
            UnauthorizedOperation => ("UnauthorizedOperation", StatusCode::FORBIDDEN),
            DryRunOperation => ("DryRunOperation", StatusCode::PRECONDITION_FAILED),
            UnsupportedOperation => ("UnsupportedOperation", StatusCode::BAD_REQUEST),
            RequestLimitExceeded => ("RequestLimitExceeded", StatusCode::SERVICE_UNAVAILABLE),
            Unavailable => ("Unavailable", StatusCode::SERVICE_UNAVAILABLE),
            InternalError => ("InternalError", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    pub fn wire_name(self) -> &'static str {
        self.spec().0
    }

    pub fn status(self) -> StatusCode {
        self.spec().1
    }
}

/// EC2's texts for the front-door errors, which carry no detail on AWS either.
pub const AUTH_FAILURE: &str = "AWS was not able to validate the provided access credentials";
pub const REQUEST_EXPIRED: &str = "Request has expired.";
pub const DRY_RUN: &str = "Request would have succeeded, but DryRun flag is set.";
pub const UNAUTHORIZED: &str = "You are not authorized to perform this operation.";
const REQUEST_LIMIT: &str = "Request limit exceeded.";
const INTERNAL: &str = "An internal error has occurred";
const UNAVAILABLE: &str = "The server is unavailable right now. Try again later.";

/// An EC2 error response in the making.
#[derive(Debug, Clone)]
pub struct Ec2Error {
    pub code: Ec2Code,
    /// Sent to the client.
    pub message: String,
    /// Logged only.
    pub cause: Option<String>,
    /// When the caller's policies refused the call: what the audit record keeps of it.
    pub denial: Option<Box<Denial>>,
}

impl Ec2Error {
    pub fn new(code: Ec2Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            cause: None,
            denial: None,
        }
    }

    /// `message` for the client, `cause` for the log.
    pub fn with_cause(code: Ec2Code, message: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            cause: Some(cause.into()),
            ..Self::new(code, message)
        }
    }

    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(Ec2Code::InvalidParameterValue, message)
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            Ec2Code::MissingParameter,
            format!("The request must contain the parameter {}", echo(name)),
        )
    }

    /// EC2's wording for an id that is not `i-` and hex.
    pub fn malformed_instance_id(id: &str) -> Self {
        Self::new(
            Ec2Code::InvalidInstanceIdMalformed,
            format!("Invalid id: \"{}\" (expecting \"i-...\")", echo(id)),
        )
    }

    /// The response, with `request_id` in the body and in `x-amzn-RequestId`.
    pub fn into_response(self, request_id: &str) -> Response {
        let (name, status) = (self.code.wire_name(), self.code.status());
        let cause = self.cause.as_deref().unwrap_or("-");
        if status.is_server_error() {
            tracing::warn!(code = name, request_id, cause, "EC2 request failed");
        } else {
            // Debug: the audit trail has every refusal (see `crate::error`).
            tracing::debug!(code = name, request_id, cause, message = %self.message, "EC2 request refused");
        }
        xml_response(
            status,
            Xml::error(name, &self.message, request_id),
            request_id,
        )
    }
}

/// A `text/xml` response carrying `request_id` in `x-amzn-RequestId` as well as in the body.
pub(crate) fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut resp = (status, body).into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

impl From<ConsoleError> for Ec2Error {
    fn from(e: ConsoleError) -> Self {
        use Ec2Code::*;
        match e {
            ConsoleError::InstanceNotFound(missing) => {
                Ec2Error::new(InvalidInstanceIdNotFound, not_found(&missing.ids))
            }
            ConsoleError::Auth(denial) => Ec2Error {
                denial: Some(denial.clone()),
                ..Ec2Error::new(
                    UnauthorizedOperation,
                    format!("{UNAUTHORIZED} {}", denial_sentence(&denial)),
                )
            },
            ConsoleError::InvalidArgs(reason) => Ec2Error::new(InvalidParameterValue, reason),
            ConsoleError::InstanceStateInvalid(s) => {
                let verb = match s.change {
                    Some(Action::StartInstances) => "started",
                    Some(Action::StopInstances) => "stopped",
                    Some(Action::RebootInstances) => "rebooted",
                    _ => "used",
                };
                Ec2Error::new(
                    IncorrectInstanceState,
                    format!(
                        "The instance '{}' is not in a state from which it can be {verb}.",
                        s.instance
                    ),
                )
            }
            ConsoleError::Throttling(cause) => {
                Ec2Error::with_cause(RequestLimitExceeded, REQUEST_LIMIT, cause)
            }
            ConsoleError::Internal(cause) => Ec2Error::with_cause(InternalError, INTERNAL, cause),
            ConsoleError::SessionNotFound(cause) => {
                Ec2Error::with_cause(InternalError, INTERNAL, cause)
            }
            // None of the EC2 actions produces these today; each still gets the nearest EC2
            // code, so a new path in the domain cannot turn into a panic or a wrong 200.
            ConsoleError::SerialConsoleAccessDisabled(account) => Ec2Error::new(
                UnauthorizedOperation,
                format!("{UNAUTHORIZED} Serial console access is disabled for account {account}."),
            ),
            ConsoleError::InstanceTypeInvalid(t) => Ec2Error::new(
                UnsupportedOperation,
                format!("The instance type {t} is not supported for this operation."),
            ),
            ConsoleError::SessionUnsupported(r) => Ec2Error::new(UnsupportedOperation, r),
            ConsoleError::SessionLimitExceeded(busy) => {
                Ec2Error::new(UnsupportedOperation, port_busy(&busy))
            }
            ConsoleError::InstanceUnavailable(cause) | ConsoleError::SessionUnavailable(cause) => {
                Ec2Error::with_cause(Unavailable, UNAVAILABLE, cause)
            }
        }
    }
}

/// EC2's "does not exist" text.
fn not_found(missing: &[InstanceId]) -> String {
    match missing {
        [one] => format!("The instance ID '{one}' does not exist"),
        many => format!("The instance IDs '{}' do not exist", ids(many)),
    }
}

/// Client text echoed into a message is cut short, so an error stays small whatever was sent.
pub fn echo(text: &str) -> &str {
    const MAX: usize = 128;
    if text.len() <= MAX {
        return text;
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn domain_errors_map_to_ec2_codes() {
        let id = |s: &str| InstanceId::parse(s).unwrap();
        let e = Ec2Error::from(ConsoleError::InstanceNotFound(console::NotFound::one(id(
            "i-0000000001",
        ))));
        assert_eq!(e.code.wire_name(), "InvalidInstanceID.NotFound");
        assert_eq!(e.message, "The instance ID 'i-0000000001' does not exist");
        let e = Ec2Error::from(ConsoleError::InstanceNotFound(console::NotFound {
            ids: vec![id("i-0000000001"), id("i-0000000002")],
            availability_zone: None,
        }));
        assert_eq!(
            e.message,
            "The instance IDs 'i-0000000001, i-0000000002' do not exist"
        );
        let e = Ec2Error::from(ConsoleError::InstanceStateInvalid(console::StateInvalid {
            instance: id("i-0000000001"),
            state: console::InstanceState::Terminated,
            change: Some(console::Action::RebootInstances),
        }));
        assert_eq!(
            (e.code.wire_name(), e.message.as_str()),
            (
                "IncorrectInstanceState",
                "The instance 'i-0000000001' is not in a state from which it can be rebooted."
            )
        );
        let e = Ec2Error::from(ConsoleError::SessionLimitExceeded(console::Busy {
            instance: id("i-0000000001"),
            port: console::SerialPort::ZERO,
            tearing_down_for_s: Some(3),
        }));
        assert_eq!(
            e.message,
            "The previous session on i-0000000001.port0 is being torn down; try again in 3 s."
        );
        let e = Ec2Error::from(ConsoleError::Internal("db on fire".into()));
        assert_eq!(e.code.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("fire"));
        let e = Ec2Error::from(ConsoleError::Throttling("bucket empty".into()));
        assert_eq!(
            (e.code.wire_name(), e.code.status()),
            ("RequestLimitExceeded", StatusCode::SERVICE_UNAVAILABLE)
        );
        let denial = Denial {
            principal_arn: "arn:aws:iam::111122223333:user/alice".into(),
            action: console::Action::StopInstances,
            resource: "arn:aws:ec2:us-east-1:111122223333:instance/i-0000000001".into(),
            denied_by: None,
        };
        let e = Ec2Error::from(ConsoleError::Auth(Box::new(denial.clone())));
        assert_eq!(
            (e.code.wire_name(), e.code.status()),
            ("UnauthorizedOperation", StatusCode::FORBIDDEN)
        );
        assert_eq!(
            e.message,
            "You are not authorized to perform this operation. User: arn:aws:iam::111122223333:user/alice \
             is not authorized to perform: ec2:StopInstances on resource: \
             arn:aws:ec2:us-east-1:111122223333:instance/i-0000000001 because no identity-based \
             policy allows the ec2:StopInstances action"
        );
        assert_eq!(e.denial.as_deref(), Some(&denial));
        let explicit = Denial {
            denied_by: Some("policy \"p\" Statement[0]".into()),
            ..denial
        };
        let e = Ec2Error::from(ConsoleError::Auth(Box::new(explicit)));
        assert!(
            e.message
                .ends_with("with an explicit deny in an identity-based policy"),
            "{}",
            e.message
        );
    }

    #[test]
    fn echo_is_bounded() {
        let long = "é".repeat(200);
        assert!(echo(&long).len() <= 128);
        let e = Ec2Error::malformed_instance_id(&long);
        assert!(e.message.len() < 200);
    }
}
