//! The EC2 Query API subset around the serial console, on the same listener as AWS JSON.
//!
//! A request is EC2 Query when it has no `X-Amz-Target` and a form-encoded body. It goes: body
//! limit → SigV4 for service `ec2` (same region, same credentials) → `Action`/`Version` →
//! one operation file (parse → domain call → encode). Every failure, from the signature on, is
//! EC2's XML error document ([`error`]); successes are EC2's XML shapes ([`xml`]). Nothing
//! here produces JSON, and the JSON path never sees these requests. Every authenticated call is
//! recorded here, once, with the EC2 code its caller received (`success` or, e.g.,
//! `InvalidInstanceID.NotFound`); signature refusals are counted (`refusals`).

mod describe_instances;
mod disable_serial_console_access;
mod enable_serial_console_access;
pub mod error;
mod get_console_output;
mod get_serial_console_access_status;
pub mod params;
mod reboot_instances;
mod start_instances;
mod stop_instances;
pub mod xml;

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use console::service::RequestContext;
use console::{Action, CallSubject, ConsoleService, InstanceId};
use sigv4::{SigErrorKind, Verifier};

use crate::audit::{count_refusal, requested_name};
use crate::server::{ApiState, Front, VerifyError, read_body, to_completion, verify};
use error::{AUTH_FAILURE, DRY_RUN, Ec2Code, Ec2Error, REQUEST_EXPIRED, echo, xml_response};
use params::Params;

/// The only API version served; it is the one every current SDK and the AWS CLI send.
pub const VERSION: &str = "2016-11-15";

/// What the EC2 front door needs beyond the shared state.
#[derive(Debug)]
pub struct Ec2Api {
    pub(crate) verifier: Verifier,
    /// Reported as every instance's `launchTime`: serialgate does not launch instances, and the
    /// time the service started is the closest true statement (ms since the Unix epoch).
    launch_time_ms: u64,
}

impl Ec2Api {
    /// SigV4 for service `ec2` in the service's region; launch time is now.
    pub fn new(service: &ConsoleService) -> Self {
        Self {
            verifier: Verifier::new("ec2", &service.settings().region),
            launch_time_ms: service.clock().now_ms(),
        }
    }
}

