"""One console, one owner: three nodes on one `redis-server` serving consoles that accept a
single client at a time (`single_console.SingleConsole`, as a serial server port).

A session through any node reaches the one console (a token typed through one node shows in
the console's input, and in `GetConsoleOutput` asked of another); no two nodes are ever
connected to it at once (counted on the console's side); `kill -9` of the owner moves the console
to another node within the lease plus 2 s, and a session relayed through a surviving node carries
on; a node that may not own a console never connects to it; the relay refuses a peer without the
cluster secret, and a node with the wrong secret cannot relay.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from conftest import _binary, _free_ports, _serve
from single_console import SingleConsole
from ssh_session import Session
from test_multinode import (  # noqa: F401  (fixtures)
    AK,
    ACCOUNT,
    LEASE_S,
    REGION,
    SK,
    audit_records,
    cluster_status,
    key,
    owners,
    ready,
    redis,
    try_push,
    wait_for,
)
from test_ssh_openssh import ssh_args

SECRET = "cluster-test-secret-0123456789"
SHARED = "i-0c1000000000000a1"
PINNED = "i-0c1000000000000a2"
# A console per test, so that no test meets another's session or owner.
PER_TEST = [f"i-0c2{n:014x}" for n in range(1, 6)]


def node_config(workdir: Path, name: str, redis, consoles: dict[str, SingleConsole],
                pinned: dict[str, list[str]], secret: str = SECRET) -> tuple[Path, int]:
    relay = _free_ports(1)[0]
    instances = ""
    for inst, console in consoles.items():
        instances += f'\n[[instances]]\nid = "{inst}"\naccount = "{ACCOUNT}"\nconsole = "{console.uri}"\n'
        if inst in pinned:
            instances += f"nodes = {pinned[inst]!r}\n".replace("'", '"')
    path = workdir / f"{name}.toml"
    path.write_text(
        f"""region = "{REGION}"
state_dir = "{workdir / name}"

[store]
redis = "{redis.url}"
lease_seconds = {LEASE_S}
timeout_ms = 500

[cluster]
node = "{name}"
listen = "127.0.0.1:{relay}"
secret = "{secret}"

[sessions]
teardown_seconds = 1

