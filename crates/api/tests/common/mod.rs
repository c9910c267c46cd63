//! A running API on 127.0.0.1:0 with a fixture registry, for the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use api::{ApiLimits, ApiState, CredentialEntry, Credentials};
use console::policy::allow_list_policy;
use console::*;
use sigv4::SecretKey;
use tokio::sync::oneshot;

pub mod ec2;

pub const REGION: &str = "us-east-1";
pub const ACCT: &str = "111122223333";
pub const AK: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
/// Limited to instances matching `i-fff*`.
pub const AK_LIMITED: &str = "AKIDLIMITED";
/// Requires a session token.
pub const AK_TOKEN: &str = "AKIDTOKEN";
pub const TOKEN: &str = "session-token-value";
/// Account with a tiny throttle budget is simulated by a separate server; see `start_with`.
pub const ED25519: &str = include_str!("../../../../testdata/keys/ed25519.pub");
pub const RSA2048: &str = include_str!("../../../../testdata/keys/rsa2048.pub");

pub const RUNNING: &str = "i-0123456789abcdef0";
pub const XEN: &str = "i-00000000000000001";
pub const STOPPED: &str = "i-00000000000000002";
pub const OLD_BIOS: &str = "i-00000000000000003";
pub const OTHER_ACCOUNT: &str = "i-00000000000000004";
pub const UNREACHABLE: &str = "i-00000000000000005";
pub const DISABLED_ACCOUNT: &str = "i-00000000000000006";
/// Terminated: EC2 cannot start, stop or reboot it.
pub const TERMINATED: &str = "i-00000000000000007";
/// m5.large in us-east-1b with tags `Team=infra` and `Note=` a value full of XML metacharacters.
pub const TAGGED: &str = "i-00000000000000008";
pub const TAGGED_NOTE: &str = "a<b & \"c\" 'd'> \u{1F600}";

fn registry() -> Registry {
    let mut r = Registry::new();
    r.add_account(Account::new(AccountId::parse(ACCT).unwrap(), true));
    r.add_account(Account::new(
        AccountId::parse("444455556666").unwrap(),
        true,
    ));
    r.add_account(Account::new(
        AccountId::parse("777788889999").unwrap(),
        false,
    ));
    let add = |r: &mut Registry, id: &str, acct: &str, ty: &str, state, bios| {
        r.add_instance(Instance::new(
            InstanceId::parse(id).unwrap(),
            AccountId::parse(acct).unwrap(),
            ty.into(),
            AvailabilityZone::parse("us-east-1a").unwrap(),
            BTreeMap::new(),
            bios,
            "sim:".into(),
            state,
        ));
    };
    add(
        &mut r,
        RUNNING,
        ACCT,
        "t3.micro",
        InstanceState::Running,
        false,
    );
    add(&mut r, XEN, ACCT, "t2.micro", InstanceState::Running, false);
    add(
        &mut r,
        STOPPED,
        ACCT,
        "t3.micro",
        InstanceState::Stopped,
        false,
    );
    add(
        &mut r,
        OLD_BIOS,
        ACCT,
        "t3.micro",
        InstanceState::Running,
        true,
    );
    add(
        &mut r,
        OTHER_ACCOUNT,
        "444455556666",
        "t3.micro",
        InstanceState::Running,
        false,
    );
    add(
        &mut r,
        UNREACHABLE,
        ACCT,
        "t3.micro",
        InstanceState::Running,
        false,
    );
    add(
        &mut r,
        DISABLED_ACCOUNT,
        "777788889999",
        "t3.micro",
        InstanceState::Running,
        false,
    );
    add(
        &mut r,
        TERMINATED,
        ACCT,
        "t3.micro",
        InstanceState::Terminated,
        false,
    );
    r.add_instance(Instance::new(
        InstanceId::parse(TAGGED).unwrap(),
        AccountId::parse(ACCT).unwrap(),
        "m5.large".into(),
        AvailabilityZone::parse("us-east-1b").unwrap(),
        BTreeMap::from([
            ("Team".to_owned(), "infra".to_owned()),
            ("Note".to_owned(), TAGGED_NOTE.to_owned()),
        ]),
        false,
        "sim:".into(),
        InstanceState::Running,
    ));
    r
}

