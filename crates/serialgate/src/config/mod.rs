//! The TOML configuration: its schema (one `///` per key, with unit and default), loading, and
//! validation into the domain's types. Errors name the file, the key and the problem.

mod build;
pub mod cluster;
pub mod policies;
#[cfg(test)]
mod prop_tests;
mod secrets;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use build::{Built, VmDef, build};

/// The configuration `serialgate serve` runs with when given no `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// A configuration problem, already phrased for the operator.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The AWS region this service answers as; requests must be signed for it. Default `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Where persistent state lives (the SSH host key, databases). Default:
    /// `$XDG_STATE_HOME/serialgate`, else `$HOME/.local/state/serialgate`.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub ssh: SshSection,
    #[serde(default)]
    pub keys: KeysSection,
    #[serde(default)]
    pub sessions: SessionsSection,
    #[serde(default)]
    pub console_log: ConsoleLogSection,
    #[serde(default)]
    pub recordings: RecordingsSection,
    #[serde(default)]
    pub browser: BrowserSection,
    #[serde(default)]
    pub throttle: ThrottleSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub audit: AuditSection,
    /// This node among others sharing `[store] redis`.
    #[serde(default)]
    pub cluster: Option<ClusterSection>,
    /// AWS accounts and their credentials.
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    /// Instances and their consoles.
    #[serde(default)]
    pub instances: Vec<InstanceConfig>,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// `[api]`: the AWS JSON and EC2 Query HTTP endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Address to listen on. Default `127.0.0.1:4580`.
    #[serde(default = "default_api_listen")]
    pub listen: SocketAddr,
    /// Largest accepted request body, bytes (1024 to 1048576). Default 65536.
    #[serde(default = "default_body_limit")]
    pub max_body_bytes: usize,
    /// PEM certificate for HTTPS, optionally followed by its chain. Give both this and
    /// `tls_key_file`, or neither. When set, the listener speaks HTTPS only. Default: none
    /// (plain HTTP).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key of `tls_cert_file` (PKCS #8, PKCS #1 or SEC1). Default: none.
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Open API connections allowed at once, all clients together; more are closed as soon as
    /// they are accepted. Default derived from the open-file limit at start-up (half of it less
    /// 64, between 16 and 16384).
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Open API connections allowed at once from one source address (IPv6: one /64).
    /// Default 128.
    #[serde(default = "default_api_per_ip")]
    pub max_connections_per_ip: usize,
    /// A request's head (request line and headers; on a new HTTPS connection, the TLS
    /// handshake too) must arrive within this many seconds. Default 10.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_seconds: u64,
    /// A keep-alive connection with no request in progress is closed after this many seconds.
    /// Default 30.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_seconds: u64,
    /// A whole request (head, body and handling) must be answered within this many seconds;
    /// past it the client gets a timeout error. Default 30.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_seconds: u64,
    /// Largest request head (request line and headers), bytes; more is refused with HTTP 431.
    /// At least 8192. Default 16384.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most header fields in one request; more is refused with HTTP 431. At least 16.
    /// Default 64.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
}

fn default_api_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4580))
}

fn default_body_limit() -> usize {
    api::DEFAULT_BODY_LIMIT
}

fn default_api_per_ip() -> usize {
    api::ApiLimits::DEFAULT_MAX_CONNECTIONS_PER_IP
}

fn default_header_read_timeout() -> u64 {
    api::ApiLimits::DEFAULT_HEADER_READ_TIMEOUT.as_secs()
}

fn default_idle_timeout() -> u64 {
    api::ApiLimits::DEFAULT_IDLE_TIMEOUT.as_secs()
}

fn default_request_timeout() -> u64 {
    api::ApiLimits::DEFAULT_REQUEST_TIMEOUT.as_secs()
}

fn default_max_header_bytes() -> usize {
    api::ApiLimits::DEFAULT_MAX_HEADER_BYTES
}

fn default_max_headers() -> usize {
    api::ApiLimits::DEFAULT_MAX_HEADERS
}

