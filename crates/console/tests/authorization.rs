//! The authorization matrix: every credential shape × every action × own, out-of-scope,
//! foreign and unknown instances, through the service's operations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use console::ops::{PushOsUserKey, PushSerialKey};
use console::service::RequestContext;
use console::*;

const KEY: &str = include_str!("../../../testdata/keys/ed25519.pub");
const OWN_ACCT: &str = "111122223333";
const FOREIGN_ACCT: &str = "444455556666";

/// The scoped credentials' allow-list.
const SCOPE: &str = "i-0aaa*";
/// Targets, in the column order of the expectation strings below.
const OWN_IN: &str = "i-0aaa0000000000001";
const OWN_OUT: &str = "i-0bbb0000000000001";
/// Another account's instance whose id the scoped credentials' pattern matches.
const FOREIGN_IN: &str = "i-0aaa0000000000002";
const ABSENT_IN: &str = "i-0aaa00000000000ff";
const FOREIGN_OUT: &str = "i-0ccc0000000000001";
const ABSENT_OUT: &str = "i-0ddd0000000000001";
const TARGETS: [&str; 6] = [
    OWN_IN,
    OWN_OUT,
    FOREIGN_IN,
    ABSENT_IN,
    FOREIGN_OUT,
    ABSENT_OUT,
];

fn registry() -> Registry {
    let mut r = Registry::new();
    // Serial console access on in both accounts: a foreign push could only fail on ownership.
    r.add_account(Account::new(AccountId::parse(OWN_ACCT).unwrap(), true));
    r.add_account(Account::new(AccountId::parse(FOREIGN_ACCT).unwrap(), true));
    for (id, acct) in [
        (OWN_IN, OWN_ACCT),
        (OWN_OUT, OWN_ACCT),
        (FOREIGN_IN, FOREIGN_ACCT),
        (FOREIGN_OUT, FOREIGN_ACCT),
    ] {
        r.add_instance(Instance::new(
            InstanceId::parse(id).unwrap(),
            AccountId::parse(acct).unwrap(),
            "t3.micro".into(),
            AvailabilityZone::parse("us-east-1a").unwrap(),
            BTreeMap::new(),
            false,
            "sim:".into(),
            InstanceState::Running,
        ));
    }
    r
}

/// A fresh service per call, so that no case sees another's stopped instance or switch.
fn service() -> ConsoleService {
    ConsoleService::new(registry(), Settings::default(), ThrottleConfig::default())
}

fn ctx(instances: &Option<Vec<String>>, actions: ActionSet) -> RequestContext {
    RequestContext {
        request_id: "req-matrix".into(),
        principal: Principal::with_allow_list(
            "matrix",
            AccountId::parse(OWN_ACCT).unwrap(),
            instances.as_deref(),
            actions,
        ),
        source_ip: None,
        secure_transport: false,
    }
}

fn patterns(list: &[&str]) -> ActionSet {
    list.iter()
        .map(|p| ActionSet::matching(p))
        .fold(ActionSet::NONE, ActionSet::union)
}

/// Operations that name one instance.
#[derive(Debug, Clone, Copy)]
enum OnInstance {
    PushSerial,
    PushOsUser,
    Start,
    Stop,
    Reboot,
    ConsoleOutput,
    /// `DescribeInstances` with `InstanceId.1`: account-level, but it names an instance.
    DescribeById,
}

/// Account-level operations that name none.
#[derive(Debug, Clone, Copy)]
enum OnAccount {
    DescribeAll,
    Status,
    Enable,
    Disable,
}

/// `"ok"` or the error's code, with its message.
fn outcome<T>(r: Result<T, ConsoleError>) -> (&'static str, String) {
    match r {
        Ok(_) => ("ok", String::new()),
        Err(e) => (e.code(), e.to_string()),
    }
}

async fn run_on_instance(op: OnInstance, c: &RequestContext, id: &str) -> (&'static str, String) {
    let s = service();
    let id = InstanceId::parse(id).unwrap();
    let ids = std::slice::from_ref(&id);
    let key = SshPublicKey::parse(KEY).unwrap();
    match op {
        OnInstance::PushSerial => outcome(
            s.push_serial_key(
                c,
                PushSerialKey {
                    instance_id: id.clone(),
                    port: SerialPort::ZERO,
                    key,
                },
            )
            .await,
        ),
        OnInstance::PushOsUser => outcome(
            s.push_os_user_key(
                c,
                PushOsUserKey {
                    instance_id: id.clone(),
                    os_user: OsUser::parse("ec2-user").unwrap(),
                    key,
                    availability_zone: None,
                },
            )
            .await,
        ),
        OnInstance::Start => outcome(s.start_instances(c, ids).await),
        OnInstance::Stop => outcome(s.stop_instances(c, ids, false).await),
        OnInstance::Reboot => outcome(s.reboot_instances(c, ids).await),
        OnInstance::ConsoleOutput => outcome(s.console_output(c, &id).await),
        OnInstance::DescribeById => outcome(s.describe_instances(c, ids).await),
    }
}

