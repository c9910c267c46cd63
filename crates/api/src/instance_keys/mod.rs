//! `GET /instance-keys/v1/{os_user}`: an instance fetches the key pushed for one of its users
//! with `SendSSHPublicKey`, as signed records (the `instance-keys` crate's format), for sshd's
//! `AuthorizedKeysCommand`.
//!
//! Not SigV4: the instance proves itself with an HMAC under its `key_token` (`check`). Every
//! failure — unknown instance, no token, a missing, malformed, wrong or stale proof, an invalid
//! user name, no live key — is the same answer, `404` with an empty body, so the route tells a
//! stranger nothing, not even which instances exist. A store or audit failure after a good proof
//! is `503` with an empty body. Served answers are audited by the domain (`GetInstanceKeys`);
//! refusals are counted in the log (`refusals`).
//!
//! The VMs serialgate runs reach the same answers without a proof, on a unix socket of their own
//! (`local`): there the socket names the instance.

mod check;
mod local;
mod refusals;

pub use local::serve_local;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use console::ops::InstanceKeysRequest;
use console::{Grant, InstanceId, OsUser, Registry};
use instance_keys::{Record, format_record};
use ssh_key::PrivateKey;
use zeroize::Zeroizing;

use crate::server::{ApiState, RequestDeadline};

/// An instance's `key_token`: a secret shared with the instance. Zeroized on drop; `Debug`
/// prints `***`.
pub struct KeyToken(Zeroizing<Vec<u8>>);

impl KeyToken {
    pub fn new(token: Vec<u8>) -> Self {
        Self(Zeroizing::new(token))
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KeyToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyToken(***)")
    }
}

/// What the route needs: the key that signs the records, each instance's token, and the log of
/// refusals. `Debug` shows the signer's fingerprint and the instances, no secret.
pub struct InstanceKeys {
    signer: PrivateKey,
    tokens: HashMap<InstanceId, KeyToken>,
    refusals: refusals::RefusalLog,
}

impl std::fmt::Debug for InstanceKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let signer = self
            .signer
            .public_key()
            .fingerprint(ssh_key::HashAlg::Sha256);
        f.debug_struct("InstanceKeys")
            .field("signer", &signer.to_string())
            .field("instances", &self.tokens.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl InstanceKeys {
    /// `signer` must be an Ed25519 private key; `tokens` are the instances that may fetch keys.
    /// Refusals are logged per instance of `registry`.
    pub fn new(
        signer: PrivateKey,
        tokens: impl IntoIterator<Item = (InstanceId, KeyToken)>,
        registry: &Registry,
    ) -> Result<Self, String> {
        if signer.algorithm() != ssh_key::Algorithm::Ed25519 {
            return Err(format!(
                "the instance key signer must be an ssh-ed25519 key, not {}",
                signer.algorithm()
            ));
        }
        Ok(Self {
            signer,
            tokens: tokens.into_iter().collect(),
            refusals: refusals::RefusalLog::new(registry.instances().map(|i| i.id.clone())),
        })
    }
}

/// `404`, empty: the one answer for every failure.
fn no_keys() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// The route's handler, for every method: any but `GET` and `HEAD` gets the answer of every
/// other failure.
pub(crate) async fn handle(State(state): State<Arc<ApiState>>, req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return no_keys();
    }
    let (source_ip, _) = crate::connection::origin(&req);
    let deadline = req.extensions().get::<RequestDeadline>().map_or_else(
        || tokio::time::Instant::now() + state.limits.request_timeout,
        |d| d.0,
    );
    let work = answer(&state, source_ip, req.uri().path(), req.headers());
    // Past the deadline nothing is served (a record written meanwhile over-reports, never under).
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| no_keys())
}

async fn answer(
    state: &ApiState,
    source_ip: Option<IpAddr>,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    let Some(keys) = &state.instance_keys else {
        return no_keys();
    };
    let now_ms = state.service.clock().now_ms();
    let (instance_id, os_user) = match check::check(&keys.tokens, path, headers, now_ms) {
        Ok(proven) => proven,
        Err(refusal) => {
            keys.refusals.count(&refusal, now_ms);
            return no_keys();
        }
    };
    serve(state, keys, source_ip, instance_id, os_user).await
}

/// The records of `instance_id`'s live keys for `os_user`, once the instance is known; audited
/// by the domain when keys are served.
async fn serve(
    state: &ApiState,
    keys: &InstanceKeys,
    source_ip: Option<IpAddr>,
    instance_id: InstanceId,
    os_user: OsUser,
) -> Response {
    let request = InstanceKeysRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        source_ip,
        instance_id,
        os_user,
    };
    let grants = match state.service.instance_keys(&request).await {
        Ok(grants) => grants,
        Err(e) => {
            tracing::warn!(error = %e, request_id = %request.request_id, instance = %request.instance_id, "instance keys not served");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let body = records(&keys.signer, &request, &grants);
    if body.is_empty() {
        return no_keys();
    }
    tracing::debug!(request_id = %request.request_id, instance = %request.instance_id, user = %request.os_user, keys = grants.len(), "instance keys served");
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The grants as signed records, one after the other.
fn records(signer: &PrivateKey, request: &InstanceKeysRequest, grants: &[Grant]) -> String {
    let instance = request.instance_id.as_str();
    let mut body = String::new();
    for grant in grants {
        let key = grant.key.to_openssh();
        let record = Record {
            timestamp: grant.expires_at_ms / 1000,
            instance,
            caller: &grant.principal_arn,
            request: &grant.request_id,
            key: &key,
        };
        match format_record(&record, signer) {
            Ok(text) => body.push_str(&text),
            // Not reachable with the domain's validated values and an Ed25519 signer.
            Err(e) => {
                tracing::error!(error = %e, request_id = %request.request_id, "instance key record not formatted")
            }
        }
    }
    body
}
