"""The whole flow with real clients: push a key with the AWS CLI, connect with OpenSSH's `ssh`
(host key pinned from `serialgate host-key`, StrictHostKeyChecking=yes), read the console, type,
send a BREAK with the escape sequence, and check what a serial console must refuse.

Consoles: the built-in simulator (`sim:`), a raw unix socket and a telnet-mode unix socket, the
last two served by fake consoles in this process that record what they receive.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import DESIGN_EXAMPLE, _binary, _serve
from ssh_session import Session

REGION = "us-east-1"
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SIM = "i-0e000000000000001"
UNIX = "i-0e000000000000002"
TELNET = "i-0e000000000000003"
TIMEOUT = 15.0

_AWS_SCRIPT = Path(sys.executable).with_name("aws")
AWS_CLI = [str(_AWS_SCRIPT)] if _AWS_SCRIPT.is_file() else [sys.executable, "-m", "awscli"]


class FakeConsole:
    """A unix-socket console: sends a banner, echoes what it gets (telnet: strips IAC commands),
    and records every byte and every telnet BREAK it receives."""

    def __init__(self, path: Path, telnet: bool):
        self.path, self.telnet = path, telnet
        self.received = bytearray()
        self.breaks = 0
        self.lock = threading.Lock()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        with conn:
            try:
                if self.telnet:
                    conn.sendall(b"\xff\xfb\x01\xff\xfb\x03")  # WILL ECHO, WILL SGA, as QEMU does
                conn.sendall(b"fake console ready\r\n")
            except OSError:
                return  # a reachability probe: connect and close
            pending = b""
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                data = pending + data
                pending = b""
                out = bytearray()
                i = 0
                while i < len(data):
                    b = data[i]
                    if self.telnet and b == 0xFF:
                        if i + 1 >= len(data):
                            pending = data[i:]
                            break
                        cmd = data[i + 1]
                        if cmd == 0xF3:
                            with self.lock:
                                self.breaks += 1
                            i += 2
                        elif cmd == 0xFF:
                            out.append(0xFF)
                            i += 2
                        elif cmd in (0xFB, 0xFC, 0xFD, 0xFE):
                            i += 3
                        else:
                            i += 2
                        continue
                    out.append(b)
                    i += 1
                with self.lock:
                    self.received += out
                if out:
                    with contextlib.suppress(OSError):
                        conn.sendall(bytes(out).replace(b"\xff", b"\xff\xff") if self.telnet else bytes(out))

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("ssh")
    unix = FakeConsole(workdir / "raw.sock", telnet=False)
    telnet = FakeConsole(workdir / "telnet.sock", telnet=True)
    config = workdir / "ssh.toml"
    text = DESIGN_EXAMPLE.read_text().replace('state_dir = "/var/lib/serialgate"', f'state_dir = "{workdir / "state"}"')
    config.write_text(
        text
        + f"""
[[instances]]
id = "{SIM}"
account = "111122223333"
console = "sim:"

[[instances]]
id = "{UNIX}"
account = "111122223333"
console = "unix:{unix.path}"

[[instances]]
id = "{TELNET}"
account = "111122223333"
console = "unix+telnet:{telnet.path}"

[sessions]
teardown_seconds = 1

