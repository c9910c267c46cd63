//! The EC2 Query API on the shared listener: every action, DryRun both ways, filters, each
//! error code with its status, the front door, and the interplay with the AWS JSON push. The
//! requester and the XML reader are in `common/ec2.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::ec2::*;
use common::*;
use console::control::{ConsoleHistory, ConsoleSnapshot, StatePersistence};
use console::{AccountId, InstanceId, InstanceState, StoreError, ThrottleConfig};

// --- fixtures -----------------------------------------------------------------------------

#[derive(Debug)]
struct FixedHistory;

const HISTORY_MS: u64 = 1_700_000_000_123;

#[async_trait::async_trait]
impl ConsoleHistory for FixedHistory {
    async fn snapshot(&self, instance: &InstanceId) -> Option<ConsoleSnapshot> {
        (instance.as_str() == RUNNING).then(|| ConsoleSnapshot {
            bytes: b"login: \xff<&>\r\n".to_vec(),
            updated_ms: HISTORY_MS,
        })
    }
}

#[derive(Debug)]
struct BrokenStore;

#[async_trait::async_trait]
impl StatePersistence for BrokenStore {
    async fn save_instance_state(
        &self,
        _: &InstanceId,
        _: InstanceState,
    ) -> Result<(), StoreError> {
        Err(StoreError::new("disk on fire at /var/lib/secret"))
    }
    async fn save_serial_console_access(&self, _: &AccountId, _: bool) -> Result<(), StoreError> {
        Err(StoreError::new("disk on fire at /var/lib/secret"))
    }
}

// --- DescribeInstances --------------------------------------------------------------------

#[tokio::test]
async fn describe_instances_lists_the_callers_instances() {
    let s = start().await;
    let r = call(&s, "DescribeInstances", &[]).await;
    r.assert_ok("DescribeInstances");
    let mut ids = r.all("reservationSet/item/instancesSet/item/instanceId");
    ids.sort();
    let mut expected = vec![
        RUNNING,
        XEN,
        STOPPED,
        OLD_BIOS,
        UNREACHABLE,
        TERMINATED,
        TAGGED,
    ];
    expected.sort();
    // Other accounts' instances do not exist for this caller.
    assert_eq!(ids, expected);
    assert_eq!(
        r.all("reservationSet/item/ownerId"),
        vec![ACCT.to_owned(); expected.len()]
    );
}

#[tokio::test]
async fn describe_instances_encodes_ec2_shape() {
    let s = start().await;
    let r = call(&s, "DescribeInstances", &[("InstanceId.1", TAGGED)]).await;
    r.assert_ok("DescribeInstances");
    let i = "reservationSet/item/instancesSet/item";
    assert_eq!(
        r.one("reservationSet/item/reservationId"),
        "r-00000000000000008"
    );
    assert_eq!(r.one(&format!("{i}/instanceId")), TAGGED);
    assert!(r.one(&format!("{i}/imageId")).starts_with("ami-"));
    assert_eq!(r.one(&format!("{i}/instanceState/code")), "16");
    assert_eq!(r.one(&format!("{i}/instanceState/name")), "running");
    assert_eq!(r.one(&format!("{i}/instanceType")), "m5.large");
    assert_eq!(
        r.one(&format!("{i}/placement/availabilityZone")),
        "us-east-1b"
    );
    assert_eq!(r.one(&format!("{i}/placement/tenancy")), "default");
    assert_eq!(r.one(&format!("{i}/monitoring/state")), "disabled");
    assert_eq!(r.one(&format!("{i}/amiLaunchIndex")), "0");
    assert_eq!(r.one(&format!("{i}/architecture")), "x86_64");
    assert_eq!(r.one(&format!("{i}/rootDeviceType")), "ebs");
    assert_eq!(r.one(&format!("{i}/virtualizationType")), "hvm");
    assert_eq!(r.one(&format!("{i}/hypervisor")), "xen");
    assert_eq!(r.one(&format!("{i}/platformDetails")), "Linux/UNIX");
    let launch = parse_time(&r.one(&format!("{i}/launchTime")));
    assert!(launch <= now_ms() && launch + 600_000 > now_ms());
    // Tags round-trip exactly, XML metacharacters and all.
    let keys = r.all(&format!("{i}/tagSet/item/key"));
    let values = r.all(&format!("{i}/tagSet/item/value"));
    let tags: Vec<_> = keys.iter().zip(&values).collect();
    assert!(tags.contains(&(&"Team".to_owned(), &"infra".to_owned())));
    assert!(tags.contains(&(&"Note".to_owned(), &TAGGED_NOTE.to_owned())));
    assert!(
        r.body
            .contains("&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;")
    );

    // Stable across calls; untagged instances carry no tagSet.
    let again = call(&s, "DescribeInstances", &[("InstanceId.1", TAGGED)]).await;
    assert_eq!(
        again.one(&format!("{i}/imageId")),
        r.one(&format!("{i}/imageId"))
    );
    let plain = call(&s, "DescribeInstances", &[("InstanceId.1", STOPPED)]).await;
    assert!(plain.all("tagSet").is_empty());
    assert_eq!(plain.one(&format!("{i}/instanceState/code")), "80");
}

