//! EC2 Query requests and responses for the integration tests: form bodies signed with the
//! `aws-sigv4` crate for service `ec2` (as botocore signs them), written as raw HTTP/1.1, and
//! responses parsed with a real XML tokenizer, so a writer that forgets to escape, or closes the
//! wrong element, fails the test that reads it.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{AK, ED25519, REGION, SK, Server};

pub const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
pub const NS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

// --- requests -----------------------------------------------------------------------------

pub struct Req {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Signs `body` with `headers` (plus `host`) like an SDK would.
#[allow(clippy::too_many_arguments)]
pub fn signed(
    host: &str,
    ak: &str,
    sk: &str,
    region: &str,
    service: &str,
    time: SystemTime,
    mut headers: Vec<(String, String)>,
    body: &[u8],
) -> Req {
    headers.insert(0, ("host".to_owned(), host.to_owned()));
    let identity = Credentials::new(ak, sk, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        format!("http://{host}/"),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (k, v) in instructions.headers() {
        headers.push((k.to_owned(), v.to_owned()));
    }
    Req {
        headers,
        body: body.to_vec(),
    }
}

/// `Action=…&Version=2016-11-15&…`, form-encoded.
pub fn form(action: &str, params: &[(&str, &str)]) -> Vec<u8> {
    let mut f = form_urlencoded::Serializer::new(String::new());
    f.append_pair("Action", action);
    f.append_pair("Version", "2016-11-15");
    for (k, v) in params {
        f.append_pair(k, v);
    }
    f.finish().into_bytes()
}

pub fn form_headers() -> Vec<(String, String)> {
    vec![("content-type".to_owned(), FORM.to_owned())]
}

/// A form request signed by `ak` for service `ec2`.
pub fn ec2_as(s: &Server, ak: &str, body: &[u8]) -> Req {
    signed(
        &s.addr.to_string(),
        ak,
        SK,
        REGION,
        "ec2",
        SystemTime::now(),
        form_headers(),
        body,
    )
}

pub async fn call(s: &Server, action: &str, params: &[(&str, &str)]) -> Resp {
    send(s, &ec2_as(s, AK, &form(action, params))).await
}

pub async fn call_as(s: &Server, ak: &str, action: &str, params: &[(&str, &str)]) -> Resp {
    send(s, &ec2_as(s, ak, &form(action, params))).await
}

/// `SendSerialConsoleSSHPublicKey` over AWS JSON, to see the EC2 calls' effect on it.
pub async fn push_serial_key(s: &Server, instance: &str) -> (u16, String) {
    let body =
        serde_json::json!({"InstanceId": instance, "SerialPort": 0, "SSHPublicKey": ED25519})
            .to_string();
    let headers = vec![
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        (
            "x-amz-target".to_owned(),
            "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey".to_owned(),
        ),
    ];
    let req = signed(
        &s.addr.to_string(),
        AK,
        SK,
        REGION,
        "ec2-instance-connect",
        SystemTime::now(),
        headers,
        body.as_bytes(),
    );
    let r = send(s, &req).await;
    let json: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
    let code = json["__type"].as_str().unwrap_or("").to_owned();
    (r.status, code)
}

// --- responses ----------------------------------------------------------------------------

pub struct Resp {
    pub status: u16,
    /// Lower-cased header block.
    pub headers: String,
    pub body: String,
}

/// A parsed XML document: every element as (path from the root, unescaped text).
pub struct Doc {
    pub root: String,
    pub xmlns: Option<String>,
    pub elements: Vec<(String, String)>,
}

impl Resp {
    pub fn doc(&self) -> Doc {
        parse_xml(&self.body)
    }
    /// Texts of the elements whose path ends with `suffix`.
    pub fn all(&self, suffix: &str) -> Vec<String> {
        let nested = format!("/{suffix}");
        self.doc()
            .elements
            .into_iter()
            .filter(|(p, _)| p == suffix || p.ends_with(&nested))
            .map(|(_, t)| t)
            .collect()
    }
    pub fn one(&self, suffix: &str) -> String {
        let all = self.all(suffix);
        assert_eq!(all.len(), 1, "{suffix} in {}", self.body);
        all.into_iter().next().unwrap()
    }
    pub fn code(&self) -> String {
        self.all("Errors/Error/Code").pop().unwrap_or_default()
    }
    pub fn message(&self) -> String {
        self.all("Errors/Error/Message").pop().unwrap_or_default()
    }
    /// The status and error code, for one-line assertions.
    pub fn error(&self) -> (u16, String) {
        (self.status, self.code())
    }
    /// An EC2 error: XML, `Response` root, a request id in body and header.
    pub fn assert_ec2_error(&self, status: u16, code: &str) {
        assert_eq!(self.error(), (status, code.to_owned()), "{}", self.body);
        self.assert_xml();
        let doc = self.doc();
        assert_eq!(doc.root, "Response");
        let id = self.one("Response/RequestID");
        assert!(!id.is_empty());
        assert!(
            self.headers.contains(&format!("x-amzn-requestid: {id}")),
            "{}",
            self.headers
        );
    }
    /// A success: 200, `<ActionResponse xmlns=…>` with `requestId` matching the header.
    pub fn assert_ok(&self, action: &str) {
        assert_eq!(self.status, 200, "{}", self.body);
        self.assert_xml();
        let doc = self.doc();
        assert_eq!(doc.root, format!("{action}Response"));
        assert_eq!(doc.xmlns.as_deref(), Some(NS));
        let id = self.one("requestId");
        assert!(
            self.headers.contains(&format!("x-amzn-requestid: {id}")),
            "{}",
            self.headers
        );
    }
    pub fn assert_xml(&self) {
        assert!(
            self.headers
                .contains("content-type: text/xml;charset=utf-8"),
            "{}",
            self.headers
        );
        assert!(
            self.body
                .starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            "{}",
            self.body
        );
    }
}

pub fn parse_xml(text: &str) -> Doc {
    use xmlparser::{ElementEnd, Token, Tokenizer};
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut root = None;
    let mut xmlns = None;
    let mut buf = String::new();
    for token in Tokenizer::from(text) {
        match token.unwrap_or_else(|e| panic!("malformed XML ({e}): {text}")) {
            Token::ElementStart { local, .. } => {
                root.get_or_insert_with(|| local.to_string());
                stack.push(local.to_string());
                buf.clear();
            }
            Token::Attribute { local, value, .. } if local.as_str() == "xmlns" => {
                xmlns = Some(value.to_string());
            }
            Token::ElementEnd { end, .. } => match end {
                ElementEnd::Open => {}
                ElementEnd::Close(_, local) => {
                    assert_eq!(
                        stack.last().map(String::as_str),
                        Some(local.as_str()),
                        "mismatched close in {text}"
                    );
                    elements.push((stack.join("/"), unescape(&buf)));
                    stack.pop();
                    buf.clear();
                }
                ElementEnd::Empty => {
                    elements.push((stack.join("/"), String::new()));
                    stack.pop();
                }
            },
            Token::Text { text } => buf.push_str(text.as_str()),
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements in {text}");
    Doc {
        root: root.unwrap_or_default(),
        xmlns,
        elements,
    }
}

pub fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let end = rest[i..].find(';').expect("unterminated entity") + i;
        let entity = &rest[i + 1..end];
        out.push(match entity {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let n = entity
                    .strip_prefix("#x")
                    .map(|h| u32::from_str_radix(h, 16))
                    .or_else(|| entity.strip_prefix('#').map(str::parse))
                    .expect("unknown entity")
                    .unwrap();
                char::from_u32(n).unwrap()
            }
        });
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

pub async fn send_raw(s: &Server, raw: &[u8]) -> Resp {
    let mut sock = TcpStream::connect(s.addr).await.unwrap();
    sock.write_all(raw).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut buf))
        .await
        .expect("server hung")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Resp {
        status: head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        headers: head.to_ascii_lowercase(),
        body: body.to_owned(),
    }
}

pub async fn send(s: &Server, req: &Req) -> Resp {
    let mut raw = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &req.headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        req.body.len()
    ));
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(&req.body);
    send_raw(s, &bytes).await
}

/// Milliseconds since the epoch of an EC2 timestamp (`2016-11-15T09:30:00.000Z`).
pub fn parse_time(s: &str) -> u64 {
    let format = time::format_description::well_known::Iso8601::DEFAULT;
    let t = time::OffsetDateTime::parse(s, &format).unwrap_or_else(|e| panic!("{s}: {e}"));
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap()
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
