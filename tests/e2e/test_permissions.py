"""IAM identity-based policies deciding real calls: boto3 and the AWS CLI against the built binary.

One server, this module's own, whose credentials each carry policies from
`testdata/policies/`: per instance, by resource tag, by the caller's tag matched against the
instance's (ABAC), a Deny on `ec2:osuser`, Denies on the source address, an account-level Deny
that wins over a credential's Allow, and EC2 calls allowed by tag. Every case is checked both
ways: what is allowed succeeds, and what is refused carries the right code, HTTP status and
AWS's sentence (`User: ARN is not authorized to perform: ACTION on resource: ARN because no
identity-based policy allows the ACTION action`, or `… with an explicit deny in an
identity-based policy`). Then `serialgate policy check` and `serialgate policy simulate`, and
a configuration whose policy does not parse, at `policy check` and at `serve`.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import pytest
import readme_blocks
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import KEYS_DIR, REPO_ROOT, _binary, _serve

POLICIES = REPO_ROOT / "testdata" / "policies"
REGION = "us-east-1"
ACCOUNT = "111122223333"
GUARDED_ACCOUNT = "222233334444"

SERIAL = "ec2-instance-connect:SendSerialConsoleSSHPublicKey"
OS_USER = "ec2-instance-connect:SendSSHPublicKey"
STOP = "ec2:StopInstances"

AUTH_TEXT = "Either your AWS credentials are not valid or you do not have access to the EC2 instance."
UNAUTHORIZED_TEXT = "You are not authorized to perform this operation."
DRY_RUN_TEXT = "Request would have succeeded, but DryRun flag is set."

# Account 111122223333.
ONE = "i-0123456789abcdef0"  # env=dev, team=db: the instance per-instance.json names
PROD = "i-0e1000000000000002"  # env=prod, team=web
UNTAGGED = "i-0e1000000000000003"
SCRATCH = "i-0e1000000000000004"  # role=scratch: stopped and started by the EC2 test
KEEP = "i-0e1000000000000005"  # role=keep
# Account 222233334444, whose account-level policy denies everything on env=prod.
GUARDED_DEV = "i-0e2000000000000001"
GUARDED_PROD = "i-0e2000000000000002"


class Cred:
    """A configured credential: its key pair and the principal ARN requests are attributed to."""

    def __init__(self, key_id: str, user: str, account: str = ACCOUNT):
        self.key_id = key_id
        self.secret = f"{user}-secret"
        self.user = user
        self.account = account
        self.arn = f"arn:aws:iam::{account}:user/{user}"


ONE_INSTANCE = Cred("AKIAPERMONEINSTANCE1", "one-instance")
DEV_ONLY = Cred("AKIAPERMDEVONLY00001", "dev-only")
DANA = Cred("AKIAPERMTEAMDB000001", "dana")  # team=db
WES = Cred("AKIAPERMTEAMWEB00001", "wes")  # team=web
OPS = Cred("AKIAPERMOSUSER000001", "ops")
LOCAL = Cred("AKIAPERMLOOPBACK0001", "local")
OFFICE = Cred("AKIAPERMOFFICE000001", "office")
REMOTE = Cred("AKIAPERMNOLOOPBACK01", "remote")
STOPPER = Cred("AKIAPERMSTOPPER00001", "stopper")
ADMIN = Cred("AKIAPERMGUARDADMIN01", "admin", GUARDED_ACCOUNT)


def policy_path(name: str) -> str:
    return json.dumps(str(POLICIES / name))


def policy_files(*names: str) -> str:
    return "[" + ", ".join(policy_path(n) for n in names) + "]"


def credential(cred: Cred, extra: str) -> str:
    return f"""
[[accounts.credentials]]
access_key_id = "{cred.key_id}"
secret_access_key = "{cred.secret}"
user = "{cred.user}"
{extra}"""


def instance(instance_id: str, account: str, tags: str = "{}") -> str:
    return f"""
