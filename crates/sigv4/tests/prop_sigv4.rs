//! Property tests of the verifier through its public entry point: requests signed by AWS's own
//! signer (`aws-sigv4`) with arbitrary paths, queries, header values and bodies verify; changing
//! any one byte of a signed part makes them fail; arbitrary and adversarial `Authorization`
//! headers, paths, queries and header values never panic and are answered in linear time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use http::{HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use proptest::test_runner::Config;
use sigv4::{SigErrorKind, Verifier};

/// The default case count for these properties, unless `PROPTEST_CASES` says otherwise
/// (`scripts/fuzz.sh` raises it).
fn config(cases: u32) -> Config {
    let base = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        base
    } else {
        Config { cases, ..base }
    }
}

fn verifier() -> Verifier {
    Verifier::new(SERVICE, REGION).require_signed_header(HeaderName::from_static("x-amz-target"))
}

// --- generators ---------------------------------------------------------------------------

/// Percent-encodes every UTF-8 byte of `c`, in upper- or lowercase hex.
fn escaped(c: char, upper: bool) -> String {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf)
        .bytes()
        .map(|b| {
            if upper {
                format!("%{b:02X}")
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

/// Text a client may put in a path segment or a query component: literal characters legal
/// there, and percent-encoded UTF-8 (never a stray `%`, whose decoding AWS's signer and this
/// verifier need not agree on for invalid UTF-8).
fn uri_text(literal: &'static str) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => proptest::string::string_regex(literal).unwrap(),
            1 => (any::<char>(), any::<bool>()).prop_map(|(c, upper)| escaped(c, upper)),
        ],
        0..4,
    )
    .prop_map(|parts| parts.concat())
}

/// A path: segments of legal characters and escapes, with `.`, `..` and empty segments when
/// `dots` is set.
fn path(dots: bool) -> BoxedStrategy<String> {
    let segment = uri_text("[A-Za-z0-9._~!$'()*,;:@+=&-]{1,6}");
    let segment = if dots {
        prop_oneof![
            6 => segment,
            1 => Just(".".to_owned()),
            1 => Just("..".to_owned()),
            1 => Just(String::new()),
        ]
        .boxed()
    } else {
        // No dot segments (each starts with a letter): every alphanumeric byte of the path
        // reaches the canonical URI.
        ("[a-z]", segment)
            .prop_map(|(first, rest)| first + &rest)
            .boxed()
    };
    (prop::collection::vec(segment, 0..5), any::<bool>())
        .prop_map(|(segments, trailing)| {
            let mut p = format!("/{}", segments.join("/"));
            if trailing && !p.ends_with('/') {
                p.push('/');
            }
            p
        })
        .boxed()
}

/// A query string: pairs, bare names, repeats and empty pairs.
fn query() -> impl Strategy<Value = Option<String>> {
    let component = || uri_text("[A-Za-z0-9._~!$'()*,;:@/?+-]{1,6}");
    let pair = prop_oneof![
        4 => (component(), component()).prop_map(|(k, v)| format!("{k}={v}")),
        1 => component(),
        1 => Just(String::new()),
    ];
    prop::option::of(prop::collection::vec(pair, 0..6).prop_map(|pairs| pairs.join("&")))
}

/// Extra signed headers: lowercase names (possibly repeated) with values AWS's signer accepts:
/// visible ASCII, spaces and tabs anywhere, and some non-ASCII text.
fn extra_headers() -> impl Strategy<Value = Vec<(String, String)>> {
    let name = "x-p-[a-c]{1,2}";
    let value = prop_oneof![
        "[ -~\t]{0,24}",
        "[ a-zé€😀\t]{0,12}",
        "( {0,3}[a-z]{0,3}){0,6}",
    ];
    prop::collection::vec((name, value), 0..5)
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["POST", "GET", "PUT", "DELETE"])
}

/// A request signed by `aws-sigv4` with the generated parts.
fn signed_with(
    method: &'static str,
    path: &str,
    query: Option<&str>,
    extra: &[(String, String)],
    body: &[u8],
) -> Request {
    let mut spec = Spec {
        method,
        path_and_query: match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        },
        body: body.to_vec(),
        ..Spec::default()
    };
    spec.headers.retain(|(k, _)| k != "content-length");
    spec.headers
        .push(("content-length".into(), body.len().to_string()));
    spec.headers.extend(extra.iter().cloned());
    signed(&spec)
}

