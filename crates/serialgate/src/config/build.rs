//! Turns a parsed [`Config`] into the domain's registry, the API's credentials and the settings,
//! checking every cross-reference. The first problem found is reported with its key path.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use api::{CredentialEntry, Credentials, KeyToken};
use console::{
    Account, AccountId, AvailabilityZone, Identity, Instance, InstanceId, InstanceState, Principal,
    Registry, Settings, ThrottleConfig,
};
use sigv4::SecretKey;

use super::cluster::{ClusterDef, valid_node_name};
use super::policies::{NamedPolicy, account_policies, credential_policies};
use super::secrets::resolve;
use super::{Config, ConfigError};

/// Everything `serve` needs from the configuration.
#[derive(Debug)]
pub struct Built {
    /// Instances that are VMs serialgate runs.
    pub vms: Vec<VmDef>,
    /// The in-band escape byte, `None` when turned off.
    pub escape: Option<u8>,
    pub registry: Registry,
    pub credentials: Credentials,
    /// Every policy attached to a credential or an account, once each.
    pub policies: Vec<NamedPolicy>,
    /// This node's place in a cluster; `None` on its own.
    pub cluster: Option<ClusterDef>,
    /// The nodes that may own each console (`[[instances]] nodes`); absent: any node.
    pub eligible: HashMap<InstanceId, Vec<String>>,
    /// The instances that may fetch their users' keys, with their tokens.
    pub key_tokens: Vec<(InstanceId, KeyToken)>,
    pub settings: Settings,
    pub throttle: ThrottleConfig,
}

/// The shortest `[[instances]] key_token` accepted, bytes.
const MIN_KEY_TOKEN_BYTES: usize = 16;

/// The in-band escape commands (`~.`, `~B`, `~?`); none of them may be the escape itself.
const ESCAPE_COMMANDS: &[u8] = b".B?";

