//! Canonical URI and canonical query string, the AWS way for services other than S3.

use std::ops::Range;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_encode};

use crate::canonical::Sink;

/// Everything except RFC 3986 unreserved characters is escaped (uppercase hex).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// As [`QUERY`], but `/` separates path segments and stays literal.
const PATH: &AsciiSet = &QUERY.remove(b'/');

/// Writes the canonical URI for `path`, the path exactly as the client sent it.
///
/// Non-S3 services encode the path twice: once by the client to put it on the wire, and once
/// more here, so `%3D` on the wire becomes `%253D`. With `normalize`, `.` and `..` segments are
/// resolved and empty segments (duplicate slashes) dropped first (RFC 3986 §5.2.4), keeping a
/// trailing slash.
pub(crate) fn write_canonical_uri(sink: &mut impl Sink, path: &str, normalize: bool) {
    if path.is_empty() {
        sink.put(b"/");
        return;
    }
    if !path.starts_with('/') {
        sink.put(b"/");
    }
    // The common case (`/`, or a plain path) needs no normalizing and no allocation.
    if !normalize || !(path.contains("//") || path.split('/').any(|s| s == "." || s == "..")) {
        put_encoded(sink, path.as_bytes(), PATH);
        return;
    }
    let mut segments: Vec<&str> = Vec::with_capacity(path.len() / 2 + 1);
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    if path.starts_with('/') {
        sink.put(b"/");
    }
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            sink.put(b"/");
        }
        put_encoded(sink, segment.as_bytes(), PATH);
    }
    // "/a/b/", "/a/b/." and "/a/b/.." all name a directory: the result keeps its slash.
    let dir = ["/", "/.", "/.."].iter().any(|end| path.ends_with(end));
    if dir && !segments.is_empty() {
        sink.put(b"/");
    }
}

/// Writes the canonical query string: each `name=value` pair decoded, re-encoded with the
/// unreserved set, and sorted by encoded name, then encoded value. A name without `=` gets an
/// empty value. Decoding treats `+` as a space, as the AWS SDK signers do.
///
/// Every pair is re-encoded into one shared buffer (no allocation per pair), then the pairs are
/// sorted as ranges of it: O(n log n) in the number of pairs, which the HTTP layer bounds with
/// its cap on the request head.
///
/// `skip` names a parameter left out (compared after decoding): a presigned request's
/// `X-Amz-Signature`, which cannot sign itself.
pub(crate) fn write_canonical_query(sink: &mut impl Sink, query: Option<&str>, skip: Option<&str>) {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return;
    };
    // Re-encoding at most triples a byte.
    let mut encoded: Vec<u8> = Vec::with_capacity(query.len() * 3);
    let mut pairs: Vec<(Range<usize>, Range<usize>)> = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if skip.is_some_and(|skip| Decoded::new(name).eq(skip.bytes())) {
            continue;
        }
        let name_start = encoded.len();
        reencode_into(&mut encoded, name);
        let value_start = encoded.len();
        reencode_into(&mut encoded, value);
        pairs.push((name_start..value_start, value_start..encoded.len()));
    }
    pairs.sort_unstable_by(|(n1, v1), (n2, v2)| {
        encoded[n1.clone()]
            .cmp(&encoded[n2.clone()])
            .then_with(|| encoded[v1.clone()].cmp(&encoded[v2.clone()]))
    });
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            sink.put(b"&");
        }
        sink.put(&encoded[name]);
        sink.put(b"=");
        sink.put(&encoded[value]);
    }
}

/// Whether the raw query names `param` (compared after decoding the name, without allocating).
pub(crate) fn query_has(query: Option<&str>, param: &str) -> bool {
    query.is_some_and(|q| {
        q.split('&').any(|pair| {
            let name = pair.split_once('=').map_or(pair, |(n, _)| n);
            Decoded::new(name).eq(param.bytes())
        })
    })
}