impl Default for ApiSection {
    fn default() -> Self {
        Self {
            listen: default_api_listen(),
            max_body_bytes: default_body_limit(),
            tls_cert_file: None,
            tls_key_file: None,
            max_connections: None,
            max_connections_per_ip: default_api_per_ip(),
            header_read_timeout_seconds: default_header_read_timeout(),
            idle_timeout_seconds: default_idle_timeout(),
            request_timeout_seconds: default_request_timeout(),
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
        }
    }
}

impl ApiSection {
    /// The listener limits, with `max_connections` from the configuration or else `derived`.
    pub fn limits(&self, derived_max_connections: usize) -> api::ApiLimits {
        use std::time::Duration;
        api::ApiLimits {
            max_connections: self.max_connections.unwrap_or(derived_max_connections),
            max_connections_per_ip: self.max_connections_per_ip,
            header_read_timeout: Duration::from_secs(self.header_read_timeout_seconds),
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            request_timeout: Duration::from_secs(self.request_timeout_seconds),
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
        }
    }
}

/// `[ssh]`: the serial console SSH endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSection {
    /// Address to listen on. Default `127.0.0.1:2222`.
    #[serde(default = "default_ssh_listen")]
    pub listen: SocketAddr,
    /// In-band escape character: after a newline, `~B` sends a BREAK and `~~` a literal `~`.
    /// `"none"` turns it off; any printable ASCII character but `.`, `B` and `?` (the commands).
    /// Default `"~"`.
    #[serde(default = "default_escape")]
    pub escape: String,
    /// A connection must open its session within this many seconds of connecting. Default 30.
    #[serde(default = "default_login_grace")]
    pub login_grace_seconds: u64,
    /// Unauthenticated connections allowed at once from one source address. Default 64.
    #[serde(default = "default_unauth_per_ip")]
    pub max_unauthenticated_per_ip: usize,
    /// Open SSH connections allowed at once, authenticated or not; more are closed as soon as
    /// they are accepted. Default derived from the open-file limit at start-up.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// Open SSH connections allowed at once from one source address, authenticated or not.
    /// Default 128.
    #[serde(default = "default_ssh_per_ip")]
    pub max_connections_per_ip: usize,
    /// Keepalive probe interval, seconds; a client that misses `keepalive_max` probes in a row
    /// is disconnected (and its session slot released). Default 15.
    #[serde(default = "default_keepalive")]
    pub keepalive_interval_seconds: u64,
    /// Unanswered keepalive probes before disconnecting. Default 3.
    #[serde(default = "default_keepalive_max")]
    pub keepalive_max: usize,
}

fn default_login_grace() -> u64 {
    30
}

fn default_unauth_per_ip() -> usize {
    64
}

fn default_ssh_per_ip() -> usize {
    128
}

fn default_keepalive() -> u64 {
    15
}

fn default_keepalive_max() -> usize {
    3
}

fn default_ssh_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 2222))
}

fn default_escape() -> String {
    "~".to_owned()
}

impl Default for SshSection {
    fn default() -> Self {
        Self {
            listen: default_ssh_listen(),
            escape: default_escape(),
            login_grace_seconds: default_login_grace(),
            max_unauthenticated_per_ip: default_unauth_per_ip(),
            max_connections: None,
            max_connections_per_ip: default_ssh_per_ip(),
            keepalive_interval_seconds: default_keepalive(),
            keepalive_max: default_keepalive_max(),
        }
    }
}

/// `[keys]`: pushed keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// How long a pushed key can open a session, seconds. Default 60 (as AWS).
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
}

fn default_ttl() -> u64 {
    60
}

impl Default for KeysSection {
    fn default() -> Self {
        Self {
            ttl_seconds: default_ttl(),
        }
    }
}

/// `[sessions]`: connected SSH sessions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsSection {
    /// A connected session is closed after this many seconds. Default 3600 (AWS: about 1 h).
    #[serde(default = "default_max_duration")]
    pub max_duration_seconds: u64,
    /// After a session ends, the slot stays blocked this many seconds. Default 30 (as AWS).
    #[serde(default = "default_teardown")]
    pub teardown_seconds: u64,
    /// Lines of console history a session sees before live output when its username does not
    /// ask (`i-….port0.replay-lines=N`), at most 10000. Default 0: none, as AWS.
    #[serde(default)]
    pub replay_lines: u32,
    /// A session with no input and no output for this many seconds is ended with a notice, as
    /// if ended through `EndSerialConsoleSession` (reason `idle`). Default 0: never, since people
    /// leave a console open to catch a panic.
    #[serde(default)]
    pub idle_timeout_seconds: u64,
    /// Spectators (`SpectateSerialConsole`) allowed at once on one console; 0 turns watching
    /// off. Default 8.
    #[serde(default = "default_max_spectators")]
    pub max_spectators: u32,
}

