"""Shared by the attack and TLS suites: a `serialgate serve` started the way a test needs it (its
own environment, umask, open-file limit, TLS), raw HTTP over sockets bound to a chosen loopback
source address, the AWS CLI and boto3 pointed at a server, and OpenSSH sessions.

Loopback accepts any 127/8 source address, so the legitimate clients use 127.0.0.1 and the
attacker 127.0.0.2: the server's per-address caps keep them apart, as they would two hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from conftest import STARTUP_TIMEOUT_S, Server, _binary, _die_with_parent, _free_ports, _stop
from ssh_session import Session

REGION = "us-east-1"
LEGIT_IP = "127.0.0.1"
ATTACKER_IP = "127.0.0.2"

_AWS_SCRIPT = Path(sys.executable).with_name("aws")
AWS_CLI = [str(_AWS_SCRIPT)] if _AWS_SCRIPT.is_file() else [sys.executable, "-m", "awscli"]


# --- the server ---------------------------------------------------------------------------------


def raise_own_nofile(at_least: int) -> None:
    """Raises this process's soft open-file limit (tests that hold thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= at_least:
        return
    if hard != resource.RLIM_INFINITY and hard < at_least:
        pytest.fail(f"this test needs {at_least} open files; the hard limit is {hard} (raise it with ulimit -Hn)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (at_least, hard))


def _preexec(nofile: int | None, umask: int | None):
    def run() -> None:
        _die_with_parent()
        if nofile is not None:
            # Soft and hard: serve raises its soft limit to the hard one, so both must be set.
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        if umask is not None:
            os.umask(umask)

    return run


def _wait_healthy(server: Server, context: ssl.SSLContext | None) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no attempt"
    while time.monotonic() < deadline:
        code = server.proc.poll()
        if code is not None:
            pytest.fail(
                f"serialgate ({server.name}) exited with status {code} before serving /health\n"
                f"--- config ---\n{server.config_path.read_text()}\n--- stderr ---\n{server.stderr()}",
                pytrace=False,
            )
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=1.0, context=context) as resp:
                if resp.status == 200 and json.loads(resp.read()).get("status") == "ok":
                    return
                last = f"status {resp.status}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            last = repr(e)
        time.sleep(0.05)
    _stop(server.proc)
    pytest.fail(
        f"serialgate ({server.name}) did not answer /health within {STARTUP_TIMEOUT_S:.0f} s "
        f"(last: {last})\n--- stderr ---\n{server.stderr()}",
        pytrace=False,
    )


@contextlib.contextmanager
def serve(
    name: str,
    config_text: str,
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    nofile: int | None = None,
    umask: int | None = None,
    ca_file: Path | None = None,
):
    """Runs `serialgate serve` on free loopback ports with `config_text` and yields its
    `Server` once `/health` answers (over HTTPS trusting `ca_file` when given)."""
    api_port, ssh_port = _free_ports(2)
    config_path = workdir / f"{name}.toml"
    config_path.write_text(config_text)
    stderr_path = workdir / f"{name}.stderr.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
    base.update(
        {
            "SERIALGATE_LOG": "info,serialgate::audit=debug",
            "NO_COLOR": "1",
            "HOME": str(workdir),
            "XDG_STATE_HOME": str(workdir / "xdg-state"),
        }
    )
    base.update(env or {})
    cmd = [
        str(_binary()), "serve", "--config", str(config_path),
        "--api-listen", f"{LEGIT_IP}:{api_port}", "--ssh-listen", f"{LEGIT_IP}:{ssh_port}",
    ]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err, env=base, cwd=workdir,
            preexec_fn=_preexec(nofile, umask),
        )
    scheme = "https" if ca_file else "http"
    server = Server(
        name=name, url=f"{scheme}://{LEGIT_IP}:{api_port}", api_port=api_port, ssh_port=ssh_port,
        config_path=config_path, proc=proc, stderr_path=stderr_path,
    )
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    try:
        _wait_healthy(server, context)
        yield server
    finally:
        _stop(proc)