/// Validates `cfg`; `origin` names the file in errors.
pub fn build(cfg: &Config, origin: &str) -> Result<Built, ConfigError> {
    let err = |key: String, problem: String| ConfigError(format!("{origin}: {key}: {problem}"));

    if !is_region(&cfg.region) {
        return Err(err(
            "region".into(),
            format!("{:?} is not a region name like us-east-1", cfg.region),
        ));
    }
    if cfg.keys.ttl_seconds == 0 {
        return Err(err("keys.ttl_seconds".into(), "must be at least 1".into()));
    }
    if cfg.sessions.max_duration_seconds == 0 {
        return Err(err(
            "sessions.max_duration_seconds".into(),
            "must be at least 1".into(),
        ));
    }
    if cfg.sessions.replay_lines > backends::MAX_REPLAY_LINES {
        return Err(err(
            "sessions.replay_lines".into(),
            format!("must be at most {}", backends::MAX_REPLAY_LINES),
        ));
    }
    if cfg.console_log.max_bytes == 0 {
        return Err(err(
            "console_log.max_bytes".into(),
            "must be at least 1".into(),
        ));
    }
    if cfg.console_log.keep_files == 0 {
        return Err(err(
            "console_log.keep_files".into(),
            "must be at least 1".into(),
        ));
    }
    if cfg.recordings.max_age_days == 0 {
        return Err(err(
            "recordings.max_age_days".into(),
            "must be at least 1".into(),
        ));
    }
    if cfg.recordings.max_recording_bytes < 4096 {
        return Err(err(
            "recordings.max_recording_bytes".into(),
            "must be at least 4096".into(),
        ));
    }
    if !(1..=sigv4::MAX_PRESIGNED_EXPIRES_SECS).contains(&cfg.browser.max_link_seconds) {
        return Err(err(
            "browser.max_link_seconds".into(),
            format!(
                "must be between 1 and {} (7 days)",
                sigv4::MAX_PRESIGNED_EXPIRES_SECS
            ),
        ));
    }
    if !(cfg.throttle.rate_per_second.is_finite() && cfg.throttle.rate_per_second > 0.0) {
        return Err(err(
            "throttle.rate_per_second".into(),
            "must be a positive number".into(),
        ));
    }
    if cfg.store.lease_seconds < 3 {
        return Err(err(
            "store.lease_seconds".into(),
            "must be at least 3 (leases are renewed every third of it)".into(),
        ));
    }
    if cfg.store.timeout_ms == 0 {
        return Err(err("store.timeout_ms".into(), "must be at least 1".into()));
    }
    if let Some(url) = &cfg.store.redis
        && !(url.starts_with("redis://")
            || url.starts_with("redis+unix://")
            || url.starts_with("unix://"))
    {
        return Err(err(
            "store.redis".into(),
            "must be a redis:// URL, e.g. redis://127.0.0.1:6379/0".into(),
        ));
    }
    if let Some(url) = &cfg.audit.postgres
        && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
    {
        return Err(err(
            "audit.postgres".into(),
            "must be a postgres:// URL, e.g. postgres://serialgate@127.0.0.1:5432/serialgate"
                .into(),
        ));
    }
    if cfg.throttle.burst == 0 {
        return Err(err("throttle.burst".into(), "must be at least 1".into()));
    }
    for (key, value) in [
        ("ssh.login_grace_seconds", cfg.ssh.login_grace_seconds),
        (
            "ssh.keepalive_interval_seconds",
            cfg.ssh.keepalive_interval_seconds,
        ),
        (
            "ssh.max_unauthenticated_per_ip",
            cfg.ssh.max_unauthenticated_per_ip as u64,
        ),
        ("ssh.keepalive_max", cfg.ssh.keepalive_max as u64),
        (
            "ssh.max_connections_per_ip",
            cfg.ssh.max_connections_per_ip as u64,
        ),
        (
            "ssh.max_connections",
            cfg.ssh.max_connections.map_or(1, |n| n as u64),
        ),
    ] {
        if value == 0 {
            return Err(err(key.into(), "must be at least 1".into()));
        }
    }
    check_api(&cfg.api).map_err(|(k, p)| err(k, p))?;
    if cfg.ssh.escape != "none" && cfg.ssh.escape.chars().count() != 1 {
        return Err(err(
            "ssh.escape".into(),
            "must be one character or \"none\"".into(),
        ));
    }

    let cluster = super::cluster::build(cfg, origin)?;
    let mut eligible = HashMap::new();
    let mut registry = Registry::new();
    let mut entries = Vec::new();
    let mut policies = Vec::new();
    let mut seen_keys = HashSet::new();
    let mut accounts = HashSet::new();
    for (i, a) in cfg.accounts.iter().enumerate() {
        let id = AccountId::parse(&a.id).map_err(|p| err(format!("accounts[{i}].id"), p))?;
        if !accounts.insert(id.clone()) {
            return Err(err(
                format!("accounts[{i}].id"),
                format!("account {id} is defined twice"),
            ));
        }
        let of_account = account_policies(i, a, &id).map_err(|(k, p)| err(k, p))?;
        policies.extend(of_account.iter().cloned());
        for (j, c) in a.credentials.iter().enumerate() {
            let key = format!("accounts[{i}].credentials[{j}]");
            if c.access_key_id.is_empty()
                || !c.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(err(
                    format!("{key}.access_key_id"),
                    "must be non-empty letters and digits".into(),
                ));
            }
            if !seen_keys.insert(c.access_key_id.clone()) {
                return Err(err(
                    format!("{key}.access_key_id"),
                    format!("{} is used twice", c.access_key_id),
                ));
            }
            let secret = resolve(
                origin,
                &format!("{key}.secret_access_key"),
                c.secret_access_key.as_deref(),
                c.secret_access_key_file.as_deref(),
                c.secret_access_key_env.as_deref(),
                true,
            )?
            .unwrap_or_default();
            let token = resolve(
                origin,
                &format!("{key}.session_token"),
                c.session_token.as_deref(),
                c.session_token_file.as_deref(),
                c.session_token_env.as_deref(),
                false,
            )?;
            let arn = match (&c.user, &c.principal_arn) {
                (Some(_), Some(_)) => {
                    return Err(err(
                        key,
                        "give either user or principal_arn, not both".into(),
                    ));
                }
                (Some(user), None) => {
                    if user.is_empty()
                        || user.len() > 64
                        || user.contains(|ch: char| ch.is_whitespace())
                    {
                        return Err(err(
                            format!("{key}.user"),
                            "must be 1 to 64 characters without spaces".into(),
                        ));
                    }
                    format!("arn:aws:iam::{id}:user/{user}")
                }
                (None, Some(arn)) if arn.starts_with("arn:") => arn.clone(),
                (None, Some(_)) => {
                    return Err(err(
                        format!("{key}.principal_arn"),
                        "must start with arn:".into(),
                    ));
                }
                (None, None) => format!("arn:aws:iam::{id}:root"),
            };
            let attached =
                credential_policies(&key, c, &id, &of_account).map_err(|(k, p)| err(k, p))?;
            for p in &attached {
                if !policies
                    .iter()
                    .any(|q: &NamedPolicy| Arc::ptr_eq(&q.policy, &p.policy))
                {
                    policies.push(p.clone());
                }
            }
            let tags: Vec<(String, String)> =
                c.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let identity = Identity {
                user: c.user.as_deref(),
                user_id: &c.access_key_id,
                tags: &tags,
            };
            entries.push(CredentialEntry {
                access_key_id: c.access_key_id.clone(),
                secret_access_key: SecretKey::new(secret),
                session_token: token.map(SecretKey::new),
                principal: Principal::new(
                    arn,
                    id.clone(),
                    &identity,
                    attached.into_iter().map(|p| p.policy).collect(),
                ),
            });
        }
        registry.add_account(Account::new(id, a.serial_console_access));
    }

    let mut instance_ids = HashSet::new();
    let mut vms = Vec::new();
    let mut key_tokens = Vec::new();
    for (i, inst) in cfg.instances.iter().enumerate() {
        let key = format!("instances[{i}]");
        let id = InstanceId::parse(&inst.id).map_err(|p| err(format!("{key}.id"), p))?;
        if !instance_ids.insert(id.clone()) {
            return Err(err(
                format!("{key}.id"),
                format!("instance {id} is defined twice"),
            ));
        }
        if let Some(nodes) = &inst.nodes {
            if cluster.is_none() {
                return Err(err(
                    format!("{key}.nodes"),
                    "needs [cluster]: on its own, a node owns every console".into(),
                ));
            }
            if nodes.is_empty() {
                return Err(err(
                    format!("{key}.nodes"),
                    "must name at least one node; leave it out for any node".into(),
                ));
            }
            if let Some((k, n)) = nodes.iter().enumerate().find(|(_, n)| !valid_node_name(n)) {
                return Err(err(
                    format!("{key}.nodes[{k}]"),
                    format!("{n:?} is not 1 to 64 of A-Z a-z 0-9 . _ -"),
                ));
            }
            eligible.insert(id.clone(), nodes.clone());
        }
        let account =
            AccountId::parse(&inst.account).map_err(|p| err(format!("{key}.account"), p))?;
        if !accounts.contains(&account) {
            return Err(err(
                format!("{key}.account"),
                format!("account {account} is not defined in [[accounts]]"),
            ));
        }
        let state = InstanceState::parse(&inst.state).ok_or_else(|| {
            err(
                format!("{key}.state"),
                format!("{:?} is not an EC2 state (pending, running, stopping, stopped, shutting-down, terminated)", inst.state),
            )
        })?;
        if !inst.instance_type.contains('.') {
            return Err(err(
                format!("{key}.instance_type"),
                format!(
                    "{:?} is not an instance type like t3.micro",
                    inst.instance_type
                ),
            ));
        }
        let az_text = inst
            .availability_zone
            .clone()
            .unwrap_or_else(|| format!("{}a", cfg.region));
        let az = AvailabilityZone::parse(&az_text)
            .map_err(|p| err(format!("{key}.availability_zone"), p))?;
        let console = match (&inst.console, &inst.qemu) {
            (Some(_), Some(_)) => {
                return Err(err(
                    key,
                    "give either console or [instances.qemu], not both".into(),
                ));
            }
            (None, None) => {
                return Err(err(
                    format!("{key}.console"),
                    "missing; give a console URI (e.g. \"sim:\" or \"unix:/path\") or an [instances.qemu] section".into(),
                ));
            }
            (Some(uri), None) => {
                if let Err(e) = uri.parse::<backends::ConsoleUri>() {
                    return Err(err(format!("{key}.console"), e.to_string()));
                }
                uri.clone()
            }
            (None, Some(q)) => {
                let spec = qemu_spec(q, &format!("{key}.qemu")).map_err(|(k, p)| err(k, p))?;
                let paths = vm::VmPaths::new(&cfg.state_dir(), id.as_str());
                let uri = paths.console_uri();
                vms.push(VmDef {
                    id: id.clone(),
                    spec,
                    paths,
                });
                uri
            }
        };
        let token = resolve(
            origin,
            &format!("{key}.key_token"),
            inst.key_token.as_deref(),
            inst.key_token_file.as_deref(),
            inst.key_token_env.as_deref(),
            false,
        )?;
        if let Some(token) = token {
            if token.len() < MIN_KEY_TOKEN_BYTES {
                return Err(err(
                    format!("{key}.key_token"),
                    format!(
                        "must be at least {MIN_KEY_TOKEN_BYTES} bytes (e.g. openssl rand -hex 32)"
                    ),
                ));
            }
            key_tokens.push((id.clone(), KeyToken::new(token.into_bytes())));
        }
        registry.add_instance(
            Instance::new(
                id,
                account,
                inst.instance_type.clone(),
                az,
                inst.tags.clone(),
                inst.unsupported_bios,
                console,
                state,
            )
            .with_addresses(inst.public_ip_address, inst.private_ip_address),
        );
    }

    let settings = Settings {
        region: cfg.region.clone(),
        key_ttl: Duration::from_secs(cfg.keys.ttl_seconds),
        teardown: Duration::from_secs(cfg.sessions.teardown_seconds),
        max_session: Duration::from_secs(cfg.sessions.max_duration_seconds),
        lease_ttl: Duration::from_secs(cfg.store.lease_seconds),
        idle_timeout: (cfg.sessions.idle_timeout_seconds > 0)
            .then(|| Duration::from_secs(cfg.sessions.idle_timeout_seconds)),
    };
    let escape = match cfg.ssh.escape.as_str() {
        "none" => None,
        e => match e.as_bytes() {
            // The command letters cannot be the escape: the escape typed twice means a literal
            // escape, so `BB` could not say both "BREAK" and "the letter B".
            [b] if b.is_ascii_graphic() && !ESCAPE_COMMANDS.contains(b) => Some(*b),
            _ => {
                return Err(err(
                    "ssh.escape".into(),
                    "must be one printable ASCII character other than `.`, `B` and `?` (the \
                     escape commands), or \"none\""
                        .into(),
                ));
            }
        },
    };
    Ok(Built {
        vms,
        escape,
        registry,
        credentials: Credentials::new(entries),
        policies,
        cluster,
        eligible,
        key_tokens,
        settings,
        throttle: ThrottleConfig {
            rate_per_second: cfg.throttle.rate_per_second,
            burst: cfg.throttle.burst,
        },
    })
}