fn default_max_spectators() -> u32 {
    8
}

fn default_max_duration() -> u64 {
    3600
}

fn default_teardown() -> u64 {
    30
}

impl Default for SessionsSection {
    fn default() -> Self {
        Self {
            max_duration_seconds: default_max_duration(),
            teardown_seconds: default_teardown(),
            replay_lines: 0,
            idle_timeout_seconds: 0,
            max_spectators: default_max_spectators(),
        }
    }
}

/// `[console_log]`: what each console prints, kept on disk in `state_dir/console/<instance>/`
/// by the node that holds the console (`serialgate console-log` reads it there).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleLogSection {
    /// Keep the logs. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A log file is rotated at its first newline once it holds this many bytes (and, with no
    /// newline, at this plus min(this, 64 KiB)). Default 8388608 (8 MiB).
    #[serde(default = "default_log_max_bytes")]
    pub max_bytes: u64,
    /// Log files kept per console, the current one included. Default 4.
    #[serde(default = "default_log_keep_files")]
    pub keep_files: u32,
}

fn default_true() -> bool {
    true
}

fn default_log_max_bytes() -> u64 {
    8 * 1024 * 1024
}

fn default_log_keep_files() -> u32 {
    4
}

impl Default for ConsoleLogSection {
    fn default() -> Self {
        Self {
            enabled: true,
            max_bytes: default_log_max_bytes(),
            keep_files: default_log_keep_files(),
        }
    }
}

/// `[recordings]`: every SSH session recorded as asciicast v2 in `state_dir/recordings/` by the
/// node that accepted the connection (`serialgate recordings` reads them there).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingsSection {
    /// Record sessions. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Record what users type too. Default false: console passwords are typed.
    #[serde(default)]
    pub input: bool,
    /// Recordings older than this many days are deleted. Default 30.
    #[serde(default = "default_recordings_max_age_days")]
    pub max_age_days: u32,
    /// The oldest recordings are deleted while all of them hold more than this. Default
    /// 1073741824 (1 GiB).
    #[serde(default = "default_recordings_max_total_bytes")]
    pub max_total_bytes: u64,
    /// One recording stops growing at this size, with a marker saying so. Default 67108864
    /// (64 MiB).
    #[serde(default = "default_recordings_max_recording_bytes")]
    pub max_recording_bytes: u64,
}

fn default_recordings_max_age_days() -> u32 {
    30
}

fn default_recordings_max_total_bytes() -> u64 {
    1 << 30
}

fn default_recordings_max_recording_bytes() -> u64 {
    64 << 20
}

impl Default for RecordingsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            input: false,
            max_age_days: default_recordings_max_age_days(),
            max_total_bytes: default_recordings_max_total_bytes(),
            max_recording_bytes: default_recordings_max_recording_bytes(),
        }
    }
}

impl RecordingsSection {
    pub fn config(&self) -> recordings::RecordingsConfig {
        recordings::RecordingsConfig {
            input: self.input,
            max_age: std::time::Duration::from_secs(u64::from(self.max_age_days) * 86_400),
            max_total_bytes: self.max_total_bytes,
            max_recording_bytes: self.max_recording_bytes,
        }
    }
}

/// `[browser]`: the serial console in a browser, on the API listener (`/console/…`), opened
/// with a presigned link (`serialgate console-url`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserSection {
    /// Serve the browser console. Default true.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The longest a console link may be valid (its `X-Amz-Expires`), seconds. Default 60, as
    /// long as a pushed key.
    #[serde(default = "default_browser_max_link_seconds")]
    pub max_link_seconds: u64,
}

fn default_browser_max_link_seconds() -> u64 {
    60
}

impl Default for BrowserSection {
    fn default() -> Self {
        Self {
            enabled: true,
            max_link_seconds: default_browser_max_link_seconds(),
        }
    }
}