[[instances]]
id = "{instance_id}"
account = "{account}"
console = "sim:"
tags = {tags}
"""


def permissions_config(state_dir: Path) -> str:
    """The module's configuration; policy files by absolute path (relative ones are read from
    serialgate's working directory)."""
    allow_everything = '{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "*", "Resource": "*"}}'
    return "".join(
        [
            f'region = "{REGION}"\nstate_dir = {json.dumps(str(state_dir))}\n',
            f'\n[[accounts]]\nid = "{ACCOUNT}"\nserial_console_access = true\n',
            credential(ONE_INSTANCE, f"policy_file = {policy_path('per-instance.json')}"),
            credential(DEV_ONLY, f"policy_file = {policy_path('tag-env-dev.json')}"),
            credential(DANA, f'tags = {{ team = "db" }}\npolicy_file = {policy_path("abac-team.json")}'),
            credential(WES, f'tags = {{ team = "web" }}\npolicy_file = {policy_path("abac-team.json")}'),
            credential(OPS, f"policy_file = {policy_files('allow-push.json', 'deny-root-osuser.json')}"),
            credential(LOCAL, f"policy_file = {policy_files('allow-push.json', 'deny-outside-loopback.json')}"),
            credential(OFFICE, f"policy_file = {policy_files('allow-push.json', 'deny-outside-office.json')}"),
            credential(REMOTE, f"policy_file = {policy_files('allow-push.json', 'deny-from-loopback.json')}"),
            credential(STOPPER, f"policy_file = {policy_path('stop-scratch.json')}"),
            instance(ONE, ACCOUNT, '{ env = "dev", team = "db" }'),
            instance(PROD, ACCOUNT, '{ env = "prod", team = "web" }'),
            instance(UNTAGGED, ACCOUNT),
            instance(SCRATCH, ACCOUNT, '{ role = "scratch" }'),
            instance(KEEP, ACCOUNT, '{ role = "keep" }'),
            f'\n[[accounts]]\nid = "{GUARDED_ACCOUNT}"\nserial_console_access = true\n',
            f'\n[[accounts.policies]]\nname = "deny-prod"\nfile = {policy_path("deny-prod.json")}\n',
            credential(ADMIN, f"policy = '{allow_everything}'"),
            instance(GUARDED_DEV, GUARDED_ACCOUNT, '{ env = "dev" }'),
            instance(GUARDED_PROD, GUARDED_ACCOUNT, '{ env = "prod" }'),
            "\n[throttle]\nrate_per_second = 1000.0\nburst = 1000\n",
        ]
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("permissions-config")
    path = workdir / "permissions.toml"
    path.write_text(permissions_config(workdir / "state"))
    return path


@pytest.fixture(scope="module")
def server(config):
    with _serve("permissions", config, config.parent) as s:
        yield s


# --- clients ---------------------------------------------------------------------------------

ONE_ATTEMPT = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10)


def eic(server, cred: Cred):
    return boto3.session.Session().client(
        "ec2-instance-connect",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=cred.key_id,
        aws_secret_access_key=cred.secret,
        config=ONE_ATTEMPT,
    )


def ec2(server, cred: Cred):
    return boto3.session.Session().client(
        "ec2",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=cred.key_id,
        aws_secret_access_key=cred.secret,
        config=ONE_ATTEMPT,
    )


def key_text() -> str:
    return (KEYS_DIR / "ed25519.pub").read_text()


def push_serial(server, cred: Cred, instance_id: str) -> dict:
    return eic(server, cred).send_serial_console_ssh_public_key(
        InstanceId=instance_id, SerialPort=0, SSHPublicKey=key_text()
    )


def push_os_user(server, cred: Cred, instance_id: str, os_user: str) -> dict:
    return eic(server, cred).send_ssh_public_key(
        InstanceId=instance_id, InstanceOSUser=os_user, SSHPublicKey=key_text()
    )


_AWS_SCRIPT = Path(sys.executable).parent / "aws"
AWS_CLI = [str(_AWS_SCRIPT)] if _AWS_SCRIPT.is_file() else [sys.executable, "-m", "awscli"]


