//! Harness for the gateway integration tests: a gateway on 127.0.0.1:0 over a fixture registry
//! with a manual clock, a session store that fails on demand and an audit sink the test reads,
//! a real russh client, fake unix-socket consoles and a freezable TCP proxy.
//! Every wait is bounded (see [`WAIT`]); a test that would hang fails instead.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use console::leases::Slot;
use console::ops::{PushReceipt, PushSerialKey};
use console::{
    Account, AccountId, AuditSink, AvailabilityZone, Clock, ConsoleError, ConsoleService, Instance,
    InstanceId, InstanceState, ManualClock, Principal, Registry, RequestContext, SerialPort,
    SessionDirectory, Settings, SlotState, SlotStore, SshPublicKey, ThrottleConfig,
};
use gateway::GatewayConfig;
use russh::client::{self, AuthResult, Handle};
use russh::keys::{Algorithm, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey};
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod doubles;
pub use doubles::*;

/// The longest any single wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub const ACCT: &str = "111122223333";
pub const INST_A: &str = "i-0123456789abcdef0";
pub const INST_B: &str = "i-0fedcba9876543210";
pub const INST_C: &str = "i-0aaaaaaaaaaaaaaa1";
pub const INST_D: &str = "i-0bbbbbbbbbbbbbbb2";
/// Not in any registry.
pub const UNKNOWN: &str = "i-0000000000000dead";

/// AWS's text for a busy slot, as the gateway shows it.
pub const SESSION_LIMIT: &str = "The instance currently has 1 active serial console session. Only 1 session is supported at a time.";

pub fn user(instance: &str) -> String {
    format!("{instance}.port0")
}

// ---------------------------------------------------------------------------------------------
// Keys

/// A key from `testdata/keys` (`ed25519`, `rsa2048`, ...).
pub fn test_key(name: &str) -> PrivateKey {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/keys")
        .join(name);
    russh::keys::load_secret_key(&path, None)
        .unwrap_or_else(|e| panic!("load {}: {e}", path.display()))
}

/// A fresh ed25519 key.
pub fn random_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The gateway

type Tweak = Box<dyn FnOnce(&mut GatewayConfig) + Send>;

/// Builds a gateway with a fixture registry: account [`ACCT`] (serial console on) and the
/// instances added with [`GatewayBuilder::instance`], all `t3.micro` and running.
pub struct GatewayBuilder {
    settings: Settings,
    instances: Vec<(String, String)>,
    tweaks: Vec<Tweak>,
    tokio_clock: bool,
    hubs: bool,
}

impl Default for GatewayBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl GatewayBuilder {
    pub fn new() -> Self {
        Self {
            settings: Settings::default(),
            instances: Vec::new(),
            tweaks: Vec::new(),
            tokio_clock: false,
            hubs: false,
        }
    }

    /// Consoles are kept connected through hubs, as `serve` does (spectators need them),
    /// instead of one connection per session.
    pub fn hubs(mut self) -> Self {
        self.hubs = true;
        self
    }

    /// The service reads a wall clock that follows tokio's ([`TokioClock`]) instead of the
    /// manual one, so lease expiries and the gateway's timers move together on paused time.
    pub fn tokio_clock(mut self) -> Self {
        self.tokio_clock = true;
        self
    }

    /// Adds a running instance whose console is `console` (`sim:`, `unix:PATH`, ...).
    pub fn instance(mut self, id: &str, console: &str) -> Self {
        self.instances.push((id.to_owned(), console.to_owned()));
        self
    }

    pub fn settings(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        self
    }

    pub fn config(mut self, f: impl FnOnce(&mut GatewayConfig) + Send + 'static) -> Self {
        self.tweaks.push(Box::new(f));
        self
    }