/// `[throttle]`: per-account token bucket on the API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSection {
    /// Requests per second refilled into each account's bucket. Default 20.0.
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    /// Bucket size: requests an account may make in a burst. Default 40.
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rate() -> f64 {
    20.0
}

fn default_burst() -> u32 {
    40
}

impl Default for ThrottleSection {
    fn default() -> Self {
        Self {
            rate_per_second: default_rate(),
            burst: default_burst(),
        }
    }
}

/// `[store]`: where grants, session slots, throttle buckets and account switches live.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    /// Redis shared by every node of a cluster, `redis://[:PASSWORD@]HOST:PORT/DB`. Default:
    /// none, i.e. embedded in-memory stores (one node).
    #[serde(default)]
    pub redis: Option<String>,
    /// Session lease time, seconds: a node renews its sessions' leases every third of it, and
    /// the slot of a node that died frees this long (plus `teardown_seconds`) after its last
    /// renewal. Default 15.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// Bound on every Redis call, milliseconds; a call that takes longer fails (the API answers
    /// with an error instead of waiting). Default 2000.
    #[serde(default = "default_store_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_lease_seconds() -> u64 {
    15
}

fn default_store_timeout_ms() -> u64 {
    2000
}

impl Default for StoreSection {
    fn default() -> Self {
        Self {
            redis: None,
            lease_seconds: default_lease_seconds(),
            timeout_ms: default_store_timeout_ms(),
        }
    }
}

/// `[audit]`: the durable record of API calls and SSH sessions (`serialgate audit` reads it).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// PostgreSQL that every node writes to, `postgres://USER[:PASSWORD]@HOST:PORT/DB` (no TLS:
    /// keep it on loopback or a private network). Default: none, i.e. SQLite in
    /// `state_dir/audit.db`.
    #[serde(default)]
    pub postgres: Option<String>,
}

/// `[cluster]`: the nodes sharing one `[store] redis` own each console one at a time; a
/// session accepted by a node that does not own its console is relayed to the node that does,
/// over an internal channel authenticated by the shared secret. Required with `[store] redis`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// This node's name, unique in the cluster (1 to 64 of `A-Z a-z 0-9 . _ -`). Default: the
    /// host name.
    pub node: Option<String>,
    /// Where the internal relay listens; other nodes reach the consoles this node owns there.
    /// Required.
    pub listen: SocketAddr,
    /// The `HOST:PORT` other nodes use to reach `listen`. Default: `listen`, which must then be
    /// a specific address (not 0.0.0.0 or ::).
    pub advertise: Option<String>,
    /// The secret every node shares, at least 16 bytes (inline, `_file` or `_env`).
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
}

impl std::fmt::Debug for ClusterSection {
    /// The inline secret is redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSection")
            .field("node", &self.node)
            .field("listen", &self.listen)
            .field("advertise", &self.advertise)
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("secret_file", &self.secret_file)
            .field("secret_env", &self.secret_env)
            .finish()
    }
}

/// `[[accounts]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// 12-digit account id. Required.
    pub id: String,
    /// Whether the EC2 serial console is enabled for the account. Default false (as AWS).
    #[serde(default)]
    pub serial_console_access: bool,
    /// Access keys of the account.
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
    /// IAM policies that apply to every credential of the account, like a group's.
    #[serde(default)]
    pub policies: Vec<AccountPolicyConfig>,
}

/// `[[accounts.policies]]`: one IAM policy document, inline or from a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountPolicyConfig {
    /// Shown in audit records and `serialgate policy` output. Default: the file path, or
    /// `account ID policies[N]`.
    pub name: Option<String>,
    /// The JSON document.
    pub document: Option<String>,
    /// A file holding the JSON document.
    pub file: Option<PathBuf>,
}

/// One value or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }
}

