"""serialgate's API driven by the real AWS CLI (v1, as a subprocess) and boto3.

Every modelled exception that the API alone can produce, the SigV4 front-door errors, success of
both operations, and throttling, each checked for wire code, HTTP status, the start of the message
(AWS's documented text) and the request id; and what `serialgate audit` shows of them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import boto3
import botocore
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from conftest import (
    DESIGN_AK,
    DESIGN_EXAMPLE,
    DESIGN_SK,
    EXTENDED_CREDS,
    EXTENDED_INSTANCES,
    EXTENDED_SUFFIX,
    KEYS_DIR,
    Server,
    _binary,
    _serve,
)

REGION = "us-east-1"
SERIAL_OP = "SendSerialConsoleSSHPublicKey"
OS_USER_OP = "SendSSHPublicKey"

# What AWS documents for each error (crates/api/src/error.rs); messages start with this text.
DOCUMENTED = {
    "AuthException": "Either your AWS credentials are not valid or you do not have access to the EC2 instance.",
    "EC2InstanceNotFoundException": "The specified instance was not found.",
    "EC2InstanceStateInvalidException": "Unable to connect because the instance is not in a valid state.",
    "EC2InstanceTypeInvalidException": "The instance type is not supported for connecting via the serial console. Only Nitro instance types are currently supported.",
    "EC2InstanceUnavailableException": "The instance is currently unavailable. Wait a few minutes and try again.",
    "InvalidArgsException": "One of the parameters is not valid.",
    "SerialConsoleAccessDisabledException": "Your account is not authorized to use the EC2 Serial Console. To authorize your account, run the EnableSerialConsoleAccess API.",
    "SerialConsoleSessionUnsupportedException": "Your instance's BIOS version is unsupported for serial console connection.",
    "ThrottlingException": "The requests were made too frequently and have been throttled.",
    "UnrecognizedClientException": "The security token included in the request is invalid.",
    "InvalidSignatureException": "The request signature we calculated does not match the signature you provided.",
    "MissingAuthenticationTokenException": "Missing Authentication Token",
}

STATUS = {
    "AuthException": 403,
    "EC2InstanceNotFoundException": 404,
    "EC2InstanceStateInvalidException": 400,
    "EC2InstanceTypeInvalidException": 400,
    "EC2InstanceUnavailableException": 503,
    "InvalidArgsException": 400,
    "SerialConsoleAccessDisabledException": 403,
    "SerialConsoleSessionUnsupportedException": 400,
    "ThrottlingException": 429,
    "UnrecognizedClientException": 400,
    "InvalidSignatureException": 400,
    "MissingAuthenticationTokenException": 403,
}

# Front-door errors are not in the service model: botocore raises a plain ClientError for them.
FRONT_DOOR = {"UnrecognizedClientException", "InvalidSignatureException", "MissingAuthenticationTokenException"}

# The `aws` script installed beside this Python (awscli v1 from tests/e2e/requirements.txt); the
# same CLI run as a module where the script is missing.
_AWS_SCRIPT = Path(sys.executable).parent / "aws"
AWS_CLI = [str(_AWS_SCRIPT)] if _AWS_SCRIPT.is_file() else [sys.executable, "-m", "awscli"]

UNKNOWN_CREDS = ("AKIAUNKNOWNKEY000001", "whatever")
ABSENT_INSTANCE = "i-0123456789abcdef1"
ABSENT_FFF_INSTANCE = "i-fff0000000000dead"


def key_path(name: str):
    return KEYS_DIR / name


def key_text(name: str) -> str:
    return key_path(name).read_text()


def assert_uuid(value: str) -> None:
    assert str(uuid.UUID(value)) == value, f"{value!r} is not a canonical UUID"


def resolve_creds(server: Server, creds) -> tuple[str, str]:
    """`creds` is a role of the server's configuration or an explicit (key id, secret) pair."""
    return server.creds[creds] if isinstance(creds, str) else creds


def resolve_instance(server: Server, instance: str) -> str:
    return instance if instance.startswith("i-") else server.instances[instance]


# --- AWS CLI ---------------------------------------------------------------------------------


