"""Console logs on disk and replay on attach, with real clients.

Consoles here are unix sockets served by this process: `Counter` prints numbered lines without
pause (and can be paused), `Scripted` prints what the test tells it to. The server keeps each
console's log in `state_dir/console/<instance>/` with a small `[console_log] max_bytes`, so
rotations happen within a test.

- replay: OpenSSH and paramiko ask for the last lines through the username
  (`i-….port0.replay-lines=N`) and get them, then live output, with no line missing or repeated
  at the seam; without the suffix, nothing is replayed (as AWS);
- the log rotates at the first newline past `max_bytes`, also across a restart of the server;
- after a restart `aws ec2 get-console-output` still returns what the console printed before;
- `serialgate console-log` prints the log with escape sequences removed (or `--raw`), from a
  time (`--since`), and follows it across rotations (`--follow`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest
from conftest import _binary, _serve
from ssh_session import Session

REGION = "us-east-1"
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
COUNTER = "i-0c000000000000001"
SCRIPTED = "i-0c000000000000002"
MAX_BYTES = 256
KEEP_FILES = 3
TIMEOUT = 15.0

_AWS_SCRIPT = Path(sys.executable).with_name("aws")
AWS_CLI = [str(_AWS_SCRIPT)] if _AWS_SCRIPT.is_file() else [sys.executable, "-m", "awscli"]

LINE = re.compile(rb"line (\d+)\r\n")


class Console:
    """A unix-socket console that serves one client (the server's hub) at a time."""

    def __init__(self, path: Path):
        self.path = path
        self.cond = threading.Condition()
        self.client: socket.socket | None = None
        self.received = bytearray()
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
            with self.cond:
                self.client = conn
                self.cond.notify_all()
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket):
        # Reads what the user types (and notices the hub going away).
        with contextlib.suppress(OSError):
            while data := conn.recv(4096):
                with self.cond:
                    self.received += data
                    self.cond.notify_all()
        with self.cond:
            if self.client is conn:
                self.client = None
            self.cond.notify_all()

    def connected(self) -> socket.socket:
        with self.cond:
            assert self.cond.wait_for(lambda: self.client is not None, TIMEOUT), "the hub never connected"
            return self.client

    def wait_received(self, data: bytes):
        with self.cond:
            assert self.cond.wait_for(lambda: data in self.received, TIMEOUT), bytes(self.received)

    def close(self):
        self.sock.close()


class Counter(Console):
    """Prints `line N\r\n`, N counting up across connections, while running. A line is sent
    under the lock, so once `pause()` holds it no line is half sent."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.next = 0
        self.running = True
        threading.Thread(target=self._print, daemon=True).start()

    def _print(self):
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.running and self.client is not None)
                try:
                    self.client.sendall(b"line %d\r\n" % self.next)
                    self.next += 1
                except OSError:
                    pass
            time.sleep(0.001)

    def pause(self) -> int:
        """Stops printing; returns the number of the last line printed."""
        with self.cond:
            self.running = False
            return self.next - 1

    def resume(self):
        with self.cond:
            self.running = True
            self.cond.notify_all()


class Scripted(Console):
    def emit(self, data: bytes):
        self.connected().sendall(data)


def config_text(workdir: Path, counter: Counter, scripted: Scripted) -> str:
    return f"""
region = "{REGION}"
state_dir = "{workdir / 'state'}"

[[accounts]]
id = "111122223333"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
actions = ["*"]

[[instances]]
id = "{COUNTER}"
account = "111122223333"
console = "unix:{counter.path}"

[[instances]]
id = "{SCRIPTED}"
account = "111122223333"
console = "unix:{scripted.path}"

[sessions]
teardown_seconds = 1

[console_log]
max_bytes = {MAX_BYTES}
keep_files = {KEEP_FILES}