// --- round trip and single-byte mutations ----------------------------------------------------

proptest! {
    #![proptest_config(config(64))]

    /// Whatever an SDK signs (any path, with dot segments and doubled slashes; any query; any
    /// header values; any body) verifies here: both sides canonicalise alike.
    #[test]
    fn prop_aws_signed_requests_verify(
        method in method(),
        path in path(true),
        query in query(),
        extra in extra_headers(),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let req = signed_with(method, &path, query.as_deref(), &extra, &body);
        let result = verifier().verify(&req.parts(), t0(), &Keys::new());
        prop_assert!(result.is_ok(), "{:?} for {req:?}", result.err());
    }

    /// Changing one byte of anything the signature covers (path, query, a signed header, the
    /// body, the `Authorization` header itself), or the method, makes verification fail.
    /// Replacements are alphanumeric for alphanumeric outside `%XX` escapes (and any byte in
    /// the body), so each one really changes the canonical request.
    #[test]
    fn prop_any_single_byte_mutation_fails(
        method in method(),
        path in path(false),
        query in query(),
        extra in extra_headers(),
        body in prop::collection::vec(any::<u8>(), 1..64),
        part in 0usize..6,
        which in any::<prop::sample::Index>(),
        pick in any::<prop::sample::Index>(),
        replacement in any::<prop::sample::Index>(),
    ) {
        let mut req = signed_with(method, &path, query.as_deref(), &extra, &body);
        prop_assume!(verifier().verify(&req.parts(), t0(), &Keys::new()).is_ok());
        // A part with nothing to replace (an all-punctuation query, say) leaves the body to it.
        let mutated = match part {
            0 => mutate_text(&req.path, pick, replacement).map(|new| req.path = new),
            1 => req
                .query
                .as_deref()
                .and_then(|q| mutate_text(q, pick, replacement))
                .map(|new| req.query = Some(new)),
            2 => {
                // A header named in SignedHeaders (host, x-amz-date, x-amz-target, ...).
                let auth = req.authorization();
                let signed_names: Vec<&str> = auth
                    .split("SignedHeaders=")
                    .nth(1)
                    .and_then(|rest| rest.split(',').next())
                    .unwrap()
                    .split(';')
                    .collect();
                let name = HeaderName::from_bytes(which.get(&signed_names).as_bytes()).unwrap();
                let values: Vec<HeaderValue> = req.headers.get_all(&name).iter().cloned().collect();
                let i = pick.index(values.len());
                mutate_bytes(values[i].as_bytes(), pick, replacement).map(|new| {
                    req.headers.remove(&name);
                    for (j, v) in values.into_iter().enumerate() {
                        let v = if j == i { HeaderValue::from_bytes(&new).unwrap() } else { v };
                        req.headers.append(name.clone(), v);
                    }
                })
            }
            3 => {
                let auth = req.authorization();
                mutate_text(&auth, pick, replacement).map(|new| {
                    req.set("authorization", &new);
                })
            }
            4 => {
                let others: Vec<Method> = [Method::POST, Method::GET, Method::PUT, Method::DELETE]
                    .into_iter()
                    .filter(|m| *m != req.method)
                    .collect();
                req.method = replacement.get(&others).clone();
                Some(())
            }
            _ => None,
        };
        if mutated.is_none() {
            let i = pick.index(req.body.len());
            req.body[i] ^= 1 + (replacement.index(255) as u8);
        }
        let result = verifier().verify(&req.parts(), t0(), &Keys::new());
        prop_assert!(result.is_err(), "mutated part {part} still verifies: {req:?}");
    }
}

/// Positions of alphanumeric bytes that are not inside a `%XX` escape.
fn mutable_positions(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            i += 3;
            continue;
        }
        if bytes[i].is_ascii_alphanumeric() {
            out.push(i);
        }
        i += 1;
    }
    out
}

