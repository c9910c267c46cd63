"""The clients of a fault run: pushes with boto3 and serial sessions with OpenSSH.

Both report into a `History` (faults/history.py): every push with its outcome (acknowledged with
a request id, refused with an error code, or unknown when the connection broke), every session
with what its client saw (console output, notices, when the connection ended).

A session types lines tagged `S<session>:<seq>`; the fake console answers each with
`ack S<session>:<seq>`, so "the client saw console output" means it saw an ack of its own tag.
Every session has its own key pair, which makes its audit records findable by fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from faults.procs import AK, REGION, SK, Incarnation, Node

# The console notices the clients look for (the gateway's messages.rs).
LEASE_LOST = re.compile(rb"lost its (slot|hold on the console)")
SHUTDOWN = re.compile(rb"gateway is shutting down")

_session_ids = itertools.count(1)
_key_ids = itertools.count(1)


# --- keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    path: Path
    public: str
    fingerprint: str  # SHA256:…, as serialgate records it


def new_key(keydir: Path) -> Key:
    path = keydir / f"k{next(_key_ids)}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
                   check=True, timeout=30, stdin=subprocess.DEVNULL)
    public = Path(f"{path}.pub").read_text().strip()
    blob = base64.b64decode(public.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return Key(path, public, f"SHA256:{digest}")


# --- pushes ------------------------------------------------------------------------------------


@dataclass
class Push:
    node: str
    incarnation: int
    instance: str
    fingerprint: str
    started: float
    ended: float = 0.0
    outcome: str = "unknown"  # ok, an AWS error code, or unknown (no answer)
    request_id: str | None = None
    detail: str = ""

    @property
    def acked(self) -> bool:
        return self.outcome == "ok"


_clients = threading.local()


def _client(node: Node):
    """One boto3 client per thread and node: building one costs more than a push."""
    cache = getattr(_clients, "cache", None)
    if cache is None:
        cache = _clients.cache = {}
    c = cache.get(node.url)
    if c is None:
        c = boto3.session.Session().client(
            "ec2-instance-connect", endpoint_url=node.url, region_name=REGION,
            aws_access_key_id=AK, aws_secret_access_key=SK,
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=10),
        )
        cache[node.url] = c
    return c


def push(history, node: Node, instance: str, key: Key) -> Push:
    """One SendSerialConsoleSSHPublicKey call, recorded in `history`."""
    inc = node.current
    p = Push(node.name, inc.number if inc else 0, instance, key.fingerprint, time.monotonic())
    try:
        r = _client(node).send_serial_console_ssh_public_key(
            InstanceId=instance, SerialPort=0, SSHPublicKey=key.public)
        p.outcome = "ok" if r.get("Success") else "no-success"
        p.request_id = r.get("RequestId")
    except ClientError as e:
        p.outcome = e.response["Error"]["Code"]
        p.request_id = e.response.get("ResponseMetadata", {}).get("RequestId")
    except (BotoCoreError, OSError) as e:  # the node died under the call, or is down
        p.outcome = "unknown"
        p.detail = repr(e)
    p.ended = time.monotonic()
    history.pushes.append(p)
    return p


def push_until_ok(history, node: Node, instance: str, key: Key, timeout: float = 20.0) -> Push:
    """Pushes until one is acknowledged (a slot tearing down or a store outage refuses them)."""
    deadline = time.monotonic() + timeout
    while True:
        p = push(history, node, instance, key)
        if p.acked:
            return p
        if time.monotonic() > deadline:
            raise AssertionError(f"no push on {node.name} for {instance} was acknowledged within "
                                 f"{timeout:.0f} s; last: {p.outcome} {p.detail}")
        time.sleep(0.1)


# --- sessions ----------------------------------------------------------------------------------


@dataclass
class SessionRecord:
    """What the test knows of one SSH session, for the checker."""

    id: int
    node: str
    incarnation: Incarnation
    instance: str
    fingerprint: str
    started: float
    opened: float | None = None  # when the client first saw console output
    ended: float | None = None  # when the ssh client exited
    returncode: int | None = None
    sent: int = 0  # tagged lines typed
    acked: set = field(default_factory=set)
    lease_lost_notice: bool = False
    shutdown_notice: bool = False


class ConsoleSession:
    """`ssh -tt` to `<instance>.port0` on a node, through pipes: the client types tagged lines
    and reads the console's acks."""

    def __init__(self, history, node: Node, instance: str, key: Key):
        inc = node.current
        assert inc is not None
        self.node = node
        self.rec = SessionRecord(next(_session_ids), node.name, inc, instance, key.fingerprint, time.monotonic())
        history.sessions.append(self.rec)
        self.out = bytearray()
        self.err = bytearray()
        self.cond = threading.Condition()
        self._typing: threading.Thread | None = None
        self._stop_typing = threading.Event()
        self._write_lock = threading.RLock()
        args = [
            "ssh", "-F", "/dev/null", "-i", str(key.path), "-p", str(node.ssh_port),
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "KexAlgorithms=curve25519-sha256",
            "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=2", "-o", "ServerAliveCountMax=3",
            "-tt", f"{instance}.port0@127.0.0.1",
        ]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._pumps = [threading.Thread(target=self._pump, args=(s, b), daemon=True)
                       for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._pumps:
            t.start()
        threading.Thread(target=self._reap, daemon=True).start()

    @property
    def id(self) -> int:
        return self.rec.id

    def _pump(self, stream, buf: bytearray) -> None:
        ack = re.compile(rb"ack S%d:(\d+)\r\n" % self.rec.id)
        scanned = 0
        while True:
            try:
                chunk = stream.read1(4096)
            except (OSError, ValueError):
                chunk = b""
            with self.cond:
                if chunk:
                    buf += chunk
                if buf is self.out:
                    for m in ack.finditer(self.out, max(0, scanned - 32)):
                        self.rec.acked.add(int(m.group(1)))
                        if self.rec.opened is None:
                            self.rec.opened = time.monotonic()
                    scanned = len(self.out)
                    if LEASE_LOST.search(self.out):
                        self.rec.lease_lost_notice = True
                    if SHUTDOWN.search(self.out):
                        self.rec.shutdown_notice = True
                self.cond.notify_all()
            if not chunk:
                return

    def _reap(self) -> None:
        code = self.proc.wait()
        for t in self._pumps:
            t.join(timeout=5)
        with self.cond:
            self.rec.returncode = code
            self.rec.ended = time.monotonic()
            self.cond.notify_all()

    # --- waiting -----------------------------------------------------------------------------

    def wait(self, what: str, pred, timeout: float) -> bool:
        """Waits until `pred()` (under the lock) holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def alive(self) -> bool:
        return self.rec.ended is None

    def open(self, timeout: float = 15.0) -> bool:
        """Types a first line and waits for its ack; False when the session ended first (the
        slot was busy, the key refused, the node died) or nothing came in time. The line is
        typed again every 2 s: in a cluster the console may be changing owners when the session
        starts, and what is typed while the console is away is not kept."""
        deadline = time.monotonic() + timeout
        while True:
            self.type_line()
            left = deadline - time.monotonic()
            done = lambda: self.rec.opened is not None or self.rec.ended is not None  # noqa: E731
            if self.wait("console output", done, min(2.0, max(0.0, left))) or left <= 2.0:
                return self.rec.opened is not None

    def wait_ended(self, timeout: float = 15.0) -> bool:
        return self.wait("the end", lambda: self.rec.ended is not None, timeout)

    def wait_acked(self, seq: int, timeout: float = 15.0) -> bool:
        return self.wait(f"ack {seq}", lambda: seq in self.rec.acked or self.rec.ended is not None, timeout) \
            and seq in self.rec.acked

    def text(self) -> str:
        with self.cond:
            return (bytes(self.out) + b"\n--- stderr ---\n" + bytes(self.err)).decode(errors="replace")

    # --- typing ------------------------------------------------------------------------------

    def _write(self, data: bytes) -> bool:
        with self._write_lock:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
                return True
            except (OSError, ValueError):
                return False

    def type_line(self) -> int | None:
        """Types the next tagged line; returns its sequence number (None if the client is gone)."""
        with self._write_lock:
            seq = self.rec.sent
            self.rec.sent += 1
        return seq if self._write(b"S%d:%d\r" % (self.rec.id, seq)) else None

    def start_typing(self, every: float = 0.05) -> None:
        """Keeps typing a line every `every` seconds until the client ends or stop_typing()."""
        def loop():
            while not self._stop_typing.is_set() and self.alive():
                if self.type_line() is None:
                    return
                self._stop_typing.wait(every)
        self._typing = threading.Thread(target=loop, daemon=True)
        self._typing.start()

    def stop_typing(self) -> None:
        self._stop_typing.set()
        if self._typing is not None:
            self._typing.join(timeout=5)

    # --- ending ------------------------------------------------------------------------------

    def leave(self, how: str = "escape") -> None:
        """Asks to end the session from the client, without waiting: OpenSSH's `~.` escape, or
        a hang-up (the client is terminated and its connection closes)."""
        self.stop_typing()
        if not self.alive():
            return
        if how == "escape":
            self._write(b"\r~.")
        else:
            self.proc.terminate()

    def close(self, how: str = "escape", timeout: float = 15.0) -> None:
        """Ends the session from the client (see `leave`) and waits for the client to exit."""
        self.leave(how)
        if not self.wait_ended(timeout):
            self.kill()

    def kill(self) -> None:
        self._stop_typing.set()
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait_ended(10)
