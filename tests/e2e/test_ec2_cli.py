"""The EC2 Query API subset, driven by the real AWS CLI (`aws ec2 …`, v1 as a subprocess) and the
boto3 `ec2` client against the built binary: DescribeInstances (ids, filters), Start/Stop/Reboot,
GetConsoleOutput, the account's serial console switch, DryRun both ways, the front door, and how
these calls change what `SendSerialConsoleSSHPublicKey` answers.

The server is this module's own (DESIGN.md's example plus instances and accounts appended), so
the state these tests change never leaks into the other suites' servers.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import DESIGN_AK, DESIGN_EXAMPLE, DESIGN_INSTANCE, DESIGN_SK, KEYS_DIR, _serve

REGION = "us-east-1"
OWNER = (DESIGN_AK, DESIGN_SK)
SWITCH = ("AKIASWITCHACCOUNT001", "switch-account-secret")
RESTRICTED = ("AKIARESTRICTEDEC2001", "restricted-ec2-secret")

# Account 111122223333 (the example's).
WEB = "i-0f1000000000000001"  # running, m5.large, us-east-1b, Team=infra
DB = "i-0f1000000000000002"  # running, Team=data
PARKED = "i-0f1000000000000003"  # stopped
STATIC = "i-0f1000000000000004"  # running; stopped and started by the interplay test
CYCLE = "i-0f1000000000000005"  # running; stopped, started and rebooted
OWNER_INSTANCES = {DESIGN_INSTANCE, WEB, DB, PARKED, STATIC, CYCLE}
# Account 222233334444: its switch is flipped by one test only.
SWITCHED = "i-0f2000000000000001"
# Account 444455556666: its key may act on i-fff* only.
FFF = "i-fff00000000000001"
NOT_FFF = "i-0f3000000000000001"
ABSENT = "i-0f10000000000dead"

DRY_RUN_TEXT = "Request would have succeeded, but DryRun flag is set."
AUTH_FAILURE_TEXT = "AWS was not able to validate the provided access credentials"

_AWS_SCRIPT = Path(sys.executable).parent / "aws"
AWS_CLI = [str(_AWS_SCRIPT)] if _AWS_SCRIPT.is_file() else [sys.executable, "-m", "awscli"]


def _config(workdir: Path) -> str:
    text = (
        DESIGN_EXAMPLE.read_text()
        .replace('state_dir = "/var/lib/serialgate"', f'state_dir = "{workdir / "state"}"')
        # The example's key may only push keys (no `actions`); here it drives every EC2 call.
        .replace(f'secret_access_key = "{DESIGN_SK}"\n', f'secret_access_key = "{DESIGN_SK}"\nactions = ["*"]\n')
    )
    assert 'actions = ["*"]' in text
    return (
        text
        + f"""
# ---- appended by tests/e2e/test_ec2_cli.py ----
[[instances]]
id = "{WEB}"
account = "111122223333"
instance_type = "m5.large"
availability_zone = "us-east-1b"
console = "sim:"
tags = {{ Team = "infra", Name = "web <1> & 'friends'" }}

[[instances]]
id = "{DB}"
account = "111122223333"
console = "sim:"
tags = {{ Team = "data" }}

[[instances]]
id = "{PARKED}"
account = "111122223333"
state = "stopped"
console = "sim:"

[[instances]]
id = "{STATIC}"
account = "111122223333"
console = "sim:"

[[instances]]
id = "{CYCLE}"
account = "111122223333"
console = "sim:"

[[accounts]]
id = "222233334444"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{SWITCH[0]}"
secret_access_key = "{SWITCH[1]}"
actions = ["*"]

[[instances]]
id = "{SWITCHED}"
account = "222233334444"
console = "sim:"

[[accounts]]
id = "444455556666"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{RESTRICTED[0]}"
secret_access_key = "{RESTRICTED[1]}"
user = "fff-operator"
instances = ["i-fff*"]
actions = ["ec2:*"]

[[instances]]
id = "{FFF}"
account = "444455556666"
console = "sim:"

[[instances]]
id = "{NOT_FFF}"
account = "444455556666"
console = "sim:"