/// `[[accounts.credentials]]`: one access key. Each secret may be given inline, from a file
/// (`*_file`, trailing newline ignored; preferred) or from an environment variable (`*_env`;
/// the variable stays in serialgate's environment, which no child process inherits).
/// `Debug` prints inline secrets as `***`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    /// The access key id clients sign with. Required.
    pub access_key_id: String,
    pub secret_access_key: Option<String>,
    pub secret_access_key_file: Option<PathBuf>,
    pub secret_access_key_env: Option<String>,
    /// Optional session token; when set, requests must carry it in `X-Amz-Security-Token`.
    pub session_token: Option<String>,
    pub session_token_file: Option<PathBuf>,
    pub session_token_env: Option<String>,
    /// IAM user name: requests are attributed to `arn:aws:iam::ACCOUNT:user/NAME`.
    /// Default: the account root, `arn:aws:iam::ACCOUNT:root`.
    pub user: Option<String>,
    /// Full principal ARN to attribute requests to, instead of `user`.
    pub principal_arn: Option<String>,
    /// Instance ids or ARNs (`*`/`?` wildcards) this key may name in instance-level actions
    /// (the pushes, Start/Stop/Reboot, GetConsoleOutput). ARNs are matched in the key's own
    /// account. When given, account-level actions (DescribeInstances, the serial console access
    /// switch) are allowed only if `actions` names them. Default: every instance of the account.
    pub instances: Option<Vec<String>>,
    /// IAM action names allowed, with or without their prefix (`ec2-instance-connect:`, `ec2:`),
    /// case-insensitive, `*`/`?` wildcards expanded over the known actions at load (`"*"`,
    /// `"ec2:*"`, `"ec2:Describe*"`); a pattern that matches no action is an error. Default:
    /// `SendSerialConsoleSSHPublicKey` and `SendSSHPublicKey` only. `instances` and `actions`
    /// are translated into one more policy (see `console::policy::allow_list_policy`).
    pub actions: Option<Vec<String>>,
    /// IAM policy documents (JSON), one or a list.
    pub policy: Option<OneOrMany<String>>,
    /// Files holding IAM policy documents, one or a list.
    pub policy_file: Option<OneOrMany<PathBuf>>,
    /// Principal tags (`aws:PrincipalTag/K`).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl std::fmt::Debug for CredentialConfig {
    /// Inline secrets are redacted: a config printed for debugging must not leak them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("CredentialConfig")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redact(&self.secret_access_key))
            .field("secret_access_key_file", &self.secret_access_key_file)
            .field("secret_access_key_env", &self.secret_access_key_env)
            .field("session_token", &redact(&self.session_token))
            .field("session_token_file", &self.session_token_file)
            .field("session_token_env", &self.session_token_env)
            .field("user", &self.user)
            .field("principal_arn", &self.principal_arn)
            .field("instances", &self.instances)
            .field("actions", &self.actions)
            .field("policy", &self.policy)
            .field("policy_file", &self.policy_file)
            .field("tags", &self.tags)
            .finish()
    }
}

/// `[[instances]]`. `Debug` prints an inline `key_token` as `***`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Instance id, `i-` and 8–30 lowercase hex digits. Required.
    pub id: String,
    /// Owning account id. Required; must be one of `[[accounts]]`.
    pub account: String,
    /// EC2 instance type; must be Nitro-based for the serial console. Default `t3.micro`.
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    /// EC2 state: pending, running, stopping, stopped, shutting-down, terminated. Default running.
    #[serde(default = "default_state")]
    pub state: String,
    /// Console backend URI: `unix:PATH`, `tcp:HOST:PORT`, `telnet:HOST:PORT`,
    /// `unix+telnet:PATH`, `tty:/dev/ttyS1?baud=115200`, `exec:COMMAND`, `sim:`. Required
    /// unless the instance is a VM serialgate runs (`[instances.qemu]`).
    pub console: Option<String>,
    /// A QEMU VM serialgate runs as this instance; its state follows the real machine.
    pub qemu: Option<QemuConfig>,
    /// Availability Zone. Default: the region followed by `a`.
    pub availability_zone: Option<String>,
    /// The instance's public and private IPv4 addresses, as DescribeInstances reports them
    /// (`serialgate ssh` connects to the public one, else the private one). Default: none.
    pub public_ip_address: Option<std::net::Ipv4Addr>,
    pub private_ip_address: Option<std::net::Ipv4Addr>,
    /// EC2 tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Marks firmware without serial console support (SerialConsoleSessionUnsupportedException).
    #[serde(default)]
    pub unsupported_bios: bool,
    /// With `[cluster]`: the nodes that may own this console (its socket or device exists on
    /// those hosts only). Default: any node.
    pub nodes: Option<Vec<String>>,
    /// The secret the instance proves itself with when it fetches the keys pushed for its OS
    /// users (`GET /instance-keys/v1/USER`), at least 16 bytes; inline, `key_token_file`
    /// (trailing newline ignored) or `key_token_env`. Default: none, and the instance never
    /// gets keys.
    pub key_token: Option<String>,
    pub key_token_file: Option<PathBuf>,
    pub key_token_env: Option<String>,
}

