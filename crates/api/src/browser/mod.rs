//! The browser console on the API listener.
//!
//! - `GET /console/<instance>/<port>?X-Amz-…` spends a presigned link ([`link`]): the URL is
//!   verified like any SigV4 request (valid for at most `max_link_age`), used at most once,
//!   and pushes a grant (`OpenSerialConsole`, the serial push's rules) for a key the server
//!   derives from a random secret; the secret goes to the browser in a cookie bound to the
//!   console's path, and the browser is sent on to the page.
//! - `GET /console/<instance>/<port>` is the page, `GET /console/assets/<name>` its files
//!   ([`page`]).
//! - `GET /console/<instance>/<port>/ws` is the WebSocket ([`socket`]): same origin only, the
//!   cookie's key opens the session like an SSH key would, and the session runs on the same
//!   machinery as SSH sessions ([`console::browser`]).

mod cookie;
mod link;
mod page;
mod parked;
mod socket;
mod spent;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, Request, State};
use axum::response::Response;
use console::browser::BrowserSessions;
use sigv4::Verifier;

use crate::server::ApiState;

pub(crate) use page::asset;
pub use parked::RECONNECT_GRACE;
pub(crate) use socket::socket;

/// The longest a console link may be valid by default (`X-Amz-Expires`), as a pushed key is.
pub const DEFAULT_MAX_LINK_AGE: Duration = Duration::from_secs(60);

/// What the browser console needs besides the API's own state.
#[derive(Debug)]
pub struct BrowserConsole {
    pub sessions: Arc<dyn BrowserSessions>,
    /// The longest validity a link may claim.
    pub max_link_age: Duration,
    verifier: Verifier,
    spent: spent::SpentLinks,
    parked: Arc<parked::Parked>,
}

impl BrowserConsole {
    /// Links are signed for the API's own signing name (`ec2-instance-connect`) and region.
    pub fn new(sessions: Arc<dyn BrowserSessions>, region: &str, max_link_age: Duration) -> Self {
        Self {
            sessions,
            max_link_age,
            verifier: Verifier::new("ec2-instance-connect", region),
            spent: spent::SpentLinks::default(),
            parked: Arc::default(),
        }
    }
}

/// `GET /console/<instance>/<port>`: a link to spend when it carries a signature, else the page.
pub(crate) async fn console(
    State(state): State<Arc<ApiState>>,
    Path((instance, port)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let Some(browser) = &state.browser else {
        return page::disabled();
    };
    let presigned = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("X-Amz-Algorithm=")));
    if presigned {
        link::spend(&state, browser, &instance, &port, req).await
    } else {
        page::page()
    }
}