/// `[api]`: limits in range, TLS files given as a pair. Errors are (key, problem).
fn check_api(api: &super::ApiSection) -> Result<(), (String, String)> {
    let problem = |key: &str, problem: &str| Err((format!("api.{key}"), problem.to_owned()));
    if !(1024..=1 << 20).contains(&api.max_body_bytes) {
        return problem("max_body_bytes", "must be between 1024 and 1048576");
    }
    for (key, value) in [
        (
            "header_read_timeout_seconds",
            api.header_read_timeout_seconds,
        ),
        ("idle_timeout_seconds", api.idle_timeout_seconds),
        ("request_timeout_seconds", api.request_timeout_seconds),
        ("max_connections_per_ip", api.max_connections_per_ip as u64),
        (
            "max_connections",
            api.max_connections.map_or(1, |n| n as u64),
        ),
    ] {
        if value == 0 {
            return problem(key, "must be at least 1");
        }
    }
    if api.max_header_bytes < sigv4::MAX_AUTHORIZATION_BYTES {
        return problem(
            "max_header_bytes",
            "must be at least 8192 (an Authorization header alone may be that long)",
        );
    }
    if api.max_headers < 16 {
        return problem(
            "max_headers",
            "must be at least 16 (a signed SDK request carries about ten)",
        );
    }
    match (&api.tls_cert_file, &api.tls_key_file) {
        (Some(_), None) => problem(
            "tls_key_file",
            "missing: tls_cert_file is set, and HTTPS needs both",
        ),
        (None, Some(_)) => problem(
            "tls_cert_file",
            "missing: tls_key_file is set, and HTTPS needs both",
        ),
        _ => Ok(()),
    }
}

/// A managed instance's VM.
#[derive(Debug, Clone)]
pub struct VmDef {
    pub id: InstanceId,
    pub spec: vm::QemuSpec,
    pub paths: vm::VmPaths,
}

