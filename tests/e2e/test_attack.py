"""The attack suite: what an unauthenticated (or under-privileged) client can try against the
built binary, each test with its own `serialgate serve` configured for it.

* Oversized `Authorization` headers (a SignedHeaders list of ~300 KB of distinct names, a 1 MB
  value) are refused within 50 ms while `/health` keeps answering.
* Slowloris and an idle-connection flood from one address, the server under `ulimit -n 1024`,
  leave `/health`, new pushes, new sessions and an already open session working; the dribbling
  connections are closed by the header timeout.
* Per-address caps on both listeners refuse the excess at once and spare other addresses.
* An `exec:` console that exits at once is respawned with backoff, and the session is told.
* Credentials get what they are documented to get, and another account's instance does not
  exist for the caller.
* `state_dir` and what serialgate writes into it are private whatever the umask.
* An `exec:` console's environment holds no secret.

The attacker binds its sockets to 127.0.0.2, the legitimate clients use 127.0.0.1 (see hostile.py).
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from hostile import (
    ATTACKER_IP,
    LEGIT_IP,
    HealthProbe,
    amz_date,
    assert_no_panic,
    cli_error,
    cli_ok,
    connect_from,
    end_session,
    aws_cli,
    ec2,
    eic,
    forged_push,
    known_hosts,
    new_key,
    raise_own_nofile,
    raw_http,
    serve,
    sim_echo,
    sim_login,
    ssh_session,
    wait_for_log,
)

ACCOUNT = "111100002222"
OWNER = ("AKIAATTACKSUITE00001", "attack-suite-owner-secret")
SIM = "i-0a7000000000000001"
SIM2 = "i-0a7000000000000002"

# Every figure the header tests send, in one place.
# A refusal's best of three stays under this; the quadratic parse it guards against took 20 s,
# so the margin absorbs a loaded shared machine without hiding the defect.
REFUSE_WITHIN_S = 0.5
QUADRATIC_NAMES = 34_000  # "x-000000;" each: about 300 KB
MEGABYTE = 1 << 20


def config(workdir: Path, *, api: str = "", ssh: str = "", body: str = "", credential: str = "") -> str:
    """A small configuration: one account, its owner key, two simulator instances."""
    return f"""
region = "us-east-1"
state_dir = "{workdir / 'state'}"

[api]
{api}

[ssh]
{ssh}

[sessions]
teardown_seconds = 1

[throttle]
rate_per_second = 1000.0
burst = 1000