    pub async fn start(self) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let mut registry = Registry::new();
        let acct = AccountId::parse(ACCT).unwrap();
        registry.add_account(Account::new(acct.clone(), true));
        for (id, console) in &self.instances {
            registry.add_instance(Instance::new(
                InstanceId::parse(id).unwrap(),
                acct.clone(),
                "t3.micro".into(),
                AvailabilityZone::parse("us-east-1a").unwrap(),
                BTreeMap::new(),
                false,
                console.clone(),
                InstanceState::Running,
            ));
        }
        let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let throttle = ThrottleConfig {
            rate_per_second: 1000.0,
            burst: 10_000,
        };
        let hubs = self.hubs.then(|| {
            Arc::new(consoles::Consoles::with_hubs(
                &registry,
                backends::ConsoleOptions::default(),
                None,
            ))
        });
        let store = Arc::new(FaultyStore::new(self.settings.teardown));
        let directory = Arc::new(PanickyDirectory::default());
        let audit = Arc::new(RecordingAudit::default());
        let wall: Arc<dyn Clock> = if self.tokio_clock {
            Arc::new(TokioClock::new())
        } else {
            Arc::new(clock.clone())
        };
        let service = Arc::new(
            ConsoleService::new(registry, self.settings, throttle)
                .with_clock(wall)
                .with_slots(Arc::clone(&store) as Arc<dyn SlotStore>)
                .with_audit(Arc::clone(&audit) as Arc<dyn AuditSink>)
                .with_directory(Arc::clone(&directory) as Arc<dyn SessionDirectory>),
        );

        let host_key = gateway::host_key::load_or_create(dir.path()).unwrap();
        let host_public = host_key.public_key().clone();
        let mut config = GatewayConfig::new(host_key);
        config.auth_rejection_time = Duration::from_millis(10);
        config.shutdown_grace = Duration::from_secs(2);
        config.reconnect_min = Duration::from_millis(50);
        config.reconnect_max = Duration::from_millis(200);
        config.console.connect_timeout = Duration::from_secs(2);
        config.node_id = "test-node".into();
        if let Some(hubs) = hubs {
            config.consoles = hubs;
        }
        for tweak in self.tweaks {
            tweak(&mut config);
        }

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(gateway::run(
            listener,
            Arc::clone(&service),
            config,
            async move {
                let _ = stop_rx.await;
            },
        ));
        Gateway {
            addr,
            service,
            store,
            audit,
            directory,
            clock,
            host_key: host_public,
            stop: Some(stop_tx),
            task: Some(task),
            next_request: AtomicU64::new(1),
            _dir: dir,
        }
    }
}

/// A running gateway and the domain service behind it.
pub struct Gateway {
    pub addr: SocketAddr,
    pub service: Arc<ConsoleService>,
    /// The session store behind the service, with its fault switch.
    pub store: Arc<FaultyStore>,
    /// The audit sink behind the service.
    pub audit: Arc<RecordingAudit>,
    /// The session directory behind the service, with its panic switch.
    pub directory: Arc<PanickyDirectory>,
    /// The clock the service reads (unless built with [`GatewayBuilder::tokio_clock`]): advance
    /// it to expire keys and end teardowns.
    pub clock: ManualClock,
    pub host_key: PublicKey,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    next_request: AtomicU64,
    _dir: tempfile::TempDir,
}

impl Gateway {
    /// `SendSerialConsoleSSHPublicKey` as the account's root principal.
    pub async fn push(
        &self,
        instance: &str,
        port: u32,
        key: &PublicKey,
    ) -> Result<PushReceipt, ConsoleError> {
        let (ctx, req) = self.push_request(instance, port, key);
        self.service.push_serial_key(&ctx, req).await
    }

    fn push_request(
        &self,
        instance: &str,
        port: u32,
        key: &PublicKey,
    ) -> (RequestContext, PushSerialKey) {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        let ctx = RequestContext {
            request_id: format!("00000000-0000-4000-8000-{n:012}"),
            principal: Principal::account_root(AccountId::parse(ACCT).unwrap()),
            source_ip: None,
            secure_transport: false,
        };
        let req = PushSerialKey {
            instance_id: InstanceId::parse(instance).unwrap(),
            port: SerialPort::new(port),
            key: SshPublicKey::from_key(key.clone()).unwrap(),
        };
        (ctx, req)
    }