def aws(server, cred: Cred, *args: str) -> subprocess.CompletedProcess:
    """`aws ARGS… --endpoint-url … --region us-east-1 --output json`, one attempt, no config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": cred.key_id,
            "AWS_SECRET_ACCESS_KEY": cred.secret,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    cmd = [*AWS_CLI, *args, "--endpoint-url", server.url, "--region", REGION, "--output", "json"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def cli_serial(server, cred: Cred, instance_id: str) -> subprocess.CompletedProcess:
    return aws(
        server,
        cred,
        "ec2-instance-connect",
        "send-serial-console-ssh-public-key",
        "--instance-id",
        instance_id,
        "--serial-port",
        "0",
        "--ssh-public-key",
        f"file://{KEYS_DIR / 'ed25519.pub'}",
    )


def cli_ok(r: subprocess.CompletedProcess):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return json.loads(r.stdout) if r.stdout.strip() else None


def cli_error(r: subprocess.CompletedProcess, code: str, operation: str, message: str) -> None:
    # awscli v1 exits 255 on a service error (v2: 254).
    assert r.returncode in (254, 255), f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.stdout == ""
    line = re.compile(
        re.escape(f"An error occurred ({code}) when calling the {operation} operation")
        + r"(?: \(reached max retries: 0\))?: (.*)"
    )
    m = line.search(r.stderr)
    assert m, f"expected {code} from {operation} in stderr:\n{r.stderr}"
    assert m.group(1) == message, r.stderr


# --- what a refusal says ---------------------------------------------------------------------


def instance_arn(instance_id: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:ec2:{REGION}:{account}:instance/{instance_id}"


def sentence(cred: Cred, action: str, resource: str, explicit: bool) -> str:
    """AWS's sentence for an identity-based refusal."""
    head = f"User: {cred.arn} is not authorized to perform: {action} on resource: {resource}"
    if explicit:
        return f"{head} with an explicit deny in an identity-based policy"
    return f"{head} because no identity-based policy allows the {action} action"


def auth_message(cred: Cred, action: str, resource: str, explicit: bool = False) -> str:
    return f"{AUTH_TEXT} {sentence(cred, action, resource, explicit)}"


def unauthorized_message(cred: Cred, action: str, resource: str, explicit: bool = False) -> str:
    return f"{UNAUTHORIZED_TEXT} {sentence(cred, action, resource, explicit)}"


def assert_pushed(resp: dict) -> None:
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert resp["Success"] is True


def assert_auth_exception(call, message: str) -> None:
    """`call()` raises botocore's modelled AuthException: 403 and exactly `message`."""
    with pytest.raises(ClientError) as ei:
        call()
    e = ei.value
    assert type(e).__name__ == "AuthException", e.response
    assert e.response["Error"]["Code"] == "AuthException"
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert e.response["Error"]["Message"] == message


def assert_unauthorized(call, message: str) -> None:
    """`call()` fails with EC2's UnauthorizedOperation: 403 and exactly `message`."""
    with pytest.raises(ClientError) as ei:
        call()
    err = ei.value.response
    assert err["Error"] == {"Code": "UnauthorizedOperation", "Message": message}, err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 403


# --- a. one instance by ARN, two account-level actions on "*" --------------------------------


def test_per_instance_policy_boto3(server):
    assert_pushed(push_serial(server, ONE_INSTANCE, ONE))
    assert_auth_exception(
        lambda: push_serial(server, ONE_INSTANCE, PROD),
        auth_message(ONE_INSTANCE, SERIAL, instance_arn(PROD)),
    )
    client = ec2(server, ONE_INSTANCE)
    listed = {i["InstanceId"] for r in client.describe_instances()["Reservations"] for i in r["Instances"]}
    assert {ONE, PROD, UNTAGGED} <= listed
    assert client.get_serial_console_access_status()["SerialConsoleAccessEnabled"] is True
    # Only what the policy names: not the other push, not the other EC2 calls.
    assert_auth_exception(
        lambda: push_os_user(server, ONE_INSTANCE, ONE, "ec2-user"),
        auth_message(ONE_INSTANCE, OS_USER, instance_arn(ONE)),
    )
    assert_unauthorized(
        lambda: client.disable_serial_console_access(),
        unauthorized_message(ONE_INSTANCE, "ec2:DisableSerialConsoleAccess", "*"),
    )
    assert_unauthorized(
        lambda: client.get_console_output(InstanceId=ONE),
        unauthorized_message(ONE_INSTANCE, "ec2:GetConsoleOutput", instance_arn(ONE)),
    )