#[derive(Debug)]
struct ProbeFailsFor(&'static str);

#[async_trait::async_trait]
impl ConsoleProbe for ProbeFailsFor {
    async fn probe(&self, instance: &Instance) -> Result<(), String> {
        if instance.id.as_str() == self.0 {
            Err("connection refused".into())
        } else {
            Ok(())
        }
    }
}

pub fn credentials() -> Credentials {
    let acct = AccountId::parse(ACCT).unwrap();
    let root = Principal::account_root(acct.clone());
    Credentials::new([
        CredentialEntry {
            access_key_id: AK.into(),
            secret_access_key: SecretKey::new(SK),
            session_token: None,
            principal: root.clone(),
        },
        CredentialEntry {
            access_key_id: AK_LIMITED.into(),
            secret_access_key: SecretKey::new(SK),
            session_token: None,
            principal: Principal::new(
                format!("arn:aws:iam::{ACCT}:user/limited"),
                acct.clone(),
                &Identity {
                    user: Some("limited"),
                    user_id: AK_LIMITED,
                    tags: &[],
                },
                vec![Arc::new(
                    allow_list_policy("limited", &acct, Some(&["i-fff*".into()]), ActionSet::all())
                        .unwrap()
                        .1,
                )],
            ),
        },
        CredentialEntry {
            access_key_id: AK_TOKEN.into(),
            secret_access_key: SecretKey::new(SK),
            session_token: Some(SecretKey::new(TOKEN)),
            principal: root,
        },
    ])
}

pub struct Server {
    pub addr: SocketAddr,
    pub service: Arc<ConsoleService>,
    /// Whether the server speaks HTTPS.
    pub tls: bool,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Stops the server and waits until `serve` has returned (its shutdown work done).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts a server; `customize` may swap stores or the audit sink.
pub async fn start_with(
    throttle: ThrottleConfig,
    customize: impl FnOnce(ConsoleService) -> ConsoleService,
) -> Server {
    start_configured(throttle, customize, |_| {}, None).await
}

/// Starts a server with the default throttle and stores, the given listener limits, and TLS
/// when a server configuration is given.
pub async fn start_limited(limits: ApiLimits, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    start_configured(
        ThrottleConfig {
            rate_per_second: 1000.0,
            burst: 1000,
        },
        |s| s,
        |state| state.limits = limits,
        tls,
    )
    .await
}

/// Starts a plain-HTTP server whose [`ApiState`] `configure` adjusts first.
pub async fn start_with_state(configure: impl FnOnce(&mut ApiState)) -> Server {
    start_configured(
        ThrottleConfig {
            rate_per_second: 1000.0,
            burst: 1000,
        },
        |s| s,
        configure,
        None,
    )
    .await
}

/// Starts a plain-HTTP server: `customize` may swap stores or the audit sink, `configure`
/// adjusts its [`ApiState`].
pub async fn start_custom(
    throttle: ThrottleConfig,
    customize: impl FnOnce(ConsoleService) -> ConsoleService,
    configure: impl FnOnce(&mut ApiState),
) -> Server {
    start_configured(throttle, customize, configure, None).await
}

async fn start_configured(
    throttle: ThrottleConfig,
    customize: impl FnOnce(ConsoleService) -> ConsoleService,
    configure: impl FnOnce(&mut ApiState),
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Server {
    let service = ConsoleService::new(registry(), Settings::default(), throttle)
        .with_probe(Arc::new(ProbeFailsFor(UNREACHABLE)));
    let service = Arc::new(customize(service));
    let mut state = ApiState::new(Arc::clone(&service), credentials());
    configure(&mut state);
    let state = Arc::new(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let stopped = async {
        let _ = rx.await;
    };
    let is_tls = tls.is_some();
    let task = tokio::spawn(async move {
        match tls {
            Some(tls) => api::serve_tls(listener, state, tls, stopped).await,
            None => api::serve(listener, state, stopped).await,
        }
        .unwrap();
    });
    Server {
        addr,
        service,
        tls: is_tls,
        stop: Some(tx),
        task: Some(task),
    }
}

pub async fn start() -> Server {
    start_with(
        ThrottleConfig {
            rate_per_second: 1000.0,
            burst: 1000,
        },
        |s| s,
    )
    .await
}
