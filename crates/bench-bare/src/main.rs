//! `bench-bare ADDR`: the ceiling for `scripts/bench-api.sh`.
//!
//! An axum server with serialgate's HTTP stack (hyper HTTP/1, multi-threaded tokio, `TCP_NODELAY`)
//! that answers every `POST /` with the success shape of `SendSerialConsoleSSHPublicKey` —
//! `{"RequestId":"…","Success":true}` plus `x-amzn-RequestId` — after reading the body, and does
//! nothing else: no SigV4, no JSON parsing, no domain rules, no audit. `GET /health` answers 200.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;

/// Request ids: UUID-shaped, from a counter (the bare server does no randomness either).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn request_id() -> String {
    let n = NEXT_ID.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff_ffff;
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// `POST /`: the body is read (by the extractor) and ignored.
async fn answer(body: Bytes) -> Response {
    let _ = body.len();
    let id = request_id();
    let mut resp = (
        StatusCode::OK,
        format!(r#"{{"RequestId":"{id}","Success":true}}"#),
    )
        .into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: bench-bare ADDR   (e.g. bench-bare 127.0.0.1:4590)");
        return ExitCode::from(2);
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bench-bare: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = listener.tap_io(|tcp| {
        // As serialgate does: small request/response pairs, Nagle would only add latency.
        let _ = tcp.set_nodelay(true);
    });
    let app = Router::new()
        .route("/", post(answer))
        .route("/health", get(|| async { "ok" }));
    eprintln!("bench-bare listening on http://{addr}");
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-bare: server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