def test_per_instance_policy_cli(server):
    out = cli_ok(cli_serial(server, ONE_INSTANCE, ONE))
    assert out["Success"] is True
    cli_error(
        cli_serial(server, ONE_INSTANCE, PROD),
        "AuthException",
        "SendSerialConsoleSSHPublicKey",
        auth_message(ONE_INSTANCE, SERIAL, instance_arn(PROD)),
    )
    status = cli_ok(aws(server, ONE_INSTANCE, "ec2", "get-serial-console-access-status"))
    assert status["SerialConsoleAccessEnabled"] is True
    cli_error(
        aws(server, ONE_INSTANCE, "ec2", "stop-instances", "--instance-ids", ONE),
        "UnauthorizedOperation",
        "StopInstances",
        unauthorized_message(ONE_INSTANCE, STOP, instance_arn(ONE)),
    )


# --- b. by resource tag ----------------------------------------------------------------------


def test_resource_tag_policy_boto3(server):
    assert_pushed(push_serial(server, DEV_ONLY, ONE))
    assert_pushed(push_os_user(server, DEV_ONLY, ONE, "ec2-user"))
    assert_auth_exception(
        lambda: push_serial(server, DEV_ONLY, PROD),
        auth_message(DEV_ONLY, SERIAL, instance_arn(PROD)),
    )
    # No tag at all does not match either.
    assert_auth_exception(
        lambda: push_os_user(server, DEV_ONLY, UNTAGGED, "ec2-user"),
        auth_message(DEV_ONLY, OS_USER, instance_arn(UNTAGGED)),
    )


def test_resource_tag_policy_cli(server):
    assert cli_ok(cli_serial(server, DEV_ONLY, ONE))["Success"] is True
    cli_error(
        cli_serial(server, DEV_ONLY, PROD),
        "AuthException",
        "SendSerialConsoleSSHPublicKey",
        auth_message(DEV_ONLY, SERIAL, instance_arn(PROD)),
    )


# --- c. the caller's tag against the instance's (ABAC) ---------------------------------------


def test_principal_tag_matches_resource_tag(server):
    # dana (team=db) reaches the db instance, not the web one; wes (team=web) the other way.
    assert_pushed(push_serial(server, DANA, ONE))
    assert_auth_exception(lambda: push_serial(server, DANA, PROD), auth_message(DANA, SERIAL, instance_arn(PROD)))
    assert_pushed(push_serial(server, WES, PROD))
    assert_auth_exception(lambda: push_serial(server, WES, ONE), auth_message(WES, SERIAL, instance_arn(ONE)))
    # An instance without the tag matches no one's.
    assert_auth_exception(
        lambda: push_serial(server, DANA, UNTAGGED), auth_message(DANA, SERIAL, instance_arn(UNTAGGED))
    )


def test_principal_tag_matches_resource_tag_cli(server):
    assert cli_ok(cli_serial(server, WES, PROD))["Success"] is True
    cli_error(
        cli_serial(server, WES, ONE),
        "AuthException",
        "SendSerialConsoleSSHPublicKey",
        auth_message(WES, SERIAL, instance_arn(ONE)),
    )


# --- d. a Deny on ec2:osuser -----------------------------------------------------------------


def test_os_user_deny_boto3(server):
    assert_pushed(push_os_user(server, OPS, ONE, "ec2-user"))
    assert_auth_exception(
        lambda: push_os_user(server, OPS, ONE, "root"),
        auth_message(OPS, OS_USER, instance_arn(ONE), explicit=True),
    )
    # The Deny names SendSSHPublicKey only: the serial push carries no OS user.
    assert_pushed(push_serial(server, OPS, ONE))


