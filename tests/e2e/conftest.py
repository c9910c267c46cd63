"""Fixtures for the end-to-end tests: real `serialgate serve` processes on free loopback ports.

Nothing is built here. The binary is `$SERIALGATE_BIN`, or `target/debug/serialgate` under the
repository root (build it first: `cargo build -p serialgate`).

Three servers, each started once per session and stopped at its end (also when tests fail):

* ``design_server``: DESIGN.md's example configuration, verbatim
  (``testdata/config/design-example.toml``). Its ``state_dir`` need not exist (serve creates it;
  the fixture removes it again if it made it appear) and neither does its unix console (a serial
  key push then answers EC2InstanceUnavailableException).
* ``extended_server``: that same text with more accounts and instances appended, so that every
  modelled exception can be reached, and a throttle loose enough never to get in the way.
* ``throttle_server``: that same text with a tight ``[throttle]`` (burst 2, next to no refill)
  and one fresh account per test that wants to meet ``ThrottlingException``.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
KEYS_DIR = REPO_ROOT / "testdata" / "keys"
DESIGN_EXAMPLE = REPO_ROOT / "testdata" / "config" / "design-example.toml"

# Generous: a debug build starting on a 2-core machine busy with other tests can take a while.
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0

# The credential of DESIGN.md's example (account 111122223333).
DESIGN_AK = "AKIAIOSFODNN7EXAMPLE"
DESIGN_SK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
DESIGN_INSTANCE = "i-0123456789abcdef0"


@dataclass
class Server:
    """A running `serialgate serve` and what its configuration defines."""

    name: str
    url: str
    api_port: int
    ssh_port: int
    config_path: Path
    proc: subprocess.Popen
    stderr_path: Path
    # role -> (access key id, secret access key)
    creds: dict[str, tuple[str, str]] = field(default_factory=dict)
    # role -> instance id
    instances: dict[str, str] = field(default_factory=dict)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError as e:
            return f"<cannot read {self.stderr_path}: {e}>"


# --- configurations -------------------------------------------------------------------------

EXTENDED_SUFFIX = """
# ---- appended by tests/e2e/conftest.py: instances and accounts for every exception ----

# Account 111122223333 (the example's): instances that cannot have a serial session.
[[instances]]
id = "i-0a000000000000001"
account = "111122223333"
instance_type = "t3.micro"
state = "stopped"
console = "sim:"

[[instances]]
id = "i-0a000000000000002"
account = "111122223333"
instance_type = "t3.micro"
state = "terminated"
console = "sim:"

[[instances]]
id = "i-0a000000000000003"
account = "111122223333"
instance_type = "t2.micro"
state = "running"
console = "sim:"

[[instances]]
id = "i-0a000000000000004"
account = "111122223333"
instance_type = "m5.large"
state = "running"
console = "sim:"
availability_zone = "us-east-1b"
tags = { Team = "infra" }
unsupported_bios = true

# A running Nitro instance whose console (the built-in simulator) is always reachable: unlike
# the example's, whose unix socket does not exist (EC2InstanceUnavailableException).
[[instances]]
id = "i-0a000000000000005"
account = "111122223333"
instance_type = "t3.micro"
state = "running"
console = "sim:"

# An account whose serial console access is off (the AWS default).
[[accounts]]
id = "222233334444"
serial_console_access = false

[[accounts.credentials]]
access_key_id = "AKIADISABLEDACCOUNT1"
secret_access_key = "disabled-account-secret"
user = "carol"

[[instances]]
id = "i-0b000000000000001"
account = "222233334444"
instance_type = "t3.small"
state = "running"
console = "sim:"

# An account whose only key may push to instances matching i-fff* only.
[[accounts]]
id = "444455556666"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "AKIARESTRICTEDFFF001"
secret_access_key = "restricted-secret"
user = "fff-operator"
instances = ["i-fff*"]

[[instances]]
id = "i-fff00000000000001"
account = "444455556666"
instance_type = "c6i.large"
state = "running"
console = "sim:"

[[instances]]
id = "i-0c000000000000001"
account = "444455556666"
instance_type = "c6i.large"
state = "running"
console = "sim:"

# Loose enough that no test here meets ThrottlingException by accident.
[throttle]
rate_per_second = 1000.0
burst = 1000
"""

EXTENDED_CREDS = {
    "owner": (DESIGN_AK, DESIGN_SK),
    "disabled": ("AKIADISABLEDACCOUNT1", "disabled-account-secret"),
    "restricted": ("AKIARESTRICTEDFFF001", "restricted-secret"),
}
EXTENDED_INSTANCES = {
    "running": "i-0a000000000000005",
    "unreachable": DESIGN_INSTANCE,
    "stopped": "i-0a000000000000001",
    "terminated": "i-0a000000000000002",
    "t2": "i-0a000000000000003",
    "bios": "i-0a000000000000004",
    "disabled_account": "i-0b000000000000001",
    "fff": "i-fff00000000000001",
    "not_fff": "i-0c000000000000001",
}

# One account per throttling test, so that their order does not matter.
THROTTLE_ROLES = ("boto3", "cli", "bystander")


def _throttle_suffix() -> str:
    parts = [
        "\n# ---- appended by tests/e2e/conftest.py: a tight per-account budget ----\n",
    ]
    for n, role in enumerate(THROTTLE_ROLES, start=1):
        account = f"55556666{n:04d}"
        parts.append(
            f"""
[[accounts]]
id = "{account}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "AKIATHROTTLE{role.upper()}"
secret_access_key = "throttle-{role}-secret"

[[instances]]
id = "i-0d00000000000000{n}"
account = "{account}"
console = "sim:"
"""
        )
    parts.append(
        """