impl std::fmt::Debug for InstanceConfig {
    /// The inline key token is redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceConfig")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("instance_type", &self.instance_type)
            .field("state", &self.state)
            .field("console", &self.console)
            .field("qemu", &self.qemu)
            .field("availability_zone", &self.availability_zone)
            .field("public_ip_address", &self.public_ip_address)
            .field("private_ip_address", &self.private_ip_address)
            .field("tags", &self.tags)
            .field("unsupported_bios", &self.unsupported_bios)
            .field("nodes", &self.nodes)
            .field("key_token", &self.key_token.as_ref().map(|_| "***"))
            .field("key_token_file", &self.key_token_file)
            .field("key_token_env", &self.key_token_env)
            .finish()
    }
}

/// `[instances.qemu]`: a VM serialgate starts, supervises and stops.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QemuConfig {
    /// Kernel image (`-kernel`). Required.
    pub kernel: PathBuf,
    /// Initial ramdisk (`-initrd`).
    pub initrd: Option<PathBuf>,
    /// Raw disk image, attached as a virtio drive.
    pub disk: Option<PathBuf>,
    /// Memory, MiB. Default 256.
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    /// Virtual CPUs. Default 1.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Kernel command line. Default `console=ttyS0 panic=-1`.
    #[serde(default = "default_append")]
    pub append: String,
    /// `tcg` (software emulation), `kvm`, or `auto`: KVM when it is usable, else TCG. Default auto.
    #[serde(default = "default_accel")]
    pub accel: String,
    /// Seconds a clean stop (ACPI power button) may take before the VM is killed. Default 30.
    #[serde(default = "default_stop_timeout")]
    pub stop_timeout_seconds: u64,
    /// The QEMU binary. Default `qemu-system-x86_64` (from PATH).
    #[serde(default = "default_qemu_binary")]
    pub binary: PathBuf,
    /// An IPv4 address and port on this host that QEMU forwards to the guest's port 22, for a
    /// guest running sshd (`ssh -p PORT user@ADDRESS`). Default none.
    pub ssh_forward: Option<String>,
}

fn default_memory() -> u32 {
    256
}

fn default_cpus() -> u32 {
    1
}

fn default_append() -> String {
    "console=ttyS0 panic=-1".to_owned()
}

fn default_accel() -> String {
    "auto".to_owned()
}

fn default_stop_timeout() -> u64 {
    30
}

fn default_qemu_binary() -> PathBuf {
    PathBuf::from("qemu-system-x86_64")
}

fn default_instance_type() -> String {
    "t3.micro".to_owned()
}

fn default_state() -> String {
    "running".to_owned()
}

impl Config {
    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(format!("{origin}: {e}")))
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The embedded default.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::parse(EMBEDDED_DEFAULT, "<embedded default>")
    }

    /// `state_dir`, or the per-user default.
    /// Where `serve` may have written its state: `state_dir`, then the per-user directory it
    /// falls back to when `state_dir` is not writable. Commands that read state look in both.
    pub fn written_state_dirs(&self) -> [PathBuf; 2] {
        [self.state_dir(), user_state_dir()]
    }

    pub fn state_dir(&self) -> PathBuf {
        match &self.state_dir {
            Some(dir) => dir.clone(),
            None => user_state_dir(),
        }
    }
}

/// The per-user state directory: `$XDG_STATE_HOME/serialgate`, else
/// `$HOME/.local/state/serialgate`.
pub fn user_state_dir() -> PathBuf {
    {
        if let Some(xdg) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(xdg).join("serialgate");
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => PathBuf::from(home).join(".local/state/serialgate"),
            None => PathBuf::from("serialgate-state"),
        }
    }
}