def test_os_user_deny_cli(server):
    def send(os_user: str) -> subprocess.CompletedProcess:
        return aws(
            server,
            OPS,
            "ec2-instance-connect",
            "send-ssh-public-key",
            "--instance-id",
            PROD,
            "--instance-os-user",
            os_user,
            "--ssh-public-key",
            f"file://{KEYS_DIR / 'ed25519.pub'}",
        )

    assert cli_ok(send("ec2-user"))["Success"] is True
    cli_error(
        send("root"),
        "AuthException",
        "SendSSHPublicKey",
        auth_message(OPS, OS_USER, instance_arn(PROD), explicit=True),
    )


# --- e. the source address -------------------------------------------------------------------


def test_source_ip_conditions(server):
    # Deny outside 127.0.0.0/8: these requests come from 127.0.0.1.
    assert_pushed(push_serial(server, LOCAL, ONE))
    assert_pushed(push_os_user(server, LOCAL, PROD, "ec2-user"))
    # Deny outside the office's networks: loopback is outside them.
    assert_auth_exception(
        lambda: push_serial(server, OFFICE, ONE), auth_message(OFFICE, SERIAL, instance_arn(ONE), explicit=True)
    )
    # Deny from 127.0.0.0/8.
    assert_auth_exception(
        lambda: push_serial(server, REMOTE, ONE), auth_message(REMOTE, SERIAL, instance_arn(ONE), explicit=True)
    )


def test_source_ip_conditions_cli(server):
    assert cli_ok(cli_serial(server, LOCAL, PROD))["Success"] is True
    cli_error(
        cli_serial(server, REMOTE, PROD),
        "AuthException",
        "SendSerialConsoleSSHPublicKey",
        auth_message(REMOTE, SERIAL, instance_arn(PROD), explicit=True),
    )


# --- f. an account's policy: its Deny wins over the credential's Allow -----------------------


