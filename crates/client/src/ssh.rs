//! The SSH leg (russh client): resolve and connect with a deadline, verify the host key with a
//! [`Trust`], authenticate with the pushed key, and open the console channel with a pty.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client::{self, Handle, Msg};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{Channel, ChannelMsg};

use crate::endpoints::HostPort;
use crate::errors::{Failure, exit};
use crate::host_key::{Trust, Verdict};

/// The client handler: checks the host key and shows the server's banner.
#[derive(Debug)]
pub struct Verifier {
    server: HostPort,
    trust: Trust,
    verdict: Arc<Mutex<Option<Verdict>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        presented: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // A host certificate is judged by the key it certifies: the key exchange was signed
        // with that key, and this client does not use certificate authorities.
        let key = match presented {
            PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            PublicKeyOrCertificate::Certificate(cert) => PublicKey::from(cert.public_key().clone()),
        };
        let verdict = self.trust.check(&self.server, &key);
        let accepted = verdict.accepted();
        if let Ok(mut slot) = self.verdict.lock() {
            *slot = Some(verdict);
        }
        Ok(accepted)
    }

    async fn auth_banner(
        &mut self,
        banner: &str,
        _session: &mut client::Session,
    ) -> Result<(), Self::Error> {
        eprint!("{banner}");
        Ok(())
    }
}

fn config() -> client::Config {
    client::Config {
        client_id: russh::SshId::Standard(
            format!("SSH-2.0-serialgate_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        nodelay: true,
        // Notice a dead path in about a minute, as `ssh -o ServerAliveInterval=15` would.
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        inactivity_timeout: None,
        ..Default::default()
    }
}

/// Connects to `server` and verifies its host key, all within `deadline`.
pub async fn connect(
    server: &HostPort,
    trust: Trust,
    deadline: Duration,
) -> Result<Handle<Verifier>, Failure> {
    let timed_out = || {
        Failure::network(format!(
            "the SSH endpoint {server} did not answer within {} s",
            deadline.as_secs()
        ))
    };
    tokio::time::timeout(deadline, connect_inner(server, trust))
        .await
        .map_err(|_| timed_out())?
}

async fn connect_inner(server: &HostPort, trust: Trust) -> Result<Handle<Verifier>, Failure> {
    let addrs: Vec<_> = tokio::net::lookup_host((server.host.as_str(), server.port))
        .await
        .map_err(|e| {
            Failure::network(format!(
                "cannot resolve the SSH endpoint {}: {e}",
                server.host
            ))
        })?
        .collect();
    let mut last_error = None;
    let mut tcp = None;
    for addr in &addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_error = Some(format!("{addr}: {e}")),
        }
    }
    let Some(tcp) = tcp else {
        return Err(Failure::network(format!(
            "cannot connect to the SSH endpoint {server} ({})",
            last_error.unwrap_or_else(|| "no address".to_owned())
        )));
    };
    let _ = tcp.set_nodelay(true);
    let verdict = Arc::new(Mutex::new(None));
    let handler = Verifier {
        server: server.clone(),
        trust,
        verdict: Arc::clone(&verdict),
    };
    match client::connect_stream(Arc::new(config()), tcp, handler).await {
        Ok(handle) => Ok(handle),
        Err(e) => {
            let refused = verdict.lock().ok().and_then(|mut v| v.take());
            Err(match refused {
                Some(Verdict::Refused(why)) => Failure::new(exit::HOST_KEY, why),
                _ => Failure::network(format!("SSH handshake with {server} failed: {e}")),
            })
        }
    }
}

/// Public-key authentication as `user` with the key that was just pushed.
pub async fn authenticate(
    handle: &mut Handle<Verifier>,
    user: &str,
    key: PrivateKey,
    deadline: Duration,
) -> Result<(), Failure> {
    let key = PrivateKeyWithHashAlg::new(Arc::new(key), None);
    let result = tokio::time::timeout(deadline, handle.authenticate_publickey(user, key))
        .await
        .map_err(|_| Failure::network(format!("SSH authentication as {user} timed out")))?
        .map_err(|e| Failure::network(format!("SSH authentication as {user} failed: {e}")))?;
    if result.success() {
        Ok(())
    } else {
        Err(Failure::new(
            exit::AUTH,
            format!(
                "the SSH server refused the pushed key for {user} (Permission denied \
                 (publickey)).\nA pushed key opens one session within 60 seconds: if another \
                 client used it first, or the SSH endpoint is not the one behind this API \
                 (check --ssh-endpoint), connect again."
            ),
        ))
    }
}

/// The console channel: a session with a pty (`term`, `size`) and a shell, both confirmed.
/// Messages that arrive before the confirmations are returned to be handled first.
pub async fn open_console(
    handle: &Handle<Verifier>,
    term: &str,
    (cols, rows): (u32, u32),
    deadline: Duration,
) -> Result<(Channel<Msg>, Vec<ChannelMsg>), Failure> {
    let refused = |what: &str| {
        Failure::new(
            exit::SESSION,
            format!("the SSH server refused the {what}; the console session could not start"),
        )
    };
    let opened = async {
        let mut channel = handle
            .channel_open_session()
            .await
            .map_err(|e| Failure::new(exit::SESSION, format!("cannot open a session: {e}")))?;
        let mut early = Vec::new();
        channel
            .request_pty(true, term, cols, rows, 0, 0, &[])
            .await
            .map_err(|_| refused("terminal (pty) request"))?;
        if !wait_reply(&mut channel, &mut early).await {
            return Err(refused("terminal (pty) request"));
        }
        channel
            .request_shell(true)
            .await
            .map_err(|_| refused("shell request"))?;
        if !wait_reply(&mut channel, &mut early).await {
            return Err(refused("shell request"));
        }
        Ok((channel, early))
    };
    tokio::time::timeout(deadline, opened)
        .await
        .map_err(|_| Failure::network("the SSH server did not open the console in time"))?
}

/// Waits for the reply to a request, keeping anything else that arrives meanwhile.
async fn wait_reply(channel: &mut Channel<Msg>, early: &mut Vec<ChannelMsg>) -> bool {
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Success => return true,
            ChannelMsg::Failure => return false,
            ChannelMsg::Close => {
                early.push(msg);
                return false;
            }
            other => early.push(other),
        }
    }
    false
}