/// Validates `[instances.qemu]`; errors are (key, problem).
fn qemu_spec(q: &super::QemuConfig, key: &str) -> Result<vm::QemuSpec, (String, String)> {
    let must_exist = |name: &str, p: &std::path::Path| {
        if p.is_file() {
            Ok(())
        } else {
            Err((
                format!("{key}.{name}"),
                format!("{} does not exist or is not a file", p.display()),
            ))
        }
    };
    must_exist("kernel", &q.kernel)?;
    if let Some(i) = &q.initrd {
        must_exist("initrd", i)?;
    }
    if let Some(d) = &q.disk {
        must_exist("disk", d)?;
    }
    if !(16..=1_048_576).contains(&q.memory_mib) {
        return Err((
            format!("{key}.memory_mib"),
            "must be between 16 and 1048576".into(),
        ));
    }
    if !(1..=256).contains(&q.cpus) {
        return Err((format!("{key}.cpus"), "must be between 1 and 256".into()));
    }
    let accel = match q.accel.as_str() {
        "auto" => vm::Accel::detect(),
        "tcg" => vm::Accel::Tcg,
        "kvm" => vm::Accel::Kvm,
        other => {
            return Err((
                format!("{key}.accel"),
                format!("{other:?} is not one of \"auto\", \"tcg\", \"kvm\""),
            ));
        }
    };
    let ssh_forward = match &q.ssh_forward {
        None => None,
        Some(text) => match text.parse::<std::net::SocketAddrV4>() {
            Ok(a) if a.port() != 0 => Some(a),
            _ => {
                return Err((
                    format!("{key}.ssh_forward"),
                    format!(
                        "{text:?} is not an IPv4 address and port such as \"127.0.0.1:2201\" \
                         (QEMU's user network forwards IPv4)"
                    ),
                ));
            }
        },
    };
    Ok(vm::QemuSpec {
        kernel: q.kernel.clone(),
        initrd: q.initrd.clone(),
        disk: q.disk.clone(),
        memory_mib: q.memory_mib,
        cpus: q.cpus,
        append: q.append.clone(),
        accel,
        stop_timeout_secs: q.stop_timeout_seconds,
        binary: q.binary.clone(),
        // This very binary relays the guest's connections to its keys socket (`vm-keys-relay`);
        // when it cannot be named, the VM runs without a network.
        keys_relay: std::env::current_exe().ok(),
        ssh_forward,
    })
}