    /// Pushes a spectator's key for `instance`'s port 0 (`SpectateSerialConsole`); must succeed.
    pub async fn push_spectator_ok(&self, instance: &str, key: &PrivateKey) {
        let (ctx, req) = self.push_request(instance, 0, key.public_key());
        if let Err(e) = self.service.push_spectator_key(&ctx, req).await {
            panic!("spectator push for {instance} failed: {} ({e})", e.code());
        }
    }

    /// [`Gateway::push`] for port 0 that must succeed.
    pub async fn push_ok(&self, instance: &str, key: &PrivateKey) {
        if let Err(e) = self.push(instance, 0, key.public_key()).await {
            panic!("push for {instance} failed: {} ({e})", e.code());
        }
    }

    /// Stops the gateway (resolves the shutdown future given to `gateway::run`).
    pub fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for `gateway::run` to return.
    pub async fn join(&mut self, within: Duration) -> std::io::Result<()> {
        let task = self.task.take().expect("already joined");
        match tokio::time::timeout(within, task).await {
            Ok(r) => r.expect("gateway task panicked"),
            Err(_) => panic!("gateway::run did not return within {within:?}"),
        }
    }

    pub async fn slot_state(&self, instance: &str, port: u32) -> SlotState {
        let slot = Slot {
            instance: InstanceId::parse(instance).unwrap(),
            port: SerialPort::new(port),
        };
        let now = self.service.clock().now_ms();
        self.service.leases().state(&slot, now).await.unwrap()
    }

    /// Polls until the slot is no longer held; returns the state it moved to.
    pub async fn wait_released(&self, instance: &str) -> SlotState {
        self.wait_released_within(instance, WAIT).await
    }

    pub async fn wait_released_within(&self, instance: &str, within: Duration) -> SlotState {
        let deadline = Instant::now() + within;
        loop {
            let state = self.slot_state(instance, 0).await;
            if !matches!(state, SlotState::Held { .. }) {
                return state;
            }
            if Instant::now() >= deadline {
                panic!("slot {instance}.port0 still held after {within:?}: {state:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn assert_held(&self, instance: &str) {
        let state = self.slot_state(instance, 0).await;
        assert!(
            matches!(state, SlotState::Held { .. }),
            "slot {instance}.port0 should be held: {state:?}"
        );
    }

    /// Connects a client (no authentication yet).
    pub async fn connect(&self) -> Handle<Client> {
        connect_to(self.addr, &self.host_key, client_config()).await
    }

    /// Connects and authenticates as `user` with `key`.
    pub async fn auth(&self, user: &str, key: &PrivateKey) -> (Handle<Client>, AuthResult) {
        let mut handle = self.connect().await;
        let result = authenticate(&mut handle, user, key).await;
        (handle, result)
    }

    /// Connects, authenticates and opens a shell with a pty; `Err` carries the failed
    /// authentication's answer.
    pub async fn login(&self, user: &str, key: &PrivateKey) -> Result<Session, AuthResult> {
        let (handle, result) = self.auth(user, key).await;
        if !result.success() {
            return Err(result);
        }
        let out = open_shell(&handle).await;
        Ok(Session { handle, out })
    }

    /// [`Gateway::login`] to `instance.port0` that must succeed.
    pub async fn login_ok(&self, instance: &str, key: &PrivateKey) -> Session {
        match self.login(&user(instance), key).await {
            Ok(s) => s,
            Err(r) => panic!("login to {instance} failed: {r:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The client

/// A russh client handler that trusts only the gateway's host key.
pub struct Client {
    host_key: PublicKey,
}

impl client::Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_public_key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match server_public_key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.key_data() == self.host_key.key_data()
            }
            _ => false,
        })
    }
}

pub fn client_config() -> client::Config {
    client::Config {
        nodelay: true,
        ..Default::default()
    }
}

pub async fn try_connect_to(
    addr: SocketAddr,
    host_key: &PublicKey,
    config: client::Config,
) -> Result<Handle<Client>, russh::Error> {
    let handler = Client {
        host_key: host_key.clone(),
    };
    match tokio::time::timeout(WAIT, client::connect(Arc::new(config), addr, handler)).await {
        Ok(r) => r,
        Err(_) => panic!("SSH connect to {addr} did not finish within {WAIT:?}"),
    }
}

pub async fn connect_to(
    addr: SocketAddr,
    host_key: &PublicKey,
    config: client::Config,
) -> Handle<Client> {
    try_connect_to(addr, host_key, config)
        .await
        .unwrap_or_else(|e| panic!("SSH connect to {addr} failed: {e}"))
}

/// Public-key authentication (RSA keys sign with SHA-512), bounded by [`WAIT`].
pub async fn authenticate(handle: &mut Handle<Client>, user: &str, key: &PrivateKey) -> AuthResult {
    let hash = if key.algorithm().is_rsa() {
        Some(HashAlg::Sha512)
    } else {
        None
    };
    let key = PrivateKeyWithHashAlg::new(Arc::new(key.clone()), hash);
    match tokio::time::timeout(WAIT, handle.authenticate_publickey(user, key)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => panic!("authentication as {user} errored: {e}"),
        Err(_) => panic!("authentication as {user} did not finish within {WAIT:?}"),
    }
}

/// Opens a session channel and requests a pty and a shell, both answered with success.
pub async fn open_shell(handle: &Handle<Client>) -> Output {
    let channel = bounded("channel open", handle.channel_open_session())
        .await
        .unwrap_or_else(|e| panic!("channel open failed: {e}"));
    let mut out = Output::new(channel);
    bounded(
        "pty request",
        out.channel.request_pty(true, "xterm", 80, 24, 0, 0, &[]),
    )
    .await
    .unwrap();
    assert_eq!(out.reply().await, Some(true), "pty request refused");
    bounded("shell request", out.channel.request_shell(true))
        .await
        .unwrap();
    assert_eq!(out.reply().await, Some(true), "shell request refused");
    out
}

/// Runs `fut`, panicking if it takes longer than [`WAIT`].
pub async fn bounded<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(WAIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what} did not finish within {WAIT:?}"),
    }
}