#[tokio::test]
async fn describe_instances_filters() {
    let s = start().await;
    let ids = |r: &Resp| {
        let mut v = r.all("instancesSet/item/instanceId");
        v.sort();
        v
    };
    let f = |name: &'static str, values: &[&'static str]| {
        let mut p = vec![("Filter.1.Name", name)];
        let keys = ["Filter.1.Value.1", "Filter.1.Value.2"];
        p.extend(keys.iter().copied().zip(values.iter().copied()));
        p
    };
    let r = call(
        &s,
        "DescribeInstances",
        &f("instance-state-name", &["stopped", "terminated"]),
    )
    .await;
    assert_eq!(ids(&r), [STOPPED, TERMINATED]);
    let r = call(&s, "DescribeInstances", &f("tag:Team", &["infra"])).await;
    assert_eq!(ids(&r), [TAGGED]);
    let r = call(
        &s,
        "DescribeInstances",
        &f("tag:Team", &["inf?a", "nothing"]),
    )
    .await;
    assert_eq!(ids(&r), [TAGGED]);
    let r = call(&s, "DescribeInstances", &f("instance-type", &["t2.*"])).await;
    assert_eq!(ids(&r), [XEN]);
    let r = call(
        &s,
        "DescribeInstances",
        &f("availability-zone", &["us-east-1b"]),
    )
    .await;
    assert_eq!(ids(&r), [TAGGED]);
    let r = call(
        &s,
        "DescribeInstances",
        &f("instance-id", &["i-0000000000000000?"]),
    )
    .await;
    assert_eq!(ids(&r).len(), 6); // 1, 2, 3, 5, 7, 8 (4 and 6 are other accounts')
    // Filters AND, ids narrow first.
    let r = call(
        &s,
        "DescribeInstances",
        &[
            ("InstanceId.1", RUNNING),
            ("InstanceId.2", STOPPED),
            ("Filter.1.Name", "instance-state-name"),
            ("Filter.1.Value.1", "running"),
            ("Filter.2.Name", "instance-type"),
            ("Filter.2.Value.1", "t3.micro"),
        ],
    )
    .await;
    assert_eq!(ids(&r), [RUNNING]);
    // No match is an empty reservationSet, not an error.
    let r = call(&s, "DescribeInstances", &f("tag:Team", &["nobody"])).await;
    r.assert_ok("DescribeInstances");
    assert!(ids(&r).is_empty());
    assert_eq!(r.all("DescribeInstancesResponse/reservationSet"), [""]);

    let r = call(&s, "DescribeInstances", &f("vpc-id", &["vpc-1"])).await;
    r.assert_ec2_error(400, "InvalidParameterValue");
    assert_eq!(r.message(), "The filter 'vpc-id' is invalid");
    let r = call(&s, "DescribeInstances", &[("Filter.1.Value.1", "x")]).await;
    r.assert_ec2_error(400, "MissingParameter");
}

