//! The verifier: the cheap checks, then one secret lookup, then the signature, in that order.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::header::{AUTHORIZATION, DATE};
use http::{HeaderMap, HeaderName, Method, Uri};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::authorization::{self, Credential, MAX_AUTHORIZATION_BYTES};
use crate::canonical::{CanonicalRequest, hex_digest, missing_header, write_string_to_sign};
use crate::date::{BasicFormat, format_basic, parse_basic, parse_http_date};
use crate::error::{SigError, SigErrorKind, echo};
use crate::presigned::{self, SIGNATURE_PARAM};
use crate::secret::{SecretLookup, SigningSecret};
use crate::signing::{finish, signer, signing_key};
use crate::uri::query_has;

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";

/// The parts of an HTTP request that SigV4 covers, borrowed from whatever framework holds them.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a Method,
    /// The path exactly as sent on the wire, still percent-encoded.
    pub path: &'a str,
    /// The raw query string, without the `?`.
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl<'a> RequestParts<'a> {
    /// Takes path and query from a request URI (as received, so still encoded).
    pub fn from_uri(
        method: &'a Method,
        uri: &'a Uri,
        headers: &'a HeaderMap,
        body: &'a [u8],
    ) -> Self {
        Self {
            method,
            path: uri.path(),
            query: uri.query(),
            headers,
            body,
        }
    }
}

/// Proof that a request was signed by a known key. Only [`Verifier::verify`] makes one, so a
/// function that takes `Verified<P>` can only be reached by authenticated requests.
#[derive(Debug)]
pub struct Verified<P> {
    access_key_id: String,
    principal: P,
    request_time: SystemTime,
    scope_date: String,
    region: String,
    session_token: bool,
    signature: [u8; 32],
    expires_at: Option<SystemTime>,
}

impl<P> Verified<P> {
    /// The access key id that signed the request.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The principal the lookup attached to the key.
    pub fn principal(&self) -> &P {
        &self.principal
    }

    /// Gives up the proof for the principal.
    pub fn into_principal(self) -> P {
        self.principal
    }

    /// The signed request time (`X-Amz-Date`, or `Date`).
    pub fn request_time(&self) -> SystemTime {
        self.request_time
    }

    /// `YYYYMMDD` from the credential scope.
    pub fn scope_date(&self) -> &str {
        &self.scope_date
    }

    /// The region from the credential scope (always the verifier's region).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// Whether the request was made with temporary credentials (a session token).
    pub fn used_session_token(&self) -> bool {
        self.session_token
    }

    /// The request's signature: unique to what was signed, so a presigned URL can be spent
    /// once by remembering it until [`expires_at`](Self::expires_at).
    pub fn signature(&self) -> &[u8; 32] {
        &self.signature
    }

    /// When a presigned URL stops being valid (`X-Amz-Date` + `X-Amz-Expires`); `None` for a
    /// request signed in its `Authorization` header.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }
}

/// Verifies SigV4 `Authorization` headers for one service name and one region.
#[derive(Debug, Clone)]
pub struct Verifier {
    service: String,
    region: String,
    max_skew: Duration,
    required_signed: Vec<HeaderName>,
    // Always true in production: non-S3 services normalize. Tests turn it off to run the AWS
    // suite's "unnormalized" (S3-style) vectors.
    normalize_path: bool,
}

impl Verifier {
    /// AWS's default window: a request may be 15 minutes early or late.
    pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(15 * 60);