def test_account_policy_deny_wins(server):
    assert_pushed(push_serial(server, ADMIN, GUARDED_DEV))
    assert_auth_exception(
        lambda: push_serial(server, ADMIN, GUARDED_PROD),
        auth_message(ADMIN, SERIAL, instance_arn(GUARDED_PROD, GUARDED_ACCOUNT), explicit=True),
    )
    client = ec2(server, ADMIN)
    # The credential's Allow * still decides what the Deny does not name.
    out = client.reboot_instances(InstanceIds=[GUARDED_DEV])
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert_unauthorized(
        lambda: client.reboot_instances(InstanceIds=[GUARDED_PROD]),
        unauthorized_message(ADMIN, "ec2:RebootInstances", instance_arn(GUARDED_PROD, GUARDED_ACCOUNT), explicit=True),
    )
    assert_unauthorized(
        lambda: client.stop_instances(InstanceIds=[GUARDED_PROD], DryRun=True),
        unauthorized_message(ADMIN, STOP, instance_arn(GUARDED_PROD, GUARDED_ACCOUNT), explicit=True),
    )
    described = client.describe_instances(InstanceIds=[GUARDED_PROD])
    assert described["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"


def test_account_policy_deny_wins_cli(server):
    assert cli_ok(cli_serial(server, ADMIN, GUARDED_DEV))["Success"] is True
    cli_error(
        cli_serial(server, ADMIN, GUARDED_PROD),
        "AuthException",
        "SendSerialConsoleSSHPublicKey",
        auth_message(ADMIN, SERIAL, instance_arn(GUARDED_PROD, GUARDED_ACCOUNT), explicit=True),
    )


# --- g. EC2 calls by tag, DryRun both ways ---------------------------------------------------


def test_ec2_stop_by_tag_boto3(server):
    client = ec2(server, STOPPER)
    with pytest.raises(ClientError) as ei:
        client.stop_instances(InstanceIds=[SCRATCH], DryRun=True)
    assert ei.value.response["Error"] == {"Code": "DryRunOperation", "Message": DRY_RUN_TEXT}
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert_unauthorized(
        lambda: client.stop_instances(InstanceIds=[KEEP], DryRun=True),
        unauthorized_message(STOPPER, STOP, instance_arn(KEEP)),
    )
    out = client.stop_instances(InstanceIds=[SCRATCH])
    assert out["StoppingInstances"][0]["CurrentState"]["Name"] == "stopped"
    assert_unauthorized(
        lambda: client.stop_instances(InstanceIds=[KEEP]),
        unauthorized_message(STOPPER, STOP, instance_arn(KEEP)),
    )
    out = client.start_instances(InstanceIds=[SCRATCH])
    assert out["StartingInstances"][0]["CurrentState"]["Name"] == "running"
    # One refused instance refuses the whole call: the allowed one is not stopped either.
    assert_unauthorized(
        lambda: client.stop_instances(InstanceIds=[SCRATCH, KEEP]),
        unauthorized_message(STOPPER, STOP, instance_arn(KEEP)),
    )
    states = {
        i["InstanceId"]: i["State"]["Name"]
        for r in client.describe_instances(InstanceIds=[SCRATCH, KEEP])["Reservations"]
        for i in r["Instances"]
    }
    assert states == {SCRATCH: "running", KEEP: "running"}
    # Reboot is not in the policy, even on the scratch instance.
    assert_unauthorized(
        lambda: client.reboot_instances(InstanceIds=[SCRATCH], DryRun=True),
        unauthorized_message(STOPPER, "ec2:RebootInstances", instance_arn(SCRATCH)),
    )


def test_ec2_stop_by_tag_cli(server):
    cli_error(
        aws(server, STOPPER, "ec2", "stop-instances", "--instance-ids", SCRATCH, "--dry-run"),
        "DryRunOperation",
        "StopInstances",
        DRY_RUN_TEXT,
    )
    cli_error(
        aws(server, STOPPER, "ec2", "stop-instances", "--instance-ids", KEEP, "--dry-run"),
        "UnauthorizedOperation",
        "StopInstances",
        unauthorized_message(STOPPER, STOP, instance_arn(KEEP)),
    )
    cli_error(
        aws(server, STOPPER, "ec2", "stop-instances", "--instance-ids", KEEP),
        "UnauthorizedOperation",
        "StopInstances",
        unauthorized_message(STOPPER, STOP, instance_arn(KEEP)),
    )
    out = cli_ok(aws(server, STOPPER, "ec2", "stop-instances", "--instance-ids", SCRATCH))
    assert out["StoppingInstances"][0]["CurrentState"]["Name"] == "stopped"
    out = cli_ok(aws(server, STOPPER, "ec2", "start-instances", "--instance-ids", SCRATCH))
    assert out["StartingInstances"][0]["CurrentState"]["Name"] == "running"


# --- refusals leave the server as it was ------------------------------------------------------


def server_errors(server) -> list[str]:
    """Log lines of 5xx answers (`request failed`, `EC2 request failed`) and panics."""
    return [
        line
        for line in server.stderr().splitlines()
        if "request failed" in line or "panicked" in line
    ]


def audit_count(server, outcome: str) -> int:
    """API calls with this outcome in the server's audit log (its stderr, at debug)."""
    return sum(1 for line in server.stderr().splitlines() if "api call" in line and f'outcome="{outcome}"' in line)


def test_refusals_leave_the_server_healthy(server):
    before = {code: audit_count(server, code) for code in ("AuthException", "UnauthorizedOperation")}
    for _ in range(3):
        assert_auth_exception(
            lambda: push_serial(server, ONE_INSTANCE, PROD), auth_message(ONE_INSTANCE, SERIAL, instance_arn(PROD))
        )
        assert_auth_exception(
            lambda: push_os_user(server, OPS, ONE, "root"), auth_message(OPS, OS_USER, instance_arn(ONE), explicit=True)
        )
        assert_unauthorized(
            lambda: ec2(server, STOPPER).stop_instances(InstanceIds=[KEEP]),
            unauthorized_message(STOPPER, STOP, instance_arn(KEEP)),
        )
    # Each refusal is one audit record with the code its caller got.
    assert audit_count(server, "AuthException") == before["AuthException"] + 6
    assert audit_count(server, "UnauthorizedOperation") == before["UnauthorizedOperation"] + 3
    assert server.proc.poll() is None, server.stderr()
    with urllib.request.urlopen(f"{server.url}/health", timeout=5) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["status"] == "ok"
    # The refused callers still get what their policies allow.
    assert_pushed(push_serial(server, ONE_INSTANCE, ONE))
    assert_pushed(push_os_user(server, OPS, ONE, "ec2-user"))
    assert server_errors(server) == []


# --- h. serialgate policy check / simulate, and documents that do not parse -------------------


def serialgate(*args: str, cwd: Path | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [str(_binary()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
    )


def one_credential_config(tmp_path: Path, policy_line: str) -> Path:
    path = tmp_path / "one.toml"
    path.write_text(
        f"state_dir = {json.dumps(str(tmp_path / 'state'))}\n"
        f'\n[[accounts]]\nid = "{ACCOUNT}"\nserial_console_access = true\n'
        + credential(DEV_ONLY, policy_line)
        + instance(ONE, ACCOUNT)
    )
    return path


def test_policy_check_clean(config):
    r = serialgate("policy", "check", "-c", str(config), "--strict")
    assert r.returncode == 0, r.stdout + r.stderr
    # Each credential's files (a file two credentials name counts twice), the inline policy and
    # the account's, which is loaded once for all of its credentials.
    assert r.stdout.splitlines()[-1] == f"{config}: 15 policies loaded, 0 warning(s)", r.stdout
    assert "warning:" not in r.stdout
    assert re.search(r'^accounts\[1\]\.policies\[0\] \("deny-prod"\): OK$', r.stdout, re.M), r.stdout


def test_policy_check_warns_about_an_unknown_action(tmp_path):
    config = one_credential_config(tmp_path, f"policy_file = {policy_path('lint/unknown-action.json')}")
    warning = (
        '  warning: Statement[0] (Sid "PushAndTerminate"): '
        'action "ec2:TerminateInstances" matches no known action'
    )
    r = serialgate("policy", "check", "-c", str(config))
    assert r.returncode == 0, r.stdout + r.stderr
    assert warning in r.stdout.splitlines(), r.stdout
    assert r.stdout.splitlines()[-1] == f"{config}: 1 policy loaded, 1 warning(s)"
    strict = serialgate("policy", "check", "-c", str(config), "--strict")
    assert strict.returncode == 1, strict.stdout + strict.stderr
    assert warning in strict.stdout.splitlines()


def test_policy_check_shows_the_generated_policy(tmp_path):
    allow_lists = 'instances = ["i-0123*"]\nactions = ["SendSerialConsoleSSHPublicKey", "ec2:Describe*"]'
    config = one_credential_config(tmp_path, allow_lists)
    r = serialgate("policy", "check", "-c", str(config), "--show-generated")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == 'accounts[0].credentials[0].instances/actions ("AKIAPERMDEVONLY00001 instances+actions"): OK'
    generated = json.loads("\n".join(lines[1:-1]))
    assert generated == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Instances",
                "Effect": "Allow",
                "Action": [SERIAL],
                "Resource": [f"arn:aws:ec2:*:{ACCOUNT}:instance/i-0123*"],
            },
            {"Sid": "Account", "Effect": "Allow", "Action": ["ec2:DescribeInstances"], "Resource": "*"},
        ],
    }