/// `raw` percent-decoded (`+` is a space), as text; bytes that are not UTF-8 become U+FFFD.
pub(crate) fn decode(raw: &str) -> String {
    let bytes: Vec<u8> = Decoded::new(raw).collect();
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Decodes `raw` and appends it percent-encoded with the unreserved set (uppercase hex).
fn reencode_into(out: &mut Vec<u8>, raw: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in Decoded::new(raw) {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
}

/// Percent-decoding that leaves malformed escapes as they are (so `%zz` is re-encoded as
/// `%25zz`), with `+` meaning a space; yields the decoded bytes one at a time.
struct Decoded<'a> {
    bytes: &'a [u8],
}

impl<'a> Decoded<'a> {
    fn new(raw: &'a str) -> Self {
        Self {
            bytes: raw.as_bytes(),
        }
    }
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        match first {
            b'+' => Some(b' '),
            b'%' => match rest {
                [hi, lo, after @ ..] => match (hex_value(*hi), hex_value(*lo)) {
                    (Some(hi), Some(lo)) => {
                        self.bytes = after;
                        Some(hi << 4 | lo)
                    }
                    _ => Some(b'%'),
                },
                _ => Some(b'%'),
            },
            b => Some(b),
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn put_encoded(sink: &mut impl Sink, bytes: &[u8], set: &'static AsciiSet) {
    for chunk in percent_encode(bytes, set) {
        sink.put(chunk.as_bytes());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn uri(path: &str, normalize: bool) -> String {
        let mut out = Vec::new();
        write_canonical_uri(&mut out, path, normalize);
        String::from_utf8(out).unwrap()
    }

    fn query(q: &str) -> String {
        let mut out = Vec::new();
        write_canonical_query(&mut out, Some(q), None);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn normalizes_paths() {
        for (path, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/./", "/"),
            ("/example/..", "/"),
            ("/example1/example2/../..", "/"),
            ("/./example", "/example"),
            ("//example//", "/example/"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/../a", "/a"),
            ("/a/./b/../c", "/a/c"),
            ("/a..b/.c", "/a..b/.c"),
            ("a/b", "/a/b"),
        ] {
            assert_eq!(uri(path, true), want, "{path}");
        }
    }

    #[test]
    fn leaves_paths_alone_without_normalizing() {
        for path in ["//", "/./", "/example/..", "//example//"] {
            assert_eq!(uri(path, false), path);
        }
    }

    #[test]
    fn encodes_path_twice() {
        assert_eq!(uri("/example%20space/", true), "/example%2520space/");
        assert_eq!(uri("/example space/", true), "/example%20space/");
        assert_eq!(
            uri("/test/@connections/A%3D", true),
            "/test/%40connections/A%253D"
        );
        assert_eq!(uri("/\u{1234}", true), "/%E1%88%B4");
        assert_eq!(uri("/-._~azAZ09", true), "/-._~azAZ09");
        assert_eq!(uri("/a+b:c", true), "/a%2Bb%3Ac");
    }

    #[test]
    fn canonicalizes_queries() {
        assert_eq!(
            query("Param2=value2&Param1=value1"),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(
            query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(query("b=2&a=2&a=1"), "a=1&a=2&b=2");
        assert_eq!(query("flag&x="), "flag=&x=");
        assert_eq!(query("a=b c&d=e+f&g=%2f/"), "a=b%20c&d=e%20f&g=%2F%2F");
        assert_eq!(query("bad=%zz%4"), "bad=%25zz%254");
        assert_eq!(query("&&a=1&"), "a=1");
        assert_eq!(query("\u{1234}=bar"), "%E1%88%B4=bar");
        assert_eq!(query(""), "");
        // Sorted by name first, then value: "a" < "a-" although "a=" > "a-=".
        assert_eq!(query("a-=1&a=2&a=10"), "a=10&a=2&a-=1");
        assert_eq!(query("%=%&%4=+"), "%25=%25&%254=%20");
    }

    #[test]
    fn finds_query_params() {
        assert!(query_has(
            Some("a=1&X-Amz-Algorithm=AWS4-HMAC-SHA256"),
            "X-Amz-Algorithm"
        ));
        assert!(query_has(Some("X%2DAmz-Algorithm"), "X-Amz-Algorithm"));
        assert!(!query_has(Some("x-amz-algorithm=1"), "X-Amz-Algorithm"));
        assert!(!query_has(None, "X-Amz-Algorithm"));
    }
}
