//! `GET /ready`: whether this node can serve a push and a session right now. `/health` only says
//! the process answers (liveness); `/ready` asks each dependency (the shared store, the audit
//! trail, the consoles) and answers 200 when every required one is usable, 503 otherwise, with
//! the state of each in the body, so a load balancer and an operator read the same truth.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::server::ApiState;

/// One dependency's state.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// What was checked: `store`, `audit`, `consoles`.
    pub name: &'static str,
    /// Whether it is usable. A check that is not `required` reports without deciding.
    pub ok: bool,
    /// Whether readiness depends on it.
    pub required: bool,
    /// What was found, for a human ("redis 10.0.0.5:6379: ok", "i-…: connection refused").
    pub detail: String,
}

/// The state of every dependency, as `/ready` reports it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    /// Ready when every required check is ok.
    pub fn ready(&self) -> bool {
        self.checks.iter().all(|c| c.ok || !c.required)
    }
}

/// Asks the dependencies. Implemented by the binary, which knows what it runs with; it bounds
/// each check's time and may cache the answer, since `/ready` is unauthenticated.
#[async_trait]
pub trait Readiness: Send + Sync + std::fmt::Debug {
    async fn report(&self) -> Report;
}

/// `GET /ready`. Without a [`Readiness`] installed the node has no dependency to wait for.
pub async fn ready(State(state): State<Arc<ApiState>>) -> Response {
    let report = match &state.readiness {
        Some(r) => r.report().await,
        None => Report { checks: Vec::new() },
    };
    let ready = report.ready();
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "not ready" },
        "checks": report.checks,
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(ok: bool, required: bool) -> Check {
        Check {
            name: "x",
            ok,
            required,
            detail: String::new(),
        }
    }

    #[test]
    fn only_required_checks_decide() {
        let report = |checks| Report { checks };
        assert!(report(vec![]).ready());
        assert!(report(vec![check(true, true), check(false, false)]).ready());
        assert!(!report(vec![check(true, true), check(false, true)]).ready());
    }
}