/// Replaces one alphanumeric byte (outside escapes) with an alphanumeric byte that differs
/// from it even ignoring case (hex digits and header names compare case-insensitively).
fn mutate_bytes(
    bytes: &[u8],
    pick: prop::sample::Index,
    replacement: prop::sample::Index,
) -> Option<Vec<u8>> {
    let positions = mutable_positions(bytes);
    if positions.is_empty() {
        return None;
    }
    let at = *pick.get(&positions);
    let old = bytes[at].to_ascii_lowercase();
    let choices: Vec<u8> = (b'0'..=b'9')
        .chain(b'a'..=b'z')
        .chain(b'A'..=b'Z')
        .filter(|c| c.to_ascii_lowercase() != old)
        .collect();
    let mut out = bytes.to_vec();
    out[at] = *replacement.get(&choices);
    Some(out)
}

fn mutate_text(
    text: &str,
    pick: prop::sample::Index,
    replacement: prop::sample::Index,
) -> Option<String> {
    // Only ASCII bytes are replaced by ASCII bytes, so the text stays UTF-8.
    mutate_bytes(text.as_bytes(), pick, replacement).and_then(|b| String::from_utf8(b).ok())
}

// --- arbitrary and adversarial input: no panic, small errors --------------------------------

/// Pieces an `Authorization` header is made of, for headers that are almost right.
fn authorization_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just("AWS4-HMAC-SHA256 ".to_owned()),
        Just("Credential=".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("Signature=".to_owned()),
        Just(format!("{AKID}/20150830/{REGION}/{SERVICE}/aws4_request")),
        Just("host;x-amz-date;x-amz-target".to_owned()),
        Just("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31".to_owned()),
        prop::sample::select(vec![",", ", ", " ", "\t", ";", "/", "=", "==", ",,"])
            .prop_map(str::to_owned),
        "[ -~]{0,12}",
        "[0-9a-f]{0,70}",
        "[a-z0-9;-]{0,30}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|p| p.concat())
}