// --- Start, Stop, Reboot ------------------------------------------------------------------

fn state_change(r: &Resp) -> (String, String, String, String) {
    (
        r.one("instancesSet/item/instanceId"),
        r.one("instancesSet/item/previousState/name"),
        r.one("instancesSet/item/currentState/name"),
        r.one("instancesSet/item/currentState/code"),
    )
}

#[tokio::test]
async fn stop_and_start_change_state_and_gate_the_serial_console() {
    let s = start().await;
    assert_eq!(push_serial_key(&s, RUNNING).await.0, 200);

    let r = call(&s, "StopInstances", &[("InstanceId.1", RUNNING)]).await;
    r.assert_ok("StopInstances");
    assert_eq!(
        state_change(&r),
        (
            RUNNING.into(),
            "running".into(),
            "stopped".into(),
            "80".into()
        )
    );
    assert_eq!(r.one("previousState/code"), "16");
    // The domain now refuses a serial console push: the instance is stopped.
    assert_eq!(
        push_serial_key(&s, RUNNING).await,
        (400, "EC2InstanceStateInvalidException".to_owned())
    );
    let r = call(&s, "DescribeInstances", &[("InstanceId.1", RUNNING)]).await;
    assert_eq!(r.one("instanceState/name"), "stopped");

    // Stopping a stopped instance is not an error, with or without Force.
    let r = call(
        &s,
        "StopInstances",
        &[("InstanceId.1", RUNNING), ("Force", "true")],
    )
    .await;
    r.assert_ok("StopInstances");
    assert_eq!(r.one("previousState/name"), "stopped");

    let r = call(&s, "StartInstances", &[("InstanceId.1", RUNNING)]).await;
    r.assert_ok("StartInstances");
    assert_eq!(
        state_change(&r),
        (
            RUNNING.into(),
            "stopped".into(),
            "running".into(),
            "16".into()
        )
    );
    assert_eq!(push_serial_key(&s, RUNNING).await.0, 200);

    // Several at once, in request order.
    let r = call(
        &s,
        "StopInstances",
        &[("InstanceId.1", XEN), ("InstanceId.2", OLD_BIOS)],
    )
    .await;
    assert_eq!(r.all("instancesSet/item/instanceId"), [XEN, OLD_BIOS]);
}

#[tokio::test]
async fn reboot_and_incorrect_state() {
    let s = start().await;
    let r = call(&s, "RebootInstances", &[("InstanceId.1", RUNNING)]).await;
    r.assert_ok("RebootInstances");
    assert_eq!(r.one("RebootInstancesResponse/return"), "true");

    let r = call(&s, "RebootInstances", &[("InstanceId.1", STOPPED)]).await;
    r.assert_ec2_error(400, "IncorrectInstanceState");
    assert!(r.message().contains(STOPPED), "{}", r.message());
    let r = call(&s, "StartInstances", &[("InstanceId.1", TERMINATED)]).await;
    r.assert_ec2_error(400, "IncorrectInstanceState");
    let r = call(&s, "StopInstances", &[("InstanceId.1", TERMINATED)]).await;
    r.assert_ec2_error(400, "IncorrectInstanceState");
    // All or nothing: the running instance named with the terminated one was not stopped.
    let r = call(
        &s,
        "StopInstances",
        &[("InstanceId.1", RUNNING), ("InstanceId.2", TERMINATED)],
    )
    .await;
    r.assert_ec2_error(400, "IncorrectInstanceState");
    let r = call(&s, "DescribeInstances", &[("InstanceId.1", RUNNING)]).await;
    assert_eq!(r.one("instanceState/name"), "running");
}

// --- the serial console switch ------------------------------------------------------------

