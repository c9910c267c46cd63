//! One module per API operation: parse the body into a domain request, call the domain, encode.

pub mod send_serial_console_ssh_public_key;
pub mod send_ssh_public_key;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The success shape shared by both operations: `{"RequestId": …, "Success": true}`, with the
/// same id in `x-amzn-RequestId`.
pub(crate) fn success(request_id: &str) -> Response {
    let body = format!(r#"{{"RequestId":"{request_id}","Success":true}}"#);
    let mut resp = (StatusCode::OK, body).into_response();
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

/// Maps a model validation failure to `InvalidArgsException`.
pub(crate) fn invalid<T>(r: Result<T, impl std::fmt::Display>) -> Result<T, crate::ApiError> {
    r.map_err(|e| crate::ApiError::invalid_args(e.to_string()))
}