/// Names the verifier reads, plus one it does not.
fn header_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "authorization",
        "x-amz-date",
        "date",
        "x-amz-content-sha256",
        "x-amz-security-token",
        "host",
        "x-amz-target",
        "content-type",
        "x-other",
    ])
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        authorization_soup().prop_map(String::into_bytes),
        Just(b"20150830T123600Z".to_vec()),
        Just(b"Sun, 30 Aug 2015 12:36:00 GMT".to_vec()),
        "[0-9TZ]{0,20}".prop_map(String::into_bytes),
        Just(b"UNSIGNED-PAYLOAD".to_vec()),
        Just(b"STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_vec()),
        // Any bytes a header value may hold, including obs-text.
        prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..40),
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Set(&'static str, Vec<u8>),
    Append(&'static str, Vec<u8>),
    Remove(&'static str),
    Path(String),
    Query(Option<String>),
    Body(Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (header_name(), header_bytes()).prop_map(|(n, v)| Edit::Set(n, v)),
        2 => (header_name(), header_bytes()).prop_map(|(n, v)| Edit::Append(n, v)),
        1 => header_name().prop_map(Edit::Remove),
        1 => prop_oneof!["[ -~]{0,30}", path(true)].prop_map(Edit::Path),
        1 => prop::option::of(prop_oneof![
            "[ -~]{0,30}",
            Just("X-Amz-Algorithm=AWS4-HMAC-SHA256".to_owned()),
            Just("X%2DAmz-Algorithm".to_owned()),
        ])
        .prop_map(Edit::Query),
        1 => prop::collection::vec(any::<u8>(), 0..32).prop_map(Edit::Body),
    ]
}

fn apply(req: &mut Request, edit: Edit) {
    match edit {
        Edit::Set(name, value) => {
            req.headers
                .insert(name, HeaderValue::from_bytes(&value).unwrap());
        }
        Edit::Append(name, value) => {
            req.headers
                .append(name, HeaderValue::from_bytes(&value).unwrap());
        }
        Edit::Remove(name) => {
            req.headers.remove(name);
        }
        Edit::Path(p) => req.path = p,
        Edit::Query(q) => req.query = q,
        Edit::Body(b) => req.body = b,
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A signed request with arbitrary headers set, added or removed and arbitrary paths,
    /// queries and bodies: verification answers (never panics), the answer never holds the
    /// secret, and its message stays small however large the input.
    #[test]
    fn prop_arbitrary_requests_never_panic(
        method in prop::sample::select(vec![Method::POST, Method::GET, Method::OPTIONS]),
        edits in prop::collection::vec(edit(), 0..6),
    ) {
        let mut req = signed_default();
        req.method = method;
        for e in edits {
            apply(&mut req, e);
        }
        let keys = Keys::new();
        if let Err(e) = verifier().verify(&req.parts(), t0(), &keys) {
            prop_assert!(!e.message().contains(SECRET));
            prop_assert!(e.message().len() <= 1024, "{} bytes: {e}", e.message().len());
        }
        prop_assert!(keys.calls.get() <= 1);
    }

    /// Any `Authorization` value at all (made of its own pieces, or of anything): an error of
    /// one of the expected kinds, and the secret is never consulted for a malformed one.
    #[test]
    fn prop_arbitrary_authorization_is_refused(auth in authorization_soup()) {
        let mut req = signed_default();
        req.headers.insert("authorization", HeaderValue::from_str(&auth).unwrap());
        let keys = Keys::new();
        let result = verifier().verify(&req.parts(), t0(), &keys);
        if let Err(e) = &result {
            prop_assert!(e.message().len() <= 1024, "{e}");
            if e.kind() == SigErrorKind::Incomplete {
                prop_assert_eq!(keys.calls.get(), 0, "{}", e);
            }
        }
    }
}

// --- presigned URLs ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(64))]

    /// A URL presigned by `aws-sigv4` over any path and query verifies while it is valid; one
    /// changed byte of its query fails (or is refused as malformed) without a panic.
    #[test]
    fn prop_presigned_urls_verify_and_resist_mutation(
        path in path(true),
        query in query(),
        seed in any::<prop::sample::Index>(),
    ) {
        let spec = Spec {
            method: "GET",
            path_and_query: match query.as_deref() {
                Some(q) => format!("{path}?{q}"),
                None => path.clone(),
            },
            headers: vec![("host".into(), HOST.into())],
            body: Vec::new(),
            presign_for: Some(std::time::Duration::from_secs(60)),
            ..Spec::default()
        };
        let req = signed(&spec);
        let v = Verifier::new(SERVICE, REGION);
        let max = std::time::Duration::from_secs(60);
        let result = v.verify_presigned(&req.parts(), at(10), max, &Keys::new());
        prop_assert!(result.is_ok(), "{:?} for {req:?}", result.err());

        let q = req.query.clone().unwrap_or_default();
        let positions = mutable_positions(q.as_bytes());
        prop_assume!(!positions.is_empty());
        let i = positions[seed.index(positions.len())];
        let mut bytes = q.into_bytes();
        bytes[i] = if bytes[i] == b'0' { b'1' } else if bytes[i].is_ascii_digit() { b'0' }
            else if bytes[i] == b'a' { b'b' } else { b'a' };
        let mut bad = req.clone();
        bad.query = Some(String::from_utf8(bytes).unwrap());
        let keys = Keys::new();
        let result = v.verify_presigned(&bad.parts(), at(10), max, &keys);
        prop_assert!(result.is_err(), "mutation at {i} accepted: {:?}", bad.query);
        prop_assert!(keys.calls.get() <= 1);
    }

    /// Any query at all on a presigned request: an answer, never a panic, never the secret.
    #[test]
    fn prop_arbitrary_presigned_queries_are_answered(q in "[ -~]{0,300}") {
        let req = Request {
            method: Method::GET,
            path: "/".into(),
            query: Some(format!("X-Amz-Algorithm=AWS4-HMAC-SHA256&{q}")),
            headers: http::HeaderMap::new(),
            body: Vec::new(),
        };
        let keys = Keys::new();
        let max = std::time::Duration::from_secs(60);
        if let Err(e) = Verifier::new(SERVICE, REGION).verify_presigned(&req.parts(), t0(), max, &keys) {
            prop_assert!(!e.message().contains(SECRET));
            prop_assert!(e.message().len() <= 1024, "{e}");
        }
    }
}

// --- linear time on adversarial shapes ------------------------------------------------------
//
// Each input is about 1 MB and built deterministically. A parser that is quadratic in any of
// them takes minutes here (and fails CI's time budget); a linear one takes milliseconds.

const BIG: usize = 1 << 20;

fn repeat_to(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len() + 1)
}

fn auth_with(params: &str) -> String {
    format!("AWS4-HMAC-SHA256 {params}")
}

const SIG: &str = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

fn refused(auth: &str) -> SigErrorKind {
    let mut req = signed_default();
    req.headers
        .insert("authorization", HeaderValue::from_str(auth).unwrap());
    verifier()
        .verify(&req.parts(), t0(), &Keys::new())
        .expect_err("a malformed Authorization header verified")
        .kind()
}

#[test]
fn prop_linear_signed_headers_with_many_distinct_names() {
    // ~1 MB of distinct names: a duplicate check that rescans the list is quadratic here.
    let names: Vec<String> = (0..BIG / 8).map(|i| format!("h{i:06x}")).collect();
    let auth = auth_with(&format!(
        "Credential={AKID}/20150830/{REGION}/{SERVICE}/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target;{}, Signature={SIG}",
        names.join(";")
    ));
    assert!(auth.len() > BIG);
    refused(&auth);
    // The same names for an access key nobody has (the shape of the unauthenticated attack).
    refused(&auth.replace(AKID, "AKIDUNKNOWN"));
}

#[test]
fn prop_linear_authorization_separators_and_slashes() {
    let cred = format!("Credential={AKID}/20150830/{REGION}/{SERVICE}/aws4_request");
    for auth in [
        auth_with(&repeat_to(", ", BIG)),
        auth_with(&repeat_to(" \t", BIG)),
        auth_with(&format!(
            "{cred}, SignedHeaders={}, Signature={SIG}",
            repeat_to(";", BIG)
        )),
        auth_with(&format!(
            "{cred}, SignedHeaders={}host, Signature={SIG}",
            repeat_to("host;", BIG)
        )),
        auth_with(&format!(
            "Credential={AKID}{}, SignedHeaders=host, Signature={SIG}",
            repeat_to("/", BIG)
        )),
        auth_with(&format!(
            "{cred}, SignedHeaders=host, Signature={}",
            repeat_to("0", BIG)
        )),
        auth_with(&repeat_to("Credential=a,", BIG)),
        auth_with(&repeat_to("=", BIG)),
        repeat_to("A", BIG),
        format!("{}{}", repeat_to(" ", BIG), auth_with(&cred)),
    ] {
        refused(&auth);
    }
}

/// A correctly signed request whose path, query or signed header is then replaced by a huge
/// one: the verifier gets through every cheap check and canonicalises it all. (Some of these
/// canonicalise to the original request, `//` to `/` for one, and so still verify.)
fn canonicalised(edit: impl FnOnce(&mut Request)) {
    let mut req = signed_default();
    edit(&mut req);
    if let Err(err) = verifier().verify(&req.parts(), t0(), &Keys::new()) {
        assert_eq!(err.kind(), SigErrorKind::SignatureMismatch, "{err}");
    }
}

#[test]
fn prop_linear_canonical_path() {
    for unit in ["/..", "//", "/.", "/a", "/%41", "/é", "/a/.."] {
        canonicalised(|req| req.path = repeat_to(unit, BIG));
    }
}

#[test]
fn prop_linear_canonical_query() {
    for unit in ["a=&", "&", "a&", "%41=%42&", "=&", "+", "b=a&a=b&"] {
        canonicalised(|req| req.query = Some(repeat_to(unit, BIG)));
    }
}

#[test]
fn prop_linear_canonical_header_values() {
    for unit in ["a  ", " ", "a ", "  a", "\t "] {
        canonicalised(|req| {
            let value = format!("x{}x", repeat_to(unit, BIG));
            req.headers
                .insert("x-amz-target", HeaderValue::from_str(&value).unwrap());
        });
    }
    // Many values of one signed header, joined with commas.
    canonicalised(|req| {
        for _ in 0..10_000 {
            req.headers
                .append("x-amz-target", HeaderValue::from_static(TARGET));
        }
    });
}