[throttle]
rate_per_second = 1000.0
burst = 1000
"""
    )
    with _serve("ssh", config, workdir) as server:
        host_key = subprocess.run(
            [str(_binary()), "host-key", "--config", str(config), "--public-key-only"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{server.ssh_port} {host_key}\n")
        yield {"server": server, "known_hosts": known_hosts, "unix": unix, "telnet": telnet, "dir": workdir}
    unix.close()
    telnet.close()


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


def push(gw, instance: str, key: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=AK,
        AWS_SECRET_ACCESS_KEY=SK,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_MAX_ATTEMPTS="1",
    )
    r = subprocess.run(
        [*AWS_CLI, "ec2-instance-connect", "send-serial-console-ssh-public-key",
         "--endpoint-url", gw["server"].url, "--region", REGION, "--instance-id", instance,
         "--serial-port", "0", "--ssh-public-key", f"file://{key}.pub"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    assert '"Success": true' in r.stdout


def ssh_args(gw, key: Path, user: str, *extra: str) -> list[str]:
    return [
        "ssh", "-F", "/dev/null", "-i", str(key), "-p", str(gw["server"].ssh_port),
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={gw['known_hosts']}",
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "KexAlgorithms=curve25519-sha256",
        "-o", "ConnectTimeout=10", *extra, f"{user}@127.0.0.1",
    ]


def test_sim_console_login_type_break_and_leave(gateway, key):
    push(gateway, SIM, key)
    s = Session(ssh_args(gateway, key, f"{SIM}.port0", "-tt"))
    try:
        s.send(b"\r")
        n = s.expect(rb"sim login: ")
        s.send(b"root\r")
        n = s.expect(rb"Password: ", n)
        s.send(b"secret\r")
        n = s.expect(rb"root@sim:~# ", n)
        s.send(b"uname -r\r")
        n = s.expect(rb"uname -r\r\n6\.1\.0-sim\r\n", n)
        # OpenSSH's own escape turns ~~ into ~, so the gateway sees Enter ~B: a BREAK.
        s.send(b"\r~~B")
        time.sleep(0.3)
        s.send(b"h")
        n = s.expect(rb"sysrq: HELP : loglevel", n)
        s.send(b"\rsysrq-count\r")
        n = s.expect(rb"sysrq-count\r\n1\r\n", n)
        # Enter ~. is OpenSSH's disconnect.
        s.send(b"\r~.")
        assert s.close() in (0, 255)
    finally:
        s.close()
    # The session has ended: during teardown a new push is refused, then accepted again.


def test_unix_console_echo_and_break_unsupported(gateway, key):
    fake: FakeConsole = gateway["unix"]
    push(gateway, UNIX, key)
    s = Session(ssh_args(gateway, key, f"{UNIX}.port0", "-tt"))
    try:
        # The console was connected (and printed its banner into the history) before the
        # session: the session starts with what the console says from now on.
        s.send(b"hello serial\r")
        n = s.expect(rb"hello serial")
        before = len(fake.received)
        s.send(b"\r~~B")
        n = s.expect(rb"cannot carry a BREAK", n)
        # The BREAK was not turned into bytes on a console that cannot carry it.
        s.send(b"x")
        s.expect(rb"x", n)
        with fake.lock:
            assert bytes(fake.received[before:]) == b"\rx"
        s.send(b"\r~.")
    finally:
        s.close()


def test_telnet_console_receives_iac_break(gateway, key):
    fake: FakeConsole = gateway["telnet"]
    push(gateway, TELNET, key)
    s = Session(ssh_args(gateway, key, f"{TELNET}.port0", "-tt"))
    try:
        s.send(b"\xff literal\r")  # 0xFF must reach the console as a data byte
        n = s.expect(rb"literal")
        with fake.lock:
            breaks_before = fake.breaks
        s.send(b"\r~~B")
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            with fake.lock:
                if fake.breaks > breaks_before:
                    break
            time.sleep(0.05)
        with fake.lock:
            assert fake.breaks == breaks_before + 1
            assert b"\xff literal" in fake.received
        s.send(b"\r~.")
    finally:
        s.close()


def test_exec_is_refused(gateway, key):
    push(gateway, SIM, key)
    time.sleep(0)  # a fresh grant; the previous test's session on SIM may be tearing down
    r = subprocess.run(ssh_args(gateway, key, f"{SIM}.port0") + ["uname", "-a"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "not supported" in r.stderr


def test_wrong_key_and_unknown_instance_are_plain_permission_denied(gateway, key, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30)
    push(gateway, UNIX, key)
    for k, user in ((other, f"{UNIX}.port0"), (key, f"{UNIX}.port1"), (key, "i-0fffffffffffffff0.port0"), (key, "root")):
        r = subprocess.run(ssh_args(gateway, k, user) + ["-T"], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 255, (user, r.stderr)
        assert "Permission denied (publickey)" in r.stderr, (user, r.stderr)


def test_host_key_mismatch_is_refused(gateway, key, tmp_path):
    push(gateway, UNIX, key)
    wrong = tmp_path / "known_hosts"
    other = tmp_path / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30)
    wrong.write_text(f"[127.0.0.1]:{gateway['server'].ssh_port} {Path(str(other) + '.pub').read_text()}")
    args = ssh_args(gateway, key, f"{UNIX}.port0", "-T")
    args[args.index(f"UserKnownHostsFile={gateway['known_hosts']}")] = f"UserKnownHostsFile={wrong}"
    r = subprocess.run(args, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 255
    assert "HOST IDENTIFICATION HAS CHANGED" in r.stderr or "Host key verification failed" in r.stderr


def test_second_session_is_refused_with_the_aws_message(gateway, key, tmp_path):
    push(gateway, UNIX, key)
    first = Session(ssh_args(gateway, key, f"{UNIX}.port0", "-tt"))
    try:
        first.send(b"ping\r")
        first.expect(rb"ping")
        # While connected, pushes are refused.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_MAX_ATTEMPTS="1")
        r = subprocess.run(
            [*AWS_CLI, "ec2-instance-connect", "send-serial-console-ssh-public-key", "--endpoint-url",
             gateway["server"].url, "--region", REGION, "--instance-id", UNIX, "--ssh-public-key", f"file://{key}.pub"],
            env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode != 0
        assert "SerialConsoleSessionLimitExceededException" in r.stderr
        first.send(b"\r~.")
    finally:
        first.close()
    assert shutil.which("ssh")


def test_gateway_escape_works_after_a_terminal_reply(gateway, key):
    """busybox ash asks the terminal for the cursor position at every prompt, so the reply
    (`ESC [ row ; col R`) arrives between the user's Enter and the escape. The gateway passes it
    to the console and still reads the escape. With `-e none` OpenSSH sends every byte as is."""
    fake: FakeConsole = gateway["telnet"]
    push(gateway, TELNET, key)
    s = Session(ssh_args(gateway, key, f"{TELNET}.port0", "-tt", "-e", "none"))
    try:
        s.send(b"ready\r")
        n = s.expect(rb"ready")
        s.send(b"\r\x1b[24;1R~?")
        n = s.expect(rb"Supported escape sequences", n)
        s.send(b"\r\x1b[24;1R~.")
        # stdin stays open: the session ends because the gateway read the disconnect.
        assert s.proc.wait(timeout=TIMEOUT) is not None
        with fake.lock:
            received = bytes(fake.received)
        assert b"\x1b[24;1R" in received, received
        assert b"~" not in received, received
    finally:
        s.close()
