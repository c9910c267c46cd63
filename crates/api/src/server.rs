//! The HTTP front door: body limit, SigV4, routing, and the whole-request deadline. The
//! listener loop is in `listener.rs`, one connection in `connection.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use console::service::RequestContext;
use console::{CallSubject, ConsoleService, Principal};
use sigv4::{RequestParts, SigError, SigErrorKind, Verified, Verifier};
use tokio::time::Instant;

use crate::audit::{count_refusal, requested_name};
use crate::credentials::Credentials;
use crate::ec2::{self, Ec2Api};
use crate::error::{ApiError, ErrorCode};
use crate::health::health;
use crate::instance_keys::{self, InstanceKeys};
use crate::limits::ApiLimits;
use crate::ops;
use crate::ready::{Readiness, ready};
use crate::refusals::{DEFAULT_WINDOW, RefusalTally};
use crate::router::{Operation, requested_target, route};

/// Largest request body accepted (keys are at most 4096 characters; 64 KiB is generous).
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// Bodies up to this size are verified on the async worker: with every other input at its cap,
/// the verifier's worst case is about a fifth of a millisecond (`cargo bench -p sigv4`). A
/// larger body (an operator may raise `max_body_bytes`) is hashed on the blocking pool instead,
/// so no request holds a worker that serves other connections for much longer than that.
const VERIFY_INLINE_MAX_BODY: usize = DEFAULT_BODY_LIMIT;

/// When a request must be answered by; the listener puts it in the request's extensions,
/// counted from the first byte of the request head.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestDeadline(pub(crate) Instant);

/// Everything a request needs.
#[derive(Debug)]
pub struct ApiState {
    pub service: Arc<ConsoleService>,
    pub credentials: Credentials,
    pub verifier: Verifier,
    pub body_limit: usize,
    /// Connection caps, timeouts and request-head limits of the listener.
    pub limits: ApiLimits,
    /// The EC2 Query front door on the same listener (its own `ec2` verifier).
    pub(crate) ec2: Ec2Api,
    /// What `GET /ready` asks (none: ready whenever serving).
    pub readiness: Option<Arc<dyn Readiness>>,
    /// How long unauthenticated refusals are counted before their counts are written to the
    /// audit trail (they are also written when the server stops).
    pub refusal_window: Duration,
    /// The unauthenticated refusals of the window in progress.
    pub(crate) refused: Arc<RefusalTally>,
    /// The signer and tokens of `GET /instance-keys/v1/{os_user}` (none: it answers 404).
    pub instance_keys: Option<InstanceKeys>,
    /// The browser console under `/console/` (none: its pages say it is off).
    pub browser: Option<crate::browser::BrowserConsole>,
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
            limits: ApiLimits::default(),
            ec2,
            readiness: None,
            refusal_window: DEFAULT_WINDOW,
            refused: Arc::new(RefusalTally::default()),
            instance_keys: None,
            browser: None,
        }
    }
}

/// The routes: `POST /` (the AWS JSON operations), `GET /health` (liveness), `GET /ready`
/// (readiness) and `GET /instance-keys/v1/{os_user}` (an instance's keys; every path under
/// the prefix and every method there gets that route's answers).
pub fn router(state: Arc<ApiState>) -> Router {
    // `any`: a method router's own refusal would add an `allow` header, telling this route apart.
    let instance_keys = any(instance_keys::handle);
    Router::new()
        .route("/", post(handle_aws_json).fallback(method_not_allowed))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/instance-keys/v1/", instance_keys.clone())
        .route("/instance-keys/v1/{*os_user}", instance_keys)
        .route("/console/assets/{name}", get(crate::browser::asset))
        .route("/console/{instance}/{port}", get(crate::browser::console))
        .route("/console/{instance}/{port}/ws", get(crate::browser::socket))
        .fallback(not_found)
        .with_state(state)
}

async fn handle_aws_json(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let deadline = req
        .extensions()
        .get::<RequestDeadline>()
        .map_or_else(|| Instant::now() + state.limits.request_timeout, |d| d.0);
    let seconds = state.limits.request_timeout.as_secs();
    // EC2 Query shares `POST /`; its errors must be XML from the first check on.
    if ec2::is_query_request(req.headers()) {
        return match tokio::time::timeout_at(deadline, ec2::handle(&state, &request_id, req)).await
        {
            Ok(resp) => resp,
            Err(_) => ec2::timed_out(&request_id, seconds),
        };
    }
    let result = match tokio::time::timeout_at(deadline, process(&state, &request_id, req)).await {
        Ok(result) => result,
        Err(_) => Err(ApiError::verbatim(
            ErrorCode::RequestTimeoutException,
            format!("The request was not completed within {seconds} seconds."),
        )),
    };
    match result {
        Ok(resp) => resp,
        Err(e) => e.with_request_id(&request_id).into_response(),
    }
}