[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
actions = ["*"]
{instances}"""
    )
    return path, relay


@contextlib.contextmanager
def nodes(workdir: Path, redis, consoles: dict[str, SingleConsole], n: int = 3,
          pinned: dict[str, list[str]] | None = None, secrets: list[str] | None = None):
    """`n` nodes named node0…; yields one dict per node ({"server", "known_hosts", "config",
    "name", "relay"}) once each console has an owner."""
    known_hosts = workdir / "known_hosts"
    with contextlib.ExitStack() as stack:
        out = []
        for i in range(n):
            name = f"node{i}"
            secret = secrets[i] if secrets else SECRET
            config, relay = node_config(workdir, name, redis, consoles, pinned or {}, secret)
            host_key = subprocess.run(
                [str(_binary()), "host-key", "--config", str(config), "--public-key-only"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.strip()
            server = stack.enter_context(_serve(name, config, workdir))
            with open(known_hosts, "a") as f:
                f.write(f"[127.0.0.1]:{server.ssh_port} {host_key}\n")
            out.append({"server": server, "known_hosts": known_hosts, "config": config,
                        "name": name, "relay": relay})
        for node in out:
            wait_for("/ready", lambda: ready(node)[0] == 200, timeout=LEASE_S + 10)
        wait_for("every console to have an owner",
                 lambda: all(v for i, v in owners(out[0]).items() if i in consoles), timeout=15)
        yield out


def owner_of(node, inst: str) -> str | None:
    return owners(node).get(inst)


def ec2(node):
    return boto3.session.Session().client(
        "ec2", endpoint_url=node["server"].url, region_name=REGION,
        aws_access_key_id=AK, aws_secret_access_key=SK, config=Config(retries={"max_attempts": 1}),
    )


@pytest.fixture
def consoles():
    made: dict[str, SingleConsole] = {}
    yield made
    for c in made.values():
        c.close()


def test_a_session_through_any_node_reaches_the_one_console(tmp_path, redis, key, consoles):
    inst = PER_TEST[0]
    consoles[inst] = con = SingleConsole()
    with nodes(tmp_path, redis, consoles) as ns:
        owner = owner_of(ns[0], inst)
        others = [n for n in ns if n["name"] != owner]
        assert len(others) == 2, (owner, [n["name"] for n in ns])
        relay_node, history_node = others
        assert try_push(ns[0], inst, key) == "ok"
        s = Session(ssh_args(relay_node, key, f"{inst}.port0", "-tt"))
        try:
            s.send(b"\r")
            s.expect(rb"single login: ")
            s.send(b"token-through-" + relay_node["name"].encode() + b"\r")
            con.wait_for("the token in the console's input",
                         lambda: b"token-through-" + relay_node["name"].encode() in con.received)
            s.expect(rb"token-through-")
            # GetConsoleOutput, asked of a third node, is the owner's history (boto3 decodes
            # the base64 as the CLI does).
            out = ec2(history_node).get_console_output(InstanceId=inst, Latest=True)["Output"]
            assert "token-through-" + relay_node["name"] in out, out
            s.send(b"\r~.")
        finally:
            s.close()
        # One connection, from the owner, all along.
        assert con.connections == 1 and con.overlaps == 0, (con.connections, con.overlaps)
        # The node that accepted the session records it, naming the node that owned the console.
        start = wait_for("the session's start record", lambda: [
            r for r in audit_records(relay_node, inst) if r["kind"] == "session-start"])[0]
        assert start["node"].startswith(relay_node["name"] + ":") and start["console_node"] == owner, start


def test_killing_the_owner_moves_the_console_and_a_relayed_session_carries_on(tmp_path, redis, key, consoles):
    inst = PER_TEST[1]
    consoles[inst] = con = SingleConsole()
    with nodes(tmp_path, redis, consoles) as ns:
        owner = owner_of(ns[0], inst)
        victim = next(n for n in ns if n["name"] == owner)
        relay_node = next(n for n in ns if n["name"] != owner)
        watcher = next(n for n in ns if n["name"] not in (owner, relay_node["name"]))
        assert try_push(relay_node, inst, key) == "ok"
        s = Session(ssh_args(relay_node, key, f"{inst}.port0", "-tt"))
        try:
            s.send(b"\r")
            s.expect(rb"single login: ")
            s.send(b"before\r")
            con.wait_for("the first token", lambda: b"before" in con.received)
            victim["server"].proc.send_signal(signal.SIGKILL)
            victim["server"].proc.wait(timeout=10)
            killed = time.monotonic()
            # Another node takes the console once the dead owner's lease has expired...
            con.wait_for("a new owner's connection", lambda: con.connections == 2, timeout=LEASE_S + 10)
            failover = time.monotonic() - killed
            assert failover <= LEASE_S + 2, f"failover took {failover:.1f} s"
            new_owner = wait_for("the new owner in the store",
                                 lambda: owner_of(watcher, inst) not in (None, owner) and owner_of(watcher, inst))
            assert new_owner != owner
            # ...and the session relayed through a surviving node reconnects to it by itself,
            # telling the user (what is typed while the console is away is not kept).
            n = s.expect(rb"Lost the connection to the console")
            n = s.expect(rb"Console connection restored", since=n, timeout=LEASE_S + 15)
            s.send(b"after\r")
            con.wait_for("the token typed after the failover", lambda: b"after" in con.received, timeout=15)
            s.expect(rb"after", since=n)
            s.send(b"\r~.")
        finally:
            s.close()
        assert con.overlaps == 0, con.overlaps


def test_a_node_that_may_not_own_a_console_never_connects(tmp_path, redis, key, consoles):
    consoles[PINNED] = con = SingleConsole()
    with nodes(tmp_path, redis, consoles, pinned={PINNED: ["node1"]}) as ns:
        assert owner_of(ns[0], PINNED) == "node1"
        # Sessions through the others reach it through node1.
        assert try_push(ns[2], PINNED, key) == "ok"
        s = Session(ssh_args(ns[0], key, f"{PINNED}.port0", "-tt"))
        try:
            s.send(b"\r")
            s.expect(rb"single login: ")
            s.send(b"\r~.")
        finally:
            s.close()
        # node1 goes: nobody else may take the console, whatever the wait.
        ns[1]["server"].proc.send_signal(signal.SIGKILL)
        ns[1]["server"].proc.wait(timeout=10)
        wait_for("node1's lease to lapse", lambda: owner_of(ns[0], PINNED) is None, timeout=LEASE_S + 5)
        # Two more lease times with no owner: the eligible node is gone and the others may not.
        deadline = time.monotonic() + 2 * LEASE_S
        while time.monotonic() < deadline:
            assert owner_of(ns[0], PINNED) is None
        assert con.connections == 1 and con.overlaps == 0, (con.connections, con.overlaps)
        assert try_push(ns[0], PINNED, key) == "EC2InstanceUnavailableException"


def test_the_relay_refuses_a_peer_without_the_secret(tmp_path, redis, key, consoles):
    inst = PER_TEST[2]
    consoles[inst] = con = SingleConsole()
    # node2 has a wrong secret and may own nothing: every session through it needs the relay.
    secrets = [SECRET, SECRET, "another-cluster-secret-000000"]
    with nodes(tmp_path, redis, consoles, pinned={inst: ["node0", "node1"]}, secrets=secrets) as ns:
        owner = next(n for n in ns if n["name"] == owner_of(ns[0], inst))
        # A peer that sends junk instead of the handshake is dropped, without an answer.
        with socket.create_connection(("127.0.0.1", owner["relay"]), timeout=10) as sock:
            sock.sendall(b"\x00" * 64 + b"GET / HTTP/1.1\r\n\r\n")
            sock.settimeout(10)
            got = b""
            try:
                while chunk := sock.recv(4096):
                    got += chunk
            except (ConnectionResetError, TimeoutError):
                pass
            assert b"single login" not in got
        # The node with the wrong secret cannot reach the console: its session says so.
        assert try_push(ns[2], inst, key) == "ok"
        s = Session(ssh_args(ns[2], key, f"{inst}.port0", "-tt"))
        try:
            s.expect(rb"Lost the connection to the console")
            assert b"single login" not in s.out
            s.send(b"\r~.")
        finally:
            s.close()
        assert con.connections == 1 and con.overlaps == 0


def test_instance_states_are_one_across_nodes(tmp_path, redis, key, consoles):
    """StopInstances and StartInstances through one node show on every other (states live in
    Redis); a node started later sees them at once; a stopped instance takes no push anywhere."""
    inst = PER_TEST[4]
    consoles[inst] = SingleConsole()

    def state(node) -> str:
        r = ec2(node).describe_instances(InstanceIds=[inst])
        return r["Reservations"][0]["Instances"][0]["State"]["Name"]

    with nodes(tmp_path, redis, consoles, n=2) as (a, b):
        assert state(a) == state(b) == "running"
        change = ec2(a).stop_instances(InstanceIds=[inst])["StoppingInstances"][0]
        assert change["CurrentState"]["Name"] == "stopped", change
        wait_for("node1 to see the instance stopped", lambda: state(b) == "stopped", timeout=5)
        assert try_push(b, inst, key) == "EC2InstanceStateInvalidException"
        # Configured as running, but a node that starts now reads the shared state first.
        late_dir = tmp_path / "late"
        late_dir.mkdir()
        config, _ = node_config(late_dir, "late0", redis, consoles, {})
        with _serve("late0", config, late_dir) as server:
            assert state({"server": server}) == "stopped"
        ec2(b).start_instances(InstanceIds=[inst])
        wait_for("node0 to see the instance running", lambda: state(a) == "running", timeout=5)
        assert try_push(a, inst, key) == "ok"