    /// A verifier for one signing name (e.g. `ec2-instance-connect`) and one region, with the
    /// default 15-minute skew.
    pub fn new(service: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            region: region.into(),
            max_skew: Self::DEFAULT_MAX_SKEW,
            required_signed: Vec::new(),
            normalize_path: true,
        }
    }

    /// How far the request time may be from `now`, either way (inclusive).
    #[must_use]
    pub fn with_max_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew;
        self
    }

    /// Requires `name` to be among the signed headers, beyond SigV4's own `host` and date.
    /// For a JSON protocol, `x-amz-target` picks the operation, so it should be signed.
    #[must_use]
    pub fn require_signed_header(mut self, name: HeaderName) -> Self {
        self.required_signed.push(name);
        self
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    pub fn max_skew(&self) -> Duration {
        self.max_skew
    }

    #[cfg(test)]
    pub(crate) fn without_path_normalization(mut self) -> Self {
        self.normalize_path = false;
        self
    }

    /// Verifies `req` as of `now`. `lookup` is consulted at most once, and only when every
    /// check that needs no secret has passed.
    pub fn verify<L: SecretLookup>(
        &self,
        req: &RequestParts<'_>,
        now: SystemTime,
        lookup: &L,
    ) -> Result<Verified<L::Principal>, SigError> {
        let checked = self.check(req, now)?;
        let secret = lookup.lookup(checked.access_key_id());
        checked.finish(secret)
    }

    /// The first half of [`verify`](Self::verify), for callers whose secret lookup is async:
    /// every check that needs no secret (header shape, scope, required headers, clock skew,
    /// payload hash). Look the secret up for [`Checked::access_key_id`], then call
    /// [`Checked::finish`].
    pub fn check<'r>(
        &self,
        req: &RequestParts<'r>,
        now: SystemTime,
    ) -> Result<Checked<'r>, SigError> {
        let auth_value = authorization_value(req)?;
        let date = request_date(req.headers)?;
        let auth = authorization::parse(auth_value, date.is_some())?;
        let Some((time, date_header)) = date else {
            // `parse` has already reported a missing date; this only keeps the types honest.
            return Err(SigError::incomplete("Missing X-Amz-Date or Date header."));
        };
        let date = format_basic(time);
        self.check_scope(&auth.credential, &date)?;
        self.check_signed_headers(req.headers, auth.signed_headers, Some(date_header))?;
        self.check_skew(time, now)?;
        let payload_hash = payload_hash(req)?;
        Ok(Checked {
            req: *req,
            access_key_id: auth.credential.access_key_id.to_owned(),
            scope: auth.credential.scope.to_owned(),
            signed_headers: auth.signed_headers.to_owned(),
            signature: auth.signature,
            time,
            date,
            payload_hash,
            presigned: None,
            normalize_path: self.normalize_path,
        })
    }

    /// Verifies a presigned request (query-string authentication) as of `now`: valid from
    /// `X-Amz-Date` (give or take the clock skew) for `X-Amz-Expires` seconds, which may be at
    /// most `max_expires`. `lookup` is consulted at most once, after every other check.
    pub fn verify_presigned<L: SecretLookup>(
        &self,
        req: &RequestParts<'_>,
        now: SystemTime,
        max_expires: Duration,
        lookup: &L,
    ) -> Result<Verified<L::Principal>, SigError> {
        let checked = self.check_presigned(req, now, max_expires)?;
        let secret = lookup.lookup(checked.access_key_id());
        checked.finish(secret)
    }

    /// The first half of [`verify_presigned`](Self::verify_presigned), for an async lookup
    /// (see [`check`](Self::check)).
    pub fn check_presigned<'r>(
        &self,
        req: &RequestParts<'r>,
        now: SystemTime,
        max_expires: Duration,
    ) -> Result<Checked<'r>, SigError> {
        let query = req.query.filter(|q| query_has(Some(q), "X-Amz-Algorithm"));
        let query = match (query, req.headers.contains_key(AUTHORIZATION)) {
            (Some(query), false) => query,
            (Some(_), true) => return Err(SigError::incomplete(ONE_MECHANISM)),
            (None, true) => {
                return Err(SigError::incomplete(
                    "This resource takes a presigned URL (query-string authentication), not \
                     an Authorization header.",
                ));
            }
            (None, false) => return Err(SigError::missing()),
        };
        let p = presigned::parse(query)?;
        let date = format_basic(p.time);
        let cred = p.credential()?;
        self.check_scope(&cred, &date)?;
        self.check_signed_headers(req.headers, &p.signed_headers, None)?;
        let longest = max_expires.as_secs();
        if p.expires > longest {
            return Err(SigError::incomplete(format!(
                "X-Amz-Expires is {} seconds; this service accepts presigned URLs valid for at \
                 most {longest} seconds.",
                p.expires
            )));
        }
        self.check_validity(p.time, p.expires, now)?;
        let payload_hash = payload_hash(req)?;
        Ok(Checked {
            req: *req,
            access_key_id: cred.access_key_id.to_owned(),
            scope: cred.scope.to_owned(),
            signed_headers: p.signed_headers.clone(),
            signature: p.signature,
            time: p.time,
            date,
            payload_hash,
            presigned: Some(PresignedPart {
                expires: p.expires,
                token: p.token,
            }),
            normalize_path: self.normalize_path,
        })
    }

    /// A presigned URL is valid from its date (early by at most the clock skew, as a header's
    /// date may be) until its date plus `X-Amz-Expires`.
    fn check_validity(&self, time: i64, expires: u64, now: SystemTime) -> Result<(), SigError> {
        let now_s = unix_seconds(now);
        let skew = i64::try_from(self.max_skew.as_secs()).unwrap_or(i64::MAX);
        let show = |t: i64| String::from_utf8_lossy(&format_basic(t)).into_owned();
        if time > now_s.saturating_add(skew) {
            return self.check_skew(time, now);
        }
        let until = time.saturating_add(i64::try_from(expires).unwrap_or(i64::MAX));
        if now_s > until {
            return Err(SigError::new(
                SigErrorKind::Expired,
                format!(
                    "Request has expired: signed at {} for {expires} seconds, so valid until {}; \
                     it is now {}.",
                    show(time),
                    show(until),
                    show(now_s)
                ),
            ));
        }
        Ok(())
    }

    fn check_scope(&self, cred: &Credential<'_>, date: &BasicFormat) -> Result<(), SigError> {
        if cred.terminator != "aws4_request" {
            return Err(SigError::wrong_scope(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'.",
                echo(cred.terminator)
            )));
        }
        if cred.service != self.service {
            return Err(SigError::wrong_scope(format!(
                "Credential should be scoped to correct service: '{}'.",
                self.service
            )));
        }
        if cred.region != self.region {
            // AWS names the region it was sent (STS, IAM) or also the one it expects (S3); the
            // second is what a caller needs to fix its configuration.
            return Err(SigError::wrong_scope(format!(
                "Credential should be scoped to a valid region, not '{}'; expecting '{}'.",
                echo(cred.region),
                self.region
            )));
        }
        if cred.date.as_bytes() != &date[..8] {
            let iso = String::from_utf8_lossy(date);
            return Err(SigError::wrong_scope(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{}' != '{}', from '{iso}'.",
                echo(cred.date),
                &iso[..8],
            )));
        }
        Ok(())
    }

    fn check_signed_headers(
        &self,
        headers: &HeaderMap,
        signed: &str,
        date_header: Option<&'static str>,
    ) -> Result<(), SigError> {
        let is_signed = |name: &str| signed.split(';').any(|s| s == name);
        if !is_signed("host") {
            return Err(SigError::incomplete(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
            ));
        }
        if let Some(date_header) = date_header.filter(|name| !is_signed(name)) {
            let shown = if date_header == X_AMZ_DATE {
                "X-Amz-Date"
            } else {
                "Date"
            };
            return Err(SigError::incomplete(format!(
                "'{shown}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
        if let Some(name) = self.required_signed.iter().find(|n| !is_signed(n.as_str())) {
            return Err(SigError::incomplete(format!(
                "'{}' must be a 'SignedHeader' in the AWS Authorization.",
                name.as_str()
            )));
        }
        if let Some(name) = missing_header(headers, signed) {
            return Err(SigError::incomplete(format!(
                "The request does not carry the signed header '{}'.",
                echo(name)
            )));
        }
        Ok(())
    }

    fn check_skew(&self, time: i64, now: SystemTime) -> Result<(), SigError> {
        let now = unix_seconds(now);
        let skew = i64::try_from(self.max_skew.as_secs()).unwrap_or(i64::MAX);
        let window = skew_text(self.max_skew);
        let show = |t: i64| String::from_utf8_lossy(&format_basic(t)).into_owned();
        let earliest = now.saturating_sub(skew);
        let latest = now.saturating_add(skew);
        // Wording as AWS's: SDKs parse "(<server time> - N min.)" to correct their clock.
        if time < earliest {
            return Err(SigError::new(
                SigErrorKind::Expired,
                format!(
                    "Signature expired: {} is now earlier than {} ({} - {window}.)",
                    show(time),
                    show(earliest),
                    show(now)
                ),
            ));
        }
        if time > latest {
            return Err(SigError::new(
                SigErrorKind::Expired,
                format!(
                    "Signature not yet current: {} is still later than {} ({} + {window}.)",
                    show(time),
                    show(latest),
                    show(now)
                ),
            ));
        }
        Ok(())
    }
}

/// A request that passed every check that needs no secret; only [`Verifier::check`] makes one.
#[derive(Debug)]
pub struct Checked<'r> {
    req: RequestParts<'r>,
    access_key_id: String,
    /// `20150830/us-east-1/service/aws4_request`, checked against the verifier's.
    scope: String,
    signed_headers: String,
    signature: [u8; 32],
    time: i64,
    date: BasicFormat,
    payload_hash: [u8; 64],
    /// Set for query-string authentication.
    presigned: Option<PresignedPart>,
    normalize_path: bool,
}

/// What only a presigned request has.
#[derive(Debug)]
struct PresignedPart {
    expires: u64,
    /// `X-Amz-Security-Token`, decoded.
    token: Option<String>,
}

const ONE_MECHANISM: &str = "Only one auth mechanism allowed; only the X-Amz-Algorithm query \
     parameter, Signature query string parameter or the Authorization header should be specified";

impl<'r> Checked<'r> {
    /// The access key id whose secret [`finish`](Self::finish) needs.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// Completes verification with the looked-up secret (`None`: unknown key): the signature,
    /// then the session token, both compared in constant time.
    pub fn finish<P>(self, secret: Option<SigningSecret<P>>) -> Result<Verified<P>, SigError> {
        let secret = secret.ok_or_else(SigError::unknown_access_key)?;
        // The scope was checked to have exactly four parts when it was parsed.
        let mut scope = self.scope.split('/');
        let (date, region, service) = (
            scope.next().unwrap_or_default(),
            scope.next().unwrap_or_default(),
            scope.next().unwrap_or_default(),
        );
        let canonical_hash = self.canonical().hash_hex();
        let key = signing_key(&secret.secret, date, region, service)?;
        let mut mac = signer(&key)?;
        write_string_to_sign(&mut mac, &self.date, &self.scope, &canonical_hash);
        let calculated = finish(mac);
        if !bool::from(calculated.ct_eq(&self.signature)) {
            return Err(SigError::signature_mismatch());
        }

        // Checked after the signature so that only a holder of the secret learns whether a
        // token is right. A header token need not be signed (AWS allows adding it after
        // signing); a presigned URL's is part of the signed query.
        let token_ok = match &self.presigned {
            Some(p) => match (&secret.session_token, &p.token) {
                (None, None) => true,
                (Some(expected), Some(sent)) => expected.ct_eq_bytes(sent.as_bytes()),
                _ => false,
            },
            None => {
                let mut tokens = self.req.headers.get_all(X_AMZ_SECURITY_TOKEN).iter();
                let (sent, extra) = (tokens.next(), tokens.next().is_some());
                match (&secret.session_token, sent) {
                    (None, None) => true,
                    (Some(expected), Some(sent)) => !extra && expected.ct_eq_bytes(sent.as_bytes()),
                    _ => false,
                }
            }
        };
        if !token_ok {
            return Err(SigError::invalid_token());
        }

        let expires_at = self.presigned.as_ref().map(|p| {
            let secs = i64::try_from(p.expires).unwrap_or(i64::MAX);
            to_system_time(self.time.saturating_add(secs))
        });
        Ok(Verified {
            request_time: to_system_time(self.time),
            scope_date: date.to_owned(),
            region: region.to_owned(),
            session_token: secret.session_token.is_some(),
            signature: self.signature,
            expires_at,
            principal: secret.principal,
            access_key_id: self.access_key_id,
        })
    }

    fn canonical(&self) -> CanonicalRequest<'_> {
        CanonicalRequest {
            method: self.req.method.as_str(),
            path: self.req.path,
            query: self.req.query,
            skip_query: self.presigned.as_ref().map(|_| SIGNATURE_PARAM),
            headers: self.req.headers,
            signed_headers: &self.signed_headers,
            // Hex digits are ASCII, so this conversion cannot fail.
            payload_hash: std::str::from_utf8(&self.payload_hash).unwrap_or_default(),
            normalize_path: self.normalize_path,
        }
    }
}

fn authorization_value<'r>(req: &RequestParts<'r>) -> Result<&'r str, SigError> {
    let presigned = query_has(req.query, "X-Amz-Algorithm");
    let mut values = req.headers.get_all(AUTHORIZATION).iter();
    let value = match (values.next(), presigned) {
        (None, false) => return Err(SigError::missing()),
        (None, true) => {
            return Err(SigError::incomplete(
                "Query-string (presigned URL) authentication is not supported by this service; \
                 sign the request with an Authorization header.",
            ));
        }
        (Some(_), true) => return Err(SigError::incomplete(ONE_MECHANISM)),
        (Some(value), false) => value,
    };
    if values.next().is_some() {
        return Err(SigError::incomplete(
            "Only one Authorization header is allowed.",
        ));
    }
    // Before anything reads the value byte by byte.
    if value.len() > MAX_AUTHORIZATION_BYTES {
        return Err(SigError::incomplete(format!(
            "The Authorization header is {} bytes long; this service accepts at most \
             {MAX_AUTHORIZATION_BYTES}.",
            value.len()
        )));
    }
    value
        .to_str()
        .map_err(|_| SigError::incomplete("The Authorization header contains non-ASCII bytes."))
}

