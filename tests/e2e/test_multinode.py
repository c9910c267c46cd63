"""Many nodes, one service: several `serialgate serve` processes sharing one `redis-server`.

Every instance's console is one `SingleConsole` (single_console.py) shared by all the nodes of
every cluster here: it serves one client at a time, as a serial server port does, and counts the
clients that came while another was connected; none may (one owner per console). A key pushed on
one node opens a session on another; a hundred clients racing across the nodes
get one session; a node killed with SIGKILL frees its slot after lease + teardown; the throttle
is one budget across nodes; a Redis restart costs quick errors, not hangs, and the service
recovers by itself; every push a killed node acknowledged is in its audit database.

The Redis server is started here on a free loopback port without persistence (and stopped at the
end), and so is a throwaway PostgreSQL cluster (initdb + pg_ctl in a temporary directory) for the
shared audit table. These tests fail, never skip, when `redis-server` or PostgreSQL's server
programs are missing: CI installs them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from conftest import _binary, _die_with_parent, _free_ports, _serve
from single_console import SingleConsole
from ssh_session import Session
from test_ssh_openssh import push, ssh_args

REGION = "us-east-1"
ACCOUNT = "111122223333"
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
LEASE_S = 3
TEARDOWN_S = 1
CLUSTER_SECRET = "multinode-test-cluster-secret"
# Node names are unique in a cluster; the tests' clusters share one Redis.
_NODE_NAMES = itertools.count(1)
# Instances: one per test, so one test's teardown never meets another's push.
INSTANCES = [f"i-0f{n:015x}" for n in range(1, 9)]


# --- redis -----------------------------------------------------------------------------------


class Redis:
    """A throwaway redis-server on a fixed loopback port that can be killed and started again."""

    def __init__(self, workdir: Path):
        if shutil.which("redis-server") is None:
            pytest.fail(
                "redis-server is not installed; these tests need it and do not skip. "
                "Install it: apt-get install --no-install-recommends redis-server",
                pytrace=False,
            )
        self.port = _free_ports(1)[0]
        self.log = workdir / "redis.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited: {self.log.read_text()}", pytrace=False)
            r = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if r.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        pytest.fail(f"redis-server did not answer on port {self.port}", pytrace=False)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = Redis(tmp_path_factory.mktemp("redis"))
    r.start()
    yield r
    r.kill()


# --- postgresql ------------------------------------------------------------------------------


class Postgres:
    """A throwaway PostgreSQL cluster on a free loopback port, owned by the postgres user when
    this runs as root (initdb refuses root)."""

    def __init__(self):
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        initdb = bins[-1] if bins else shutil.which("initdb")
        if not initdb:
            pytest.fail(
                "PostgreSQL's server programs (initdb, pg_ctl) are not installed; this test needs "
                "them and does not skip. Install: apt-get install --no-install-recommends postgresql",
                pytrace=False,
            )
        self.bin = Path(initdb).parent
        self.as_postgres = os.geteuid() == 0
        # Under /tmp itself: the postgres user cannot enter root's pytest directories.
        self.dir = Path(tempfile.mkdtemp(prefix="sg-pg-"))
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self.port = _free_ports(1)[0]
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "serialgate", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgres://serialgate@127.0.0.1:{self.port}/postgres"

    def _run(self, prog: str, *args: str) -> None:
        cmd = [str(self.bin / prog), *args]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        log = self.dir / "log"
        assert r.returncode == 0, f"{prog}: {r.stdout}{r.stderr}{log.read_text() if log.exists() else ''}"

    def start(self) -> None:
        self._run("pg_ctl", "start", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-t", "30",
                  "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off")

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", str(self.dir / "data"), "-m", "immediate", "-w")


@pytest.fixture(scope="module")
def postgres():
    pg = Postgres()
    pg.start()
    try:
        yield pg
    finally:
        with contextlib.suppress(AssertionError, subprocess.SubprocessError):
            pg.stop()
        shutil.rmtree(pg.dir, ignore_errors=True)


# --- nodes -----------------------------------------------------------------------------------

# The consoles of INSTANCES while the module runs (see `shared_consoles`).
_CONSOLES: dict[str, SingleConsole] = {}
# Every node the module started, by cluster name: its process.
_PROCS: dict[str, subprocess.Popen] = {}


@pytest.fixture(scope="module", autouse=True)
def shared_consoles():
    """One console per instance for the whole module, whichever cluster reaches it; at the end,
    none may have seen two nodes connected at once."""
    _CONSOLES.update({i: SingleConsole() for i in INSTANCES})
    try:
        yield _CONSOLES
        overlaps = {i: c.overlaps for i, c in _CONSOLES.items() if c.overlaps}
        assert not overlaps, f"consoles that saw a second node connect while one was: {overlaps}"
    finally:
        for c in _CONSOLES.values():
            c.close()
        _CONSOLES.clear()



def node_config(workdir: Path, name: str, redis: Redis, throttle: tuple[float, int] = (1000.0, 1000),
                postgres: str | None = None) -> Path:
    instances = "".join(
        f'\n[[instances]]\nid = "{i}"\naccount = "{ACCOUNT}"\nconsole = "{_CONSOLES[i].uri}"\n' for i in INSTANCES
    )
    audit = f'[audit]\npostgres = "{postgres}"\n' if postgres else ""
    path = workdir / f"{name}.toml"
    path.write_text(
        f"""region = "{REGION}"
