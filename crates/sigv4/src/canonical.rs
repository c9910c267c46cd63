//! The canonical request and the string to sign, written straight into a hasher.
//!
//! Both are produced through [`Sink`] so that verification hashes the bytes as they are
//! generated, with no intermediate string, while tests can capture the very same bytes.

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::authorization::ALGORITHM;
use crate::date::BasicFormat;
use crate::uri::{write_canonical_query, write_canonical_uri};

/// Somewhere to write canonical bytes.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

impl Sink for Hmac<Sha256> {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }
}

/// Everything the canonical request is made of.
#[derive(Debug)]
pub(crate) struct CanonicalRequest<'a> {
    pub(crate) method: &'a str,
    /// The path as sent on the wire (still percent-encoded).
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    /// A query parameter left out of the canonical query (a presigned request's signature).
    pub(crate) skip_query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
    /// Checked lowercase names; each must be present in `headers` (see [`missing_header`]).
    pub(crate) signed_headers: &'a str,
    /// Lowercase hex SHA-256 of the body, or the `x-amz-content-sha256` value.
    pub(crate) payload_hash: &'a str,
    pub(crate) normalize_path: bool,
}

impl CanonicalRequest<'_> {
    pub(crate) fn write(&self, sink: &mut impl Sink) {
        sink.put(self.method.as_bytes());
        sink.put(b"\n");
        write_canonical_uri(sink, self.path, self.normalize_path);
        sink.put(b"\n");
        write_canonical_query(sink, self.query, self.skip_query);
        sink.put(b"\n");
        for name in self.signed_headers.split(';') {
            sink.put(name.as_bytes());
            sink.put(b":");
            // Repeated headers are joined with commas in the order received.
            for (i, value) in self.headers.get_all(name).iter().enumerate() {
                if i > 0 {
                    sink.put(b",");
                }
                put_trimmed(sink, value.as_bytes());
            }
            sink.put(b"\n");
        }
        sink.put(b"\n");
        sink.put(self.signed_headers.as_bytes());
        sink.put(b"\n");
        sink.put(self.payload_hash.as_bytes());
    }

    /// Lowercase hex SHA-256 of the canonical request, the last line of the string to sign.
    pub(crate) fn hash_hex(&self) -> [u8; 64] {
        let mut hasher = Sha256::new();
        self.write(&mut hasher);
        hex_digest(&hasher.finalize().into())
    }
}

/// The first signed header the request does not carry, if any.
pub(crate) fn missing_header<'a>(headers: &HeaderMap, signed_headers: &'a str) -> Option<&'a str> {
    signed_headers
        .split(';')
        .find(|name| !headers.contains_key(*name))
}

/// Writes `AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex(sha256(canonical request))>`.
pub(crate) fn write_string_to_sign(
    sink: &mut impl Sink,
    date: &BasicFormat,
    scope: &str,
    canonical_hash_hex: &[u8; 64],
) {
    sink.put(ALGORITHM.as_bytes());
    sink.put(b"\n");
    sink.put(date);
    sink.put(b"\n");
    sink.put(scope.as_bytes());
    sink.put(b"\n");
    sink.put(canonical_hash_hex);
}

pub(crate) fn hex_digest(digest: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // Cannot fail: the output is exactly twice the input length.
    let _ = hex::encode_to_slice(digest, &mut out);
    out
}

/// Writes a header value with leading and trailing spaces removed and each run of spaces
/// inside collapsed to one, as SigV4 requires. Only spaces count, as in AWS's signers.
fn put_trimmed(sink: &mut impl Sink, value: &[u8]) {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |i| i + 1);
    let mut rest = &value[start..end];
    // Write maximal runs that contain no double space in one call each.
    while let Some(i) = rest.windows(2).position(|w| w == b"  ") {
        sink.put(&rest[..=i]);
        let skip = rest[i..]
            .iter()
            .position(|&b| b != b' ')
            .unwrap_or(rest.len() - i);
        rest = &rest[i + skip..];
    }
    sink.put(rest);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn trimmed(v: &str) -> String {
        let mut out = Vec::new();
        put_trimmed(&mut out, v.as_bytes());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn trims_and_collapses_spaces() {
        assert_eq!(trimmed("value1"), "value1");
        assert_eq!(trimmed("  value1  "), "value1");
        assert_eq!(trimmed("\"a   b   c\""), "\"a b c\"");
        assert_eq!(trimmed("a  b c    d"), "a b c d");
        assert_eq!(trimmed("    "), "");
        assert_eq!(trimmed(""), "");
        assert_eq!(trimmed(" a "), "a");
        // Tabs are not spaces for SigV4 trimming.
        assert_eq!(trimmed("a\t\tb"), "a\t\tb");
    }

    #[test]
    fn writes_canonical_request() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.append("my-header1", " value2 ".parse().unwrap());
        headers.append("my-header1", "value1".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert("user-agent", "not signed".parse().unwrap());
        let creq = CanonicalRequest {
            method: "GET",
            path: "/",
            query: Some("b=2&a=1"),
            skip_query: None,
            headers: &headers,
            signed_headers: "host;my-header1;x-amz-date",
            payload_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            normalize_path: true,
        };
        let mut out = Vec::new();
        creq.write(&mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "GET\n/\na=1&b=2\nhost:example.amazonaws.com\nmy-header1:value2,value1\n\
             x-amz-date:20150830T123600Z\n\nhost;my-header1;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(creq.hash_hex(), hex_digest(&Sha256::digest(&out).into()));
        assert_eq!(missing_header(&headers, creq.signed_headers), None);
        assert_eq!(
            missing_header(&headers, "host;x-amz-target"),
            Some("x-amz-target")
        );
    }
}