#[tokio::test]
async fn serial_console_access_switch() {
    let s = start().await;
    let r = call(&s, "GetSerialConsoleAccessStatus", &[]).await;
    r.assert_ok("GetSerialConsoleAccessStatus");
    assert_eq!(r.one("serialConsoleAccessEnabled"), "true");
    assert_eq!(r.one("managedBy"), "account");

    let r = call(&s, "DisableSerialConsoleAccess", &[]).await;
    r.assert_ok("DisableSerialConsoleAccess");
    assert_eq!(r.one("serialConsoleAccessEnabled"), "false");
    assert_eq!(
        push_serial_key(&s, RUNNING).await,
        (403, "SerialConsoleAccessDisabledException".to_owned())
    );
    let r = call(&s, "GetSerialConsoleAccessStatus", &[]).await;
    assert_eq!(r.one("serialConsoleAccessEnabled"), "false");

    let r = call(&s, "EnableSerialConsoleAccess", &[]).await;
    r.assert_ok("EnableSerialConsoleAccess");
    assert_eq!(r.one("serialConsoleAccessEnabled"), "true");
    assert_eq!(push_serial_key(&s, RUNNING).await.0, 200);
}

// --- GetConsoleOutput ---------------------------------------------------------------------

#[tokio::test]
async fn console_output_is_base64_of_the_latest_bytes() {
    let s = start_with(
        ThrottleConfig {
            rate_per_second: 1000.0,
            burst: 1000,
        },
        |svc| svc.with_history(Arc::new(FixedHistory)),
    )
    .await;
    let r = call(
        &s,
        "GetConsoleOutput",
        &[("InstanceId", RUNNING), ("Latest", "true")],
    )
    .await;
    r.assert_ok("GetConsoleOutput");
    assert_eq!(r.one("instanceId"), RUNNING);
    assert_eq!(r.one("timestamp"), "2023-11-14T22:13:20.123Z");
    assert_eq!(parse_time(&r.one("timestamp")), HISTORY_MS);
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(r.one("output"))
        .unwrap();
    assert_eq!(bytes, b"login: \xff<&>\r\n");

    // A console with no history: empty output, the time is now.
    let r = call(&s, "GetConsoleOutput", &[("InstanceId", STOPPED)]).await;
    r.assert_ok("GetConsoleOutput");
    assert_eq!(r.one("output"), "");
    assert!(r.body.contains("<output/>"));
    assert!(parse_time(&r.one("timestamp")).abs_diff(now_ms()) < 60_000);

    let r = call(&s, "GetConsoleOutput", &[]).await;
    r.assert_ec2_error(400, "MissingParameter");
    assert_eq!(
        r.message(),
        "The request must contain the parameter InstanceId"
    );
    let r = call(&s, "GetConsoleOutput", &[("InstanceId", OTHER_ACCOUNT)]).await;
    r.assert_ec2_error(400, "InvalidInstanceID.NotFound");
}

// --- DryRun -------------------------------------------------------------------------------