BAD_EFFECT = 'Statement[1] (Sid "BlockProd"): Effect must be "Allow" or "Deny", not "Block"'


def test_unparsable_policy_file_stops_check_and_serve(tmp_path):
    bad = POLICIES / "lint" / "bad-effect.json"
    config = one_credential_config(tmp_path, f"policy_file = {policy_path('lint/bad-effect.json')}")
    expected = f'{config}: accounts[0].credentials[0].policy_file[0]: policy "{bad}": {BAD_EFFECT}'
    r = serialgate("policy", "check", "-c", str(config))
    assert r.returncode == 1, r.stdout + r.stderr
    assert expected in r.stderr, r.stderr
    r = serialgate(
        "serve", "--config", str(config), "--api-listen", "127.0.0.1:0", "--ssh-listen", "127.0.0.1:0", cwd=tmp_path
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert expected in r.stderr, r.stderr
    # Refused before anything is written: no host key, no database.
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir()), list(
        (tmp_path / "state").iterdir()
    )


def test_unparsable_account_policy_file_is_named(tmp_path):
    bad = POLICIES / "lint" / "bad-effect.json"
    config = tmp_path / "account.toml"
    config.write_text(
        f'\n[[accounts]]\nid = "{ACCOUNT}"\n'
        f'\n[[accounts.policies]]\nname = "guard"\nfile = {policy_path("lint/bad-effect.json")}\n'
    )
    r = serialgate("policy", "check", "-c", str(config))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"{config}: accounts[0].policies[0]: " in r.stderr, r.stderr
    assert BAD_EFFECT in r.stderr, r.stderr
    assert str(bad) in r.stderr, r.stderr