/// The request time in Unix seconds and the header it came from; `X-Amz-Date` wins over `Date`.
fn request_date(headers: &HeaderMap) -> Result<Option<(i64, &'static str)>, SigError> {
    type Parser = fn(&[u8]) -> Option<i64>;
    let (name, parse): (&'static str, Parser) = if headers.contains_key(X_AMZ_DATE) {
        (X_AMZ_DATE, parse_basic)
    } else if headers.contains_key(DATE) {
        ("date", parse_http_date)
    } else {
        return Ok(None);
    };
    let mut values = headers.get_all(name).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(SigError::incomplete(format!(
            "Only one '{name}' header is allowed."
        )));
    };
    match parse(value.as_bytes()) {
        Some(time) => Ok(Some((time, name))),
        None => {
            let got = String::from_utf8_lossy(value.as_bytes());
            Err(SigError::incomplete(if name == X_AMZ_DATE {
                format!(
                    "Date must be in ISO-8601 'basic format'. Got '{}'. See \
                     http://en.wikipedia.org/wiki/ISO_8601",
                    echo(&got)
                )
            } else {
                format!(
                    "Date must be an HTTP date such as 'Sun, 30 Aug 2015 12:36:00 GMT'. Got '{}'.",
                    echo(&got)
                )
            }))
        }
    }
}