state_dir = "{workdir / name}"

[store]
redis = "{redis.url}"
lease_seconds = {LEASE_S}
timeout_ms = 500

[cluster]
node = "{name}-{next(_NODE_NAMES)}"
listen = "127.0.0.1:{_free_ports(1)[0]}"
secret = "{CLUSTER_SECRET}"

[sessions]
teardown_seconds = {TEARDOWN_S}

[throttle]
rate_per_second = {throttle[0]}
burst = {throttle[1]}

{audit}
[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
{instances}"""
    )
    return path


@contextlib.contextmanager
def cluster(workdir: Path, redis: Redis, n: int, **kw):
    """`n` nodes on one Redis; yields one dict per node in the shape the OpenSSH helpers take
    ({"server", "known_hosts", "config"}), all sharing one known_hosts file."""
    known_hosts = workdir / "known_hosts"
    with contextlib.ExitStack() as stack:
        nodes = []
        for i in range(n):
            name = f"node{i}"
            config = node_config(workdir, name, redis, **kw)
            host_key = subprocess.run(
                [str(_binary()), "host-key", "--config", str(config), "--public-key-only"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.strip()
            server = stack.enter_context(_serve(name, config, workdir))
            with open(known_hosts, "a") as f:
                f.write(f"[127.0.0.1]:{server.ssh_port} {host_key}\n")
            nodes.append({"server": server, "known_hosts": known_hosts, "config": config})
        # A Redis with no record of the instances (a new one here) keeps their sessions closed
        # for one lease time; `/ready` says when that is over.
        for node in nodes:
            wait_for(f"{node['server'].url}/ready", lambda: ready(node)[0] == 200, timeout=LEASE_S + 10)
        # Each console is taken as soon as the store lets it, by a node that is alive: the
        # module's clusters share one Redis (so a console may stay with a live node of another
        # cluster here), but a killed node keeps its consoles until its lease runs out, and a
        # session relayed to it meanwhile would start without its console.
        for n in nodes:
            name = re.search(r'^node = "(.+)"$', n["config"].read_text(), re.M).group(1)
            _PROCS[name] = n["server"].proc

        def owned_by_live_nodes() -> bool:
            return all(o in _PROCS and _PROCS[o].poll() is None for o in owners(nodes[0]).values())
        wait_for("every console to have a live owner", owned_by_live_nodes, timeout=LEASE_S + 10)
        yield nodes


def cluster_status(node) -> tuple[list[dict], dict[str, dict]]:
    """`serialgate cluster status --json`: the nodes, and each console's ownership."""
    r = subprocess.run(
        [str(_binary()), "cluster", "status", "--config", str(node["config"]), "--json"],
        capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return [x for x in lines if "node" in x], {x["instance"]: x for x in lines if "instance" in x}


def owners(node) -> dict[str, str | None]:
    return {i: x["owner"] for i, x in cluster_status(node)[1].items()}


def ready(node) -> tuple[int, dict]:
    """`GET /ready`: its status and body."""
    try:
        with urllib.request.urlopen(f"{node['server'].url}/ready", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def eic(node, timeout: float = 10.0):
    # A session per client: boto3's default session is not safe to share between threads.
    return boto3.session.Session().client(
        "ec2-instance-connect", endpoint_url=node["server"].url, region_name=REGION,
        aws_access_key_id=AK, aws_secret_access_key=SK,
        config=Config(retries={"max_attempts": 1}, connect_timeout=timeout, read_timeout=timeout),
    )


def try_push(node, instance: str, key: Path) -> str:
    """One boto3 push: 'ok' or the error code."""
    try:
        eic(node).send_serial_console_ssh_public_key(
            InstanceId=instance, SerialPort=0, SSHPublicKey=Path(f"{key}.pub").read_text())
        return "ok"
    except ClientError as e:
        return e.response["Error"]["Code"]


def wait_for(what: str, check, timeout: float = 15.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def audit_records(node, instance: str | None = None) -> list[dict]:
    cmd = [str(_binary()), "audit", "--config", str(node["config"]), "--json"]
    if instance:
        cmd += ["--instance", instance]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env={**os.environ, "HOME": str(node["config"].parent)})
    assert r.returncode == 0, r.stderr
    # PostgreSQL's "relation already exists, skipping" notices are not news.
    assert "NOTICE" not in r.stderr and "already exists" not in r.stderr, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


@pytest.fixture(scope="module")
def three(tmp_path_factory, redis):
    with cluster(tmp_path_factory.mktemp("three"), redis, 3) as nodes:
        yield nodes


# --- tests -----------------------------------------------------------------------------------


def test_push_on_one_node_connect_on_another(three, key):
    a, b, c = three
    inst = INSTANCES[0]
    push(a, inst, key)  # the AWS CLI, against node A
    s = Session(ssh_args(b, key, f"{inst}.port0", "-tt"))
    try:
        s.send(b"\r")
        s.expect(rb"login: ")
        # Node C sees the session node B holds.
        assert try_push(c, inst, key) == "SerialConsoleSessionLimitExceededException"
        s.send(b"\r~.")
        assert s.close() in (0, 255)
    finally:
        s.close()
    # B recorded the session's start and end in its audit trail.
    def ended():
        recs = audit_records(b, inst)
        return [r for r in recs if r["kind"] == "session-end"] and recs
    recs = wait_for("the session's audit records", ended)
    kinds = [r["kind"] for r in recs]
    assert "session-start" in kinds and "session-end" in kinds, recs
    end = next(r for r in recs if r["kind"] == "session-end")
    assert end["bytes_out"] > 0 and end["source_ip"] == "127.0.0.1", end
    # After the teardown, any node takes a push again.
    wait_for("the teardown to end", lambda: try_push(c, inst, key) == "ok")


def test_a_hundred_racing_clients_across_nodes_get_one_session(three, key):
    inst = INSTANCES[1]
    assert try_push(three[0], inst, key) == "ok"
    procs = []
    for i in range(100):
        node = three[i % 3]
        procs.append(subprocess.Popen(
            ssh_args(node, key, f"{inst}.port0", "-tt"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ))
    try:
        # The losers are told the slot is busy (or refused) and exit; the winner stays.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and sum(p.poll() is None for p in procs) > 1:
            time.sleep(0.2)
        alive = [p for p in procs if p.poll() is None]
        assert len(alive) == 1, f"{len(alive)} sessions still connected"
        losers = [p.stdout.read().decode(errors="replace") for p in procs if p.poll() is not None]
        busy = sum("1 active serial console session" in out for out in losers)
        assert busy >= 1, losers[:3]
        assert try_push(three[2], inst, key) == "SerialConsoleSessionLimitExceededException"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=10)


def test_killing_the_node_that_holds_a_session_frees_the_slot(tmp_path, redis, key):
    inst = INSTANCES[2]
    with cluster(tmp_path, redis, 2) as (a, b):
        assert try_push(a, inst, key) == "ok"
        s = Session(ssh_args(a, key, f"{inst}.port0", "-tt"))
        try:
            s.send(b"\r")
            s.expect(rb"login: ")
            a["server"].proc.send_signal(signal.SIGKILL)
            a["server"].proc.wait(timeout=10)
            killed = time.monotonic()
            # The dead node's lease still holds the slot for a moment...
            assert try_push(b, inst, key) == "SerialConsoleSessionLimitExceededException"
            # ...then lapses: lease time plus teardown after its last renewal, at most.
            wait_for("the slot to free", lambda: try_push(b, inst, key) == "ok",
                     timeout=LEASE_S + TEARDOWN_S + 5)
            assert time.monotonic() - killed <= LEASE_S + TEARDOWN_S + 3
        finally:
            s.proc.kill()
            s.close()
        t = Session(ssh_args(b, key, f"{inst}.port0", "-tt"))
        try:
            t.send(b"\r")
            t.expect(rb"login: ")
            t.send(b"\r~.")
        finally:
            t.close()


def test_the_throttle_is_one_budget_across_nodes(tmp_path, redis, key):
    inst = INSTANCES[3]
    # Burst 2, next to no refill: two pushes in all, whichever nodes they reach.
    with cluster(tmp_path, redis, 2, throttle=(0.001, 2)) as (a, b):
        assert try_push(a, inst, key) == "ok"
        assert try_push(b, inst, key) == "ok"
        assert try_push(a, inst, key) == "ThrottlingException"
        assert try_push(b, inst, key) == "ThrottlingException"


def test_a_redis_restart_costs_quick_errors_then_recovers(tmp_path, redis, key):
    inst = INSTANCES[4]
    with cluster(tmp_path, redis, 2) as (a, b):
        assert try_push(a, inst, key) == "ok"
        s = Session(ssh_args(a, key, f"{inst}.port0", "-tt"))
        try:
            s.send(b"\r")
            n = s.expect(rb"login: ")
            redis.kill()
            killed = time.monotonic()
            try:
                # The API answers at once with a retryable server error; nothing hangs.
                for node in (a, b):
                    started = time.monotonic()
                    code = try_push(node, inst, key)
                    took = time.monotonic() - started
                    assert code in ("ServiceException", "SerialConsoleSessionUnavailableException"), code
                    assert took < 5, f"{took:.1f} s"
                # Not ready, and saying why (answers are reused for a second, hence the wait).
                status, body = wait_for("/ready to see Redis gone", lambda: (r := ready(a))[0] == 503 and r)
                store = next(c for c in body["checks"] if c["name"] == "store")
                assert body["status"] == "not ready" and not store["ok"], body
                # New sessions are refused, quickly.
                r = subprocess.run(ssh_args(b, key, f"{inst}.port0", "-T"), capture_output=True, text=True,
                                   timeout=30, stdin=subprocess.DEVNULL)
                assert r.returncode != 0
                # The connected session cannot renew its lease, so it closes before the lease
                # expires, while Redis is still down: no other node may open a second session
                # on the console while it still writes.
                s.expect(rb"lost its slot", n, timeout=LEASE_S + 10)
                assert time.monotonic() - killed < LEASE_S, "the session outlived its lease"
            finally:
                redis.start()
        finally:
            s.close()
        # Redis came back empty: it forgot the lease, so the instance's sessions stay closed for
        # one lease time (a holder cut off across the restart may still be writing), and
        # `/ready` says so until then.
        status, body = wait_for("/ready to see the new Redis", lambda: (r := ready(b)) and "open in" in json.dumps(r[1]) and r)
        assert status == 503, body
        # Recovered without restarting a node, and still one session at a time.
        wait_for("pushes to work again", lambda: try_push(b, inst, key) == "ok", timeout=15)
        # /ready waits for every instance: the new Redis recorded their epochs over a second or
        # so (keepers, pushes and /ready itself touch them), and answers are reused for a second.
        wait_for("/ready to clear", lambda: ready(b)[0] == 200, timeout=5)
        racers = [subprocess.Popen(ssh_args(node, key, f"{inst}.port0", "-tt"), stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for node in (a, b, a, b, a, b)]
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and sum(p.poll() is None for p in racers) > 1:
                time.sleep(0.2)
            assert sum(p.poll() is None for p in racers) == 1
        finally:
            for p in racers:
                if p.poll() is None:
                    p.kill()
                p.wait(timeout=10)


def test_every_acknowledged_push_survives_kill_9(tmp_path, redis, key):
    inst = INSTANCES[5]
    body = Path(f"{key}.pub").read_text()
    with cluster(tmp_path, redis, 1) as (a,):
        acked: list[str] = []
        stop = threading.Event()
        lock = threading.Lock()

        def pusher():
            client = eic(a, timeout=3)
            while not stop.is_set():
                try:
                    r = client.send_serial_console_ssh_public_key(InstanceId=inst, SerialPort=0, SSHPublicKey=body)
                except (ClientError, EndpointConnectionError, ReadTimeoutError, OSError):
                    continue
                except Exception:  # the connection dies with the node in many ways
                    continue
                with lock:
                    acked.append(r["RequestId"])

        threads = [threading.Thread(target=pusher) for _ in range(8)]
        for t in threads:
            t.start()
        wait_for("some pushes", lambda: len(acked) >= 50, timeout=30, every=0.02)
        a["server"].proc.send_signal(signal.SIGKILL)
        a["server"].proc.wait(timeout=10)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        recorded = {r["request_id"] for r in audit_records(a, inst) if r["outcome"] == "success"}
        missing = [rid for rid in acked if rid not in recorded]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged pushes are not in the audit database"


def test_every_node_writes_one_postgresql_audit_table(tmp_path, redis, postgres, key):
    inst = INSTANCES[6]
    body = Path(f"{key}.pub").read_text()
    with cluster(tmp_path, redis, 2, postgres=postgres.url) as (a, b):
        acked = [eic(node).send_serial_console_ssh_public_key(InstanceId=inst, SerialPort=0, SSHPublicKey=body)["RequestId"]
                 for node in (a, b)]
        s = Session(ssh_args(b, key, f"{inst}.port0", "-tt"))
        try:
            s.send(b"\r")
            s.expect(rb"login: ")
            s.send(b"\r~.")
        finally:
            s.close()
        # Either node reads what both wrote: the calls and the session.
        recs = wait_for("the session's end in the audit table",
                        lambda: (r := audit_records(a, inst)) and any(x["kind"] == "session-end" for x in r) and r)
        api = [r for r in recs if r["kind"] == "api"]
        assert set(acked) <= {r["request_id"] for r in api}
        assert len({r["node"] for r in api}) == 2, api
        assert {"session-start", "session-end"} <= {r["kind"] for r in recs}

        # PostgreSQL away: a push cannot be recorded, so it is refused, and its key opens nothing.
        time.sleep(TEARDOWN_S + 1)  # the session's teardown, so that only the audit can refuse
        postgres.stop()
        try:
            status, body = wait_for("/ready to see PostgreSQL gone", lambda: (r := ready(a))[0] == 503 and r)
            audit = next(c for c in body["checks"] if c["name"] == "audit")
            assert not audit["ok"] and audit["required"], body
            assert try_push(a, inst, key) == "ServiceException"
            r = subprocess.run(ssh_args(a, key, f"{inst}.port0", "-T"), capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)
            assert "Permission denied" in r.stderr, r.stderr
        finally:
            postgres.start()
        wait_for("pushes to be recorded again", lambda: try_push(b, inst, key) == "ok", timeout=20)
        wait_for("/ready again", lambda: ready(a)[0] == 200)