def wait_for_log(server: Server, pattern: str, timeout: float = 15.0) -> re.Match:
    """Waits until the server's log matches `pattern` (regex)."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        m = rx.search(server.stderr())
        if m:
            return m
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line matching {pattern!r} within {timeout} s\n--- stderr ---\n{server.stderr()[-4000:]}")
        time.sleep(0.05)


def assert_no_panic(server: Server) -> None:
    log = server.stderr()
    for bad in ("panicked", "Too many open files"):
        assert bad not in log, f"{bad!r} in the server's log:\n{log[-4000:]}"


# --- API clients --------------------------------------------------------------------------------


def eic(server: Server, creds: tuple[str, str], verify=None):
    """A boto3 `ec2-instance-connect` client for `server`, one attempt per call."""
    return boto3.client(
        "ec2-instance-connect", endpoint_url=server.url, region_name=REGION,
        aws_access_key_id=creds[0], aws_secret_access_key=creds[1], verify=verify,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=15),
    )


def ec2(server: Server, creds: tuple[str, str], verify=None):
    return boto3.client(
        "ec2", endpoint_url=server.url, region_name=REGION,
        aws_access_key_id=creds[0], aws_secret_access_key=creds[1], verify=verify,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=15),
    )


def aws_cli(server: Server, creds: tuple[str, str], *args: str, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """`aws ARGS… --endpoint-url … --region … --output json` with one attempt per call."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=creds[0], AWS_SECRET_ACCESS_KEY=creds[1], AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true",
        AWS_RETRY_MODE="standard", AWS_MAX_ATTEMPTS="1",
    )
    env.update(extra_env or {})
    cmd = [*AWS_CLI, *args, "--endpoint-url", server.url, "--region", REGION, "--output", "json"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def cli_ok(r: subprocess.CompletedProcess):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return json.loads(r.stdout) if r.stdout.strip() else None


def cli_error(r: subprocess.CompletedProcess, code: str, operation: str) -> str:
    """Asserts the AWS CLI's error line for `code` from `operation`; returns its message."""
    assert r.returncode in (254, 255), f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    m = re.search(
        re.escape(f"An error occurred ({code}) when calling the {operation} operation")
        + r"(?: \(reached max retries: \d+\))?: (.*)",
        r.stderr,
    )
    assert m, f"expected {code} from {operation}; stderr:\n{r.stderr}"
    return m.group(1)


# --- raw HTTP -------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int | None  # None: the connection closed (or was reset) before a status line
    head: bytes = b""
    body: bytes = b""
    elapsed: float = 0.0
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> dict:
        return json.loads(self.body)


def connect_from(source_ip: str, port: int, timeout: float = 5.0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source_ip, 0))
    s.settimeout(timeout)
    s.connect((LEGIT_IP, port))
    return s


def raw_http(port: int, request: bytes, source_ip: str = LEGIT_IP, timeout: float = 10.0) -> RawResponse:
    """Sends `request` on a fresh connection and reads one response (through its
    Content-Length, or to the close). `elapsed` runs from the first byte sent to the last byte
    read. A server that answers and closes before reading everything (the usual answer to an
    oversized header) may reset the connection: that is reported, not raised."""
    s = connect_from(source_ip, port, timeout)
    buf = bytearray()
    error = ""
    t0 = time.perf_counter()
    with s:
        try:
            s.sendall(request)
        except OSError as e:
            error = f"send: {e!r}"
        try:
            while True:
                head_end = buf.find(b"\r\n\r\n")
                if head_end >= 0:
                    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", bytes(buf[:head_end]))
                    if m and len(buf) >= head_end + 4 + int(m.group(1)):
                        break
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError as e:
            error = (error + "; " if error else "") + f"recv: {e!r}"
    elapsed = time.perf_counter() - t0
    head, _, body = bytes(buf).partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.decode(errors="replace").strip().lower()] = v.decode(errors="replace").strip()
    return RawResponse(int(m.group(1)) if m else None, head, body, elapsed, error, headers)


