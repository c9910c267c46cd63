//! The russh `Handler` for one connection: authentication against grants, the one session
//! channel, and refusals for everything a serial console does not offer. Every channel request
//! is answered with success or failure.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use console::ops::{OpenedSession, SessionDenied, Spectator};
use russh::server::{Auth, ChannelOpenHandle, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId};
use tokio::sync::mpsc;

use crate::Shared;
use crate::client::SshChannel;
use crate::escape::{Action, EscapeParser};
use crate::lease_guard::LeaseGuard;
use crate::limits::UnauthGuard;
use crate::messages;
use crate::session::{self, SessionTask, UserInput};
use crate::spectate::{self, DEFAULT_SPECTATOR_REPLAY_LINES, SpectatorTask};
use crate::tape::Terminal;
use crate::username;

/// What authentication decided.
enum Admission {
    /// Not authenticated yet.
    Pending,
    /// Authenticated and holding the slot.
    Granted(Box<(OpenedSession, LeaseGuard)>),
    /// Authenticated as a spectator (no slot).
    Watching(Box<Spectator>),
    /// Authenticated, but the session cannot open; the text tells the user why.
    Refused(&'static str),
    /// The session task has started.
    Running,
}

pub(crate) struct Connection {
    shared: Arc<Shared>,
    conn_id: u64,
    peer: SocketAddr,
    unauth: Option<UnauthGuard>,
    settled: Arc<AtomicBool>,
    admission: Admission,
    channel: Option<ChannelId>,
    user_tx: Option<mpsc::Sender<UserInput>>,
    escape: EscapeParser,
    /// Lines of history the authenticated session replays first (the username's, else the
    /// server's default).
    replay_lines: u32,
    /// The client's terminal, from its pty request; recorded with the session.
    terminal: Terminal,
}

impl Connection {
    pub(crate) fn new(
        shared: Arc<Shared>,
        conn_id: u64,
        peer: SocketAddr,
        unauth: UnauthGuard,
        settled: Arc<AtomicBool>,
    ) -> Self {
        let escape = EscapeParser::new(shared.config.escape);
        Self {
            shared,
            conn_id,
            peer,
            unauth: Some(unauth),
            settled,
            admission: Admission::Pending,
            channel: None,
            user_tx: None,
            escape,
            replay_lines: 0,
            terminal: Terminal::default(),
        }
    }

    fn mark_authenticated(&mut self) {
        self.unauth = None;
    }

    /// The connection has done what it came for (a session, or the reason it cannot have one);
    /// until then the login grace timer may close it, so an authenticated client cannot sit on
    /// the slot without opening a shell.
    fn mark_settled(&self) {
        self.settled.store(true, Ordering::SeqCst);
    }

    /// The lease is only renewed once the session runs; if it lapsed since authentication (and
    /// someone else took the slot), this client must not get a second console. Renewing checks
    /// and extends it in one step; a lost lease turns the admission into a refusal.
    async fn confirm_lease(&mut self) {
        let Admission::Granted(granted) = &mut self.admission else {
            return;
        };
        let Some(lease) = granted.1.lease().cloned() else {
            return;
        };
        match self.shared.service.renew_session(&lease).await {
            Ok(Some(renewed)) => granted.1.update(renewed),
            Ok(None) => {
                tracing::info!(
                    conn = self.conn_id,
                    "lease lapsed before the shell request; refusing"
                );
                granted.1.forget();
                self.admission = Admission::Refused(messages::SESSION_LIMIT);
            }
            Err(e) => {
                tracing::warn!(conn = self.conn_id, error = %e, "cannot confirm the session lease; refusing");
                self.admission = Admission::Refused(messages::SESSION_UNAVAILABLE);
            }
        }
    }