def simulate(config: Path, cred: Cred, action: str, *args: str) -> subprocess.CompletedProcess:
    return serialgate(
        "policy", "simulate", "-c", str(config), "--access-key-id", cred.key_id, "--action", action, *args
    )


def test_policy_simulate_allowed(config):
    r = simulate(config, DANA, SERIAL, "--resource", ONE)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        f"allowed: {SERIAL} on {instance_arn(ONE)}",
        f'  by policy "{POLICIES / "abac-team.json"}" Statement[0] (Sid "PushToOwnTeamsInstances")',
    ]
    # An ARN names the same instance; the short action name is accepted.
    r = simulate(config, ONE_INSTANCE, "SendSerialConsoleSSHPublicKey", "--resource", instance_arn(ONE))
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'Statement[0] (Sid "SerialConsoleOnOneInstance")' in r.stdout
    r = simulate(config, OFFICE, SERIAL, "--resource", ONE, "--context", "aws:SourceIp=203.0.113.7")
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'Statement[0] (Sid "PushKeys")' in r.stdout


def test_policy_simulate_denied(config):
    r = simulate(config, OFFICE, SERIAL, "--resource", ONE, "--context", "aws:SourceIp=198.51.100.7")
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        f"explicitly denied: {SERIAL} on {instance_arn(ONE)}",
        f'  by policy "{POLICIES / "deny-outside-office.json"}" Statement[0] (Sid "DenyOutsideOffice")',
        f"  AWS message: {sentence(OFFICE, SERIAL, instance_arn(ONE), explicit=True)}",
    ]
    r = simulate(config, OPS, OS_USER, "--resource", ONE, "--os-user", "root")
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith(f"explicitly denied: {OS_USER} on {instance_arn(ONE)}\n")
    assert r.stdout.splitlines()[1].endswith('Statement[0] (Sid "NoKeysForRoot")')
    r = simulate(config, ADMIN, STOP, "--resource", GUARDED_PROD)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.splitlines()[1] == '  by policy "deny-prod" Statement[0] (Sid "HandsOffProduction")'
    r = simulate(config, ONE_INSTANCE, SERIAL, "--resource", PROD)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.splitlines() == [
        f"implicitly denied: {SERIAL} on {instance_arn(PROD)}",
        "  no statement allows it",
        f"  AWS message: {sentence(ONE_INSTANCE, SERIAL, instance_arn(PROD), explicit=False)}",
    ]


# --- the README's example policies are these files -------------------------------------------


def test_readme_example_policies_are_the_tested_files():
    """A README json block whose marker names `testdata/policies/NAME.json` is that file."""
    blocks, problems = readme_blocks.blocks(REPO_ROOT / "README.md")
    assert not problems, problems
    named = {}
    for block in blocks:
        m = re.match(r"(testdata/policies/[\w./-]+\.json)\b", block.reason)
        if block.lang == "json" and m:
            named[m.group(1)] = block
    assert len(named) >= 3, sorted(named)
    for path, block in named.items():
        assert json.loads(block.text) == json.loads((REPO_ROOT / path).read_text()), block.where()