def amz_date() -> tuple[str, str]:
    now = time.gmtime()
    return time.strftime("%Y%m%dT%H%M%SZ", now), time.strftime("%Y%m%d", now)


def forged_push(port: int, authorization: str, x_amz_date: str) -> bytes:
    """A SendSerialConsoleSSHPublicKey request as an SDK shapes it, with `authorization`."""
    body = b'{"InstanceId":"i-0123456789abcdef0","SerialPort":0,"SSHPublicKey":"ssh-ed25519 AAAA"}'
    return (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-amz-json-1.1\r\n"
        "X-Amz-Target: AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey\r\n"
        f"X-Amz-Date: {x_amz_date}\r\nAuthorization: {authorization}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


# --- /health probe --------------------------------------------------------------------------------


class HealthProbe:
    """Asks `/health` over and over from a thread (a fresh connection each time) and records
    every latency and failure, until stopped."""

    def __init__(self, server: Server, timeout: float = 2.0, context: ssl.SSLContext | None = None):
        self.server, self.timeout, self.context = server, timeout, context
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout + 5)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{self.server.url}/health", timeout=self.timeout, context=self.context) as r:
                    r.read()
                    if r.status != 200:
                        self.failures.append(f"status {r.status}")
            except (urllib.error.URLError, OSError) as e:
                self.failures.append(repr(e))
            self.latencies.append(time.perf_counter() - t0)
            self._stop.wait(0.02)

    def check(self, max_latency: float = 3.0, min_probes: int = 3) -> None:
        """No probe failed and none stalled. `max_latency` is a stall threshold, not a
        performance bound: the defects these tests guard against held `/health` for 20 s and
        more, while a loaded shared machine can add a second to one fresh connection."""
        assert not self.failures, f"/health failed {len(self.failures)} times: {self.failures[:5]}"
        assert len(self.latencies) >= min_probes, f"only {len(self.latencies)} /health probes ran"
        worst = max(self.latencies)
        assert worst <= max_latency, f"/health took up to {worst * 1000:.0f} ms (probes: {len(self.latencies)})"


# --- SSH -------------------------------------------------------------------------------------------


def new_key(directory: Path, name: str = "id_ed25519") -> Path:
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


def known_hosts(server: Server, directory: Path) -> Path:
    host_key = subprocess.run(
        [str(_binary()), "host-key", "--config", str(server.config_path), "--public-key-only"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()
    path = directory / "known_hosts"
    path.write_text(f"[{LEGIT_IP}]:{server.ssh_port} {host_key}\n")
    return path


def ssh_session(server: Server, key: Path, known: Path, instance: str) -> Session:
    """OpenSSH's `ssh -tt` to `instance`'s port 0 (from 127.0.0.1)."""
    return Session([
        "ssh", "-F", "/dev/null", "-i", str(key), "-p", str(server.ssh_port),
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
        "-o", "ServerAliveInterval=0", "-tt", f"{instance}.port0@{LEGIT_IP}",
    ])


def end_session(s: Session) -> None:
    """Enter ~. (OpenSSH's disconnect), then waits for `ssh` to exit."""
    if s.proc.poll() is None:
        try:
            s.send(b"\r~.")
        except OSError:
            pass
    s.close()


def sim_login(s: Session) -> int:
    """Logs in to the simulator; returns the output offset after the first shell prompt."""
    s.send(b"\r")
    n = s.expect(rb"login: ")
    s.send(b"root\r")
    n = s.expect(rb"Password: ", n)
    s.send(b"secret\r")
    return s.expect(rb"root@sim:~# ", n)


def sim_echo(s: Session, since: int, word: str, timeout: float = 5.0) -> int:
    """Types `echo WORD` and waits for the shell's output line; returns the new offset."""
    s.send(f"echo {word}\r".encode())
    return s.expect(rb"\r\n" + re.escape(word.encode()) + rb"\r\n", since, timeout=timeout)