/// Whether `headers` announce an EC2 Query request: no `X-Amz-Target` (which always means AWS
/// JSON) and a form-encoded body, as every SDK sends for the `ec2` protocol.
pub fn is_query_request(headers: &HeaderMap) -> bool {
    if headers.contains_key("x-amz-target") {
        return false;
    }
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The actions served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ec2Action {
    DescribeInstances,
    StartInstances,
    StopInstances,
    RebootInstances,
    GetConsoleOutput,
    EnableSerialConsoleAccess,
    DisableSerialConsoleAccess,
    GetSerialConsoleAccessStatus,
}

impl Ec2Action {
    fn from_name(name: &str) -> Option<Self> {
        use Ec2Action::*;
        Some(match name {
            "DescribeInstances" => DescribeInstances,
            "StartInstances" => StartInstances,
            "StopInstances" => StopInstances,
            "RebootInstances" => RebootInstances,
            "GetConsoleOutput" => GetConsoleOutput,
            "EnableSerialConsoleAccess" => EnableSerialConsoleAccess,
            "DisableSerialConsoleAccess" => DisableSerialConsoleAccess,
            "GetSerialConsoleAccessStatus" => GetSerialConsoleAccessStatus,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        use Ec2Action::*;
        match self {
            DescribeInstances => "DescribeInstances",
            StartInstances => "StartInstances",
            StopInstances => "StopInstances",
            RebootInstances => "RebootInstances",
            GetConsoleOutput => "GetConsoleOutput",
            EnableSerialConsoleAccess => "EnableSerialConsoleAccess",
            DisableSerialConsoleAccess => "DisableSerialConsoleAccess",
            GetSerialConsoleAccessStatus => "GetSerialConsoleAccessStatus",
        }
    }
}

/// One authenticated call, as the operation files see it.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub service: &'a ConsoleService,
    pub ctx: &'a RequestContext,
    pub params: &'a Params,
    pub launch_time_ms: u64,
}

impl Call<'_> {
    /// What `DryRun=true` answers: `DryRunOperation` when the caller may perform `action` (on
    /// `ids`), otherwise `UnauthorizedOperation`. Both are errors, as on EC2.
    fn dry_run(&self, action: Action, ids: &[InstanceId]) -> Ec2Error {
        match self.service.authorize_ec2(self.ctx, action, ids) {
            Ok(()) => Ec2Error::new(Ec2Code::DryRunOperation, DRY_RUN),
            Err(e) => e.into(),
        }
    }
}

/// Answers one EC2 Query request; never fails (errors are XML responses).
pub(crate) async fn handle(state: &Arc<ApiState>, request_id: &str, req: Request) -> Response {
    match process(state, request_id, req).await {
        Ok(body) => xml_response(StatusCode::OK, body, request_id),
        Err(e) => e.into_response(request_id),
    }
}

/// The answer to a request that missed its whole-request deadline.
pub(crate) fn timed_out(request_id: &str, seconds: u64) -> Response {
    Ec2Error::new(
        Ec2Code::RequestTimeout,
        format!("The request was not completed within {seconds} seconds."),
    )
    .into_response(request_id)
}

async fn process(
    state: &Arc<ApiState>,
    request_id: &str,
    req: Request,
) -> Result<String, Ec2Error> {
    let (source_ip, secure_transport) = crate::connection::origin(&req);
    let (parts, body) = req.into_parts();
    let body = read_body(body, &parts.headers, state.body_limit)
        .await
        .map_err(|e| Ec2Error::new(Ec2Code::RequestEntityTooLarge, e.message))?;
    let verified = match verify(state, Front::Ec2Query, &parts, &body).await {
        Ok(verified) => verified,
        Err(VerifyError::Rejected(e)) => {
            let kind = e.kind();
            let error = sig_error(e);
            count_refusal(state, source_ip, &parts, kind, error.code.wire_name());
            return Err(error);
        }
        Err(VerifyError::Failed(cause)) => return Err(internal(cause)),
    };

    // Authenticated from here on. The call, its record included, runs in its own task, so the
    // request's deadline cannot cut the record short.
    let ctx = Arc::new(RequestContext {
        request_id: request_id.to_owned(),
        principal: verified.into_principal(),
        source_ip,
        secure_transport,
    });
    let task = (Arc::clone(state), Arc::clone(&ctx));
    match to_completion(async move { answer(&task.0, &task.1, &body).await }).await {
        Ok(result) => result,
        Err(cause) => {
            // The task died (a bug): the caller and the trail both get InternalError.
            let error = internal(cause);
            let code = error.code.wire_name();
            state
                .service
                .record_refused(&ctx, "-", CallSubject::default(), code, None)
                .await;
            Err(error)
        }
    }
}

/// Decodes, routes and runs one authenticated call, then records it with the code its caller
/// receives. A success whose record cannot be written becomes `InternalError`; a refusal stays
/// what it is.
async fn answer(state: &ApiState, ctx: &RequestContext, body: &[u8]) -> Result<String, Ec2Error> {
    let service = &state.service;
    let params = match Params::from_body(body) {
        Ok(params) => params,
        Err(e) => {
            let code = e.code.wire_name();
            service
                .record_refused(ctx, "-", CallSubject::default(), code, None)
                .await;
            return Err(e);
        }
    };
    let (operation, result) = match route(&params) {
        Ok(action) => {
            tracing::debug!(request_id = %ctx.request_id, operation = action.name(), principal = %ctx.principal.arn, "EC2 request");
            let call = Call {
                service,
                ctx,
                params: &params,
                launch_time_ms: state.ec2.launch_time_ms,
            };
            (Cow::Borrowed(action.name()), run(&call, action).await)
        }
        Err(e) => (requested_name(params.get("Action")), Err(e)),
    };
    let subject = subject(&params);
    match result {
        Ok(xml) => {
            service.record_answered(ctx, operation, subject).await?;
            Ok(xml)
        }
        Err(e) => {
            let code = e.code.wire_name();
            service
                .record_refused(ctx, operation, subject, code, e.denial.as_deref())
                .await;
            Err(e)
        }
    }
}

async fn run(call: &Call<'_>, action: Ec2Action) -> Result<String, Ec2Error> {
    use Ec2Action::*;
    match action {
        DescribeInstances => describe_instances::handle(call).await,
        StartInstances => start_instances::handle(call).await,
        StopInstances => stop_instances::handle(call).await,
        RebootInstances => reboot_instances::handle(call).await,
        GetConsoleOutput => get_console_output::handle(call).await,
        EnableSerialConsoleAccess => enable_serial_console_access::handle(call).await,
        DisableSerialConsoleAccess => disable_serial_console_access::handle(call).await,
        GetSerialConsoleAccessStatus => get_serial_console_access_status::handle(call).await,
    }
}

/// The instances a call names (`InstanceId`, `InstanceId.N`), for its audit record: the valid
/// ids only, each once, in order, joined by `,`.
fn subject(params: &Params) -> CallSubject {
    let mut seen = HashSet::new();
    let ids: Vec<&str> = params
        .get("InstanceId")
        .into_iter()
        .chain(params.list("InstanceId"))
        .filter(|raw| InstanceId::parse(raw).is_ok() && seen.insert(*raw))
        .collect();
    CallSubject {
        instance_id: (!ids.is_empty()).then(|| ids.join(",")),
        ..CallSubject::default()
    }
}

fn internal(cause: String) -> Ec2Error {
    Ec2Error::from(console::ConsoleError::Internal(cause))
}

/// `Action` and `Version`: a missing action first, then the version (it decides which actions
/// exist), then whether the action is one of ours.
fn route(params: &Params) -> Result<Ec2Action, Ec2Error> {
    let action = params
        .get("Action")
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            Ec2Error::new(
                Ec2Code::MissingAction,
                "The request must contain the parameter Action",
            )
        })?;
    match params.get("Version") {
        None | Some("") => return Err(Ec2Error::missing_parameter("Version")),
        Some(VERSION) => {}
        Some(other) => {
            return Err(Ec2Error::new(
                Ec2Code::NoSuchVersion,
                format!(
                    "The requested version ({}) of service AmazonEC2 does not exist",
                    echo(other)
                ),
            ));
        }
    }
    Ec2Action::from_name(action).ok_or_else(|| {
        Ec2Error::new(
            Ec2Code::InvalidAction,
            format!(
                "The action {} is not valid for this web service.",
                echo(action)
            ),
        )
    })
}