def aws_cli(server: Server, creds, command: str, *args: str) -> subprocess.CompletedProcess:
    """Runs `aws ec2-instance-connect COMMAND ...` (awscli v1 of this Python) against `server`."""
    ak, sk = resolve_creds(server, creds)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ak,
            "AWS_SECRET_ACCESS_KEY": sk,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            # One attempt: throttling and 5xx must show, not be retried away.
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "1",
        }
    )
    cmd = [
        *AWS_CLI,
        "ec2-instance-connect",
        command,
        "--endpoint-url",
        server.url,
        "--region",
        REGION,
        "--output",
        "json",
        *args,
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def cli_serial(server: Server, creds, instance: str, key: str = "ed25519.pub", port: int = 0):
    return aws_cli(
        server,
        creds,
        "send-serial-console-ssh-public-key",
        "--instance-id",
        resolve_instance(server, instance),
        "--serial-port",
        str(port),
        "--ssh-public-key",
        f"file://{key_path(key)}",
    )


def assert_cli_success(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.stderr == ""
    out = json.loads(r.stdout)
    assert set(out) == {"RequestId", "Success"}, out
    assert out["Success"] is True
    assert_uuid(out["RequestId"])
    return out["RequestId"]


def assert_cli_error(r: subprocess.CompletedProcess, code: str, operation: str = SERIAL_OP) -> None:
    # awscli v1 exits 255 on a service error (v2: 254); both mean "the service said no".
    assert r.returncode in (254, 255), f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.stdout == ""
    # Standard retry mode inserts " (reached max retries: 0)" before the colon.
    expected = re.compile(
        re.escape(f"An error occurred ({code}) when calling the {operation} operation")
        + r"(?: \(reached max retries: 0\))?: "
        + re.escape(DOCUMENTED[code])
    )
    assert expected.search(r.stderr), f"expected {expected.pattern!r} in stderr:\n{r.stderr}"


def test_cli_design_example_unreachable_console(design_server):
    """The example's console is a unix socket that does not exist: 503, and not retried."""
    before = audit_count(design_server, "EC2InstanceUnavailableException")
    r = cli_serial(design_server, "owner", "unreachable")
    assert_cli_error(r, "EC2InstanceUnavailableException")
    assert audit_count(design_server, "EC2InstanceUnavailableException") == before + 1


def test_cli_design_example_send_ssh_public_key(design_server):
    r = aws_cli(
        design_server,
        "owner",
        "send-ssh-public-key",
        "--instance-id",
        design_server.instances["unreachable"],
        "--instance-os-user",
        "ec2-user",
        "--availability-zone",
        "us-east-1a",
        "--ssh-public-key",
        f"file://{key_path('rsa2048.pub')}",
    )
    assert_cli_success(r)


def test_cli_success(extended_server):
    assert_cli_success(cli_serial(extended_server, "owner", "running"))


def test_cli_rfc4716_key(extended_server):
    assert_cli_success(cli_serial(extended_server, "owner", "running", key="rsa2048.rfc4716.pub"))


CLI_ERROR_CASES = [
    # id, creds, instance, key, port, code
    ("not-found", "owner", ABSENT_INSTANCE, "ed25519.pub", 0, "EC2InstanceNotFoundException"),
    ("stopped", "owner", "stopped", "ed25519.pub", 0, "EC2InstanceStateInvalidException"),
    ("t2", "owner", "t2", "ed25519.pub", 0, "EC2InstanceTypeInvalidException"),
    ("bios", "owner", "bios", "ed25519.pub", 0, "SerialConsoleSessionUnsupportedException"),
    ("access-off", "disabled", "disabled_account", "ed25519.pub", 0, "SerialConsoleAccessDisabledException"),
    ("not-allowed", "restricted", "not_fff", "ed25519.pub", 0, "AuthException"),
    ("rsa1024", "owner", "running", "rsa1024.pub", 0, "InvalidArgsException"),
    ("port1", "owner", "running", "ed25519.pub", 1, "InvalidArgsException"),
    ("unknown-key-id", UNKNOWN_CREDS, "running", "ed25519.pub", 0, "UnrecognizedClientException"),
    ("wrong-secret", ("AKIAIOSFODNN7EXAMPLE", "not-the-secret"), "running", "ed25519.pub", 0, "InvalidSignatureException"),
]


@pytest.mark.parametrize(
    ("creds", "instance", "key", "port", "code"),
    [c[1:] for c in CLI_ERROR_CASES],
    ids=[c[0] for c in CLI_ERROR_CASES],
)
def test_cli_errors(extended_server, creds, instance, key, port, code):
    assert_cli_error(cli_serial(extended_server, creds, instance, key=key, port=port), code)


def test_cli_send_ssh_public_key_stopped(extended_server):
    r = aws_cli(
        extended_server,
        "owner",
        "send-ssh-public-key",
        "--instance-id",
        extended_server.instances["stopped"],
        "--instance-os-user",
        "ec2-user",
        "--ssh-public-key",
        f"file://{key_path('ed25519.pub')}",
    )
    assert_cli_error(r, "EC2InstanceStateInvalidException", OS_USER_OP)


def audit_count(server: Server, outcome: str) -> int:
    """How many requests the server's audit log (its stderr) records with this outcome."""
    log = re.sub(r"\x1b\[[0-9;]*m", "", server.stderr())
    return sum(1 for line in log.splitlines() if "api call" in line and f'outcome="{outcome}"' in line)


def test_cli_throttling(throttle_server):
    for _ in range(2):
        assert_cli_success(cli_serial(throttle_server, "cli", "cli"))
    before = audit_count(throttle_server, "ThrottlingException")
    r = cli_serial(throttle_server, "cli", "cli")
    assert_cli_error(r, "ThrottlingException")
    # The CLI did not retry: the server saw exactly one more throttled request.
    assert audit_count(throttle_server, "ThrottlingException") == before + 1


# --- boto3 -----------------------------------------------------------------------------------


def client(server: Server, creds="owner", *, validate: bool = True, unsigned: bool = False):
    ak, sk = resolve_creds(server, creds)
    config = Config(
        # One attempt in all. botocore's retries["max_attempts"] counts *retries* (max_attempts=1
        # would resend a throttled request once); total_max_attempts counts attempts, like
        # AWS_MAX_ATTEMPTS does for the CLI.
        retries={"total_max_attempts": 1, "mode": "standard"},
        parameter_validation=validate,
        connect_timeout=5,
        read_timeout=10,
        **({"signature_version": botocore.UNSIGNED} if unsigned else {}),
    )
    return boto3.session.Session().client(
        "ec2-instance-connect",
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id=ak,
        aws_secret_access_key=sk,
        config=config,
    )


def assert_boto_success(resp: dict) -> None:
    meta = resp["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    assert resp["Success"] is True
    assert_uuid(resp["RequestId"])
    # boto reads ResponseMetadata.RequestId from the x-amzn-RequestId header.
    assert resp["RequestId"] == meta["RequestId"] == meta["HTTPHeaders"]["x-amzn-requestid"]
    assert meta["RetryAttempts"] == 0


def assert_client_error(e: ClientError, code: str) -> None:
    err = e.response["Error"]
    meta = e.response["ResponseMetadata"]
    assert err["Code"] == code, e.response
    assert meta["HTTPStatusCode"] == STATUS[code], e.response
    assert err["Message"].startswith(DOCUMENTED[code]), err["Message"]
    assert_uuid(meta["RequestId"])
    assert meta["RetryAttempts"] == 0
    if code in FRONT_DOOR:
        assert type(e) is ClientError
    else:
        # botocore maps the code to the modelled exception class.
        assert type(e).__name__ == code


def test_boto3_design_example_unreachable_console(design_server):
    c = client(design_server)
    before = audit_count(design_server, "EC2InstanceUnavailableException")
    with pytest.raises(c.exceptions.EC2InstanceUnavailableException) as ei:
        c.send_serial_console_ssh_public_key(
            InstanceId=design_server.instances["unreachable"],
            SerialPort=0,
            SSHPublicKey=key_text("ed25519.pub"),
        )
    assert_client_error(ei.value, "EC2InstanceUnavailableException")
    assert audit_count(design_server, "EC2InstanceUnavailableException") == before + 1


def test_boto3_design_example_send_ssh_public_key(design_server):
    resp = client(design_server).send_ssh_public_key(
        InstanceId=design_server.instances["unreachable"],
        InstanceOSUser="ec2-user",
        SSHPublicKey=key_text("ed25519.pub"),
    )
    assert_boto_success(resp)


def test_boto3_success(extended_server):
    resp = client(extended_server).send_serial_console_ssh_public_key(
        InstanceId=extended_server.instances["running"],
        SerialPort=0,
        SSHPublicKey=key_text("ed25519.pub"),
    )
    assert_boto_success(resp)


def test_boto3_serial_port_defaults_to_zero(extended_server):
    resp = client(extended_server).send_serial_console_ssh_public_key(
        InstanceId=extended_server.instances["running"],
        SSHPublicKey=key_text("ed25519.pub"),
    )
    assert_boto_success(resp)


@pytest.mark.parametrize(
    "key",
    ["ed25519.pub", "rsa2048.pub", "rsa3072.pub", "rsa4096.pub", "ed25519.rfc4716.pub", "rsa2048.rfc4716.pub"],
)
def test_boto3_accepted_keys(extended_server, key):
    resp = client(extended_server).send_serial_console_ssh_public_key(
        InstanceId=extended_server.instances["running"], SerialPort=0, SSHPublicKey=key_text(key)
    )
    assert_boto_success(resp)


def test_boto3_restricted_key_on_matching_instance(extended_server):
    resp = client(extended_server, "restricted").send_serial_console_ssh_public_key(
        InstanceId=extended_server.instances["fff"], SSHPublicKey=key_text("ed25519.pub")
    )
    assert_boto_success(resp)


def test_boto3_send_ssh_public_key(extended_server):
    c = client(extended_server)
    resp = c.send_ssh_public_key(
        InstanceId=extended_server.instances["running"],
        InstanceOSUser="ec2-user",
        SSHPublicKey=key_text("ed25519.pub"),
        AvailabilityZone="us-east-1a",
    )
    assert_boto_success(resp)
    # Another zone than the instance's: not found there.
    with pytest.raises(c.exceptions.EC2InstanceNotFoundException) as ei:
        c.send_ssh_public_key(
            InstanceId=extended_server.instances["running"],
            InstanceOSUser="ec2-user",
            SSHPublicKey=key_text("ed25519.pub"),
            AvailabilityZone="us-east-1c",
        )
    assert_client_error(ei.value, "EC2InstanceNotFoundException")


def test_boto3_modelled_exception_class(extended_server):
    c = client(extended_server)
    with pytest.raises(c.exceptions.EC2InstanceNotFoundException) as ei:
        c.send_serial_console_ssh_public_key(InstanceId=ABSENT_INSTANCE, SSHPublicKey=key_text("ed25519.pub"))
    assert_client_error(ei.value, "EC2InstanceNotFoundException")
    assert ABSENT_INSTANCE in ei.value.response["Error"]["Message"]


TRUNCATED_ED25519 = "ssh-ed25519 " + key_text("ed25519.pub").split()[1][:60] + " truncated@blob"
GARBAGE_KEY = "ssh-ed25519 " + "!" * 80

BOTO_ERROR_CASES = [
    # id, creds, instance, key text (or file name), port, code
    ("auth-pattern", "restricted", "not_fff", "ed25519.pub", 0, "AuthException"),
    ("auth-pattern-absent", "restricted", ABSENT_INSTANCE, "ed25519.pub", 0, "AuthException"),
    # Another account's instance does not exist for the caller.
    ("other-account-not-found", "owner", "disabled_account", "ed25519.pub", 0, "EC2InstanceNotFoundException"),
    ("not-found", "owner", ABSENT_INSTANCE, "ed25519.pub", 0, "EC2InstanceNotFoundException"),
    ("not-found-allowed", "restricted", ABSENT_FFF_INSTANCE, "ed25519.pub", 0, "EC2InstanceNotFoundException"),
    ("stopped", "owner", "stopped", "ed25519.pub", 0, "EC2InstanceStateInvalidException"),
    ("terminated", "owner", "terminated", "ed25519.pub", 0, "EC2InstanceStateInvalidException"),
    ("t2-micro", "owner", "t2", "ed25519.pub", 0, "EC2InstanceTypeInvalidException"),
    ("access-off", "disabled", "disabled_account", "ed25519.pub", 0, "SerialConsoleAccessDisabledException"),
    ("unsupported-bios", "owner", "bios", "ed25519.pub", 0, "SerialConsoleSessionUnsupportedException"),
    ("rsa1024", "owner", "running", "rsa1024.pub", 0, "InvalidArgsException"),
    ("rsa5120", "owner", "running", "rsa5120.pub", 0, "InvalidArgsException"),
    ("ecdsa", "owner", "running", "ecdsa256.pub", 0, "InvalidArgsException"),
    ("dsa", "owner", "running", "dsa.pub", 0, "InvalidArgsException"),
    ("garbage", "owner", "running", GARBAGE_KEY, 0, "InvalidArgsException"),
    ("truncated", "owner", "running", TRUNCATED_ED25519, 0, "InvalidArgsException"),
    ("port1", "owner", "running", "ed25519.pub", 1, "InvalidArgsException"),
    ("unknown-key-id", UNKNOWN_CREDS, "running", "ed25519.pub", 0, "UnrecognizedClientException"),
    ("wrong-secret", ("AKIAIOSFODNN7EXAMPLE", "not-the-secret"), "running", "ed25519.pub", 0, "InvalidSignatureException"),
]


@pytest.mark.parametrize(
    ("creds", "instance", "key", "port", "code"),
    [c[1:] for c in BOTO_ERROR_CASES],
    ids=[c[0] for c in BOTO_ERROR_CASES],
)
def test_boto3_errors(extended_server, creds, instance, key, port, code):
    # Client-side validation off: botocore itself refuses some of these (e.g. keys under 80 chars).
    c = client(extended_server, creds, validate=False)
    expected = ClientError if code in FRONT_DOOR else getattr(c.exceptions, code)
    with pytest.raises(expected) as ei:
        c.send_serial_console_ssh_public_key(
            InstanceId=resolve_instance(extended_server, instance),
            SerialPort=port,
            SSHPublicKey=key_text(key) if key.endswith(".pub") else key,
        )
    assert_client_error(ei.value, code)


def test_boto3_refuses_short_key_client_side(extended_server):
    """Why the garbage cases above turn validation off: SSHPublicKey has min length 80."""
    with pytest.raises(botocore.exceptions.ParamValidationError):
        client(extended_server).send_serial_console_ssh_public_key(
            InstanceId=extended_server.instances["running"], SSHPublicKey="ssh-ed25519 AAAA"
        )


def test_boto3_unsigned_request(extended_server):
    c = client(extended_server, unsigned=True)
    with pytest.raises(ClientError) as ei:
        c.send_serial_console_ssh_public_key(
            InstanceId=extended_server.instances["running"], SSHPublicKey=key_text("ed25519.pub")
        )
    assert_client_error(ei.value, "MissingAuthenticationTokenException")


def test_boto3_throttling(throttle_server):
    c = client(throttle_server, "boto3")
    push = lambda: c.send_serial_console_ssh_public_key(  # noqa: E731
        InstanceId=throttle_server.instances["boto3"], SSHPublicKey=key_text("ed25519.pub")
    )
    assert_boto_success(push())
    assert_boto_success(push())
    before = audit_count(throttle_server, "ThrottlingException")
    with pytest.raises(c.exceptions.ThrottlingException) as ei:
        push()
    assert_client_error(ei.value, "ThrottlingException")
    # Not retried (botocore would resend a throttled request if attempts allowed).
    assert audit_count(throttle_server, "ThrottlingException") == before + 1
    # The budget is per account: another account of the same server is unaffected.
    other = client(throttle_server, "bystander")
    assert_boto_success(
        other.send_serial_console_ssh_public_key(
            InstanceId=throttle_server.instances["bystander"], SSHPublicKey=key_text("ed25519.pub")
        )
    )


# --- the audit trail -------------------------------------------------------------------------


def audit_json(config: Path, home: Path) -> list[dict]:
    """`serialgate audit --json` for the server configured by `config`."""
    r = subprocess.run(
        [str(_binary()), "audit", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "HOME": str(home)},
    )
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def test_audit_records_refusals(tmp_path):
    """An authenticated refusal is in the trail at once, with the error code its caller got;
    requests whose signature did not verify are counted per source and reason, and the counts
    are written when the window ends or, here, when SIGTERM stops the server."""
    # Made here, so the fixture leaves it (and the trail) in place when the server stops.
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    config = tmp_path / "audit.toml"
    config.write_text(
        DESIGN_EXAMPLE.read_text().replace('state_dir = "/var/lib/serialgate"', f'state_dir = "{state}"')
        + "\n"
        + EXTENDED_SUFFIX
    )
    wrong_secret = ("AKIAIOSFODNN7EXAMPLE", "not-the-secret")
    with _serve("audit", config, tmp_path, creds=dict(EXTENDED_CREDS), instances=dict(EXTENDED_INSTANCES)) as server:
        c = client(server, validate=False)
        with pytest.raises(c.exceptions.InvalidArgsException) as ei:
            c.send_serial_console_ssh_public_key(InstanceId="i-nope", SSHPublicKey=key_text("ed25519.pub"))
        refused_id = ei.value.response["ResponseMetadata"]["RequestId"]
        ok_id = client(server).send_serial_console_ssh_public_key(
            InstanceId=server.instances["running"], SSHPublicKey=key_text("ed25519.pub")
        )["RequestId"]
        ec2 = boto3.session.Session().client(
            "ec2",
            endpoint_url=server.url,
            region_name=REGION,
            aws_access_key_id=DESIGN_AK,
            aws_secret_access_key=DESIGN_SK,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        # The example's key may push only (no `actions`): EC2 refuses it, with EC2's own code.
        with pytest.raises(ClientError) as ei:
            ec2.get_serial_console_access_status()
        assert ei.value.response["Error"]["Code"] == "UnauthorizedOperation"
        status_id = ei.value.response["ResponseMetadata"]["RequestId"]

        # Unauthenticated: a wrong secret (boto3 and the AWS CLI), an unknown key id, unsigned.
        for _ in range(3):
            with pytest.raises(ClientError) as ei:
                client(server, wrong_secret).send_serial_console_ssh_public_key(
                    InstanceId=server.instances["running"], SSHPublicKey=key_text("ed25519.pub")
                )
            assert_client_error(ei.value, "InvalidSignatureException")
        assert_cli_error(cli_serial(server, wrong_secret, "running"), "InvalidSignatureException")
        assert_cli_error(cli_serial(server, UNKNOWN_CREDS, "running"), "UnrecognizedClientException")
        with pytest.raises(ClientError) as ei:
            client(server, unsigned=True).send_serial_console_ssh_public_key(
                InstanceId=server.instances["running"], SSHPublicKey=key_text("ed25519.pub")
            )
        assert_client_error(ei.value, "MissingAuthenticationTokenException")

        records = audit_json(config, tmp_path)
        by_request = {r["request_id"]: r for r in records if r["kind"] == "api"}
        refused = by_request[refused_id]
        assert refused["outcome"] == "InvalidArgsException"
        assert refused["operation"] == SERIAL_OP
        assert refused["principal_arn"] == "arn:aws:iam::111122223333:root"
        assert refused["source_ip"] == "127.0.0.1"
        assert refused["instance_id"] is None  # "i-nope" is not an instance id
        assert refused["key_fingerprint"].startswith("SHA256:")
        assert by_request[ok_id]["outcome"] == "success"
        assert by_request[status_id]["operation"] == "GetSerialConsoleAccessStatus"
        assert by_request[status_id]["outcome"] == "UnauthorizedOperation"
        # One record per authenticated call, none for the unauthenticated ones.
        assert len([r for r in records if r["kind"] == "api"]) == 3, records
        server.proc.terminate()
        assert server.proc.wait(timeout=15) == 0, server.stderr()

    counted: dict[tuple[str, str], list[dict]] = {}
    for r in audit_json(config, tmp_path):
        if r["kind"] == "api-refused":
            assert r["source_ip"] == "127.0.0.1", r
            assert r["time_ms"] <= r["last_time_ms"]
            counted.setdefault((r["reason"], r["outcome"]), []).append(r)
    total = {k: sum(r["count"] for r in v) for k, v in counted.items()}
    assert total == {
        ("signature-mismatch", "InvalidSignatureException"): 4,
        ("unknown-access-key", "UnrecognizedClientException"): 1,
        ("missing-authentication", "MissingAuthenticationTokenException"): 1,
    }, counted
    # Aggregated: one record per window (the test is far shorter than the 60 s window; a slow
    # machine may see it end once).
    assert len(counted[("signature-mismatch", "InvalidSignatureException")]) <= 2
    assert {r["access_key_id"] for r in counted[("signature-mismatch", "InvalidSignatureException")]} == {DESIGN_AK}
    assert counted[("unknown-access-key", "UnrecognizedClientException")][0]["access_key_id"] == UNKNOWN_CREDS[0]
    assert counted[("missing-authentication", "MissingAuthenticationTokenException")][0]["access_key_id"] is None
