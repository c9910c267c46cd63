//! The SSH client every benchmark uses, for serialgate and sshd alike: russh, key exchange
//! pinned to `curve25519-sha256`, the server's host key checked against the expected one.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{self, Msg};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg, Disconnect};

use crate::Res;
use crate::console::{ANSWER_MARK, PROBE};

/// Longest any one session open may take before it counts as failed.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The client key: the private half signs, the public half is pushed.
#[derive(Debug, Clone)]
pub struct ClientKey {
    pub private: Arc<PrivateKey>,
    pub public_openssh: String,
}

impl ClientKey {
    pub fn load(path: &Path) -> Res<Self> {
        let private = russh::keys::load_secret_key(path, None)
            .map_err(|e| format!("cannot load the client key {}: {e}", path.display()))?;
        let mut pub_path = path.as_os_str().to_owned();
        pub_path.push(".pub");
        let public_openssh = std::fs::read_to_string(&pub_path)
            .map_err(|e| format!("cannot read {}: {e}", Path::new(&pub_path).display()))?;
        Ok(Self {
            private: Arc::new(private),
            public_openssh: public_openssh.trim().to_owned(),
        })
    }
}

/// An SSH server to benchmark.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: &'static str,
    pub addr: SocketAddr,
    pub host_key: PublicKey,
    pub config: Arc<client::Config>,
}

impl Endpoint {
    pub fn new(name: &'static str, addr: SocketAddr, host_key_file: &Path) -> Res<Self> {
        let text = std::fs::read_to_string(host_key_file)
            .map_err(|e| format!("cannot read {}: {e}", host_key_file.display()))?;
        let host_key = PublicKey::from_openssh(text.trim()).map_err(|e| {
            format!(
                "{} is not an OpenSSH public key: {e}",
                host_key_file.display()
            )
        })?;
        Ok(Self {
            name,
            addr,
            host_key,
            config: Arc::new(client_config()),
        })
    }
}

/// The client configuration: russh defaults, key exchange pinned, `TCP_NODELAY` (as OpenSSH's
/// client sets it for interactive sessions).
pub fn client_config() -> client::Config {
    let mut config = client::Config {
        nodelay: true,
        ..Default::default()
    };
    config.preferred.kex = Cow::Owned(vec![
        russh::kex::CURVE25519,
        russh::kex::EXTENSION_SUPPORT_AS_CLIENT,
        russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
    ]);
    config
}

/// The client handler: accepts exactly the expected host key.
#[derive(Debug)]
pub struct Client {
    expected: PublicKey,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.key_data() == self.expected.key_data()
            }
            PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

/// How long each part of a session open took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// TCP connect, version exchange, key exchange.
    pub handshake: Duration,
    /// Public-key authentication.
    pub auth: Duration,
    /// Session channel open, until its confirmation.
    pub channel: Duration,
    /// (pty,) shell requests and the first keystroke, until the console's answer to it.
    pub answer: Duration,
}

impl Phases {
    pub fn total(&self) -> Duration {
        self.handshake + self.auth + self.channel + self.answer
    }
}

/// An open session: the console has answered the first keystroke.
pub struct Session {
    pub handle: client::Handle<Client>,
    pub channel: Channel<Msg>,
    pub phases: Phases,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("channel", &self.channel)
            .field("phases", &self.phases)
            .finish_non_exhaustive()
    }
}

/// Opens a session as `user`, types the first keystroke (ENQ) and waits for the console's answer.
/// Timed from the TCP connect to the answer's arrival.
pub async fn open(ep: &Endpoint, user: &str, key: &ClientKey, pty: bool) -> Res<Session> {
    match tokio::time::timeout(OPEN_TIMEOUT, open_inner(ep, user, key, pty, ANSWER_MARK)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{}: session for {user} not open within {OPEN_TIMEOUT:?}",
            ep.name
        )
        .into()),
    }
}

/// Opens a spectator's session (`….spectate`): its first keystroke is not sent to the
/// console, so it is open once serialgate's read-only notice arrives.
pub async fn open_spectator(ep: &Endpoint, user: &str, key: &ClientKey) -> Res<Session> {
    match tokio::time::timeout(
        OPEN_TIMEOUT,
        open_inner(ep, user, key, false, READ_ONLY_MARK),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{}: spectator {user} not open within {OPEN_TIMEOUT:?}",
            ep.name
        )
        .into()),
    }
}

/// What serialgate tells a spectator who types.
const READ_ONLY_MARK: &[u8] = b"read-only";

async fn open_inner(
    ep: &Endpoint,
    user: &str,
    key: &ClientKey,
    pty: bool,
    mark: &[u8],
) -> Res<Session> {
    let t0 = Instant::now();
    let handler = Client {
        expected: ep.host_key.clone(),
    };
    let mut handle = client::connect(Arc::clone(&ep.config), ep.addr, handler)
        .await
        .map_err(|e| format!("{}: connect/handshake: {e}", ep.name))?;
    let t1 = Instant::now();
    let auth = handle
        .authenticate_publickey(
            user,
            PrivateKeyWithHashAlg::new(Arc::clone(&key.private), None),
        )
        .await
        .map_err(|e| format!("{}: authentication: {e}", ep.name))?;
    if !auth.success() {
        return Err(format!("{}: publickey authentication as {user} refused", ep.name).into());
    }
    let t2 = Instant::now();
    let mut channel = handle
        .channel_open_session()
        .await
        .map_err(|e| format!("{}: channel open: {e}", ep.name))?;
    let t3 = Instant::now();
    // Pipelined like OpenSSH's client: the replies are collected while waiting for the banner.
    if pty {
        channel
            .request_pty(true, "xterm", 80, 24, 0, 0, &[])
            .await
            .map_err(|e| format!("{}: pty request: {e}", ep.name))?;
    }
    channel
        .request_shell(true)
        .await
        .map_err(|e| format!("{}: shell request: {e}", ep.name))?;
    channel
        .data_bytes(PROBE)
        .await
        .map_err(|e| format!("{}: first keystroke: {e}", ep.name))?;
    wait_for(&mut channel, mark)
        .await
        .map_err(|e| format!("{}: {e}", ep.name))?;
    let t4 = Instant::now();
    Ok(Session {
        handle,
        channel,
        phases: Phases {
            handshake: t1 - t0,
            auth: t2 - t1,
            channel: t3 - t2,
            answer: t4 - t3,
        },
    })
}

/// Reads channel messages until the data received so far contains `needle`.
pub async fn wait_for(channel: &mut Channel<Msg>, needle: &[u8]) -> Res<()> {
    let mut seen: Vec<u8> = Vec::new();
    loop {
        match channel.wait().await {
            Some(ChannelMsg::Data { data }) => {
                seen.extend_from_slice(&data);
                if contains(&seen, needle) {
                    return Ok(());
                }
            }
            Some(ChannelMsg::ExtendedData { data, .. }) => seen.extend_from_slice(&data),
            Some(ChannelMsg::Failure) => {
                return Err(format!(
                    "a channel request was refused; output so far: {:?}",
                    String::from_utf8_lossy(&seen)
                )
                .into());
            }
            Some(ChannelMsg::Eof | ChannelMsg::Close) | None => {
                return Err(format!(
                    "the channel closed before {:?} arrived; output: {:?}",
                    String::from_utf8_lossy(needle),
                    String::from_utf8_lossy(&seen)
                )
                .into());
            }
            Some(_) => {}
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

impl Session {
    /// Ends the session the way a client does: close the channel, then disconnect.
    pub async fn close(self) {
        let _ = self.channel.close().await;
        let _ = self
            .handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await;
    }
}
