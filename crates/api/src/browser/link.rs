//! Spending a presigned console link.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use console::ops::PushSerialKey;
use console::service::RequestContext;
use console::{InstanceId, SerialPort, SshPublicKey};
use sigv4::RequestParts;
use ssh_key::PublicKey;

use super::page::message;
use super::{BrowserConsole, cookie};
use crate::audit::count_refusal;
use crate::error::ApiError;
use crate::server::{ApiState, sig_error, to_completion};

/// `GET /console/<instance>/<port>?X-Amz-…`: verify, spend once, push the browser's grant,
/// set its cookie, and send the browser on to the page (a URL without the signature, so a
/// reload does not try to spend the link again).
pub(super) async fn spend(
    state: &Arc<ApiState>,
    browser: &BrowserConsole,
    instance: &str,
    port: &str,
    req: Request,
) -> Response {
    let (source_ip, secure) = crate::connection::origin(&req);
    let (parts, _body) = req.into_parts();
    let now = state.service.clock().now();
    let request = RequestParts::from_uri(&parts.method, &parts.uri, &parts.headers, b"");
    let verified = match browser.verifier.verify_presigned(
        &request,
        now,
        browser.max_link_age,
        &state.credentials,
    ) {
        Ok(v) => v,
        Err(e) => {
            let kind = e.kind();
            let text = e.message().to_owned();
            let error = sig_error(e);
            count_refusal(state, source_ip, &parts, kind, error.code.wire_name());
            return message(error.code.status(), "This console link is not valid", &text);
        }
    };
    let (Ok(instance_id), Some(port)) = (InstanceId::parse(instance), parse_port(port)) else {
        return message(
            StatusCode::NOT_FOUND,
            "No such console",
            "A console link names an instance and a port: /console/i-0123456789abcdef0/0.",
        );
    };
    let until = verified.expires_at().unwrap_or(now);
    if !browser.spent.spend(verified.signature(), until, now) {
        return message(
            StatusCode::FORBIDDEN,
            "This console link was already used",
            "A console link opens the console once. Make a new one, e.g. with \
             `serialgate console-url INSTANCE`.",
        );
    }
    let secret = match cookie::new_secret() {
        Ok(s) => s,
        Err(cause) => return internal(cause),
    };
    let key = match SshPublicKey::from_key(PublicKey::new(cookie::key_for(&secret), "")) {
        Ok(k) => k,
        Err(e) => return internal(format!("browser key: {e}")),
    };
    let ctx = RequestContext {
        request_id: uuid::Uuid::new_v4().to_string(),
        principal: verified.into_principal(),
        source_ip,
        secure_transport: secure,
    };
    let service = Arc::clone(&state.service);
    let push = PushSerialKey {
        instance_id: instance_id.clone(),
        port,
        key,
    };
    // Run to the end even if the browser goes away: the push and its audit record go together.
    let pushed = to_completion(async move { service.push_browser_key(&ctx, push).await }).await;
    match pushed {
        Ok(Ok(_receipt)) => {}
        Ok(Err(e)) => {
            let e = ApiError::from(e);
            return message(e.code.status(), "The console cannot open", &e.message);
        }
        Err(cause) => return internal(cause),
    }
    let path = format!("/console/{instance_id}/{port}");
    // The secret opens one session (the grant is spent by it) and takes it back after a
    // dropped connection, for as long as the session can last.
    let settings = state.service.settings();
    let lifetime = (settings.key_ttl + settings.max_session + super::RECONNECT_GRACE).as_secs();
    let set = cookie::set_cookie(&secret, &path, lifetime, secure);
    let mut resp = (StatusCode::SEE_OTHER, [(header::LOCATION, path)]).into_response();
    match HeaderValue::from_str(&set) {
        Ok(v) => {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
        Err(e) => return internal(format!("cookie: {e}")),
    }
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `0`–`255`, no sign, no leading zeros beyond `0` itself.
fn parse_port(text: &str) -> Option<SerialPort> {
    if text.is_empty() || text.len() > 3 || (text.len() > 1 && text.starts_with('0')) {
        return None;
    }
    text.parse::<u32>().ok().map(SerialPort::new)
}

fn internal(cause: String) -> Response {
    tracing::error!(cause, "browser console link failed");
    message(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The console cannot open",
        "Something went wrong on the server; try a new link.",
    )
}