/// Polls `check` every 20 ms until it holds; panics after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{what}: not true within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An authenticated client with its shell channel.
pub struct Session {
    pub handle: Handle<Client>,
    pub out: Output,
}

impl Session {
    pub async fn send(&self, bytes: &[u8]) {
        self.out.send(bytes).await;
    }
}

/// One channel's incoming side, accumulated: stdout, stderr, replies, close.
pub struct Output {
    pub channel: Channel<client::Msg>,
    /// Everything received on the channel (stdout).
    pub data: Vec<u8>,
    pub stderr: Vec<u8>,
    /// How far [`Output::expect`] has consumed `data`.
    pub pos: usize,
    pub eof: bool,
    pub closed: bool,
    pub exit_status: Option<u32>,
    replies: VecDeque<bool>,
}

impl Output {
    pub fn new(channel: Channel<client::Msg>) -> Self {
        Self {
            channel,
            data: Vec::new(),
            stderr: Vec::new(),
            pos: 0,
            eof: false,
            closed: false,
            exit_status: None,
            replies: VecDeque::new(),
        }
    }

    pub async fn send(&self, bytes: &[u8]) {
        bounded(
            "channel write",
            self.channel.data_bytes(Bytes::copy_from_slice(bytes)),
        )
        .await
        .unwrap_or_else(|e| panic!("channel write failed: {e}"));
    }

    /// Takes one message, waiting until `deadline`. False when the channel is gone or time ran out.
    async fn pump(&mut self, deadline: Instant) -> bool {
        if self.closed {
            return false;
        }
        let msg = match tokio::time::timeout_at(deadline, self.channel.wait()).await {
            Ok(m) => m,
            Err(_) => return false,
        };
        match msg {
            None => {
                self.closed = true;
                return false;
            }
            Some(ChannelMsg::Data { data }) => self.data.extend_from_slice(&data),
            Some(ChannelMsg::ExtendedData { data, .. }) => self.stderr.extend_from_slice(&data),
            Some(ChannelMsg::Eof) => self.eof = true,
            Some(ChannelMsg::Close) => {
                self.closed = true;
                return false;
            }
            Some(ChannelMsg::ExitStatus { exit_status }) => self.exit_status = Some(exit_status),
            Some(ChannelMsg::Success) => self.replies.push_back(true),
            Some(ChannelMsg::Failure) => self.replies.push_back(false),
            Some(_) => {}
        }
        true
    }