async fn run_on_account(op: OnAccount, c: &RequestContext) -> &'static str {
    let s = service();
    match op {
        OnAccount::DescribeAll => outcome(s.describe_instances(c, &[]).await).0,
        OnAccount::Status => outcome(s.get_serial_console_access_status(c).await).0,
        OnAccount::Enable => outcome(s.switch_serial_console_access(c, true).await).0,
        OnAccount::Disable => outcome(s.switch_serial_console_access(c, false).await).0,
    }
}

fn code(c: char) -> &'static str {
    match c {
        'o' => "ok",
        'A' => "AuthException",
        'N' => "EC2InstanceNotFoundException",
        _ => panic!("bad expectation {c}"),
    }
}

/// One credential shape and what it may do: per instance operation, one letter per target in
/// [`TARGETS`] order (o = ok, A = not authorized, N = not found); per account operation, one.
struct Shape {
    name: &'static str,
    instances: Option<Vec<String>>,
    actions: ActionSet,
    on_instance: [(OnInstance, &'static str); 7],
    on_account: [(OnAccount, char); 4],
}

fn shapes() -> Vec<Shape> {
    use OnAccount::*;
    use OnInstance::*;
    let scoped = Some(vec![SCOPE.into()]);
    vec![
        // No `actions`: the key pushes only, whatever the instance; no EC2 call at all.
        Shape {
            name: "default",
            instances: None,
            actions: ActionSet::push_only(),
            on_instance: [
                (PushSerial, "ooNNNN"),
                (PushOsUser, "ooNNNN"),
                (Start, "AAAAAA"),
                (Stop, "AAAAAA"),
                (Reboot, "AAAAAA"),
                (ConsoleOutput, "AAAAAA"),
                (DescribeById, "AAAAAA"),
            ],
            on_account: [
                (DescribeAll, 'A'),
                (Status, 'A'),
                (Enable, 'A'),
                (Disable, 'A'),
            ],
        },
        // Instance-scoped without `actions`: the pushes, on its instances; no account-level call.
        Shape {
            name: "scoped",
            instances: scoped.clone(),
            actions: ActionSet::push_only(),
            on_instance: [
                (PushSerial, "oANNAA"),
                (PushOsUser, "oANNAA"),
                (Start, "AAAAAA"),
                (Stop, "AAAAAA"),
                (Reboot, "AAAAAA"),
                (ConsoleOutput, "AAAAAA"),
                (DescribeById, "AAAAAA"),
            ],
            on_account: [
                (DescribeAll, 'A'),
                (Status, 'A'),
                (Enable, 'A'),
                (Disable, 'A'),
            ],
        },
        // `actions = ["*"]`: everything in the account.
        Shape {
            name: "star",
            instances: None,
            actions: patterns(&["*"]),
            on_instance: [
                (PushSerial, "ooNNNN"),
                (PushOsUser, "ooNNNN"),
                (Start, "ooNNNN"),
                (Stop, "ooNNNN"),
                (Reboot, "ooNNNN"),
                (ConsoleOutput, "ooNNNN"),
                (DescribeById, "ooNNNN"),
            ],
            on_account: [
                (DescribeAll, 'o'),
                (Status, 'o'),
                (Enable, 'o'),
                (Disable, 'o'),
            ],
        },
        // Instance-scoped with `actions = ["*"]`: the wildcard names the account-level actions
        // too, and those are not narrowed by the instance list (no resource-level permissions).
        Shape {
            name: "scoped+star",
            instances: scoped.clone(),
            actions: patterns(&["*"]),
            on_instance: [
                (PushSerial, "oANNAA"),
                (PushOsUser, "oANNAA"),
                (Start, "oANNAA"),
                (Stop, "oANNAA"),
                (Reboot, "oANNAA"),
                (ConsoleOutput, "oANNAA"),
                (DescribeById, "ooNNNN"),
            ],
            on_account: [
                (DescribeAll, 'o'),
                (Status, 'o'),
                (Enable, 'o'),
                (Disable, 'o'),
            ],
        },
        // Instance-scoped naming one account-level action explicitly: that one only.
        Shape {
            name: "scoped+named",
            instances: scoped,
            actions: patterns(&[
                "SendSerialConsoleSSHPublicKey",
                "ec2:DescribeInstances",
                "ec2:Stop*",
            ]),
            on_instance: [
                (PushSerial, "oANNAA"),
                (PushOsUser, "AAAAAA"),
                (Start, "AAAAAA"),
                (Stop, "oANNAA"),
                (Reboot, "AAAAAA"),
                (ConsoleOutput, "AAAAAA"),
                (DescribeById, "ooNNNN"),
            ],
            on_account: [
                (DescribeAll, 'o'),
                (Status, 'A'),
                (Enable, 'A'),
                (Disable, 'A'),
            ],
        },
        // `actions = ["ec2:*"]`: the EC2 calls but no push (those are ec2-instance-connect:).
        Shape {
            name: "ec2-only",
            instances: None,
            actions: patterns(&["ec2:*"]),
            on_instance: [
                (PushSerial, "AAAAAA"),
                (PushOsUser, "AAAAAA"),
                (Start, "ooNNNN"),
                (Stop, "ooNNNN"),
                (Reboot, "ooNNNN"),
                (ConsoleOutput, "ooNNNN"),
                (DescribeById, "ooNNNN"),
            ],
            on_account: [
                (DescribeAll, 'o'),
                (Status, 'o'),
                (Enable, 'o'),
                (Disable, 'o'),
            ],
        },
    ]
}

#[tokio::test]
async fn authorization_matrix() {
    let mut failures = Vec::new();
    for shape in shapes() {
        let c = ctx(&shape.instances, shape.actions);
        for (op, expected) in shape.on_instance {
            let mut got = Vec::new();
            for (target, want) in TARGETS.iter().zip(expected.chars()) {
                let (code_got, message) = run_on_instance(op, &c, target).await;
                if code_got != code(want) {
                    failures.push(format!(
                        "{} {op:?} {target}: expected {}, got {code_got} ({message})",
                        shape.name,
                        code(want)
                    ));
                }
                assert!(
                    !message.contains(FOREIGN_ACCT),
                    "{} {op:?} {target}: message names the owner: {message}",
                    shape.name
                );
                got.push((code_got, message.replace(target, "ID")));
            }
            // Another account's instance is indistinguishable from an unknown id: same code,
            // same message, both inside and outside the credential's instance list.
            assert_eq!(
                got[2], got[3],
                "{} {op:?}: foreign vs unknown (in scope)",
                shape.name
            );
            assert_eq!(
                got[4], got[5],
                "{} {op:?}: foreign vs unknown (out of scope)",
                shape.name
            );
        }
        for (op, want) in shape.on_account {
            let code_got = run_on_account(op, &c).await;
            if code_got != code(want) {
                failures.push(format!(
                    "{} {op:?}: expected {}, got {code_got}",
                    shape.name,
                    code(want)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn describe_all_lists_only_the_callers_account() {
    let s = service();
    let c = ctx(&None, ActionSet::all());
    let listed: Vec<String> = s
        .describe_instances(&c, &[])
        .await
        .unwrap()
        .iter()
        .map(|i| i.id.to_string())
        .collect();
    assert_eq!(listed, [OWN_IN, OWN_OUT]);
    // An instance-scoped credential allowed DescribeInstances sees the whole account, as in EC2
    // (DescribeInstances has no resource-level permissions).
    let scoped = ctx(&Some(vec![SCOPE.into()]), ActionSet::all());
    assert_eq!(s.describe_instances(&scoped, &[]).await.unwrap().len(), 2);
}

#[tokio::test]
async fn refusals_name_the_callers_arn_only() {
    let s = service();
    let scoped = ctx(&Some(vec![SCOPE.into()]), ActionSet::push_only());
    let err = s
        .push_serial_key(
            &scoped,
            PushSerialKey {
                instance_id: InstanceId::parse(FOREIGN_OUT).unwrap(),
                port: SerialPort::ZERO,
                key: SshPublicKey::parse(KEY).unwrap(),
            },
        )
        .await
        .unwrap_err();
    // The policy check comes first and names the ARN the caller asked for, in its own account.
    let ConsoleError::Auth(denial) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        **denial,
        Denial {
            principal_arn: format!("arn:aws:iam::{OWN_ACCT}:user/matrix"),
            action: Action::SendSerialConsoleSSHPublicKey,
            resource: format!("arn:aws:ec2:us-east-1:{OWN_ACCT}:instance/{FOREIGN_OUT}"),
            denied_by: None,
        }
    );
    let err = s
        .push_serial_key(
            &ctx(&None, ActionSet::push_only()),
            PushSerialKey {
                instance_id: InstanceId::parse(FOREIGN_OUT).unwrap(),
                port: SerialPort::ZERO,
                key: SshPublicKey::parse(KEY).unwrap(),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("instance not found: {FOREIGN_OUT}")
    );
}