#[tokio::test]
async fn dry_run_answers_whether_the_call_would_succeed() {
    let s = start().await;
    let with_id = [("InstanceId.1", RUNNING), ("DryRun", "true")];
    let cases: [(&str, &[(&str, &str)]); 8] = [
        ("DescribeInstances", &[("DryRun", "true")]),
        ("StartInstances", &with_id),
        ("StopInstances", &with_id),
        ("RebootInstances", &with_id),
        (
            "GetConsoleOutput",
            &[("InstanceId", RUNNING), ("DryRun", "true")],
        ),
        ("EnableSerialConsoleAccess", &[("DryRun", "true")]),
        ("DisableSerialConsoleAccess", &[("DryRun", "true")]),
        ("GetSerialConsoleAccessStatus", &[("DryRun", "true")]),
    ];
    for (action, params) in cases {
        let r = call(&s, action, params).await;
        r.assert_ec2_error(412, "DryRunOperation");
        assert_eq!(
            r.message(),
            "Request would have succeeded, but DryRun flag is set.",
            "{action}"
        );
    }
    // Nothing happened.
    let r = call(&s, "DescribeInstances", &[("InstanceId.1", RUNNING)]).await;
    assert_eq!(r.one("instanceState/name"), "running");
    let r = call(&s, "GetSerialConsoleAccessStatus", &[]).await;
    assert_eq!(r.one("serialConsoleAccessEnabled"), "true");

    // The limited key may not touch RUNNING: the dry run says so, as the real call does.
    for action in ["StopInstances", "StartInstances", "RebootInstances"] {
        let r = call_as(&s, AK_LIMITED, action, &with_id).await;
        r.assert_ec2_error(403, "UnauthorizedOperation");
        assert!(
            r.message()
                .starts_with("You are not authorized to perform this operation."),
            "{}",
            r.message()
        );
        let real = call_as(&s, AK_LIMITED, action, &with_id[..1]).await;
        real.assert_ec2_error(403, "UnauthorizedOperation");
    }
    // DryRun=false is an ordinary call; the parameters are still validated first.
    let r = call(
        &s,
        "RebootInstances",
        &[("InstanceId.1", RUNNING), ("DryRun", "false")],
    )
    .await;
    r.assert_ok("RebootInstances");
    let r = call(
        &s,
        "RebootInstances",
        &[("InstanceId.1", "i-nope"), ("DryRun", "true")],
    )
    .await;
    r.assert_ec2_error(400, "InvalidInstanceID.Malformed");
}

// --- parameter and domain errors ----------------------------------------------------------

#[tokio::test]
async fn instance_id_errors() {
    let s = start().await;
    let r = call(
        &s,
        "StopInstances",
        &[("InstanceId.1", "i-00000000000000fff")],
    )
    .await;
    r.assert_ec2_error(400, "InvalidInstanceID.NotFound");
    assert_eq!(
        r.message(),
        "The instance ID 'i-00000000000000fff' does not exist"
    );
    let r = call(
        &s,
        "DescribeInstances",
        &[
            ("InstanceId.1", RUNNING),
            ("InstanceId.2", "i-00000000000000ffe"),
            ("InstanceId.3", OTHER_ACCOUNT),
        ],
    )
    .await;
    r.assert_ec2_error(400, "InvalidInstanceID.NotFound");
    assert_eq!(
        r.message(),
        format!("The instance IDs 'i-00000000000000ffe, {OTHER_ACCOUNT}' do not exist")
    );
    for bad in [
        "x",
        "i-XYZ",
        "ami-12345678",
        "i-0123456789abcdef0123456789abcdef0",
    ] {
        let r = call(&s, "RebootInstances", &[("InstanceId.1", bad)]).await;
        r.assert_ec2_error(400, "InvalidInstanceID.Malformed");
        assert_eq!(
            r.message(),
            format!("Invalid id: \"{bad}\" (expecting \"i-...\")")
        );
    }
    let r = call(&s, "StartInstances", &[]).await;
    r.assert_ec2_error(400, "MissingParameter");
    assert_eq!(
        r.message(),
        "The request must contain the parameter InstanceId"
    );
    let r = call(
        &s,
        "StopInstances",
        &[("InstanceId.1", RUNNING), ("Force", "yes")],
    )
    .await;
    r.assert_ec2_error(400, "InvalidParameterValue");
}

#[tokio::test]
async fn action_and_version_errors() {
    let s = start().await;
    let body = |q: &str| ec2_as(&s, AK, q.as_bytes());
    let r = send(&s, &body("Version=2016-11-15")).await;
    r.assert_ec2_error(400, "MissingAction");
    let r = send(&s, &body("Action=TerminateInstances&Version=2016-11-15")).await;
    r.assert_ec2_error(400, "InvalidAction");
    assert_eq!(
        r.message(),
        "The action TerminateInstances is not valid for this web service."
    );
    let r = send(&s, &body("Action=DescribeInstances&Version=2015-10-01")).await;
    r.assert_ec2_error(400, "NoSuchVersion");
    let r = send(&s, &body("Action=DescribeInstances")).await;
    r.assert_ec2_error(400, "MissingParameter");
    assert_eq!(
        r.message(),
        "The request must contain the parameter Version"
    );
    // An empty body is a form too.
    let r = send(&s, &body("")).await;
    r.assert_ec2_error(400, "MissingAction");
}