[throttle]
rate_per_second = 1000.0
burst = 1000
"""


@pytest.fixture
def env(tmp_path):
    """Consoles, a configuration and a server started on it (`start()` again after a stop)."""
    counter = Counter(tmp_path / "counter.sock")
    scripted = Scripted(tmp_path / "scripted.sock")
    config = tmp_path / "serialgate.toml"
    config.write_text(config_text(tmp_path, counter, scripted))
    # Made here, so the server fixture leaves it in place between a stop and a restart.
    (tmp_path / "state").mkdir(mode=0o700)
    stack = contextlib.ExitStack()

    def start():
        server = stack.enter_context(_serve("console-log", config, tmp_path))
        host_key = subprocess.run(
            [str(_binary()), "host-key", "--config", str(config), "--public-key-only"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout.strip()
        known_hosts = tmp_path / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{server.ssh_port} {host_key}\n")
        return server

    e = {
        "dir": tmp_path, "config": config, "counter": counter, "scripted": scripted,
        "known_hosts": tmp_path / "known_hosts", "start": start, "stack": stack,
    }
    e["server"] = start()
    try:
        yield e
    finally:
        stack.close()
        counter.close()
        scripted.close()


def log_dir(env, instance: str) -> Path:
    return env["dir"] / "state" / "console" / instance


def log_bytes(env, instance: str) -> bytes:
    """The whole kept log, oldest file first."""
    d = log_dir(env, instance)
    names = [f"console.log.{n}" for n in range(KEEP_FILES, 0, -1)] + ["console.log"]
    return b"".join((d / n).read_bytes() for n in names if (d / n).exists())


def wait_logged(env, instance: str, tail: bytes):
    deadline = time.monotonic() + TIMEOUT
    while not log_bytes(env, instance).endswith(tail):
        assert time.monotonic() < deadline, f"log never ended with {tail!r}: {log_bytes(env, instance)[-200:]!r}"
        time.sleep(0.02)


def aws(env, *args: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update(
        AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_MAX_ATTEMPTS="1", AWS_EC2_METADATA_DISABLED="true",
    )
    return subprocess.run(
        [*AWS_CLI, *args, "--endpoint-url", env["server"].url, "--region", REGION, "--output", "json"],
        env=e, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def push(env, instance: str, key: Path):
    r = aws(env, "ec2-instance-connect", "send-serial-console-ssh-public-key", "--instance-id", instance,
            "--serial-port", "0", "--ssh-public-key", f"file://{key}.pub")
    assert r.returncode == 0, r.stderr


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


def openssh(env, key: Path, user: str) -> Session:
    return Session([
        "ssh", "-F", "/dev/null", "-i", str(key), "-p", str(env["server"].ssh_port),
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={env['known_hosts']}",
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-tt",
        f"{user}@127.0.0.1",
    ])


def paramiko_channel(env, key: Path, user: str) -> tuple[paramiko.SSHClient, paramiko.Channel]:
    client = paramiko.SSHClient()
    client.load_host_keys(str(env["known_hosts"]))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1", port=env["server"].ssh_port, username=user,
        pkey=paramiko.Ed25519Key.from_private_key_file(str(key)),
        look_for_keys=False, allow_agent=False, timeout=TIMEOUT,
    )
    chan = client.invoke_shell()
    chan.settimeout(TIMEOUT)
    return client, chan


def read_lines(chan: paramiko.Channel, buf: bytearray, count: int) -> list[int]:
    """Reads until `buf` holds `count` whole lines; returns their numbers."""
    while len(LINE.findall(buf)) < count:
        data = chan.recv(4096)
        assert data, f"session ended early: {bytes(buf[-200:])!r}"
        buf += data
    return [int(n) for n in LINE.findall(buf)]


def assert_consecutive(numbers: list[int]):
    for a, b in zip(numbers, numbers[1:]):
        assert b == a + 1, f"gap or duplicate between line {a} and line {b}"


# --- replay -----------------------------------------------------------------------------------


def test_openssh_replay_joins_live_output_without_gap_or_duplicate(env, key):
    """The console prints without pause while the session starts: the replay and live output
    read as one run of consecutive lines, starting on a line."""
    # History to replay first.
    env["counter"].connected()
    deadline = time.monotonic() + TIMEOUT
    while len(LINE.findall(log_bytes(env, COUNTER))) < 50:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    push(env, COUNTER, key)
    s = openssh(env, key, f"{COUNTER}.port0.replay-lines=20")
    try:
        s.expect(rb"(line \d+\r\n){400}")
        with s.cond:
            out = bytes(s.out)
        assert out.startswith(b"line "), out[:80]
        numbers = [int(n) for n in LINE.findall(out)]
        assert_consecutive(numbers)
        assert numbers[0] > 0
    finally:
        s.proc.kill()
        s.close()


def test_paramiko_replays_exactly_the_last_lines_then_live(env, key):
    counter: Counter = env["counter"]
    counter.connected()
    last = counter.pause()
    # The hub has everything once the log (written after it) has the last line.
    wait_logged(env, COUNTER, b"line %d\r\n" % last)
    push(env, COUNTER, key)
    client, chan = paramiko_channel(env, key, f"{COUNTER}.port0.replay-lines=5")
    try:
        buf = bytearray()
        assert read_lines(chan, buf, 5) == list(range(last - 4, last + 1))
        assert buf.startswith(b"line %d\r\n" % (last - 4))
        counter.resume()
        numbers = read_lines(chan, buf, 100)
        assert numbers[:5] == list(range(last - 4, last + 1))
        assert_consecutive(numbers)
    finally:
        counter.resume()
        client.close()


def test_without_the_suffix_nothing_is_replayed(env, key):
    counter: Counter = env["counter"]
    counter.connected()
    last = counter.pause()
    wait_logged(env, COUNTER, b"line %d\r\n" % last)
    push(env, COUNTER, key)
    client, chan = paramiko_channel(env, key, f"{COUNTER}.port0")
    try:
        # Typing reaches the console only once the session is attached: output from then on
        # is the session's.
        chan.send(b"attached?")
        counter.wait_received(b"attached?")
        counter.resume()
        buf = bytearray()
        numbers = read_lines(chan, buf, 20)
        assert numbers[0] == last + 1, numbers[:3]
        assert buf.startswith(b"line %d\r\n" % (last + 1))
        assert_consecutive(numbers)
    finally:
        counter.resume()
        client.close()


def test_an_unknown_suffix_is_an_authentication_failure(env, key):
    push(env, COUNTER, key)
    for user in (f"{COUNTER}.port0.replay-lines=10001", f"{COUNTER}.port0.replay-lines=05",
                 f"{COUNTER}.port0.tail=5"):
        with pytest.raises(paramiko.AuthenticationException):
            paramiko_channel(env, key, user)
    # The grant was not spent: the right name still opens the session.
    client, chan = paramiko_channel(env, key, f"{COUNTER}.port0.replay-lines=1")
    try:
        assert read_lines(chan, bytearray(), 2)
    finally:
        client.close()


# --- the log on disk --------------------------------------------------------------------------


def row(i: int) -> bytes:
    return b"row %03d xxxxxxxxxxx\n" % i  # 20 bytes


def check_rotated(env, instance: str):
    """Every rotated file ended at the first newline past max_bytes, and is private."""
    d = log_dir(env, instance)
    assert oct(d.stat().st_mode & 0o777) == "0o700"
    rotated = [d / f"console.log.{n}" for n in range(1, KEEP_FILES) if (d / f"console.log.{n}").exists()]
    assert rotated, sorted(p.name for p in d.iterdir())
    for f in rotated + [d / "console.log"]:
        assert oct(f.stat().st_mode & 0o777) == "0o600", f
    for f in rotated:
        data = f.read_bytes()
        assert data.endswith(b"\n"), f
        assert MAX_BYTES <= len(data) < MAX_BYTES + 20, (f, len(data))
        # Its last newline is the first one at or past max_bytes.
        assert data.find(b"\n", MAX_BYTES - 1) == len(data) - 1, f


def test_rotation_at_the_boundary_and_across_a_restart_and_console_output_after_it(env):
    scripted: Scripted = env["scripted"]
    emitted = b"".join(row(i) for i in range(20))
    scripted.emit(emitted)
    wait_logged(env, SCRIPTED, row(19))
    check_rotated(env, SCRIPTED)
    assert emitted.endswith(log_bytes(env, SCRIPTED))

    # A restart: the log is kept, GetConsoleOutput serves it (the console prints nothing
    # new), and the current file goes on where it stopped.
    env["stack"].close()
    env["server"] = env["start"]()
    scripted.connected()
    r = aws(env, "ec2", "get-console-output", "--instance-id", SCRIPTED, "--latest")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["InstanceId"] == SCRIPTED
    assert out["Output"].encode() == emitted, out["Output"][-100:]
    r = aws(env, "ec2", "get-console-output", "--instance-id", SCRIPTED)
    assert json.loads(r.stdout)["Output"].encode() == emitted

    more = b"".join(row(i) for i in range(20, 40))
    scripted.emit(more)
    wait_logged(env, SCRIPTED, row(39))
    check_rotated(env, SCRIPTED)
    kept = log_bytes(env, SCRIPTED)
    assert (emitted + more).endswith(kept)
    assert kept.startswith(b"row "), kept[:40]
    # A file written on both sides of the restart.
    d = log_dir(env, SCRIPTED)
    assert any(row(19) in p.read_bytes() and row(20) in p.read_bytes() for p in d.glob("console.log*"))


# --- serialgate console-log ---------------------------------------------------------------------


def console_log(env, *args: str, **kw) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if not k.startswith("SERIALGATE_")}
    return subprocess.run(
        [str(_binary()), "console-log", SCRIPTED, "--config", str(env["config"]), *args],
        capture_output=True, env=e, timeout=30, **kw,
    )


def test_console_log_cli_strips_escapes_unless_raw_and_reads_since(env):
    scripted: Scripted = env["scripted"]
    scripted.emit(b"\x1b[1;32mgreen\x1b[0m \x1b]0;title\x07plain\r\n")
    wait_logged(env, SCRIPTED, b"plain\r\n")
    r = console_log(env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"green plain\r\n"
    r = console_log(env, "--raw")
    assert r.stdout == b"\x1b[1;32mgreen\x1b[0m \x1b]0;title\x07plain\r\n"
    assert console_log(env, "--since", "1h").stdout == b"green plain\r\n"
    # Nothing was written in the future.
    future = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    r = console_log(env, "--since", future)
    assert (r.returncode, r.stdout) == (0, b"")
    r = console_log(env, "--since", "yesterday")
    assert r.returncode != 0 and b"--since" in r.stderr
    # Output from a later second only: --since cuts at the index's second. Everything so far was
    # logged within the current second or before; the cut is the next one, and the new output
    # is printed once the clock has reached it.
    cut_s = int(time.time()) + 1
    cut = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(cut_s))
    while (left := cut_s - time.time()) > 0:
        time.sleep(left)
    scripted.emit(b"later\n")
    wait_logged(env, SCRIPTED, b"later\n")
    assert console_log(env, "--since", cut).stdout == b"later\n"


def test_console_log_follow_goes_on_across_rotations(env):
    scripted: Scripted = env["scripted"]
    scripted.emit(row(0))
    wait_logged(env, SCRIPTED, row(0))
    e = {k: v for k, v in os.environ.items() if not k.startswith("SERIALGATE_")}
    proc = subprocess.Popen(
        [str(_binary()), "console-log", SCRIPTED, "--config", str(env["config"]), "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
    )
    s = Session.__new__(Session)
    s.proc, s.out, s.err, s.cond = proc, bytearray(), bytearray(), threading.Condition()
    for stream, buf in ((proc.stdout, s.out), (proc.stderr, s.err)):
        threading.Thread(target=s._pump, args=(stream, buf), daemon=True).start()
    try:
        s.expect(re.escape(row(0)))
        # Several rotations (a file holds 13 rows), in bursts of less than a file each, so no
        # file is rotated away before the follower has read it.
        n = 0
        for start in range(1, 61, 10):
            scripted.emit(b"".join(row(i) for i in range(start, start + 10)))
            n = s.expect(re.escape(row(start + 9)), n)
        with s.cond:
            got = bytes(s.out)
        assert got == b"".join(row(i) for i in range(61))
    finally:
        proc.kill()
        proc.wait()