/// `xx-name-N` style region names (`us-east-1`, `us-gov-west-1`, `cn-north-1`).
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    (3..=4).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use console::Action;

    fn build_str(text: &str) -> Result<Built, ConfigError> {
        build(&Config::parse(text, "test.toml")?, "test.toml")
    }

    #[test]
    fn embedded_default_builds() {
        let b = build(&Config::embedded().unwrap(), "<embedded>").unwrap();
        assert_eq!(b.credentials.len(), 1);
        assert_eq!(b.settings.key_ttl, Duration::from_secs(60));
        let id = InstanceId::parse("i-0123456789abcdef0").unwrap();
        assert_eq!(b.registry.instance(&id).unwrap().console, "sim:");
    }

    #[test]
    fn design_example_builds_verbatim() {
        let text = include_str!("../../../../testdata/config/design-example.toml");
        let b = build_str(text).unwrap();
        let id = InstanceId::parse("i-0123456789abcdef0").unwrap();
        let inst = b.registry.instance(&id).unwrap();
        assert_eq!(inst.console, "unix:/run/vm1/ttyS0.sock");
        assert!(b.vms.is_empty());
        assert_eq!(inst.availability_zone.as_str(), "us-east-1a");
    }

    #[test]
    fn every_documented_key_is_honoured() {
        let b = build_str(
            r#"
region = "eu-west-1"
[keys]
ttl_seconds = 5
[sessions]
max_duration_seconds = 120
teardown_seconds = 7
[throttle]
rate_per_second = 1.5
burst = 3
[store]
redis = "redis://127.0.0.1:6379/0"
lease_seconds = 9
timeout_ms = 500
[cluster]
node = "gate-1"
listen = "0.0.0.0:4600"
advertise = "10.0.0.11:4600"
secret = "0123456789abcdef"
[audit]
postgres = "postgres://serialgate@127.0.0.1:5432/serialgate"
[[accounts]]
id = "111122223333"
[[accounts.credentials]]
access_key_id = "AK1"
secret_access_key = "s"
user = "alice"
[[instances]]
id = "i-0123456789abcdef0"
account = "111122223333"
availability_zone = "eu-west-1b"
tags = { Team = "infra" }
unsupported_bios = true
console = "sim:"
nodes = ["gate-1", "gate-2"]
"#,
        )
        .unwrap();
        let cluster = b.cluster.as_ref().unwrap();
        assert_eq!(
            (cluster.node.as_str(), cluster.advertise.as_str()),
            ("gate-1", "10.0.0.11:4600")
        );
        assert_eq!(cluster.secret, b"0123456789abcdef");
        assert_eq!(
            b.eligible
                .get(&InstanceId::parse("i-0123456789abcdef0").unwrap())
                .map(Vec::as_slice),
            Some(&["gate-1".to_owned(), "gate-2".to_owned()][..])
        );
        assert_eq!(b.settings.key_ttl, Duration::from_secs(5));
        assert_eq!(b.settings.max_session, Duration::from_secs(120));
        assert_eq!(b.settings.teardown, Duration::from_secs(7));
        assert_eq!(b.settings.lease_ttl, Duration::from_secs(9));
        assert_eq!(b.throttle.burst, 3);
        assert!((b.throttle.rate_per_second - 1.5).abs() < f64::EPSILON);
        let inst = b
            .registry
            .instance(&InstanceId::parse("i-0123456789abcdef0").unwrap())
            .unwrap();
        assert!(inst.unsupported_bios);
        assert_eq!(inst.tags.get("Team").map(String::as_str), Some("infra"));
        assert_eq!(inst.availability_zone.as_str(), "eu-west-1b");
        let acct = b
            .registry
            .account(&AccountId::parse("111122223333").unwrap())
            .unwrap();
        assert!(!acct.serial_console_access(), "default is off, as on AWS");
    }

    #[test]
    fn console_log_and_replay_keys() {
        let cfg = Config::embedded().unwrap();
        assert!(cfg.console_log.enabled);
        assert_eq!(cfg.console_log.max_bytes, 8 * 1024 * 1024);
        assert_eq!(cfg.console_log.keep_files, 4);
        assert_eq!(cfg.sessions.replay_lines, 0);
        let text = "[sessions]\nreplay_lines = 50\n[console_log]\nenabled = false\nmax_bytes = 1000\nkeep_files = 2\n";
        let cfg = Config::parse(text, "test.toml").unwrap();
        build(&cfg, "test.toml").unwrap();
        assert!(!cfg.console_log.enabled);
        assert_eq!(cfg.console_log.max_bytes, 1000);
        assert_eq!(cfg.console_log.keep_files, 2);
        assert_eq!(cfg.sessions.replay_lines, 50);
    }

    #[test]
    fn recordings_keys() {
        let cfg = Config::embedded().unwrap();
        assert!(cfg.recordings.enabled && !cfg.recordings.input);
        assert_eq!(
            cfg.recordings.config(),
            recordings::RecordingsConfig::default()
        );
        let text = "[recordings]\nenabled = false\ninput = true\nmax_age_days = 2\nmax_total_bytes = 1000\nmax_recording_bytes = 5000\n";
        let cfg = Config::parse(text, "test.toml").unwrap();
        build(&cfg, "test.toml").unwrap();
        assert!(!cfg.recordings.enabled);
        let r = cfg.recordings.config();
        assert!(r.input);
        assert_eq!(r.max_age, std::time::Duration::from_secs(2 * 86_400));
        assert_eq!((r.max_total_bytes, r.max_recording_bytes), (1000, 5000));
    }

    #[test]
    fn cluster_errors_name_the_key() {
        let redis = "[store]\nredis = \"redis://127.0.0.1:6379/0\"\n";
        let cluster = |extra: &str| {
            format!("{redis}[cluster]\nlisten = \"127.0.0.1:4600\"\nnode = \"n1\"\n{extra}")
        };
        let instance = "[[accounts]]\nid = \"111122223333\"\n[[instances]]\nid = \"i-0123456789abcdef0\"\naccount = \"111122223333\"\nconsole = \"sim:\"\n";
        let cases = [
            (redis.to_owned(), "cluster: missing: with [store] redis"),
            (
                "[cluster]\nlisten = \"127.0.0.1:4600\"\nsecret = \"0123456789abcdef\"\n"
                    .to_owned(),
                "cluster: needs [store] redis",
            ),
            (
                cluster("secret = \"short\"\n"),
                "cluster.secret: must be at least 16 bytes",
            ),
            (cluster(""), "cluster.secret: missing"),
            (
                format!(
                    "{redis}[cluster]\nlisten = \"0.0.0.0:4600\"\nnode = \"n1\"\nsecret = \"0123456789abcdef\"\n"
                ),
                "cluster.advertise: missing: listen 0.0.0.0:4600 is every address",
            ),
            (
                cluster("secret = \"0123456789abcdef\"\nadvertise = \"nohost\"\n"),
                "cluster.advertise: \"nohost\" is not HOST:PORT",
            ),
            (
                format!(
                    "{redis}[cluster]\nlisten = \"127.0.0.1:4600\"\nnode = \"a b\"\nsecret = \"0123456789abcdef\"\n"
                ),
                "cluster.node: \"a b\" is not 1 to 64",
            ),
            (
                format!("{instance}nodes = [\"n1\"]\n"),
                "instances[0].nodes: needs [cluster]",
            ),
            (
                format!(
                    "{}{instance}nodes = []\n",
                    cluster("secret = \"0123456789abcdef\"\n")
                ),
                "instances[0].nodes: must name at least one node",
            ),
            (
                format!(
                    "{}{instance}nodes = [\"ok\", \"no/t\"]\n",
                    cluster("secret = \"0123456789abcdef\"\n")
                ),
                "instances[0].nodes[1]: \"no/t\" is not 1 to 64",
            ),
        ];
        for (text, expected) in cases {
            let e = build_str(&text).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}\n  expected: {expected}");
        }
    }

    #[test]
    fn errors_name_file_key_and_problem() {
        let cases = [
            ("[keys]\nttl_seconds = \"x\"", "ttl_seconds"),
            ("[keys]\nttl = 1", "unknown field `ttl`"),
            (
                "[keys]\nttl_seconds = 0",
                "keys.ttl_seconds: must be at least 1",
            ),
            ("[[accounts]]\nid = \"12\"", "accounts[0].id"),
            (
                "[[accounts]]\nid = \"111122223333\"\n[[instances]]\nid = \"i-0123456789abcdef0\"\naccount = \"999922223333\"\nconsole = \"sim:\"",
                "instances[0].account: account 999922223333 is not defined",
            ),
            (
                "[[accounts]]\nid = \"111122223333\"\n[[instances]]\nid = \"i-0123456789abcdef0\"\naccount = \"111122223333\"\nstate = \"asleep\"\nconsole = \"sim:\"",
                "instances[0].state",
            ),
            (
                "[[accounts]]\nid = \"111122223333\"\n[[accounts.credentials]]\naccess_key_id = \"A\"",
                "accounts[0].credentials[0].secret_access_key: missing",
            ),
            (
                "[throttle]\nrate_per_second = -1.0",
                "throttle.rate_per_second",
            ),
            ("region = \"mars\"", "region"),
            (
                "[[accounts]]\nid = \"111122223333\"\n[[instances]]\nid = \"i-0123456789abcdef0\"\naccount = \"111122223333\"\nconsole = \"serial:/dev/x\"",
                "instances[0].console",
            ),
            ("[ssh]\nescape = \"ab\"", "ssh.escape"),
            (
                "[sessions]\nreplay_lines = 10001",
                "sessions.replay_lines: must be at most 10000",
            ),
            ("[console_log]\nmax_bytes = 0", "console_log.max_bytes"),
            ("[console_log]\nkeep_files = 0", "console_log.keep_files"),
            ("[console_log]\nsize = 1", "unknown field `size`"),
            ("[recordings]\nmax_age_days = 0", "recordings.max_age_days"),
            (
                "[recordings]\nmax_recording_bytes = 10",
                "recordings.max_recording_bytes",
            ),
            ("[recordings]\ninputs = true", "unknown field `inputs`"),
            ("[ssh]\nescape = \"B\"", "ssh.escape"),
            ("[ssh]\nescape = \".\"", "ssh.escape"),
            ("[api]\nmax_body_bytes = 100", "api.max_body_bytes"),
            ("[api]\nmax_body_bytes = 2000000", "api.max_body_bytes"),
            (
                "[api]\nheader_read_timeout_seconds = 0",
                "api.header_read_timeout_seconds",
            ),
            (
                "[api]\nidle_timeout_seconds = 0",
                "api.idle_timeout_seconds",
            ),
            (
                "[api]\nrequest_timeout_seconds = 0",
                "api.request_timeout_seconds",
            ),
            (
                "[api]\nmax_connections = 0",
                "api.max_connections: must be at least 1",
            ),
            (
                "[api]\nmax_connections_per_ip = 0",
                "api.max_connections_per_ip",
            ),
            ("[api]\nmax_header_bytes = 4096", "api.max_header_bytes"),
            ("[api]\nmax_headers = 8", "api.max_headers"),
            (
                "[api]\ntls_cert_file = \"/etc/serialgate/cert.pem\"",
                "api.tls_key_file: missing",
            ),
            (
                "[api]\ntls_key_file = \"/etc/serialgate/key.pem\"",
                "api.tls_cert_file: missing",
            ),
            (
                "[api]\nmax_conections = 5",
                "unknown field `max_conections`",
            ),
            ("[ssh]\nmax_connections = 0", "ssh.max_connections"),
            (
                "[ssh]\nmax_connections_per_ip = 0",
                "ssh.max_connections_per_ip",
            ),
            ("[store]\nlease_seconds = 2", "store.lease_seconds"),
            ("[store]\ntimeout_ms = 0", "store.timeout_ms"),
            ("[store]\nredis = \"localhost:6379\"", "store.redis"),
            ("[audit]\npostgres = \"mysql://x\"", "audit.postgres"),
        ];
        for (text, expected) in cases {
            let e = build_str(text)
                .err()
                .unwrap_or_else(|| panic!("{text} should fail"));
            assert!(e.0.starts_with("test.toml"), "{e}");
            assert!(e.0.contains(expected), "{e} should mention {expected}");
        }
    }

    #[test]
    fn api_keys_are_honoured() {
        let cfg = Config::parse(
            r#"
[api]
listen = "0.0.0.0:8443"
max_body_bytes = 131072
tls_cert_file = "/etc/serialgate/chain.pem"
tls_key_file = "/etc/serialgate/key.pem"
max_connections = 500
max_connections_per_ip = 7
header_read_timeout_seconds = 3
idle_timeout_seconds = 4
request_timeout_seconds = 5
max_header_bytes = 9000
max_headers = 20
"#,
            "test.toml",
        )
        .unwrap();
        build(&cfg, "test.toml").unwrap();
        let limits = cfg.api.limits(99);
        assert_eq!(
            limits,
            api::ApiLimits {
                max_connections: 500,
                max_connections_per_ip: 7,
                header_read_timeout: Duration::from_secs(3),
                idle_timeout: Duration::from_secs(4),
                request_timeout: Duration::from_secs(5),
                max_header_bytes: 9000,
                max_headers: 20,
            }
        );
        assert_eq!(
            cfg.api.tls_cert_file.as_deref(),
            Some(std::path::Path::new("/etc/serialgate/chain.pem"))
        );
        assert_eq!(cfg.api.max_body_bytes, 131_072);
    }

    #[test]
    fn api_defaults_are_the_listener_defaults() {
        let cfg = Config::parse("", "test.toml").unwrap();
        // Only the connection cap comes from outside (the open-file limit).
        assert_eq!(
            cfg.api.limits(api::ApiLimits::DEFAULT_MAX_CONNECTIONS),
            api::ApiLimits::default()
        );
        assert_eq!(cfg.api.limits(77).max_connections, 77);
        assert!(cfg.api.tls_cert_file.is_none() && cfg.api.tls_key_file.is_none());
    }

    /// The principal `access_key_id` authenticates as.
    fn principal(b: &Built, access_key_id: &str) -> Principal {
        use sigv4::SecretLookup as _;
        b.credentials
            .lookup(access_key_id)
            .unwrap_or_else(|| panic!("no credential {access_key_id}"))
            .principal
    }

    const ACCOUNT: &str = "[[accounts]]\nid = \"111122223333\"\n";

    fn credential(access_key_id: &str, extra: &str) -> String {
        format!(
            "[[accounts.credentials]]\naccess_key_id = \"{access_key_id}\"\nsecret_access_key = \"s\"\n{extra}\n"
        )
    }

    /// Whether `p`'s policies allow `action` (on instance `id` of its account, or on `*` for an
    /// account-level action), with `context` as the request's keys.
    fn allows_with(p: &Principal, action: Action, id: &str, context: &iam::Context) -> bool {
        let arn = format!("arn:aws:ec2:us-east-1:{}:instance/{id}", p.account);
        let resource = if action.is_account_level() {
            "*"
        } else {
            arn.as_str()
        };
        let mut ctx = context.clone();
        ctx.inherit(Arc::clone(&p.context));
        let request = iam::Request {
            principal: &p.arn,
            action: action.iam_name(),
            resource,
            context: &ctx,
        };
        p.policies.evaluate(&request).is_allowed()
    }

    fn allows(p: &Principal, action: Action, id: &str) -> bool {
        allows_with(p, action, id, &iam::Context::new())
    }

    /// The actions `p` may perform on instance `id`.
    fn allowed(p: &Principal, id: &str) -> Vec<&'static str> {
        Action::ALL
            .into_iter()
            .filter(|a| allows(p, *a, id))
            .map(Action::short_name)
            .collect()
    }

    const PUSHES: [&str; 4] = [
        "SendSerialConsoleSSHPublicKey",
        "SendSSHPublicKey",
        "SpectateSerialConsole",
        "OpenSerialConsole",
    ];
    const IN: &str = "i-0123456789abcdef0";
    const OUT: &str = "i-0fff456789abcdef0";

    #[test]
    fn credential_allow_lists() {
        let text = [
            ACCOUNT.to_owned(),
            credential("PLAIN", ""),
            credential("SCOPED", "instances = [\"i-0123*\"]"),
            credential("STAR", "actions = [\"*\"]"),
            credential(
                "MIXED",
                "actions = [\"ec2:Describe*\", \"SendSSHPublicKey\", \"ec2-instance-connect:SendSSHPublicKey\"]",
            ),
            credential("EC2", "actions = [\"ec2:*\"]"),
        ]
        .concat();
        let b = build_str(&text).unwrap();
        // No `actions`: the key pushes only, nothing else, on every instance.
        let plain = principal(&b, "PLAIN");
        assert_eq!(allowed(&plain, IN), PUSHES);
        assert_eq!(allowed(&plain, OUT), PUSHES);
        let scoped = principal(&b, "SCOPED");
        assert_eq!(allowed(&scoped, IN), PUSHES);
        assert!(allowed(&scoped, OUT).is_empty());
        assert_eq!(
            allowed(&principal(&b, "STAR"), OUT).len(),
            Action::ALL.len()
        );
        assert_eq!(
            allowed(&principal(&b, "MIXED"), OUT),
            ["SendSSHPublicKey", "DescribeInstances"]
        );
        let ec2 = allowed(&principal(&b, "EC2"), IN);
        assert!(!ec2.contains(&"SendSerialConsoleSSHPublicKey"));
        assert!(ec2.contains(&"DisableSerialConsoleAccess"));
        assert_eq!(ec2.len(), 8);
    }

    #[test]
    fn shipped_configurations_allow_lists() {
        // The demo keeps every call; DESIGN.md's example key may push keys only.
        let b = build(&Config::embedded().unwrap(), "<embedded>").unwrap();
        assert_eq!(allowed(&principal(&b, "test"), IN).len(), Action::ALL.len());
        let text = include_str!("../../../../testdata/config/design-example.toml");
        let b = build_str(text).unwrap();
        assert_eq!(allowed(&principal(&b, "AKIAIOSFODNN7EXAMPLE"), IN), PUSHES);
    }

    const DENY_PROD: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"NeverProd","Effect":"Deny","Action":"*","Resource":"*",
         "Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}}]}"#;

    #[test]
    fn policies_attach_to_credentials_and_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("team.json");
        std::fs::write(
            &file,
            r#"{"Version":"2012-10-17","Statement":{"Sid":"Team","Effect":"Allow",
               "Action":"ec2:*Instances","Resource":"*",
               "Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}}"#,
        )
        .unwrap();
        let text = format!(
            r#"{ACCOUNT}
[[accounts.policies]]
name = "deny-prod"
document = '''{DENY_PROD}'''

[[accounts.credentials]]
access_key_id = "FILE"
secret_access_key = "s"
policy_file = {file:?}
tags = {{ team = "db" }}

[[accounts.credentials]]
access_key_id = "INLINE"
secret_access_key = "s"
policy = ['''{{"Statement":{{"Effect":"Allow","Action":"ec2:GetConsoleOutput","Resource":"*"}}}}''']

[[accounts.credentials]]
access_key_id = "LISTED"
secret_access_key = "s"
actions = ["ec2:RebootInstances"]

[[accounts.credentials]]
access_key_id = "GROUPONLY"
secret_access_key = "s"
"#
        );
        let b = build_str(&text).unwrap();
        let tags = |team: &str, env: &str| {
            iam::Context::new()
                .with("aws:ResourceTag/team", team)
                .with("aws:ResourceTag/env", env)
        };
        // The file's policy compares the instance's tag with the caller's; the account's
        // Deny wins over it.
        let file = principal(&b, "FILE");
        assert!(allows_with(
            &file,
            Action::StopInstances,
            IN,
            &tags("db", "dev")
        ));
        assert!(!allows_with(
            &file,
            Action::StopInstances,
            IN,
            &tags("web", "dev")
        ));
        assert!(!allows_with(
            &file,
            Action::StopInstances,
            IN,
            &tags("db", "prod")
        ));
        // A credential with its own policy gets no push-only default.
        assert!(!allows(&file, Action::SendSerialConsoleSSHPublicKey, IN));
        assert_eq!(allowed(&principal(&b, "INLINE"), IN), ["GetConsoleOutput"]);
        // An allow-list is one more policy, under the account's Deny too.
        let listed = principal(&b, "LISTED");
        assert!(allows(&listed, Action::RebootInstances, IN));
        assert!(!allows_with(
            &listed,
            Action::RebootInstances,
            IN,
            &tags("x", "prod")
        ));
        // The account's policies alone: no default, and its Deny allows nothing.
        assert!(allowed(&principal(&b, "GROUPONLY"), IN).is_empty());
        // Each distinct policy is listed once.
        let sources: Vec<&str> = b.policies.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(
            sources,
            [
                "accounts[0].policies[0]",
                "accounts[0].credentials[0].policy_file[0]",
                "accounts[0].credentials[1].policy[0]",
                "accounts[0].credentials[2].instances/actions",
            ]
        );
        assert_eq!(b.policies[0].policy.name(), "deny-prod");
        let generated = b.policies[3].generated.as_deref().unwrap();
        assert!(generated.contains("ec2:RebootInstances"), "{generated}");
    }

    #[test]
    fn policy_errors_name_the_key_the_file_and_the_statement() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(
            &bad,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
               {"Sid":"Oops","Effect":"Block","Action":"*","Resource":"*"}]}"#,
        )
        .unwrap();
        let missing = dir.path().join("missing.json");
        let cred = |extra: String| format!("{ACCOUNT}{}", credential("K", &extra));
        let cases = [
            (
                cred(format!("policy_file = {bad:?}")),
                format!(
                    "accounts[0].credentials[0].policy_file[0]: policy \"{}\": Statement[1] (Sid \"Oops\"): Effect must be \"Allow\" or \"Deny\", not \"Block\"",
                    bad.display()
                ),
            ),
            (
                cred(format!("policy_file = [{missing:?}]")),
                format!(
                    "accounts[0].credentials[0].policy_file[0]: cannot read {}",
                    missing.display()
                ),
            ),
            (
                cred("policy = '{\"Statement\": []}'".to_owned()),
                "accounts[0].credentials[0].policy[0]: policy \"K policy[0]\": ".to_owned(),
            ),
            (
                format!("{ACCOUNT}[[accounts.policies]]\nname = \"x\"\n"),
                "accounts[0].policies[0]: give either document or file".to_owned(),
            ),
            (
                format!("{ACCOUNT}[[accounts.policies]]\ndocument = 'nope'\n"),
                "accounts[0].policies[0]: policy \"account 111122223333 policies[0]\": invalid JSON"
                    .to_owned(),
            ),
        ];
        for (text, expected) in cases {
            let e = build_str(&text).unwrap_err().to_string();
            assert!(e.contains(&expected), "{e}\n  expected: {expected}");
        }
    }

    #[test]
    fn allow_list_errors_name_the_key() {
        let cases = [
            (
                credential(
                    "A2",
                    "actions = [\"StartInstances\", \"ec2:Describe*\", \"ec2:Terminate*\"]",
                ),
                "accounts[0].credentials[1].actions[2]: \"ec2:Terminate*\" matches no action; known actions: ec2-instance-connect:SendSerialConsoleSSHPublicKey",
            ),
            (
                credential("A2", "actions = [\"ec2:SendSSHPublicKey\"]"),
                "accounts[0].credentials[1].actions[0]",
            ),
            (
                credential("A2", "actions = []"),
                "accounts[0].credentials[1].actions: must name at least one action",
            ),
            (
                credential("A2", "instances = []"),
                "accounts[0].credentials[1].instances: must name at least one instance",
            ),
            (
                credential("A2", "instances = [\"i-1*\", \"\"]"),
                "accounts[0].credentials[1].instances[1]: must not be empty",
            ),
        ];
        for (second, expected) in cases {
            let text = format!("{ACCOUNT}{}{second}", credential("A1", ""));
            let e = build_str(&text)
                .err()
                .unwrap_or_else(|| panic!("{second} should fail"));
            assert!(e.0.contains(expected), "{e} should contain {expected}");
        }
    }

    #[test]
    fn debug_output_redacts_inline_secrets() {
        let text = format!(
            "{ACCOUNT}{}",
            credential(
                "AKIDEBUG",
                "session_token = \"token-value-9f3\"\nuser = \"alice\""
            )
        )
        .replace(
            "secret_access_key = \"s\"",
            "secret_access_key = \"secret-value-7c1\"",
        );
        let cfg = Config::parse(&text, "test.toml").unwrap();
        let printed = format!("{cfg:?} {cfg:#?}");
        assert!(!printed.contains("secret-value-7c1"), "{printed}");
        assert!(!printed.contains("token-value-9f3"), "{printed}");
        assert!(printed.contains("AKIDEBUG") && printed.contains("\"***\""));
        let built = build(&cfg, "test.toml").unwrap();
        let printed = format!("{built:?}");
        assert!(!printed.contains("secret-value-7c1"), "{printed}");
        assert!(!printed.contains("token-value-9f3"), "{printed}");
    }

    #[test]
    fn instance_key_tokens_are_secrets_of_at_least_16_bytes() {
        let instance = |extra: &str| {
            format!(
                "{ACCOUNT}[[instances]]\nid = \"i-0123456789abcdef0\"\naccount = \"111122223333\"\nconsole = \"sim:\"\n{extra}"
            )
        };
        let built = build_str(&instance("")).unwrap();
        assert!(
            built.key_tokens.is_empty(),
            "no token: the instance gets no keys"
        );

        let built = build_str(&instance("key_token = \"token-value-5e2-0123\"\n")).unwrap();
        assert_eq!(built.key_tokens.len(), 1);
        assert_eq!(built.key_tokens[0].0.as_str(), "i-0123456789abcdef0");
        let printed = format!(
            "{built:?} {:?}",
            Config::parse(&instance("key_token = \"token-value-5e2-0123\"\n"), "t").unwrap()
        );
        assert!(!printed.contains("token-value-5e2"), "{printed}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "0123456789abcdef\n").unwrap();
        let from_file = instance(&format!(
            "key_token_file = {:?}\n",
            path.display().to_string()
        ));
        assert_eq!(build_str(&from_file).unwrap().key_tokens.len(), 1);

        for (extra, expected) in [
            (
                "key_token = \"0123456789abcde\"\n",
                "test.toml: instances[0].key_token: must be at least 16 bytes",
            ),
            (
                "key_token = \"\"\n",
                "test.toml: instances[0].key_token: must not be empty",
            ),
            (
                "key_token = \"0123456789abcdef\"\nkey_token_env = \"X\"\n",
                "instances[0].key_token: give only one of instances[0].key_token, instances[0].key_token_file, instances[0].key_token_env",
            ),
            (
                "key_token_env = \"SERIALGATE_TEST_UNSET_VAR\"\n",
                "instances[0].key_token_env: environment variable SERIALGATE_TEST_UNSET_VAR is not set",
            ),
            (
                "key_token_file = \"/nonexistent/token\"\n",
                "instances[0].key_token_file: cannot read /nonexistent/token",
            ),
        ] {
            let e = build_str(&instance(extra)).err().unwrap().0;
            assert!(e.contains(expected), "{e}\n  expected: {expected}");
        }
    }

    #[test]
    fn secrets_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-file\n").unwrap();
        let text = format!(
            "[[accounts]]\nid = \"111122223333\"\n[[accounts.credentials]]\naccess_key_id = \"A\"\nsecret_access_key_file = {:?}\n",
            path.display().to_string()
        );
        assert!(build_str(&text).is_ok());
        let both = format!("{text}secret_access_key = \"x\"\n");
        assert!(build_str(&both).err().unwrap().0.contains("give only one"));
        let env = "[[accounts]]\nid = \"111122223333\"\n[[accounts.credentials]]\naccess_key_id = \"A\"\nsecret_access_key_env = \"SERIALGATE_TEST_UNSET_VAR\"\n";
        assert!(
            build_str(env)
                .err()
                .unwrap()
                .0
                .contains("SERIALGATE_TEST_UNSET_VAR is not set")
        );
    }
}