[throttle]
rate_per_second = 1000.0
burst = 1000
"""
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ec2")
    config = workdir / "ec2.toml"
    config.write_text(_config(workdir))
    with _serve("ec2", config, workdir) as s:
        yield s


# --- AWS CLI ---------------------------------------------------------------------------------


def aws(server, creds, *args: str, sign: bool = True) -> subprocess.CompletedProcess:
    """Runs `aws ARGS… --endpoint-url … --region us-east-1 --output json` with one attempt, so
    errors show as they are instead of being retried."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": creds[0],
            "AWS_SECRET_ACCESS_KEY": creds[1],
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    cmd = [*AWS_CLI, *args, "--endpoint-url", server.url, "--region", REGION, "--output", "json"]
    if not sign:
        cmd.append("--no-sign-request")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def ok(r: subprocess.CompletedProcess):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return json.loads(r.stdout) if r.stdout.strip() else None


def cli_error(r: subprocess.CompletedProcess, code: str, operation: str, message: str | None = None) -> str:
    """Asserts the CLI's error line; returns the message it printed."""
    assert r.returncode in (254, 255), f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    pattern = re.compile(
        re.escape(f"An error occurred ({code}) when calling the {operation} operation")
        + r"(?: \(reached max retries: 0\))?: (.*)"
    )
    m = pattern.search(r.stderr)
    assert m, f"expected {code} from {operation} in stderr:\n{r.stderr}"
    if message is not None:
        assert m.group(1) == message, r.stderr
    return m.group(1)


def describe(server, creds=OWNER, *args: str) -> list[dict]:
    out = ok(aws(server, creds, "ec2", "describe-instances", *args))
    reservations = out["Reservations"]
    # One reservation per instance, as serialgate reports them.
    assert all(len(r["Instances"]) == 1 for r in reservations), reservations
    return [r["Instances"][0] for r in reservations]


def ids(instances: list[dict]) -> set[str]:
    return {i["InstanceId"] for i in instances}


def push(server, creds, instance: str) -> subprocess.CompletedProcess:
    return aws(
        server,
        creds,
        "ec2-instance-connect",
        "send-serial-console-ssh-public-key",
        "--instance-id",
        instance,
        "--serial-port",
        "0",
        "--ssh-public-key",
        f"file://{KEYS_DIR / 'ed25519.pub'}",
    )


# --- DescribeInstances -----------------------------------------------------------------------


def test_describe_instances_lists_the_callers_instances(server):
    out = ok(aws(server, OWNER, "ec2", "describe-instances"))
    assert ids(i for r in out["Reservations"] for i in r["Instances"]) == OWNER_INSTANCES
    for r in out["Reservations"]:
        assert r["OwnerId"] == "111122223333"
        assert re.fullmatch(r"r-[0-9a-f]+", r["ReservationId"]), r


