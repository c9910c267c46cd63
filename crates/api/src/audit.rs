//! What the front door adds to the audit trail. Every authenticated call gets one record: a
//! push that reached its domain operation is recorded there (its success record must be durable
//! before the grant is stored); a call refused before any operation ran (a malformed argument,
//! an unknown operation) and every EC2 Query call (recorded with EC2's own error codes) are
//! recorded here, through [`console::ConsoleService::record_answered`] and
//! [`console::ConsoleService::record_refused`]. Unauthenticated refusals are counted instead
//! (`refusals`).

use std::borrow::Cow;
use std::net::IpAddr;

use axum::http::request::Parts;
use sigv4::SigErrorKind;

use crate::refusals::{claimed_key_id, reason};
use crate::server::ApiState;

/// Longest operation name a caller may put in the trail.
const MAX_NAME: usize = 128;

/// A client-supplied operation name for an audit record: kept when it looks like one (ASCII
/// letters, digits, `.`, `_`, `-`; at most 128 bytes), else `-`, so the trail holds no junk.
pub(crate) fn requested_name(raw: Option<&str>) -> Cow<'static, str> {
    match raw {
        Some(name)
            if !name.is_empty()
                && name.len() <= MAX_NAME
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            Cow::Owned(name.to_owned())
        }
        _ => Cow::Borrowed("-"),
    }
}

/// Counts a request whose signature check refused it with `kind`, answered with `code`, for
/// its window's audit record.
pub(crate) fn count_refusal(
    state: &ApiState,
    source: Option<IpAddr>,
    parts: &Parts,
    kind: SigErrorKind,
    code: &'static str,
) {
    let key_id = claimed_key_id(parts, |id| state.credentials.contains(id));
    state.refused.count(
        source,
        reason(kind),
        code,
        key_id.as_deref(),
        state.service.clock().now_ms(),
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn requested_names_are_kept_only_when_plausible() {
        assert_eq!(requested_name(Some("RunInstances")), "RunInstances");
        assert_eq!(
            requested_name(Some("DynamoDB_20120810.GetItem")),
            "DynamoDB_20120810.GetItem"
        );
        assert_eq!(requested_name(None), "-");
        assert_eq!(requested_name(Some("")), "-");
        assert_eq!(requested_name(Some("a b")), "-");
        assert_eq!(requested_name(Some("<x>")), "-");
        assert_eq!(requested_name(Some(&"A".repeat(129))), "-");
    }
}