async fn process(
    state: &Arc<ApiState>,
    request_id: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let (source_ip, secure_transport) = crate::connection::origin(&req);
    let (parts, body) = req.into_parts();
    let body = read_body(body, &parts.headers, state.body_limit).await?;
    let verified = match verify(state, Front::AwsJson, &parts, &body).await {
        Ok(verified) => verified,
        Err(VerifyError::Rejected(e)) => {
            let kind = e.kind();
            let error = sig_error(e);
            count_refusal(state, source_ip, &parts, kind, error.code.wire_name());
            return Err(error);
        }
        Err(VerifyError::Failed(cause)) => return Err(ApiError::internal(cause)),
    };

    // Authenticated from here on: every outcome is recorded, by the domain operation once one
    // runs, before that here. Recording runs inside the operation's task, so the request's
    // deadline cannot cut it short.
    let ctx = Arc::new(RequestContext {
        request_id: request_id.to_owned(),
        principal: verified.into_principal(),
        source_ip,
        secure_transport,
    });
    let routed =
        route(&parts.headers).map_err(|e| (e, requested_name(requested_target(&parts.headers))));
    let name = routed.as_ref().map_or("-", |op| op.name());
    tracing::debug!(request_id, operation = name, principal = %ctx.principal.arn, "request");
    let task = (Arc::clone(state), Arc::clone(&ctx));
    let answered = to_completion(async move {
        let (state, ctx) = task;
        let operation = match routed {
            Ok(operation) => operation,
            Err((error, requested)) => {
                let (service, code) = (&state.service, error.code.wire_name());
                service
                    .record_refused(&ctx, requested, CallSubject::default(), code, None)
                    .await;
                return Err(error);
            }
        };
        match operation {
            Operation::SendSerialConsoleSSHPublicKey => {
                ops::send_serial_console_ssh_public_key::handle(&state.service, &ctx, &body).await
            }
            Operation::SendSSHPublicKey => {
                ops::send_ssh_public_key::handle(&state.service, &ctx, &body).await
            }
            Operation::ListSerialConsoleSessions => {
                ops::list_serial_console_sessions::handle(&state.service, &ctx, &body).await
            }
            Operation::EndSerialConsoleSession => {
                ops::end_serial_console_session::handle(&state.service, &ctx, &body).await
            }
            Operation::SpectateSerialConsole => {
                ops::spectate_serial_console::handle(&state.service, &ctx, &body).await
            }
        }
    })
    .await;
    match answered {
        Ok(result) => result,
        Err(cause) => {
            // The operation's task died (a bug): the caller and the trail both get a
            // ServiceException (after the operation's own record, if it wrote one).
            let error = ApiError::internal(cause);
            let code = error.code.wire_name();
            state
                .service
                .record_refused(&ctx, name, CallSubject::default(), code, None)
                .await;
            Err(error)
        }
    }
}

/// Which front door a request came through, hence which verifier applies.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Front {
    AwsJson,
    Ec2Query,
}

/// Why [`verify`] did not produce a principal.
#[derive(Debug)]
pub(crate) enum VerifyError {
    /// The signature check refused the request.
    Rejected(SigError),
    /// The check itself did not finish (its blocking task died); the cause is for the log.
    Failed(String),
}

/// Verifies the request's signature for `front`, on the async worker for ordinary bodies and on
/// the blocking pool for large ones (see [`VERIFY_INLINE_MAX_BODY`]).
pub(crate) async fn verify(
    state: &Arc<ApiState>,
    front: Front,
    parts: &Parts,
    body: &Bytes,
) -> Result<Verified<Principal>, VerifyError> {
    fn verifier(state: &ApiState, front: Front) -> &Verifier {
        match front {
            Front::AwsJson => &state.verifier,
            Front::Ec2Query => &state.ec2.verifier,
        }
    }
    let now = state.service.clock().now();
    if body.len() <= VERIFY_INLINE_MAX_BODY {
        let request = RequestParts {
            method: &parts.method,
            path: parts.uri.path(),
            query: parts.uri.query(),
            headers: &parts.headers,
            body,
        };
        return verifier(state, front)
            .verify(&request, now, &state.credentials)
            .map_err(VerifyError::Rejected);
    }
    let state = Arc::clone(state);
    let (method, uri, headers, body) = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
        body.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let request = RequestParts {
            method: &method,
            path: uri.path(),
            query: uri.query(),
            headers: &headers,
            body: &body,
        };
        verifier(&state, front)
            .verify(&request, now, &state.credentials)
            .map_err(VerifyError::Rejected)
    })
    .await
    .unwrap_or_else(|e| {
        Err(VerifyError::Failed(format!(
            "signature verification task failed: {e}"
        )))
    })
}

/// Runs a domain operation to the end even if the request times out meanwhile: cancelling it
/// halfway could leave a grant without its audit record. The client gets the timeout error;
/// the operation still completes (a retry then simply repeats it). `Err` says the task died.
pub(crate) async fn to_completion<T: Send + 'static>(
    operation: impl Future<Output = T> + Send + 'static,
) -> Result<T, String> {
    tokio::spawn(operation)
        .await
        .map_err(|e| format!("operation task failed: {e}"))
}

/// Reads the whole body, refusing more than `limit` bytes (by header first, then by count). A
/// client that stalls is stopped by the request's deadline, which covers this read.
pub(crate) async fn read_body(
    body: Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<Bytes, ApiError> {
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
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

pub(crate) fn sig_error(e: sigv4::SigError) -> ApiError {
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
        "message": "No such resource. AWS JSON requests are POST /; health is GET /health, readiness GET /ready.",
    });
    (StatusCode::NOT_FOUND, body.to_string()).into_response()
}
