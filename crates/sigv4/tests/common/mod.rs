//! Shared test support: requests signed by AWS's own signer (`aws-sigv4`), and lookup doubles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::cell::Cell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation,
    SigningSettings, sign,
};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sigv4::{RequestParts, SecretKey, SecretLookup, SigningSecret};

pub const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
pub const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQDtoken";
pub const SERVICE: &str = "ec2-instance-connect";
pub const REGION: &str = "us-east-1";
pub const HOST: &str = "ec2-instance-connect.us-east-1.amazonaws.com";
pub const TARGET: &str = "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey";
pub const BODY: &str = r#"{"InstanceId":"i-0123456789abcdef0","SerialPort":0,"SSHPublicKey":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHeMvaEuBoO4ryakGsGRDbmOFDFyUD4HRrFFvLsXxfPC user@example"}"#;

/// 2015-08-30T12:36:00Z, the time of AWS's examples, so messages can be compared with theirs.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

pub fn at(offset_secs: i64) -> SystemTime {
    if offset_secs >= 0 {
        t0() + Duration::from_secs(offset_secs as u64)
    } else {
        t0() - Duration::from_secs(offset_secs.unsigned_abs())
    }
}

/// What to sign; defaults to a serial-console API call.
#[derive(Clone)]
pub struct Spec {
    pub method: &'static str,
    pub path_and_query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub access_key_id: String,
    pub secret: String,
    pub token: Option<String>,
    /// Sign the token (default) or add it after signing.
    pub sign_token: bool,
    pub region: String,
    pub service: String,
    pub time: SystemTime,
    pub content_sha256_header: bool,
    /// Sign in the query (a presigned URL) valid this long, instead of in headers.
    pub presign_for: Option<Duration>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            method: "POST",
            path_and_query: "/".into(),
            headers: vec![
                ("host".into(), HOST.into()),
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                ("x-amz-target".into(), TARGET.into()),
                ("content-length".into(), BODY.len().to_string()),
            ],
            body: BODY.as_bytes().to_vec(),
            access_key_id: AKID.into(),
            secret: SECRET.into(),
            token: None,
            sign_token: true,
            region: REGION.into(),
            service: SERVICE.into(),
            time: t0(),
            content_sha256_header: false,
            presign_for: None,
        }
    }
}

/// A request as it would arrive: everything owned, ready to be mutated and verified.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Request {
    pub fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            path: &self.path,
            query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        }
    }

    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn remove(&mut self, name: &str) -> &mut Self {
        self.headers.remove(name);
        self
    }

    pub fn authorization(&self) -> String {
        self.headers["authorization"].to_str().unwrap().to_owned()
    }

    /// Rewrites the Authorization header with `f`.
    pub fn edit_authorization(&mut self, f: impl FnOnce(&str) -> String) -> &mut Self {
        let new = f(&self.authorization());
        self.set("authorization", &new)
    }
}

/// Signs `spec` with `aws_sigv4::http_request::sign` (header signing).
pub fn signed(spec: &Spec) -> Request {
    let identity: Identity = Credentials::new(
        &spec.access_key_id,
        &spec.secret,
        spec.token.clone(),
        None,
        "test",
    )
    .into();
    let mut settings = SigningSettings::default();
    if spec.content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if !spec.sign_token {
        settings.session_token_mode = SessionTokenMode::Exclude;
    }
    if let Some(expires) = spec.presign_for {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
    }
    let params = SigningParams::builder()
        .identity(&identity)
        .region(&spec.region)
        .name(&spec.service)
        .time(spec.time)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let uri = format!("https://{HOST}{}", spec.path_and_query);
    let signable = SignableRequest::new(
        spec.method,
        uri,
        spec.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&spec.body),
    )
    .unwrap();
    let (instructions, _signature) = sign(signable, &params).unwrap().into_parts();

    let mut headers = HeaderMap::new();
    for (k, v) in &spec.headers {
        headers.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    for (k, v) in instructions.headers() {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    if let (Some(token), false) = (&spec.token, spec.sign_token) {
        headers.insert(
            "x-amz-security-token",
            HeaderValue::from_str(token).unwrap(),
        );
    }
    let (path, mut query) = match spec.path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (spec.path_and_query.clone(), None),
    };
    // A presigned URL: the signer's parameters appended, encoded as a URL carries them.
    for (k, v) in instructions.params() {
        let pair = format!("{}={}", encode(k), encode(v));
        query = Some(match query {
            Some(q) if !q.is_empty() => format!("{q}&{pair}"),
            _ => pair,
        });
    }
    Request {
        method: spec.method.parse().unwrap(),
        path,
        query,
        headers,
        body: spec.body.clone(),
    }
}

/// `s` percent-encoded with the unreserved set, as SDKs encode query values.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The default signed API call.
pub fn signed_default() -> Request {
    signed(&Spec::default())
}

/// Knows one key; counts how often it is asked.
pub struct Keys {
    pub secret: String,
    pub token: Option<String>,
    pub calls: Cell<u32>,
}

impl Keys {
    pub fn new() -> Self {
        Keys {
            secret: SECRET.into(),
            token: None,
            calls: Cell::new(0),
        }
    }

    pub fn with_token(token: &str) -> Self {
        Keys {
            token: Some(token.into()),
            ..Keys::new()
        }
    }
}

impl SecretLookup for Keys {
    type Principal = &'static str;

    fn lookup(&self, access_key_id: &str) -> Option<SigningSecret<&'static str>> {
        self.calls.set(self.calls.get() + 1);
        (access_key_id == AKID).then(|| {
            let s = SigningSecret::new(
                SecretKey::new(&*self.secret),
                "arn:aws:iam::111122223333:user/alice",
            );
            match &self.token {
                Some(t) => s.with_session_token(SecretKey::new(&**t)),
                None => s,
            }
        })
    }
}

/// A lookup that must never be consulted: every cheap rejection is checked with it.
pub struct NeverLookup;

impl SecretLookup for NeverLookup {
    type Principal = ();

    fn lookup(&self, access_key_id: &str) -> Option<SigningSecret<()>> {
        panic!("lookup({access_key_id}) called before the cheap checks rejected the request");
    }
}