#[tokio::test]
async fn throttling_is_request_limit_exceeded() {
    let s = start_with(
        ThrottleConfig {
            rate_per_second: 0.001,
            burst: 1,
        },
        |svc| svc,
    )
    .await;
    call(&s, "DescribeInstances", &[])
        .await
        .assert_ok("DescribeInstances");
    let r = call(&s, "DescribeInstances", &[]).await;
    r.assert_ec2_error(503, "RequestLimitExceeded");
    assert_eq!(r.message(), "Request limit exceeded.");
}

#[tokio::test]
async fn internal_errors_are_500_without_the_cause() {
    let s = start_with(
        ThrottleConfig {
            rate_per_second: 1000.0,
            burst: 1000,
        },
        |svc| svc.with_persistence(Arc::new(BrokenStore)),
    )
    .await;
    for action in ["StopInstances", "EnableSerialConsoleAccess"] {
        let r = call(&s, action, &[("InstanceId.1", RUNNING)]).await;
        r.assert_ec2_error(500, "InternalError");
        assert_eq!(r.message(), "An internal error has occurred");
        assert!(!r.body.contains("fire") && !r.body.contains("secret"));
    }
}

// --- the front door -----------------------------------------------------------------------

#[tokio::test]
async fn unsigned_is_missing_parameter_access_key() {
    let s = start().await;
    let mut req = ec2_as(&s, AK, &form("DescribeInstances", &[]));
    req.headers
        .retain(|(k, _)| k != "authorization" && !k.starts_with("x-amz-"));
    let r = send(&s, &req).await;
    r.assert_ec2_error(400, "MissingParameter");
    assert_eq!(
        r.message(),
        "The request must contain the parameter AWSAccessKeyId"
    );
}

#[tokio::test]
async fn credential_problems_are_auth_failure() {
    let s = start().await;
    let body = form("DescribeInstances", &[]);
    let host = s.addr.to_string();
    let now = SystemTime::now();
    let sign_with = |ak: &str, sk: &str, region: &str, service: &str| {
        signed(&host, ak, sk, region, service, now, form_headers(), &body)
    };
    let mut tampered = sign_with(AK, SK, REGION, "ec2");
    tampered.body = form("DescribeInstances", &[("InstanceId.1", RUNNING)]);
    let cases = [
        ("unknown key", sign_with("AKIDNOBODY", SK, REGION, "ec2")),
        (
            "wrong secret",
            sign_with(AK, "not-the-secret", REGION, "ec2"),
        ),
        ("wrong region", sign_with(AK, SK, "eu-west-1", "ec2")),
        (
            "signed for the JSON service",
            sign_with(AK, SK, REGION, "ec2-instance-connect"),
        ),
        (
            "missing session token",
            sign_with(AK_TOKEN, SK, REGION, "ec2"),
        ),
        ("tampered body", tampered),
    ];
    for (what, req) in cases {
        let r = send(&s, &req).await;
        assert_eq!(
            r.error(),
            (401, "AuthFailure".to_owned()),
            "{what}: {}",
            r.body
        );
        r.assert_ec2_error(401, "AuthFailure");
        assert_eq!(
            r.message(),
            "AWS was not able to validate the provided access credentials",
            "{what}"
        );
    }
}