# Two requests, then (nearly) nothing: one token per 1000 s.
[throttle]
rate_per_second = 0.001
burst = 2
"""
    )
    return "".join(parts)


THROTTLE_CREDS = {role: (f"AKIATHROTTLE{role.upper()}", f"throttle-{role}-secret") for role in THROTTLE_ROLES}
THROTTLE_INSTANCES = {role: f"i-0d00000000000000{n}" for n, role in enumerate(THROTTLE_ROLES, start=1)}


# --- process management ---------------------------------------------------------------------


def _binary() -> Path:
    env = os.environ.get("SERIALGATE_BIN")
    path = Path(env) if env else REPO_ROOT / "target" / "debug" / "serialgate"
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"serialgate binary not found at {path}; build it with `cargo build -p serialgate` "
            "or point SERIALGATE_BIN at one",
            pytrace=False,
        )
    return path


# Every port `_free_ports` handed out in this run. A port is released before the server that
# was given it binds it, so without this a later call (a cluster's relay port, then a node's
# API and SSH ports) could hand out the same port twice.
_HANDED_OUT: set[int] = set()


def _free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (all bound at once, then released), none of them handed
    out before in this run."""
    socks = []
    ports: list[int] = []
    try:
        for _ in range(n + 1000):
            if len(ports) == n:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            port = s.getsockname()[1]
            if port not in _HANDED_OUT:
                ports.append(port)
        assert len(ports) == n, "no fresh loopback ports left"
        _HANDED_OUT.update(ports)
        return ports
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if pytest itself dies (Linux), so no orphan lives on."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last_error = "no attempt"
    while time.monotonic() < deadline:
        code = server.proc.poll()
        if code is not None:
            pytest.fail(
                f"serialgate ({server.name}) exited with status {code} before serving "
                f"GET /health.\ncommand: {server.proc.args}\n--- stderr ---\n{server.stderr()}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=1.0) as resp:
                body = json.loads(resp.read())
                if resp.status == 200 and body.get("status") == "ok":
                    return
                last_error = f"status {resp.status}, body {body}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as e:
            last_error = repr(e)
        time.sleep(0.05)
    _stop(server.proc)
    pytest.fail(
        f"serialgate ({server.name}) did not answer GET /health within {STARTUP_TIMEOUT_S:.0f} s "
        f"(last: {last_error}).\ncommand: {server.proc.args}\n--- stderr ---\n{server.stderr()}",
        pytrace=False,
    )


def _configured_state_dir(config_path: Path) -> Path | None:
    with open(config_path, "rb") as f:
        value = tomllib.load(f).get("state_dir")
    return Path(value) if value else None


@contextlib.contextmanager
def _serve(name: str, config_path: Path, workdir: Path, **what):
    api_port, ssh_port = _free_ports(2)
    # The example's state_dir (/var/lib/serialgate) need not exist; serve creates it for its SSH
    # host key. Whatever this fixture made appear there goes again when the server stops.
    state_dir = _configured_state_dir(config_path)
    remove_state_dir = state_dir is not None and not state_dir.exists()
    stderr_path = workdir / f"{name}.stderr.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
    env.update(
        {
            # SERIALGATE_E2E_LOG overrides the servers' log filter when debugging a test.
            "SERIALGATE_LOG": os.environ.get("SERIALGATE_E2E_LOG", "info,serialgate::audit=debug"),
            "NO_COLOR": "1",
            # Configurations without state_dir must not touch the real home.
            "HOME": str(workdir),
            "XDG_STATE_HOME": str(workdir / "state"),
        }
    )
    cmd = [
        str(_binary()),
        "serve",
        "--config",
        str(config_path),
        "--api-listen",
        f"127.0.0.1:{api_port}",
        "--ssh-listen",
        f"127.0.0.1:{ssh_port}",
    ]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            env=env,
            cwd=workdir,
            preexec_fn=_die_with_parent,
        )
    server = Server(
        name=name,
        url=f"http://127.0.0.1:{api_port}",
        api_port=api_port,
        ssh_port=ssh_port,
        config_path=config_path,
        proc=proc,
        stderr_path=stderr_path,
        **what,
    )
    try:
        _wait_healthy(server)
        yield server
    finally:
        _stop(proc)
        if remove_state_dir and state_dir.is_dir():
            shutil.rmtree(state_dir, ignore_errors=True)


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _isolated_aws_environment():
    """boto3 in this process must not read the developer's ~/.aws or any AWS_* variable."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for k in saved:
        del os.environ[k]
    os.environ.update(
        {
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    yield
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    os.environ.update(saved)


@pytest.fixture(scope="session")
def design_server(tmp_path_factory):
    """DESIGN.md's example configuration as written (the file itself is passed to --config)."""
    workdir = tmp_path_factory.mktemp("design")
    with _serve(
        "design-example",
        DESIGN_EXAMPLE,
        workdir,
        creds={"owner": (DESIGN_AK, DESIGN_SK)},
        instances={"unreachable": DESIGN_INSTANCE},
    ) as server:
        yield server


@pytest.fixture(scope="session")
def extended_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("extended")
    config = workdir / "extended.toml"
    config.write_text(DESIGN_EXAMPLE.read_text() + "\n" + EXTENDED_SUFFIX)
    with _serve(
        "extended",
        config,
        workdir,
        creds=dict(EXTENDED_CREDS),
        instances=dict(EXTENDED_INSTANCES),
    ) as server:
        yield server


@pytest.fixture(scope="session")
def throttle_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("throttle")
    config = workdir / "throttle.toml"
    config.write_text(DESIGN_EXAMPLE.read_text() + "\n" + _throttle_suffix())
    with _serve(
        "throttle",
        config,
        workdir,
        creds=dict(THROTTLE_CREDS),
        instances=dict(THROTTLE_INSTANCES),
    ) as server:
        yield server
