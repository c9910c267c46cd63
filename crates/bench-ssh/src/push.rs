//! Pushing keys: `SendSerialConsoleSSHPublicKey`, signed with the `aws-sigv4` crate the way the
//! AWS SDKs sign it, sent by a minimal keep-alive HTTP/1.1 client over one TCP connection.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::config::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use crate::{BoxError, Res};

const TARGET: &str = "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey";
/// serialgate's spectator push.
const TARGET_SPECTATE: &str = "AWSEC2InstanceConnectService.SpectateSerialConsole";
/// The slot of the instance is still held (the previous session is being torn down).
const SLOT_BUSY: &str = "SerialConsoleSessionLimitExceededException";
/// The console is not reachable (yet: serialgate's console hubs connect after it starts).
const UNAVAILABLE: &str = "EC2InstanceUnavailableException";
/// How long a push keeps retrying those two.
const PATIENCE: Duration = Duration::from_secs(10);

/// One keep-alive connection to the API.
#[derive(Debug)]
pub struct Pusher {
    addr: SocketAddr,
    host: String,
    public_key: String,
    /// The operation's `X-Amz-Target`.
    target: &'static str,
    conn: Option<BufReader<TcpStream>>,
    /// Pushes answered "slot busy" and retried.
    pub busy_retries: u64,
    /// Pushes answered "instance unavailable" (console not connected) and retried.
    pub unavailable_retries: u64,
}

/// An API answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

impl Pusher {
    pub fn new(addr: SocketAddr, public_key: &str) -> Self {
        Self {
            addr,
            host: addr.to_string(),
            public_key: public_key.trim().to_owned(),
            target: TARGET,
            conn: None,
            busy_retries: 0,
            unavailable_retries: 0,
        }
    }

    /// A pusher of spectators' keys (`SpectateSerialConsole`) instead.
    pub fn spectator(addr: SocketAddr, public_key: &str) -> Self {
        Self {
            target: TARGET_SPECTATE,
            ..Self::new(addr, public_key)
        }
    }

    /// Pushes the key for `instance` port 0, retrying (for a while) while the slot is still busy
    /// or the console not yet connected.
    pub async fn push(&mut self, instance: &str) -> Res<()> {
        let started = Instant::now();
        loop {
            let answer = self.request(instance).await?;
            if answer.status == 200 {
                return Ok(());
            }
            let json: serde_json::Value =
                serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null);
            let code = json["__type"].as_str().unwrap_or("");
            if code == SLOT_BUSY && started.elapsed() < PATIENCE {
                self.busy_retries += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            if code == UNAVAILABLE && started.elapsed() < PATIENCE {
                self.unavailable_retries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            return Err(format!(
                "push for {instance}: HTTP {}: {}",
                answer.status,
                String::from_utf8_lossy(&answer.body)
            )
            .into());
        }
    }

    /// One signed request; reconnects once if a kept-alive connection was closed meanwhile.
    async fn request(&mut self, instance: &str) -> Res<Answer> {
        let raw = self.signed_request(instance)?;
        let reused = self.conn.is_some();
        match self.exchange(&raw).await {
            Ok(a) => Ok(a),
            Err(_) if reused => {
                self.conn = None;
                self.exchange(&raw).await
            }
            Err(e) => Err(e),
        }
    }

    async fn exchange(&mut self, raw: &[u8]) -> Res<Answer> {
        if self.conn.is_none() {
            let tcp = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("cannot connect to the API at {}: {e}", self.addr))?;
            tcp.set_nodelay(true)?;
            self.conn = Some(BufReader::new(tcp));
        }
        let conn = self.conn.as_mut().ok_or("no connection")?;
        let result = tokio::time::timeout(Duration::from_secs(30), exchange_on(conn, raw)).await;
        match result {
            Ok(Ok((answer, keep))) => {
                if !keep {
                    self.conn = None;
                }
                Ok(answer)
            }
            Ok(Err(e)) => {
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err("the API did not answer within 30 s".into())
            }
        }
    }

    fn signed_request(&self, instance: &str) -> Res<Vec<u8>> {
        let body = serde_json::json!({
            "InstanceId": instance,
            "SerialPort": 0,
            "SSHPublicKey": self.public_key,
        })
        .to_string()
        .into_bytes();
        let mut headers = vec![
            ("host".to_owned(), self.host.clone()),
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
            ("x-amz-target".to_owned(), self.target.to_owned()),
        ];
        let identity =
            Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "bench-ssh").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(REGION)
            .name("ec2-instance-connect")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("signing parameters: {e}"))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            format!("http://{}/", self.host),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| format!("signable request: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("signing: {e}"))?
            .into_parts();
        for (k, v) in instructions.headers() {
            headers.push((k.to_owned(), v.to_owned()));
        }
        let mut raw = String::from("POST / HTTP/1.1\r\n");
        for (k, v) in &headers {
            raw.push_str(k);
            raw.push_str(": ");
            raw.push_str(v);
            raw.push_str("\r\n");
        }
        raw.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
        let mut raw = raw.into_bytes();
        raw.extend_from_slice(&body);
        Ok(raw)
    }
}

/// Writes `raw`, reads one response; returns it and whether the connection stays open.
async fn exchange_on(conn: &mut BufReader<TcpStream>, raw: &[u8]) -> Res<(Answer, bool)> {
    conn.get_mut().write_all(raw).await?;
    let mut line = String::new();
    if conn.read_line(&mut line).await? == 0 {
        return Err("the API closed the connection".into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| BoxError::from(format!("bad status line {line:?}")))?;
    let mut length: Option<usize> = None;
    let mut keep = true;
    loop {
        line.clear();
        if conn.read_line(&mut line).await? == 0 {
            return Err("the API closed the connection in the headers".into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = Some(value.parse()?);
            } else if name == "connection" && value.eq_ignore_ascii_case("close") {
                keep = false;
            } else if name == "transfer-encoding" {
                return Err("chunked answers are not supported by this client".into());
            }
        }
    }
    let mut body = vec![0u8; length.ok_or("answer without content-length")?];
    conn.read_exact(&mut body).await?;
    Ok((Answer { status, body }, keep))
}