    /// The answer to the next channel request that wanted a reply; `None` if the channel closed
    /// first.
    pub async fn reply(&mut self) -> Option<bool> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(r) = self.replies.pop_front() {
                return Some(r);
            }
            if !self.pump(deadline).await {
                if self.closed {
                    return None;
                }
                panic!("no reply to a channel request within {WAIT:?}");
            }
        }
    }

    fn find(&self, needle: &[u8]) -> Option<usize> {
        self.data
            .get(self.pos..)?
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| self.pos + i)
    }

    /// Waits (up to [`WAIT`]) until `needle` appears after the cursor; returns everything from
    /// the cursor through the match and moves the cursor past it.
    pub async fn expect(&mut self, needle: &str) -> String {
        match self.try_expect(needle, WAIT).await {
            Some(s) => s,
            None => panic!(
                "did not see {needle:?} within {WAIT:?} (closed: {}); unread output: {:?}; stderr: {:?}",
                self.closed,
                self.unread_tail(),
                String::from_utf8_lossy(&self.stderr)
            ),
        }
    }

    /// Like [`Output::expect`], but `None` when the needle did not appear within `within` or the
    /// channel closed without it.
    pub async fn try_expect(&mut self, needle: &str, within: Duration) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.find(needle.as_bytes()) {
                let end = i + needle.len();
                let text = String::from_utf8_lossy(&self.data[self.pos..end]).into_owned();
                self.pos = end;
                return Some(text);
            }
            if !self.pump(deadline).await {
                return None;
            }
        }
    }

    /// Waits until one of `needles` appears after the cursor; returns its index (the earliest
    /// match wins) and moves the cursor past it. `None` on close or timeout.
    pub async fn expect_any(&mut self, needles: &[&str], within: Duration) -> Option<usize> {
        let deadline = Instant::now() + within;
        loop {
            let hit = needles
                .iter()
                .enumerate()
                .filter_map(|(k, n)| self.find(n.as_bytes()).map(|i| (i, k, n.len())))
                .min();
            if let Some((i, k, len)) = hit {
                self.pos = i + len;
                return Some(k);
            }
            if !self.pump(deadline).await {
                return None;
            }
        }
    }

    /// Waits until at least `n` bytes of stdout have arrived in total.
    pub async fn wait_len(&mut self, n: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.data.len() < n {
            if !self.pump(deadline).await {
                return false;
            }
        }
        true
    }

    /// Reads until the channel closes (true) or `within` passes (false).
    pub async fn wait_closed(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while self.pump(deadline).await {}
        self.closed
    }

    /// Reads whatever arrives within `within`.
    pub async fn drain_for(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        while self.pump(deadline).await {}
    }

    pub fn unread(&self) -> String {
        String::from_utf8_lossy(&self.data[self.pos..]).into_owned()
    }

    pub fn all_text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }

    fn unread_tail(&self) -> String {
        let unread = &self.data[self.pos..];
        let start = unread.len().saturating_sub(600);
        String::from_utf8_lossy(&unread[start..]).into_owned()
    }
}

// ---------------------------------------------------------------------------------------------
// Fake consoles

/// A unix socket the gateway connects to as `unix:PATH`; the test gets each accepted
/// connection and can stop and restart listening.
pub struct FakeConsole {
    pub path: PathBuf,
    conns: mpsc::UnboundedReceiver<UnixStream>,
    conn_tx: mpsc::UnboundedSender<UnixStream>,
    listener: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    _dir: tempfile::TempDir,
}