    /// Starts the bridge for an authenticated, admitted connection.
    fn start_session(&mut self, channel: ChannelId, session: &Session) {
        let (tx, rx) = mpsc::channel(4);
        let granted = match std::mem::replace(&mut self.admission, Admission::Running) {
            Admission::Granted(granted) => granted,
            Admission::Watching(spectator) => {
                self.user_tx = Some(tx);
                spectate::spawn(SpectatorTask {
                    shared: Arc::clone(&self.shared),
                    client: Arc::new(SshChannel {
                        handle: session.handle(),
                        channel,
                    }),
                    spectator: *spectator,
                    user_rx: rx,
                    conn_id: self.conn_id,
                    peer: self.peer.to_string(),
                    replay_lines: self.replay_lines,
                    terminal: self.terminal.clone(),
                });
                return;
            }
            other => {
                self.admission = other;
                return;
            }
        };
        let (opened, guard) = *granted;
        self.user_tx = Some(tx);
        let task = SessionTask {
            shared: Arc::clone(&self.shared),
            client: Arc::new(SshChannel {
                handle: session.handle(),
                channel,
            }),
            opened,
            user_rx: rx,
            conn_id: self.conn_id,
            peer: self.peer.to_string(),
            replay_lines: self.replay_lines,
            terminal: self.terminal.clone(),
        };
        session::spawn(task, guard);
    }
}

impl Connection {
    /// Authenticates a spectator: its own grant, spent here; no slot.
    async fn auth_spectator(
        &mut self,
        user: &str,
        target: username::Target,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, russh::Error> {
        let result = self
            .shared
            .service
            .open_spectator(&target.instance, target.port, key.public_key.key_data())
            .await;
        self.admission = match result {
            Ok(spectator) => {
                self.replay_lines = target
                    .replay_lines
                    .unwrap_or(DEFAULT_SPECTATOR_REPLAY_LINES);
                Admission::Watching(Box::new(spectator))
            }
            Err(SessionDenied::Unavailable(why)) => {
                tracing::warn!(conn = self.conn_id, peer = %self.peer, user, why, "spectator refused: store unavailable");
                Admission::Refused(messages::SESSION_UNAVAILABLE)
            }
            Err(_) => {
                tracing::info!(conn = self.conn_id, peer = %self.peer, user, "publickey rejected");
                return Ok(Auth::reject());
            }
        };
        self.mark_authenticated();
        Ok(Auth::Accept)
    }
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        _offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // The answer to an offer must not depend on grants: whoever holds only a public key
        // (they are not secret) would otherwise learn whether it has a live grant. So every key
        // offered for a well-formed username is accepted here, and the grant is checked only
        // once the client has proved it holds the private key (`auth_publickey`), where every
        // failure looks the same.
        //
        // The trade-off falls on clients with several keys: OpenSSH signs with each accepted
        // key in turn, and every signature that finds no grant is a failed attempt (it counts
        // towards `max_auth_attempts`, 6, and takes `auth_rejection_time`, 1 s). Answering
        // offers by grant cost exactly as much (russh counts a rejected offer and waits on it
        // too): with OpenSSH's "none" probe first, up to four wrong keys ahead of the right one
        // still get in, one second per wrong key, before and after. What changes is that keys
        // needing confirmation or a touch (`ssh-add -c`, FIDO) are asked to sign before the
        // right one is tried; `ssh -i key -o IdentitiesOnly=yes` offers just the right key.
        //
        // Malformed usernames are refused at once: their shape is public, and refusing spares
        // a signature that could never work.
        Ok(if username::parse(user).is_some() {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let Some(target) = username::parse(user) else {
            return Ok(Auth::reject());
        };
        if target.spectate {
            return self.auth_spectator(user, target, key).await;
        }
        // The slot and the grant are the instance's and the port's alone, whatever else the
        // username asks for.
        let (instance, port) = (target.instance, target.port);
        let holder = format!("{}/{}", self.shared.config.node_id, self.conn_id);
        let result = self
            .shared
            .service
            .open_session(&instance, port, key.public_key.key_data(), &holder)
            .await;
        self.admission = match result {
            Ok(opened) => {
                self.replay_lines = target
                    .replay_lines
                    .unwrap_or(self.shared.config.replay_lines);
                let guard = LeaseGuard::new(Arc::clone(&self.shared), opened.lease.clone());
                Admission::Granted(Box::new((opened, guard)))
            }
            Err(SessionDenied::NoGrant) => {
                tracing::info!(conn = self.conn_id, peer = %self.peer, user, "publickey rejected");
                return Ok(Auth::reject());
            }
            Err(SessionDenied::LimitExceeded(why)) => {
                tracing::info!(conn = self.conn_id, peer = %self.peer, user, why, "session refused: slot busy");
                Admission::Refused(messages::SESSION_LIMIT)
            }
            Err(SessionDenied::Unavailable(why)) => {
                tracing::warn!(conn = self.conn_id, peer = %self.peer, user, why, "session refused: store unavailable");
                Admission::Refused(messages::SESSION_UNAVAILABLE)
            }
        };
        self.mark_authenticated();
        Ok(Auth::Accept)
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        // One session channel per connection; the channel object itself is not kept, so its
        // queue never fills (data arrives through `data`).
        if self.channel.is_some() {
            reply
                .reject(russh::ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        self.channel = Some(channel.id());
        drop(channel);
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // A UART has no terminal; its size and type are kept for the session's recording.
        self.terminal = Terminal::new(cols, rows, term);
        session.channel_success(channel)
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Accepted and ignored: a serial line has no environment.
        session.channel_success(channel)
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        cols: u32,
        rows: u32,
        _pw: u32,
        _ph: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // A UART has no window size, so nothing reaches the console; the recording notes it.
        let terminal = Terminal::new(cols, rows, "");
        self.terminal = Terminal {
            term: self.terminal.term.take(),
            ..terminal.clone()
        };
        if Some(channel) == self.channel
            && let Some(tx) = &self.user_tx
        {
            // In order with the data around it; a session that is over drops it.
            let _ = tx.send(UserInput::Resize(terminal)).await;
        }
        session.channel_success(channel)
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.confirm_lease().await;
        match &self.admission {
            Admission::Granted(_) | Admission::Watching(_) => {
                session.channel_success(channel)?;
                self.mark_settled();
                self.start_session(channel, session);
            }
            Admission::Refused(text) => {
                self.mark_settled();
                session.channel_success(channel)?;
                session.data(channel, Bytes::from(format!("{text}\r\n")))?;
                session.exit_status_request(channel, 1)?;
                session.eof(channel)?;
                session.close(channel)?;
            }
            Admission::Pending | Admission::Running => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // Refused by ending the command at once with a message and exit status 1: OpenSSH exits
        // on a failed exec request before printing anything the server sent, so a plain channel
        // failure would leave the user with "exec request failed on channel 0" and no reason.
        session.channel_success(channel)?;
        session.extended_data(
            channel,
            1,
            Bytes::from_static(messages::EXEC_REFUSED.as_bytes()),
        )?;
        session.exit_status_request(channel, 1)?;
        session.eof(channel)?;
        session.close(channel)
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.extended_data(
            channel,
            1,
            Bytes::from_static(messages::SUBSYSTEM_REFUSED.as_bytes()),
        )?;
        session.channel_failure(channel)
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single: bool,
        _proto: &str,
        _cookie: &str,
        _screen: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if Some(channel) != self.channel {
            return Ok(());
        }
        let Some(tx) = &self.user_tx else {
            return Ok(());
        };
        for action in self.escape.feed(data) {
            let msg = match action {
                Action::Data(d) => UserInput::Data(d),
                Action::Break => UserInput::Break,
                Action::Disconnect => UserInput::Disconnect,
                Action::Help => UserInput::Help,
            };
            // Waiting here is the backpressure: russh stops reading this connection while the
            // console is slow. A closed task means the session is over; drop the input.
            if tx.send(msg).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if Some(channel) == self.channel {
            // Dropping the sender tells the session task the client is gone.
            self.user_tx = None;
        }
        Ok(())
    }
}