/// EC2's front-door answers. EC2 does not say why a signature failed: every credential
/// problem is `AuthFailure` with one fixed text, and the reason goes to the log.
fn sig_error(e: sigv4::SigError) -> Ec2Error {
    match e.kind() {
        // EC2 still names the parameter of its pre-SigV4 query authentication.
        SigErrorKind::Missing => Ec2Error::missing_parameter("AWSAccessKeyId"),
        SigErrorKind::Incomplete => Ec2Error::new(Ec2Code::IncompleteSignature, e.message()),
        // EC2 keeps its own prefix and adds the times, which tells a user whose clock is off.
        SigErrorKind::Expired => Ec2Error::new(
            Ec2Code::RequestExpired,
            format!("{REQUEST_EXPIRED} {}", e.message()),
        ),
        // UnknownAccessKey, InvalidToken, SignatureMismatch, PayloadHashMismatch, WrongScope,
        // and any kind added later.
        _ => Ec2Error::with_cause(Ec2Code::AuthFailure, AUTH_FAILURE, e.message()),
    }
}

/// 17 hex digits derived from `id` (FNV-1a, salted), for EC2-looking ids that stay the same
/// across calls and restarts without being stored.
pub(crate) fn derived_hex(salt: &str, id: &InstanceId) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = salt
        .bytes()
        .chain([b':'])
        .chain(id.as_str().bytes())
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    format!("{hash:017x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn recognises_query_requests() {
        let mut h = HeaderMap::new();
        assert!(!is_query_request(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert!(is_query_request(&h));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/X-WWW-Form-URLEncoded"),
        );
        assert!(is_query_request(&h));
        h.insert("x-amz-target", HeaderValue::from_static("X.Y"));
        assert!(!is_query_request(&h));
        let mut json = HeaderMap::new();
        json.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        assert!(!is_query_request(&json));
    }

    #[test]
    fn routing_order_and_texts() {
        let r = |q: &str| route(&Params::parse(q.as_bytes()));
        assert_eq!(
            r("Version=2016-11-15").unwrap_err().code,
            Ec2Code::MissingAction
        );
        assert_eq!(
            r("Action=DescribeInstances").unwrap_err().code,
            Ec2Code::MissingParameter
        );
        let e = r("Action=DescribeInstances&Version=2014-01-01").unwrap_err();
        assert_eq!(e.code, Ec2Code::NoSuchVersion);
        assert_eq!(
            e.message,
            "The requested version (2014-01-01) of service AmazonEC2 does not exist"
        );
        let e = r("Action=RunInstances&Version=2016-11-15").unwrap_err();
        assert_eq!(e.code, Ec2Code::InvalidAction);
        assert_eq!(
            e.message,
            "The action RunInstances is not valid for this web service."
        );
        assert_eq!(
            r("Action=GetConsoleOutput&Version=2016-11-15").unwrap(),
            Ec2Action::GetConsoleOutput
        );
    }

    #[test]
    fn derived_ids_are_stable_and_distinct() {
        let a = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let b = InstanceId::parse("i-0123456789abcdef1").unwrap();
        assert_eq!(derived_hex("ami", &a), derived_hex("ami", &a));
        assert_ne!(derived_hex("ami", &a), derived_hex("ami", &b));
        assert_eq!(derived_hex("ami", &a).len(), 17);
    }
}
