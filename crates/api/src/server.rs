//! The HTTP front door: body limit, SigV4, routing, and the listener loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use console::ConsoleService;
use console::service::RequestContext;
use sigv4::{RequestParts, SigErrorKind, Verifier};

use crate::credentials::Credentials;
use crate::ec2::{self, Ec2Api};
use crate::error::{ApiError, ErrorCode};
use crate::health::health;
use crate::ops;
use crate::router::{Operation, route};

/// Largest request body accepted (keys are at most 4096 characters; 64 KiB is generous).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// A client must deliver its body within this time.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a request needs.
#[derive(Debug)]
pub struct ApiState {
    pub service: Arc<ConsoleService>,
    pub credentials: Credentials,
    pub verifier: Verifier,
    pub body_limit: usize,
    /// The EC2 Query front door on the same listener (its own `ec2` verifier).
    pub(crate) ec2: Ec2Api,
}

impl ApiState {
    /// State for `service`, verifying signatures for service `ec2-instance-connect` (AWS JSON)
    /// and `ec2` (EC2 Query) in the service's region.
    pub fn new(service: Arc<ConsoleService>, credentials: Credentials) -> Self {
        // Every SDK signs the target; requiring it stops a signature being replayed against
        // another operation.
        let verifier = Verifier::new("ec2-instance-connect", &service.settings().region)
            .require_signed_header(axum::http::HeaderName::from_static("x-amz-target"));
        let ec2 = Ec2Api::new(&service);
        Self {
            service,
            credentials,
            verifier,
            body_limit: DEFAULT_BODY_LIMIT,
            ec2,
        }
    }
}

/// The routes: `POST /` (the AWS JSON operations) and `GET /health`.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", post(handle_aws_json).fallback(method_not_allowed))
        .route("/health", get(health))
        .fallback(not_found)
        .with_state(state)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<ApiState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Small request/response pairs: Nagle would only add latency.
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn handle_aws_json(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    // EC2 Query shares `POST /`; its errors must be XML from the first check on.
    if ec2::is_query_request(req.headers()) {
        return ec2::handle(&state, &request_id, req).await;
    }
    match process(&state, &request_id, req).await {
        Ok(resp) => resp,
        Err(e) => e.with_request_id(&request_id).into_response(),
    }
}

async fn process(state: &ApiState, request_id: &str, req: Request) -> Result<Response, ApiError> {
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    let (parts, body) = req.into_parts();
    let body = read_body(body, &parts.headers, state.body_limit).await?;

    let request = RequestParts {
        method: &parts.method,
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    let now = state.service.clock().now();
    let verified = state
        .verifier
        .verify(&request, now, &state.credentials)
        .map_err(sig_error)?;

    let operation = route(&parts.headers)?;
    let ctx = RequestContext {
        request_id: request_id.to_owned(),
        principal: verified.into_principal(),
        source_ip,
    };
    tracing::debug!(request_id, operation = operation.name(), principal = %ctx.principal.arn, "request");
    match operation {
        Operation::SendSerialConsoleSSHPublicKey => {
            ops::send_serial_console_ssh_public_key::handle(&state.service, &ctx, &body).await
        }
        Operation::SendSSHPublicKey => {
            ops::send_ssh_public_key::handle(&state.service, &ctx, &body).await
        }
    }
}

/// Reads the whole body, refusing more than `limit` bytes (by header first, then by count) and
/// clients that stall.
pub(crate) async fn read_body(
    body: Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::verbatim(
            ErrorCode::RequestEntityTooLargeException,
            format!("Request body exceeds the {limit}-byte limit."),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(ApiError::verbatim(
            ErrorCode::SerializationException,
            "Timed out reading the request body.",
        )),
    }
}

fn sig_error(e: sigv4::SigError) -> ApiError {
    let code = match e.kind() {
        SigErrorKind::Missing => ErrorCode::MissingAuthenticationTokenException,
        SigErrorKind::Incomplete => ErrorCode::IncompleteSignatureException,
        SigErrorKind::UnknownAccessKey | SigErrorKind::InvalidToken => {
            ErrorCode::UnrecognizedClientException
        }
        // WrongScope, Expired, SignatureMismatch, PayloadHashMismatch, and any kind added later.
        _ => ErrorCode::InvalidSignatureException,
    };
    ApiError::verbatim(code, e.to_string())
}

async fn method_not_allowed(method: Method) -> Response {
    let body = serde_json::json!({
        "__type": "UnknownOperationException",
        "message": format!("Method {method} is not supported on /; AWS JSON requests use POST."),
    });
    (StatusCode::METHOD_NOT_ALLOWED, body.to_string()).into_response()
}

async fn not_found() -> Response {
    let body = serde_json::json!({
        "__type": "UnknownOperationException",
        "message": "No such resource. AWS JSON requests are POST /; health is GET /health.",
    });
    (StatusCode::NOT_FOUND, body.to_string()).into_response()
}