/// The payload hash for the canonical request. `x-amz-content-sha256`, when sent, must be the
/// body's real hash: this service never accepts an unsigned or streamed payload.
fn payload_hash(req: &RequestParts<'_>) -> Result<[u8; 64], SigError> {
    let body_hash = hex_digest(&Sha256::digest(req.body).into());
    let mut values = req.headers.get_all(X_AMZ_CONTENT_SHA256).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(body_hash),
        (Some(_), Some(_)) => Err(SigError::payload_hash(
            "Only one 'x-amz-content-sha256' header is allowed.",
        )),
        (Some(v), None) if v == "UNSIGNED-PAYLOAD" || v.as_bytes().starts_with(b"STREAMING-") => {
            Err(SigError::payload_hash(format!(
                "x-amz-content-sha256 '{}' is not accepted by this service: the payload must be \
                 signed.",
                echo(&String::from_utf8_lossy(v.as_bytes()))
            )))
        }
        (Some(v), None) if v.as_bytes() == body_hash => Ok(body_hash),
        (Some(_), None) => Err(SigError::payload_hash(
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )),
    }
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn to_system_time(unix: i64) -> SystemTime {
    let magnitude = Duration::from_secs(unix.unsigned_abs());
    let t = if unix >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    t.unwrap_or(UNIX_EPOCH)
}

/// "15 min" for whole minutes (AWS's form), otherwise seconds.
fn skew_text(skew: Duration) -> String {
    let secs = skew.as_secs();
    if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} sec")
    }
}