def test_describe_instances_by_id_has_ec2_fields(server):
    instances = describe(server, OWNER, "--instance-ids", WEB, DB)
    assert ids(instances) == {WEB, DB}
    web = next(i for i in instances if i["InstanceId"] == WEB)
    assert web["State"] == {"Code": 16, "Name": "running"}
    assert web["InstanceType"] == "m5.large"
    assert web["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert web["Placement"]["Tenancy"] == "default"
    assert sorted(web["Tags"], key=lambda t: t["Key"]) == [
        {"Key": "Name", "Value": "web <1> & 'friends'"},
        {"Key": "Team", "Value": "infra"},
    ]
    assert re.fullmatch(r"ami-[0-9a-f]{17}", web["ImageId"]), web["ImageId"]
    assert web["Architecture"] == "x86_64"
    assert web["RootDeviceType"] == "ebs"
    assert web["VirtualizationType"] == "hvm"
    assert web["Hypervisor"] == "xen"
    assert web["PlatformDetails"] == "Linux/UNIX"
    assert web["Monitoring"] == {"State": "disabled"}
    launch = datetime.datetime.fromisoformat(web["LaunchTime"])
    assert launch.tzinfo is not None
    assert launch <= datetime.datetime.now(datetime.timezone.utc)


def test_describe_instances_filters(server):
    running = describe(server, OWNER, "--filters", "Name=instance-state-name,Values=running")
    assert {WEB, DB} <= ids(running)
    assert all(i["State"]["Name"] == "running" for i in running)
    assert ids(describe(server, OWNER, "--filters", "Name=tag:Team,Values=infra")) == {WEB}
    assert ids(describe(server, OWNER, "--filters", "Name=tag:Team,Values=inf*,data")) == {WEB, DB}
    both = describe(
        server,
        OWNER,
        "--filters",
        "Name=tag:Team,Values=infra,data",
        "Name=availability-zone,Values=us-east-1b",
    )
    assert ids(both) == {WEB}
    assert describe(server, OWNER, "--filters", "Name=tag:Team,Values=nobody") == []


def test_describe_instances_errors(server):
    r = aws(server, OWNER, "ec2", "describe-instances", "--filters", "Name=vpc-id,Values=vpc-1")
    cli_error(r, "InvalidParameterValue", "DescribeInstances", "The filter 'vpc-id' is invalid")
    r = aws(server, OWNER, "ec2", "describe-instances", "--instance-ids", ABSENT)
    cli_error(r, "InvalidInstanceID.NotFound", "DescribeInstances", f"The instance ID '{ABSENT}' does not exist")
    # Another account's instance does not exist for this caller.
    r = aws(server, OWNER, "ec2", "describe-instances", "--instance-ids", SWITCHED, ABSENT)
    cli_error(
        r, "InvalidInstanceID.NotFound", "DescribeInstances", f"The instance IDs '{SWITCHED}, {ABSENT}' do not exist"
    )
    r = aws(server, OWNER, "ec2", "describe-instances", "--instance-ids", "i-NOPE")
    cli_error(r, "InvalidInstanceID.Malformed", "DescribeInstances", 'Invalid id: "i-NOPE" (expecting "i-...")')


# --- Start, Stop, Reboot ---------------------------------------------------------------------


def test_stop_start_reboot(server):
    out = ok(aws(server, OWNER, "ec2", "stop-instances", "--instance-ids", CYCLE))
    assert out["StoppingInstances"] == [
        {
            "InstanceId": CYCLE,
            "CurrentState": {"Code": 80, "Name": "stopped"},
            "PreviousState": {"Code": 16, "Name": "running"},
        }
    ]
    r = aws(server, OWNER, "ec2", "reboot-instances", "--instance-ids", CYCLE)
    msg = cli_error(r, "IncorrectInstanceState", "RebootInstances")
    assert CYCLE in msg
    out = ok(aws(server, OWNER, "ec2", "start-instances", "--instance-ids", CYCLE))
    assert out["StartingInstances"] == [
        {
            "InstanceId": CYCLE,
            "CurrentState": {"Code": 16, "Name": "running"},
            "PreviousState": {"Code": 80, "Name": "stopped"},
        }
    ]
    # RebootInstances has no output members: the CLI prints nothing.
    assert ok(aws(server, OWNER, "ec2", "reboot-instances", "--instance-ids", CYCLE)) is None
    out = ok(aws(server, OWNER, "ec2", "stop-instances", "--instance-ids", CYCLE, "--force"))
    assert out["StoppingInstances"][0]["CurrentState"]["Name"] == "stopped"
    assert describe(server, OWNER, "--instance-ids", CYCLE)[0]["State"]["Name"] == "stopped"


def test_stopped_instance_refuses_serial_console_push(server):
    ok(push(server, OWNER, STATIC))
    ok(aws(server, OWNER, "ec2", "stop-instances", "--instance-ids", STATIC))
    cli_error(push(server, OWNER, STATIC), "EC2InstanceStateInvalidException", "SendSerialConsoleSSHPublicKey")
    ok(aws(server, OWNER, "ec2", "start-instances", "--instance-ids", STATIC))
    out = ok(push(server, OWNER, STATIC))
    assert out["Success"] is True


# --- the serial console switch ---------------------------------------------------------------


def test_serial_console_access_switch(server):
    status = ok(aws(server, SWITCH, "ec2", "get-serial-console-access-status"))
    assert status == {"SerialConsoleAccessEnabled": True, "ManagedBy": "account"}
    assert ok(aws(server, SWITCH, "ec2", "disable-serial-console-access")) == {"SerialConsoleAccessEnabled": False}
    assert ok(aws(server, SWITCH, "ec2", "get-serial-console-access-status")) == {
        "SerialConsoleAccessEnabled": False,
        "ManagedBy": "account",
    }
    cli_error(push(server, SWITCH, SWITCHED), "SerialConsoleAccessDisabledException", "SendSerialConsoleSSHPublicKey")
    # The switch is per account: the owner's account still has access.
    ok(push(server, OWNER, DB))
    assert ok(aws(server, SWITCH, "ec2", "enable-serial-console-access")) == {"SerialConsoleAccessEnabled": True}
    assert ok(push(server, SWITCH, SWITCHED))["Success"] is True


# --- GetConsoleOutput ------------------------------------------------------------------------


def test_get_console_output_latest(server):
    for instance in (WEB, DESIGN_INSTANCE):
        out = ok(aws(server, OWNER, "ec2", "get-console-output", "--instance-id", instance, "--latest"))
        assert out["InstanceId"] == instance
        datetime.datetime.fromisoformat(out["Timestamp"])
        # botocore decodes the base64; an instance nobody has watched has nothing yet.
        assert isinstance(out.get("Output", ""), str)
    r = aws(server, OWNER, "ec2", "get-console-output", "--instance-id", ABSENT)
    cli_error(r, "InvalidInstanceID.NotFound", "GetConsoleOutput")


# --- DryRun ----------------------------------------------------------------------------------

DRY_RUNS = [
    ("DescribeInstances", ["describe-instances"]),
    ("StartInstances", ["start-instances", "--instance-ids", PARKED]),
    ("StopInstances", ["stop-instances", "--instance-ids", WEB]),
    ("RebootInstances", ["reboot-instances", "--instance-ids", WEB]),
    ("GetConsoleOutput", ["get-console-output", "--instance-id", WEB]),
    ("EnableSerialConsoleAccess", ["enable-serial-console-access"]),
    ("DisableSerialConsoleAccess", ["disable-serial-console-access"]),
    ("GetSerialConsoleAccessStatus", ["get-serial-console-access-status"]),
]


@pytest.mark.parametrize("operation,args", DRY_RUNS, ids=[d[0] for d in DRY_RUNS])
def test_dry_run_would_succeed(server, operation, args):
    r = aws(server, OWNER, "ec2", *args, "--dry-run")
    cli_error(r, "DryRunOperation", operation, DRY_RUN_TEXT)


def test_dry_run_changes_nothing_and_reports_missing_permission(server):
    r = aws(server, OWNER, "ec2", "stop-instances", "--instance-ids", WEB, "--dry-run")
    cli_error(r, "DryRunOperation", "StopInstances")
    assert describe(server, OWNER, "--instance-ids", WEB)[0]["State"]["Name"] == "running"
    # The restricted key may act on i-fff* only: the dry run says so before the real call would.
    r = aws(server, RESTRICTED, "ec2", "stop-instances", "--instance-ids", NOT_FFF, "--dry-run")
    msg = cli_error(r, "UnauthorizedOperation", "StopInstances")
    assert msg.startswith("You are not authorized to perform this operation."), msg
    r = aws(server, RESTRICTED, "ec2", "stop-instances", "--instance-ids", FFF, "--dry-run")
    cli_error(r, "DryRunOperation", "StopInstances", DRY_RUN_TEXT)
    r = aws(server, RESTRICTED, "ec2", "reboot-instances", "--instance-ids", NOT_FFF)
    cli_error(r, "UnauthorizedOperation", "RebootInstances")


# --- what a key may do -----------------------------------------------------------------------


def test_design_example_key_may_only_push(design_server):
    """DESIGN.md's example, verbatim: its key names no `actions`, so it pushes keys and makes no
    EC2 call, the account-level ones included."""
    creds = (DESIGN_AK, DESIGN_SK)
    for args, operation in [
        (["describe-instances"], "DescribeInstances"),
        (["get-serial-console-access-status"], "GetSerialConsoleAccessStatus"),
        (["disable-serial-console-access"], "DisableSerialConsoleAccess"),
        (["stop-instances", "--instance-ids", DESIGN_INSTANCE], "StopInstances"),
        (["get-console-output", "--instance-id", DESIGN_INSTANCE], "GetConsoleOutput"),
    ]:
        msg = cli_error(aws(design_server, creds, "ec2", *args), "UnauthorizedOperation", operation)
        assert msg.startswith("You are not authorized to perform this operation."), msg
    # The push itself is allowed: it fails only because the example's console socket is absent.
    cli_error(push(design_server, creds, DESIGN_INSTANCE), "EC2InstanceUnavailableException", "SendSerialConsoleSSHPublicKey")


def test_instance_scoped_key_with_ec2_actions(server):
    """`instances = ["i-fff*"]` with `actions = ["ec2:*"]`: the wildcard names the account-level
    calls too; DescribeInstances lists the whole account, as in EC2. It names no push."""
    assert ids(describe(server, RESTRICTED)) == {FFF, NOT_FFF}
    status = ok(aws(server, RESTRICTED, "ec2", "get-serial-console-access-status"))
    assert status["SerialConsoleAccessEnabled"] is True
    cli_error(push(server, RESTRICTED, FFF), "AuthException", "SendSerialConsoleSSHPublicKey")


def test_another_accounts_instance_is_not_found_for_pushes(server):
    """Pushing for another account's instance reads exactly like an unknown id."""
    foreign = cli_error(push(server, OWNER, SWITCHED), "EC2InstanceNotFoundException", "SendSerialConsoleSSHPublicKey")
    absent = cli_error(push(server, OWNER, ABSENT), "EC2InstanceNotFoundException", "SendSerialConsoleSSHPublicKey")
    assert foreign.replace(SWITCHED, "ID") == absent.replace(ABSENT, "ID")
    assert "222233334444" not in foreign


# --- the front door --------------------------------------------------------------------------


def test_front_door_errors(server):
    r = aws(server, ("AKIAUNKNOWNKEY000001", "whatever"), "ec2", "describe-instances")
    cli_error(r, "AuthFailure", "DescribeInstances", AUTH_FAILURE_TEXT)
    r = aws(server, (DESIGN_AK, "not-the-secret"), "ec2", "describe-instances")
    cli_error(r, "AuthFailure", "DescribeInstances", AUTH_FAILURE_TEXT)
    r = aws(server, OWNER, "ec2", "describe-instances", sign=False)
    cli_error(r, "MissingParameter", "DescribeInstances", "The request must contain the parameter AWSAccessKeyId")


# --- boto3 -----------------------------------------------------------------------------------


def ec2_client(server, creds=OWNER):
    return boto3.client(
        "ec2",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=creds[0],
        aws_secret_access_key=creds[1],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_boto3_parses_ec2_shapes(server):
    ec2 = ec2_client(server)
    resp = ec2.describe_instances(InstanceIds=[WEB])
    instance = resp["Reservations"][0]["Instances"][0]
    assert instance["State"]["Name"] == "running"
    assert instance["State"]["Code"] == 16
    assert {t["Key"]: t["Value"] for t in instance["Tags"]} == {"Team": "infra", "Name": "web <1> & 'friends'"}
    assert instance["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert isinstance(instance["LaunchTime"], datetime.datetime)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    request_id = resp["ResponseMetadata"]["RequestId"]
    assert re.fullmatch(r"[0-9a-f-]{36}", request_id), request_id

    # The paginator takes the single page as the last one.
    pages = list(ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "tag:Team", "Values": ["data"]}]))
    assert [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]] == [DB]

    status = ec2.get_serial_console_access_status()
    assert (status["SerialConsoleAccessEnabled"], status["ManagedBy"]) == (True, "account")
    output = ec2.get_console_output(InstanceId=DB, Latest=True)
    assert output["InstanceId"] == DB
    assert isinstance(output["Timestamp"], datetime.datetime)


def test_boto3_errors_carry_code_status_and_request_id(server):
    ec2 = ec2_client(server)
    with pytest.raises(ClientError) as e:
        ec2.stop_instances(InstanceIds=[WEB], DryRun=True)
    err = e.value.response
    assert err["Error"] == {"Code": "DryRunOperation", "Message": DRY_RUN_TEXT}
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert err["ResponseMetadata"]["RequestId"]

    with pytest.raises(ClientError) as e:
        ec2.reboot_instances(InstanceIds=[ABSENT])
    assert e.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    with pytest.raises(ClientError) as e:
        ec2_client(server, ("AKIAUNKNOWNKEY000001", "x")).describe_instances()
    assert e.value.response["Error"]["Code"] == "AuthFailure"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
