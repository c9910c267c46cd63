//! The page, its assets, and the short pages that say why a console cannot open.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Scripts and connections from this server only, no frames, no plugins. Styles may also be
/// inline: the terminal (xterm.js) sets colours and cursor through style elements and
/// attributes it creates; scripts stay strictly this server's files.
const PAGE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self' \
                           'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'; \
                           base-uri 'none'; form-action 'none'; object-src 'none'";

/// Nothing at all: the message pages carry no script or style.
const MESSAGE_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// `GET /console/<instance>/<port>`: the terminal page.
pub(super) fn page() -> Response {
    let page = webconsole::page();
    with_policy(
        ([(header::CONTENT_TYPE, page.content_type)], page.body).into_response(),
        PAGE_POLICY,
    )
}

/// `GET /console/assets/<name>`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match webconsole::asset(&name) {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                // Built into the binary: the same until the server is upgraded.
                (header::CACHE_CONTROL, "no-cache"),
            ],
            a.body,
        )
            .into_response(),
        None => message(StatusCode::NOT_FOUND, "Not found", "There is no such file."),
    }
}

/// The browser console is not configured on this server.
pub(super) fn disabled() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "No browser console here",
        "This server does not serve the browser console ([browser] enabled = false).",
    )
}

/// A short page saying why the console cannot open.
pub(super) fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>serialgate: {title}</title></head>\n<body><h1>{title}</h1>\n<p>{text}</p>\n\
         </body></html>\n",
        title = escape(title),
        text = escape(text),
    );
    with_policy(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        MESSAGE_POLICY,
    )
}

fn with_policy(mut resp: Response, policy: &'static str) -> Response {
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(policy),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_escaped() {
        assert_eq!(escape("<b>&'\""), "&lt;b&gt;&amp;&#39;&quot;");
    }
}