#[tokio::test]
async fn skew_is_request_expired() {
    let s = start().await;
    for t in [
        SystemTime::now() - Duration::from_secs(20 * 60),
        SystemTime::now() + Duration::from_secs(20 * 60),
    ] {
        let req = signed(
            &s.addr.to_string(),
            AK,
            SK,
            REGION,
            "ec2",
            t,
            form_headers(),
            &form("DescribeInstances", &[]),
        );
        let r = send(&s, &req).await;
        r.assert_ec2_error(400, "RequestExpired");
        assert!(
            r.message().starts_with("Request has expired."),
            "{}",
            r.message()
        );
    }
}

#[tokio::test]
async fn malformed_authorization_is_incomplete_signature() {
    let s = start().await;
    let mut req = ec2_as(&s, AK, &form("DescribeInstances", &[]));
    for (k, v) in &mut req.headers {
        if k == "authorization" {
            *v = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE".into();
        }
    }
    send(&s, &req)
        .await
        .assert_ec2_error(400, "IncompleteSignature");
}

#[tokio::test]
async fn oversized_form_is_413_in_xml() {
    let s = start().await;
    let big = form("DescribeInstances", &[("Pad", &"x".repeat(70 * 1024))]);
    let r = send(&s, &ec2_as(&s, AK, &big)).await;
    r.assert_ec2_error(413, "RequestEntityTooLarge");
}

#[tokio::test]
async fn json_requests_keep_the_json_path() {
    let s = start().await;
    // A form body with X-Amz-Target is AWS JSON (whose error it gets), not EC2.
    let mut headers = form_headers();
    headers.push((
        "x-amz-target".to_owned(),
        "AWSEC2InstanceConnectService.Nope".to_owned(),
    ));
    let req = signed(
        &s.addr.to_string(),
        AK,
        SK,
        REGION,
        "ec2-instance-connect",
        SystemTime::now(),
        headers,
        b"Action=DescribeInstances&Version=2016-11-15",
    );
    let r = send(&s, &req).await;
    assert_eq!(r.status, 400);
    assert!(
        r.headers
            .contains("content-type: application/x-amz-json-1.1")
    );
    assert!(r.body.contains("UnknownOperationException"), "{}", r.body);
    // Unsigned and not a form: still the JSON front door.
    let r = send_raw(
        &s,
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-amz-json-1.1\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await;
    assert_eq!(r.status, 403);
    assert!(
        r.body.contains("MissingAuthenticationTokenException"),
        "{}",
        r.body
    );
    // And the JSON operations still work beside EC2.
    assert_eq!(push_serial_key(&s, RUNNING).await.0, 200);
}

/// Junk forms, signed, never produce a 5xx, a panic, a hang or invalid XML.
#[tokio::test]
async fn junk_forms_never_yield_5xx_or_bad_xml() {
    let s = start().await;
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let actions = [
        "DescribeInstances",
        "StartInstances",
        "StopInstances",
        "RebootInstances",
        "GetConsoleOutput",
        "GetSerialConsoleAccessStatus",
        "Junk\u{0}<&>",
    ];
    let names = [
        "InstanceId",
        "InstanceId.1",
        "InstanceId.99999999999",
        "Filter.1.Name",
        "Filter.1.Value.1",
        "Filter.0.Name",
        "DryRun",
        "Force",
        "Latest",
        "\u{1}",
    ];
    for _ in 0..150 {
        let junk: String = (0..(next() % 40))
            .map(|_| char::from_u32((next() % 0x2FF) as u32).unwrap_or('?'))
            .collect();
        let action = actions[(next() % actions.len() as u64) as usize];
        let name = names[(next() % names.len() as u64) as usize];
        let r = call(&s, action, &[(name, &junk)]).await;
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "status {} for {action} {name}={junk:?}: {}",
            r.status,
            r.body
        );
        // Parses, or the tokenizer panics.
        let _ = r.doc();
    }
    // Raw percent-encoded junk, including invalid UTF-8.
    let r = send(
        &s,
        &ec2_as(&s, AK, b"Action=%FF%FE&Version=2016-11-15&%=%&&=="),
    )
    .await;
    r.assert_ec2_error(400, "InvalidAction");
}
