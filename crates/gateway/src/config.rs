//! Gateway tunables. Defaults suit production; tests shorten the timeouts.

use std::time::Duration;

use std::sync::Arc;

use backends::ConsoleOptions;
use russh::keys::PrivateKey;

use consoles::Consoles;

/// Everything the SSH gateway needs besides the domain service.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The persistent host key (see [`crate::host_key`]).
    pub host_key: PrivateKey,
    /// In-band escape character (`[ssh] escape`); `None` turns escapes off.
    pub escape: Option<u8>,
    /// Every failed authentication takes this long, so timing tells nothing. Default 1 s.
    pub auth_rejection_time: Duration,
    /// A connection must authenticate within this time. Default 30 s.
    pub login_grace: Duration,
    /// Authentication attempts per connection. Default 6.
    pub max_auth_attempts: usize,
    /// Unauthenticated connections allowed at once from one source address. Default 64.
    pub max_unauthenticated_per_ip: usize,
    /// Open connections allowed at once, authenticated or not. `serialgate serve` derives its
    /// default from the open-file limit; [`GatewayConfig::new`] uses 1024.
    pub max_connections: usize,
    /// Open connections allowed at once from one source address, authenticated or not.
    /// Default 128.
    pub max_connections_per_ip: usize,
    /// Keepalive probe interval; a peer that misses `keepalive_max` probes is dropped. Default 15 s.
    pub keepalive_interval: Duration,
    pub keepalive_max: usize,
    /// How long a shutdown waits for connections to close. Sessions say goodbye within half of
    /// it, then release their lease and write their end record; `run` returns once all have, or
    /// once this plus `store_timeout` has passed. Default 5 s.
    pub shutdown_grace: Duration,
    /// The bound on one call to the session store (`[store] timeout_ms`): a lease release waits
    /// no longer, and a session whose lease could not be renewed closes at least this long (but
    /// at most half the lease time) before the lease would lapse. Default 2 s.
    pub store_timeout: Duration,
    /// Reconnect backoff bounds when the console is lost or cannot be opened. Default 100 ms
    /// doubling to 5 s.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// A console that stayed up this long is reconnected at once when lost, and the backoff
    /// starts again from `reconnect_min`; one that closed sooner waits the backoff. Default 10 s.
    pub reconnect_reset: Duration,
    /// Console connection tuning.
    pub console: ConsoleOptions,
    /// Where sessions get their consoles (hubs or per-session connections).
    pub consoles: Arc<Consoles>,
    /// This node's name, recorded as the holder of the session leases it takes.
    pub node_id: String,
    /// Lines of console history a session sees before live output when its username does not
    /// say (`.replay-lines=N`). Default 0: none, as AWS.
    pub replay_lines: u32,
    /// Spectators allowed at once on one console (`[sessions] max_spectators`). Default 8.
    pub max_spectators: u32,
    /// Where sessions are recorded (`[recordings]`); none: sessions are not recorded.
    pub recordings: Option<Arc<recordings::Recordings>>,
}

impl GatewayConfig {
    pub fn new(host_key: PrivateKey) -> Self {
        Self {
            host_key,
            escape: Some(b'~'),
            auth_rejection_time: Duration::from_secs(1),
            login_grace: Duration::from_secs(30),
            max_auth_attempts: 6,
            max_unauthenticated_per_ip: 64,
            max_connections: 1024,
            max_connections_per_ip: 128,
            keepalive_interval: Duration::from_secs(15),
            keepalive_max: 3,
            shutdown_grace: Duration::from_secs(5),
            store_timeout: Duration::from_secs(2),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
            reconnect_reset: Duration::from_secs(10),
            console: ConsoleOptions::default(),
            consoles: Arc::new(Consoles::direct(ConsoleOptions::default())),
            node_id: default_node_id(),
            replay_lines: 0,
            max_spectators: 8,
            recordings: None,
        }
    }

    pub(crate) fn russh_config(&self) -> russh::server::Config {
        use russh::MethodKind;
        russh::server::Config {
            server_id: russh::SshId::Standard(
                format!("SSH-2.0-serialgate_{}", env!("CARGO_PKG_VERSION")).into(),
            ),
            methods: russh::MethodSet::from(&[MethodKind::PublicKey][..]),
            preferred: russh::Preferred {
                kex: std::borrow::Cow::Borrowed(KEX),
                ..russh::Preferred::default()
            },
            auth_rejection_time: self.auth_rejection_time,
            // OpenSSH probes with "none" first; answering that instantly costs nothing.
            auth_rejection_time_initial: Some(Duration::ZERO),
            keys: vec![self.host_key.clone()],
            max_auth_attempts: self.max_auth_attempts,
            // A serial console may sit idle for its whole hour; dead peers are found by keepalive.
            inactivity_timeout: None,
            keepalive_interval: Some(self.keepalive_interval),
            keepalive_max: self.keepalive_max,
            nodelay: true,
            // Console traffic is small; a smaller window and queue keep idle sessions cheap.
            window_size: 256 * 1024,
            channel_buffer_size: 8,
            event_buffer_size: 8,
            ..Default::default()
        }
    }
}

/// Key exchanges the server offers: elliptic-curve ones only. russh's finite-field
/// Diffie-Hellman uses full-size private exponents, so a client choosing
/// `diffie-hellman-group18-sha512` would cost the server hundreds of milliseconds of CPU on an
/// async worker before authenticating; curve25519 costs well under one. Every OpenSSH since 6.5
/// (2014) and PuTTY since 0.68 offers curve25519.
const KEX: &[russh::kex::Name] = &[
    russh::kex::MLKEM768X25519_SHA256,
    russh::kex::CURVE25519,
    russh::kex::CURVE25519_PRE_RFC_8731,
    russh::kex::EXTENSION_SUPPORT_AS_SERVER,
    russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
];

fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "node".to_owned());
    format!("{host}:{}", std::process::id())
}