[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{OWNER[0]}"
secret_access_key = "{OWNER[1]}"
{credential}

[[instances]]
id = "{SIM}"
account = "{ACCOUNT}"
console = "sim:"

[[instances]]
id = "{SIM2}"
account = "{ACCOUNT}"
console = "sim:"
{body}
"""


def push(server, instance: str, key: Path, creds=OWNER) -> None:
    resp = eic(server, creds).send_serial_console_ssh_public_key(
        InstanceId=instance, SerialPort=0, SSHPublicKey=Path(f"{key}.pub").read_text()
    )
    assert resp["Success"] is True, resp


# --- oversized Authorization headers ---------------------------------------------------------


def quadratic_authorization(day: str) -> str:
    """Well-formed but for its ~300 KB SignedHeaders list of distinct, sorted names; the access
    key is unknown. The duplicate check used to compare every pair of names."""
    names = ";".join(f"x-{i:06d}" for i in range(QUADRATIC_NAMES))
    return (
        f"AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNATTACKER1/{day}/us-east-1/ec2-instance-connect/aws4_request, "
        f"SignedHeaders={names}, Signature={'0' * 64}"
    )


def megabyte_authorization(day: str) -> str:
    return (
        f"AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNATTACKER1/{day}/us-east-1/ec2-instance-connect/aws4_request, "
        f"SignedHeaders=host;x-amz-date;x-amz-target, Signature={'a' * MEGABYTE}"
    )


def many_signed_headers(day: str) -> str:
    """129 names (one over the cap) in a header of under 2 KB."""
    names = ";".join(f"x-{i:03d}" for i in range(129))
    return (
        f"AWS4-HMAC-SHA256 Credential=AKIAUNKNOWNATTACKER1/{day}/us-east-1/ec2-instance-connect/aws4_request, "
        f"SignedHeaders={names}, Signature={'0' * 64}"
    )


def refused_by_header_cap(r) -> bool:
    """What hyper does with a header section over the cap: a 431 and a close; when the client is
    still sending, the close may reset the connection before the 431 can be read."""
    return r.status == 431 or (r.status is None and not r.body)


def attempts(server, make_auth, n: int = 3):
    """`n` timed attempts, each on a fresh connection."""
    out = []
    for _ in range(n):
        date, day = amz_date()
        out.append(raw_http(server.api_port, forged_push(server.api_port, make_auth(day), date), source_ip=ATTACKER_IP))
    return out


def hammer(server, make_auth, rounds: int, errors: list) -> threading.Thread:
    """A background attacker sending the same request `rounds` times."""

    def run():
        date, day = amz_date()
        request = forged_push(server.api_port, make_auth(day), date)
        for _ in range(rounds):
            try:
                raw_http(server.api_port, request, source_ip=ATTACKER_IP, timeout=30)
            except OSError as e:
                errors.append(repr(e))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_huge_authorization_headers_hit_the_header_cap_fast(tmp_path):
    """Default limits: the header section is over `max_header_bytes`, refused before any parsing."""
    with serve("header-cap", config(tmp_path), tmp_path) as server, HealthProbe(server) as probe:
        errors: list = []
        background = [hammer(server, quadratic_authorization, 5, errors), hammer(server, megabyte_authorization, 5, errors)]
        for make_auth in (quadratic_authorization, megabyte_authorization):
            results = attempts(server, make_auth)
            for r in results:
                assert refused_by_header_cap(r), (make_auth.__name__, r.status, r.head[:200], r.body[:200], r.error)
            best = min(r.elapsed for r in results)
            assert best <= REFUSE_WITHIN_S, f"{make_auth.__name__}: best of 3 took {best * 1000:.1f} ms"
        # Over the signed-header cap, in a header small enough to be parsed: an AWS error.
        for r in attempts(server, many_signed_headers):
            assert r.status == 400, (r.status, r.head, r.body)
            assert r.json()["__type"].endswith("IncompleteSignatureException"), r.body
            assert "128" in r.json()["message"], r.body
        for t in background:
            t.join(timeout=60)
        assert not errors, errors
    # Refusals are quick, so the attack may be over after a probe or two: each had to answer.
    probe.check(min_probes=1)
    assert_no_panic(server)


def test_huge_authorization_headers_reach_the_verifier_and_are_refused_fast(tmp_path):
    """With the header cap raised out of the way, the verifier's own caps (8192-byte
    Authorization, 128 signed headers) refuse the same requests with an AWS error, in linear
    time: no quadratic scan of the list."""
    text = config(tmp_path, api=f"max_header_bytes = {4 * MEGABYTE}")
    with serve("verifier-caps", text, tmp_path) as server, HealthProbe(server) as probe:
        errors: list = []
        background = [hammer(server, quadratic_authorization, 5, errors), hammer(server, quadratic_authorization, 5, errors)]
        for make_auth in (quadratic_authorization, megabyte_authorization):
            results = attempts(server, make_auth)
            for r in results:
                assert r.status == 400, (make_auth.__name__, r.status, r.head[:200], r.body[:300], r.error)
                body = r.json()
                assert body["__type"].endswith("IncompleteSignatureException"), body
                assert "8192" in body["message"], body
                # The refusal does not echo the attacker's megabyte back.
                assert len(r.body) < 4096, len(r.body)
            best = min(r.elapsed for r in results)
            assert best <= REFUSE_WITHIN_S, f"{make_auth.__name__}: best of 3 took {best * 1000:.1f} ms"
        for t in background:
            t.join(timeout=60)
        assert not errors, errors
    # Refusals are quick, so the attack may be over after a probe or two: each had to answer.
    probe.check(min_probes=1)
    assert_no_panic(server)


# --- slowloris and an idle flood under ulimit -n 1024 ----------------------------------------


class Slowloris:
    """`n` connections from `source_ip` that send a request line, then one header line a second,
    never finishing the header section. Records when the server closed each one."""

    def __init__(self, port: int, n: int, source_ip: str, interval: float = 1.0):
        self.interval = interval
        self.socks: list[socket.socket] = []
        self.opened = time.monotonic()
        self.closed_after: dict[int, float] = {}
        self._stop = threading.Event()
        for i in range(n):
            s = connect_from(source_ip, port)
            s.sendall(f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
            s.setblocking(False)
            self.socks.append(s)
        self.opened = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _mark_closed(self, i: int) -> None:
        self.closed_after.setdefault(i, time.monotonic() - self.opened)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for i, s in enumerate(self.socks):
            sel.register(s, selectors.EVENT_READ, i)
        line = 0
        next_dribble = time.monotonic() + self.interval
        while not self._stop.is_set() and len(self.closed_after) < len(self.socks):
            for key, _ in sel.select(timeout=max(0.0, next_dribble - time.monotonic())):
                i = key.data
                try:
                    data = self.socks[i].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # closed (an answer such as 408 first is fine: read on to the close)
                    self._mark_closed(i)
                    sel.unregister(self.socks[i])
            if time.monotonic() >= next_dribble:
                line += 1
                for i, s in enumerate(self.socks):
                    if i in self.closed_after:
                        continue
                    try:
                        s.send(f"X-Slow-{line}: {'y' * 8}\r\n".encode())
                    except BlockingIOError:
                        pass
                    except OSError:
                        self._mark_closed(i)
                        with_suppress_unregister(sel, s)
                next_dribble += self.interval
        sel.close()

    def wait_all_closed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.closed_after) == len(self.socks):
                return True
            time.sleep(0.05)
        return len(self.closed_after) == len(self.socks)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for s in self.socks:
            s.close()


def with_suppress_unregister(sel, s) -> None:
    try:
        sel.unregister(s)
    except (KeyError, ValueError):
        pass


def idle_flood(port: int, n: int, source_ip: str) -> list[socket.socket]:
    """`n` connections from `source_ip` that never send a byte (non-blocking connects: those the
    server refuses at its cap are simply closed, as any flood's would be)."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((source_ip, 0))
        s.connect_ex((LEGIT_IP, port))
        socks.append(s)
    return socks


SLOWLORIS = 100
IDLE_PER_LISTENER = 1000  # 2,000 idle connections in all
FLOOD_BATCH = 100
API_PER_IP = 128
SSH_UNAUTH_PER_IP = 64


def wait_refused(socks: list[socket.socket], at_least: int, timeout: float = 10.0) -> int:
    """Waits until the server has closed `at_least` of `socks` (EOF or reset; an SSH banner
    first is fine); returns how many it closed."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + timeout
    try:
        while closed < at_least and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
                try:
                    data = key.fileobj.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:
                    closed += 1
                    sel.unregister(key.fileobj)
    finally:
        sel.close()
    return closed


def test_slowloris_and_idle_flood_leave_the_server_working(tmp_path):
    raise_own_nofile(4096)
    text = config(
        tmp_path,
        api=f"header_read_timeout_seconds = 2\nmax_connections_per_ip = {API_PER_IP}",
        ssh=f"max_connections_per_ip = 128\nmax_unauthenticated_per_ip = {SSH_UNAUTH_PER_IP}",
    )
    with serve("flood", text, tmp_path, nofile=1024) as server:
        key = new_key(tmp_path)
        known = known_hosts(server, tmp_path)
        push(server, SIM, key)
        session = ssh_session(server, key, known, SIM)
        flood: list[socket.socket] = []
        slow = None
        try:
            n = sim_login(session)
            n = sim_echo(session, n, "before-the-attack")
            with HealthProbe(server) as probe:
                slow = Slowloris(server.api_port, SLOWLORIS, ATTACKER_IP)
                # The flood comes in batches smaller than the listen backlog, each answered
                # before the next: what is over the per-address caps is refused at once.
                for port, room in ((server.api_port, API_PER_IP - SLOWLORIS), (server.ssh_port, SSH_UNAUTH_PER_IP)):
                    for _ in range(IDLE_PER_LISTENER // FLOOD_BATCH):
                        batch = idle_flood(port, FLOOD_BATCH, ATTACKER_IP)
                        flood += batch
                        admitted = min(room, FLOOD_BATCH)
                        room -= admitted
                        refused = wait_refused(batch, FLOOD_BATCH - admitted)
                        assert refused >= FLOOD_BATCH - admitted, (port, refused, admitted)
                # While all of it is open: the open session, a new push, a new session.
                n = sim_echo(session, n, "during-the-attack")
                push(server, SIM2, key)
                second = ssh_session(server, key, known, SIM2)
                try:
                    second.send(b"\r")
                    second.expect(rb"login: ")
                finally:
                    end_session(second)
                # The header timeout (2 s) closes every dribbling connection.
                all_closed = slow.wait_all_closed(timeout=12)
                n = sim_echo(session, n, "after-the-slowloris")
            probe.check()
            assert all_closed, f"{SLOWLORIS - len(slow.closed_after)} slowloris connections still open after 12 s"
            # They were admitted and then timed out, not refused at the door.
            lasted = sorted(slow.closed_after.values())
            assert lasted[len(lasted) // 2] >= 1.0, f"slowloris connections closed after {lasted[:5]}…{lasted[-5:]} s"
            assert lasted[-1] <= 2 + 8, lasted[-5:]
        finally:
            if slow:
                slow.close()
            for s in flood:
                s.close()
        n = sim_echo(session, n, "after-the-attack")
        end_session(session)
        assert_no_panic(server)


# --- per-address caps -------------------------------------------------------------------------


def read_until(s: socket.socket, marker: bytes, timeout: float) -> bytes:
    s.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf and time.monotonic() < deadline:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


def closed_at_once(s: socket.socket, within: float = 1.0, request: bytes | None = None) -> tuple[bool, float, bytes]:
    """Whether the server closes `s` within `within` seconds (EOF or reset)."""
    t0 = time.monotonic()
    data = b""
    s.settimeout(within)
    try:
        if request:
            s.sendall(request)
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return True, time.monotonic() - t0, data
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return True, time.monotonic() - t0, data
    except TimeoutError:
        return False, time.monotonic() - t0, data


def test_ssh_per_address_cap_refuses_the_excess_and_spares_other_addresses(tmp_path):
    text = config(tmp_path, ssh="max_connections_per_ip = 4\nlogin_grace_seconds = 60")
    with serve("ssh-cap", text, tmp_path) as server:
        key = new_key(tmp_path)
        known = known_hosts(server, tmp_path)
        push(server, SIM, key)
        session = ssh_session(server, key, known, SIM)
        held: list[socket.socket] = []
        try:
            n = sim_login(session)
            for _ in range(4):
                s = connect_from(ATTACKER_IP, server.ssh_port)
                held.append(s)
                assert b"SSH-2.0-" in read_until(s, b"\r\n", 5), "a connection under the cap gets the banner"
            for _ in range(5):
                with connect_from(ATTACKER_IP, server.ssh_port) as s:
                    closed, took, data = closed_at_once(s)
                    assert closed, f"connection over the cap still open after {took:.1f} s (got {data!r})"
            # The open session and new ones from another address are untouched.
            n = sim_echo(session, n, "under-the-cap")
            push(server, SIM2, key)
            second = ssh_session(server, key, known, SIM2)
            try:
                second.send(b"\r")
                second.expect(rb"login: ")
            finally:
                end_session(second)
            # The cap counts open connections: one closed, one more is admitted.
            held.pop().close()
            deadline = time.monotonic() + 5
            admitted = False
            while not admitted and time.monotonic() < deadline:
                with connect_from(ATTACKER_IP, server.ssh_port) as s:
                    admitted = b"SSH-2.0-" in read_until(s, b"\r\n", 1)
            assert admitted, "a freed slot was not given to the next connection"
            n = sim_echo(session, n, "still-there")
        finally:
            for s in held:
                s.close()
            end_session(session)
        assert_no_panic(server)


def test_api_per_address_cap_refuses_the_excess_and_spares_other_addresses(tmp_path):
    text = config(tmp_path, api="max_connections_per_ip = 4")
    health = f"GET /health HTTP/1.1\r\nHost: {LEGIT_IP}\r\n\r\n".encode()
    with serve("api-cap", text, tmp_path) as server:
        key = new_key(tmp_path)
        held: list[socket.socket] = []
        try:
            for _ in range(4):
                s = connect_from(ATTACKER_IP, server.api_port)
                s.sendall(health)
                assert read_until(s, b'"ok"', 5).startswith(b"HTTP/1.1 200"), "under the cap: served"
                held.append(s)  # kept alive, idle
            for _ in range(5):
                with connect_from(ATTACKER_IP, server.api_port) as s:
                    closed, took, data = closed_at_once(s, request=health)
                    assert closed and not data.startswith(b"HTTP/1.1 200"), (closed, took, data)
            with HealthProbe(server) as probe:
                push(server, SIM, key)
            probe.check(min_probes=1)
            held.pop().close()
            deadline = time.monotonic() + 5
            served = False
            while not served and time.monotonic() < deadline:
                with connect_from(ATTACKER_IP, server.api_port) as s:
                    try:
                        s.sendall(health)
                        served = read_until(s, b'"ok"', 1).startswith(b"HTTP/1.1 200")
                    except OSError:
                        pass
            assert served, "a freed slot was not given to the next connection"
        finally:
            for s in held:
                s.close()
        assert_no_panic(server)


# --- exec: respawn backoff --------------------------------------------------------------------


def told_restarting(session, timeout: float = 0.0) -> bool:
    """Whether the session has been told that the console command is being restarted."""
    try:
        session.expect(rb"console command exited; restarting", timeout=timeout)
        return True
    except AssertionError:
        return False


EXEC = "i-0a7000000000000e01"


def test_exec_console_that_exits_at_once_is_respawned_with_backoff(tmp_path):
    spawns = tmp_path / "spawns"
    body = f"""
[[instances]]
id = "{EXEC}"
account = "{ACCOUNT}"
console = 'exec:/bin/sh -c "echo x >> {spawns}"'
"""
    with serve("exec-backoff", config(tmp_path, body=body), tmp_path) as server:
        key = new_key(tmp_path)
        known = known_hosts(server, tmp_path)
        push(server, EXEC, key)
        session = ssh_session(server, key, known, EXEC)
        try:
            started = time.monotonic()
            deadline = started + 15
            while not (spawns.exists() and spawns.read_text()) and time.monotonic() < deadline:
                time.sleep(0.02)
            # The session lasts about 10 s: that is what this test is about.
            time.sleep(max(0.0, started + 10.0 - time.monotonic()))
            during = len(spawns.read_text().splitlines()) if spawns.exists() else 0
            told = told_restarting(session)
        finally:
            end_session(session)
        # 100 ms doubling to 5 s: spawns at 0, 0.1, 0.3, 0.7, 1.5, 3.1, 6.3 s: about 7 in 10 s.
        assert 3 <= during <= 12, f"{during} spawns in a 10 s session"
        assert told, f"the session was not told; it saw {bytes(session.out[-500:])!r}"
        assert_no_panic(server)


# --- the credential matrix --------------------------------------------------------------------


OTHER_ACCOUNT = "444400005555"
PLAIN = ("AKIAATTACKPLAIN00001", "attack-plain-secret")
SCOPED = ("AKIAATTACKSCOPED0001", "attack-scoped-secret")
SCOPED_ONLY = ("AKIAATTACKSCOPED0002", "attack-scoped-only-secret")
OTHER = ("AKIAATTACKOTHER00001", "attack-other-secret")
SCOPED_SIM = "i-0a71000000000000a1"
OTHERS = "i-0b7000000000000001"
UNKNOWN = "i-0a7000000000dead01"

MATRIX = f"""
[[accounts.credentials]]
access_key_id = "{PLAIN[0]}"
secret_access_key = "{PLAIN[1]}"
user = "plain"

[[accounts.credentials]]
access_key_id = "{SCOPED[0]}"
secret_access_key = "{SCOPED[1]}"
user = "scoped"
instances = ["i-0a71*"]
actions = ["SendSerialConsoleSSHPublicKey", "DescribeInstances"]

[[accounts.credentials]]
access_key_id = "{SCOPED_ONLY[0]}"
secret_access_key = "{SCOPED_ONLY[1]}"
user = "scoped-only"
instances = ["i-0a71*"]

[[instances]]
id = "{SCOPED_SIM}"
account = "{ACCOUNT}"
console = "sim:"

[[accounts]]
id = "{OTHER_ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{OTHER[0]}"
secret_access_key = "{OTHER[1]}"

[[instances]]
id = "{OTHERS}"
account = "{OTHER_ACCOUNT}"
console = "sim:"
"""


@pytest.fixture(scope="module")
def matrix_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("matrix")
    # The owner key may do everything: the refusals below are about the other keys.
    text = config(workdir, credential='actions = ["*"]', body=MATRIX)
    with serve("matrix", text, workdir) as server:
        yield server


ACCOUNT_LEVEL = [
    (("ec2", "describe-instances"), "DescribeInstances"),
    (("ec2", "disable-serial-console-access"), "DisableSerialConsoleAccess"),
    (("ec2", "get-serial-console-access-status"), "GetSerialConsoleAccessStatus"),
]


def test_a_key_without_actions_pushes_and_nothing_else(matrix_server, tmp_path):
    key = Path(f"{new_key(tmp_path)}.pub").read_text()
    client = eic(matrix_server, PLAIN)
    assert client.send_serial_console_ssh_public_key(InstanceId=SIM, SerialPort=0, SSHPublicKey=key)["Success"]
    assert client.send_ssh_public_key(InstanceId=SIM2, InstanceOSUser="ec2-user", SSHPublicKey=key)["Success"]
    for args, operation in ACCOUNT_LEVEL:
        cli_error(aws_cli(matrix_server, PLAIN, *args), "UnauthorizedOperation", operation)
    # The switch is untouched, and the owner (actions = ["*"]) may do what the plain key may not.
    status = cli_ok(aws_cli(matrix_server, OWNER, "ec2", "get-serial-console-access-status"))
    assert status["SerialConsoleAccessEnabled"] is True, status
    cli_ok(aws_cli(matrix_server, OWNER, "ec2", "describe-instances"))


def test_an_instance_scoped_key_gets_only_what_it_names(matrix_server, tmp_path):
    key = Path(f"{new_key(tmp_path)}.pub").read_text()
    assert eic(matrix_server, SCOPED).send_serial_console_ssh_public_key(
        InstanceId=SCOPED_SIM, SerialPort=0, SSHPublicKey=key
    )["Success"]
    # DescribeInstances is named, so it is allowed.
    cli_ok(aws_cli(matrix_server, SCOPED, "ec2", "describe-instances"))
    # The account-wide switch is not: one instance's key cannot turn the console off for all.
    cli_error(aws_cli(matrix_server, SCOPED, "ec2", "disable-serial-console-access"), "UnauthorizedOperation", "DisableSerialConsoleAccess")
    cli_error(
        aws_cli(matrix_server, SCOPED, "ec2", "get-serial-console-access-status"),
        "UnauthorizedOperation",
        "GetSerialConsoleAccessStatus",
    )
    # Scoped without `actions`: the two pushes, nothing account-wide.
    assert eic(matrix_server, SCOPED_ONLY).send_serial_console_ssh_public_key(
        InstanceId=SCOPED_SIM, SerialPort=0, SSHPublicKey=key
    )["Success"]
    for args, operation in ACCOUNT_LEVEL:
        cli_error(aws_cli(matrix_server, SCOPED_ONLY, *args), "UnauthorizedOperation", operation)
    status = cli_ok(aws_cli(matrix_server, OWNER, "ec2", "get-serial-console-access-status"))
    assert status["SerialConsoleAccessEnabled"] is True, status


def test_another_accounts_instance_does_not_exist_for_the_caller(matrix_server, tmp_path):
    key = Path(f"{new_key(tmp_path)}.pub").read_text()

    def refusal(creds, instance):
        with pytest.raises(ClientError) as e:
            eic(matrix_server, creds).send_serial_console_ssh_public_key(
                InstanceId=instance, SerialPort=0, SSHPublicKey=key
            )
        err = e.value.response
        return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]

    for creds in (OWNER, PLAIN):
        foreign = refusal(creds, OTHERS)
        unknown = refusal(creds, UNKNOWN)
        assert foreign[0] == "EC2InstanceNotFoundException", foreign
        assert OTHER_ACCOUNT not in foreign[1], foreign
        assert (foreign[0], foreign[1].replace(OTHERS, "ID"), foreign[2]) == (
            unknown[0], unknown[1].replace(UNKNOWN, "ID"), unknown[2],
        )
    # The EC2 side says the same.
    msgs = []
    for instance in (OTHERS, UNKNOWN):
        msg = cli_error(
            aws_cli(matrix_server, OWNER, "ec2", "describe-instances", "--instance-ids", instance),
            "InvalidInstanceID.NotFound",
            "DescribeInstances",
        )
        assert OTHER_ACCOUNT not in msg, msg
        msgs.append(msg.replace(instance, "ID"))
    assert msgs[0] == msgs[1], msgs
    # And the log line of the refused push names no other account either.
    assert_no_panic(matrix_server)


# --- file modes -------------------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o000], ids=["umask022", "umask000"])
def test_state_dir_and_its_files_are_private_whatever_the_umask(tmp_path, umask):
    state = tmp_path / "state"
    with serve(f"modes-{umask:03o}", config(tmp_path), tmp_path, umask=umask) as server:
        key = new_key(tmp_path)
        push(server, SIM, key)  # an audited call: the audit store has been written
        wait_for_log(server, r"SendSerialConsoleSSHPublicKey")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir() if not p.is_socket()}
        assert stat.S_IMODE(state.stat().st_mode) == 0o700, oct(state.stat().st_mode)
        for name in ("ssh_host_ed25519_key", "audit.db", "state.db"):
            assert name in modes, f"{name} missing from {sorted(modes)}"
        for name, mode in modes.items():
            want = 0o700 if (state / name).is_dir() else 0o600
            assert mode == want, f"{name}: {mode:o} (umask {umask:03o}); all: { {k: oct(v) for k, v in modes.items()} }"


def test_an_existing_loose_state_dir_is_tightened(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o755)
    with serve("modes-loose", config(tmp_path), tmp_path) as server:
        assert stat.S_IMODE(state.stat().st_mode) == 0o700, oct(state.stat().st_mode)
        # Said in the log: one line names the directory and its new mode.
        wait_for_log(server, rf"(?m)^(?=.*{re.escape(str(state))}(\s|$))(?=.*\b0?700\b).*$")


# --- the environment of an exec: console ------------------------------------------------------


ENV = "i-0a7000000000000e02"


def test_exec_console_environment_holds_no_secret(tmp_path):
    secret = "sg-env-secret-" + os.urandom(12).hex()
    creds = ("AKIAATTACKENVKEY0001", secret)
    credential = f"""
[[accounts.credentials]]
access_key_id = "{creds[0]}"
secret_access_key_env = "SECRET_FOR_TEST"
"""
    body = f"""
[[instances]]
id = "{ENV}"
account = "{ACCOUNT}"
console = "exec:/usr/bin/env"
"""
    text = config(tmp_path, credential=credential, body=body)
    env = {"SECRET_FOR_TEST": secret, "SG_UNRELATED_SERVER_VARIABLE": "not-for-children"}
    with serve("exec-env", text, tmp_path, env=env) as server:
        key = new_key(tmp_path)
        known = known_hosts(server, tmp_path)
        push(server, ENV, key, creds=creds)  # the secret was read: it signs
        session = ssh_session(server, key, known, ENV)
        try:
            session.expect(rb"PATH=")
            # Everything is printed once the command has exited and is being restarted.
            told = told_restarting(session, timeout=10)
        finally:
            end_session(session)
        out = bytes(session.out)
        assert secret.encode() not in out, out
        assert b"SECRET_FOR_TEST" not in out, out
        assert b"SG_UNRELATED_SERVER_VARIABLE" not in out, out
        assert b"PATH=" in out
        assert told, out
        assert secret not in server.stderr()
        assert_no_panic(server)