impl FakeConsole {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let (conn_tx, conns) = mpsc::unbounded_channel();
        let mut fake = Self {
            path,
            conns,
            conn_tx,
            listener: None,
            _dir: dir,
        };
        fake.listen();
        fake
    }

    pub fn uri(&self) -> String {
        format!("unix:{}", self.path.display())
    }

    /// Starts listening (again) at the same path.
    pub fn listen(&mut self) {
        assert!(self.listener.is_none(), "already listening");
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).unwrap();
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let tx = self.conn_tx.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            let _ = tx.send(stream);
                        }
                        Err(_) => break,
                    },
                }
            }
            drop(listener);
        });
        self.listener = Some((stop_tx, task));
    }

    /// Stops listening; once this returns, connecting to the path is refused.
    pub async fn stop_listening(&mut self) {
        if let Some((stop, task)) = self.listener.take() {
            let _ = stop.send(());
            bounded("fake console listener stop", task).await.unwrap();
        }
    }

    /// The next connection the gateway makes, however long that takes (for tests on paused
    /// time, which bound the wait themselves); `None` once the fake is gone.
    pub async fn accept_raw(&mut self) -> Option<UnixStream> {
        self.conns.recv().await
    }

    /// The next connection the gateway made.
    pub async fn accept(&mut self) -> UnixStream {
        bounded(
            "the gateway connecting to the fake console",
            self.conns.recv(),
        )
        .await
        .unwrap()
    }
}

impl Default for FakeConsole {
    fn default() -> Self {
        Self::new()
    }
}

/// Reads exactly `n` bytes from `stream`, failing after [`WAIT`].
pub async fn read_exact_within(stream: &mut UnixStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    bounded("fake console read", stream.read_exact(&mut buf))
        .await
        .unwrap();
    buf
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy that can lose the network

/// Forwards TCP connections to `target` until frozen; frozen, it forwards nothing in either
/// direction but keeps every socket open, like a pulled cable.
pub struct Proxy {
    pub addr: SocketAddr,
    freeze: watch::Sender<bool>,
    /// Reads forwarded so far towards the target (client to server) and back.
    to_target: Arc<AtomicU64>,
    from_target: Arc<AtomicU64>,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (freeze, frozen) = watch::channel(false);
        let to_target = Arc::new(AtomicU64::new(0));
        let from_target = Arc::new(AtomicU64::new(0));
        let (up, down) = (Arc::clone(&to_target), Arc::clone(&from_target));
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let (ir, iw) = inbound.into_split();
                let (or, ow) = outbound.into_split();
                tokio::spawn(forward(ir, ow, frozen.clone(), Arc::clone(&up)));
                tokio::spawn(forward(or, iw, frozen.clone(), Arc::clone(&down)));
            }
        });
        Self {
            addr,
            freeze,
            to_target,
            from_target,
        }
    }

    /// Reads forwarded so far: (client to server, server to client).
    pub fn forwarded(&self) -> (u64, u64) {
        (
            self.to_target.load(Ordering::SeqCst),
            self.from_target.load(Ordering::SeqCst),
        )
    }

    /// Stops forwarding, for good, without closing anything.
    pub fn freeze(&self) {
        let _ = self.freeze.send(true);
    }
}

async fn until_frozen(frozen: &mut watch::Receiver<bool>) {
    loop {
        if *frozen.borrow_and_update() {
            return;
        }
        if frozen.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
    reads: Arc<AtomicU64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            biased;
            () = until_frozen(&mut frozen) => break,
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => {
                    if *frozen.borrow() {
                        break;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                }
            },
        }
    }
    // The cable is pulled: hold both sockets open and move nothing.
    let _keep = (from, to);
    std::future::pending::<()>().await;
}

/// Reads the server's SSH identification line from a raw TCP connection.
pub async fn read_banner(tcp: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    bounded("SSH banner", async {
        loop {
            match tcp.read(&mut byte).await {
                Ok(1) => {
                    line.push(byte[0]);
                    if byte[0] == b'\n' {
                        break;
                    }
                }
                other => panic!("connection ended before the banner: {other:?}"),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&line).into_owned()
}

/// Waits for the peer to close a raw TCP connection: true on EOF or reset, false if it is
/// still open after `within` (data received meanwhile is discarded).
pub async fn closed_within(tcp: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}
