"""Session control: `serialgate sessions list|end` and the ListSerialConsoleSessions /
EndSerialConsoleSession operations behind them.

Two nodes on one `redis-server` (the clusters of test_cluster.py, with a 30 s teardown so that
"free at once" is visible, and a second credential that may only push): a session opened
through one node is listed through the other with its principal and source address; ending it
through the other node closes it on the first, the OpenSSH client reads who ended it and why,
and a push for the port succeeds at once. The JSON shapes and errors are checked with raw SigV4
requests (botocore's signer; the SDKs have no such operations). A node alone (memory store)
does the same, and its idle timeout ends a quiet session.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from conftest import _binary, _serve
from single_console import SingleConsole
from ssh_session import Session
import test_cluster
from test_cluster import consoles, nodes  # noqa: F401  (fixture)
from test_multinode import (  # noqa: F401  (fixtures)
    AK,
    ACCOUNT,
    REGION,
    SK,
    audit_records,
    key,
    redis,
    try_push,
    wait_for,
)
from test_ssh_openssh import ssh_args

# A credential of the same account that may only push keys.
PUSH_AK, PUSH_SK = "AKIAPUSHONLYEXAMPLE1", "pushonlysecretpushonlysecretpushonly0001"
LIMITED = f"""
[[accounts.credentials]]
access_key_id = "{PUSH_AK}"
secret_access_key = "{PUSH_SK}"
actions = ["ec2-instance-connect:*"]
"""
TEARDOWN_S = 30
INST = [f"i-0c3{n:014x}" for n in range(1, 6)]


def with_session_settings(text: str, idle_s: int = 0, teardown_s: int = TEARDOWN_S, extra: str = "") -> str:
    text = text.replace("teardown_seconds = 1", f"teardown_seconds = {teardown_s}\nidle_timeout_seconds = {idle_s}\n{extra}")
    return text + LIMITED


@pytest.fixture
def two_nodes(tmp_path, redis, consoles, monkeypatch):  # noqa: F811
    """Two nodes of test_cluster's shape, with this module's settings and credentials."""
    original = test_cluster.node_config

    def node_config(workdir, name, redis, consoles, pinned, secret=test_cluster.SECRET):  # noqa: F811
        path, relay = original(workdir, name, redis, consoles, pinned, secret)
        path.write_text(with_session_settings(path.read_text()))
        return path, relay

    monkeypatch.setattr(test_cluster, "node_config", node_config)
    return lambda n_consoles: nodes(tmp_path, redis, n_consoles, n=2)


def cli(node, *args: str, ak: str = AK, sk: str = SK) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ak, AWS_SECRET_ACCESS_KEY=sk, AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return subprocess.run(
        [str(_binary()), "sessions", *args, "--endpoint-url", node["server"].url, "--region", REGION],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def listed(node, *extra: str) -> list[dict]:
    r = cli(node, "list", "--output", "json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["Sessions"]


class Answer:
    def __init__(self, status: int, body: bytes, headers):
        self.status_code, self.text, self.headers = status, body.decode(), headers

    def json(self):
        return json.loads(self.text)


def raw(node, operation: str, body: dict, ak: str = AK, sk: str = SK) -> Answer:
    """One request signed with SigV4 by botocore, as an SDK would send it."""
    url = node["server"].url + "/"
    req = AWSRequest(method="POST", url=url, data=json.dumps(body), headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"AWSEC2InstanceConnectService.{operation}",
    })
    SigV4Auth(Credentials(ak, sk), "ec2-instance-connect", REGION).add_auth(req)
    data = req.body if isinstance(req.body, bytes) else req.body.encode()
    http = urllib.request.Request(url, data=data, headers=dict(req.headers), method="POST")
    try:
        with urllib.request.urlopen(http, timeout=10) as r:
            return Answer(r.status, r.read(), r.headers)
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.read(), e.headers)


def open_session(node, key: Path, inst: str) -> Session:
    assert try_push(node, inst, key) == "ok"
    s = Session(ssh_args(node, key, f"{inst}.port0", "-tt"))
    s.send(b"\r")
    s.expect(rb"single login: ")
    return s


def ended_and_freed(s: Session, node, key: Path, inst: str, by: str, reason: str) -> float:
    """Waits for the client to read who (`by`, a regex) ended the session and why, and exit;
    then a push must land at once (no teardown). Returns the seconds from now to the exit."""
    t0 = time.monotonic()
    s.expect(rf"serialgate: this session was ended by {by}: {re.escape(reason)}".encode(), timeout=5)
    assert s.proc.wait(timeout=5) is not None
    gone = time.monotonic() - t0
    # The slot is released right after the channel closes: allow the one store round trip.
    wait_for("a push on the freed port", lambda: try_push(node, inst, key) == "ok", timeout=2)
    return gone


def test_list_and_end_across_nodes(two_nodes, consoles, key):  # noqa: F811
    inst = INST[0]
    consoles[inst] = SingleConsole()
    with two_nodes(consoles) as (n0, n1):
        s = open_session(n0, key, inst)
        try:
            sessions = wait_for("the session in node1's list", lambda: listed(n1))
            assert len(sessions) == 1, sessions
            one = sessions[0]
            assert one["InstanceId"] == inst and one["SerialPort"] == 0
            assert one["Principal"].startswith(f"arn:aws:iam::{ACCOUNT}:"), one
            assert one["SourceAddress"].startswith("127.0.0.1:"), one
            assert one["Node"].startswith("node0"), one
            assert one["Spectators"] == 0
            assert abs(one["StartTime"] - time.time()) < 60, one
            assert listed(n1, "--instance", INST[1]) == []
            table = cli(n1, "list")
            assert table.returncode == 0 and inst in table.stdout and "127.0.0.1:" in table.stdout, table
            r = cli(n1, "end", inst, "--reason", "kernel update")
            assert r.returncode == 0, r.stderr
            ended_and_freed(s, n0, key, inst, re.escape(one["Principal"]), "kernel update")
        finally:
            s.close()
        wait_for("an empty list", lambda: listed(n0) == [])
        ends = [r for r in audit_records(n1, inst) if r.get("operation") == "EndSerialConsoleSession"]
        assert ends and ends[0]["outcome"] == "success", ends
        end_record = wait_for("the session's end record", lambda: [
            r for r in audit_records(n0, inst) if r["kind"] == "session-end"])[0]
        assert end_record["outcome"] == "ended", end_record


def test_shapes_and_errors_with_raw_sigv4(two_nodes, consoles, key):  # noqa: F811
    inst = INST[2]
    consoles[inst] = SingleConsole()
    with two_nodes(consoles) as (n0, n1):
        r = raw(n1, "ListSerialConsoleSessions", {})
        assert r.status_code == 200 and r.json() == {"Sessions": []}, r.text
        r = raw(n1, "EndSerialConsoleSession", {"InstanceId": inst})
        assert r.status_code == 400 and r.json()["__type"] == "ResourceNotFoundException", r.text
        assert inst in r.json()["Message"]
        r = raw(n1, "EndSerialConsoleSession", {"InstanceId": inst, "Reason": "x" * 257})
        assert r.json()["__type"] == "InvalidArgsException", r.text
        r = raw(n1, "EndSerialConsoleSession", {"InstanceId": "i-0000000000000dead"})
        assert r.json()["__type"] == "EC2InstanceNotFoundException", r.text
        for op, body in (("ListSerialConsoleSessions", {}), ("EndSerialConsoleSession", {"InstanceId": inst})):
            r = raw(n1, op, body, ak=PUSH_AK, sk=PUSH_SK)
            assert r.status_code == 403 and r.json()["__type"] == "AccessDeniedException", r.text
            assert f"serialgate:{op}" in r.json()["Message"], r.text
        denied = cli(n1, "list", ak=PUSH_AK, sk=PUSH_SK)
        assert denied.returncode == 3 and "AccessDeniedException" in denied.stderr, denied
        missing = cli(n1, "end", inst)
        assert missing.returncode == 3 and "ResourceNotFoundException" in missing.stderr, missing

        s = open_session(n0, key, inst)
        try:
            one = wait_for("the session listed", lambda: raw(n1, "ListSerialConsoleSessions", {"InstanceId": inst}).json()["Sessions"])[0]
            assert set(one) == {"InstanceId", "SerialPort", "Principal", "SourceAddress", "StartTime", "Node", "Spectators"}
            assert isinstance(one["StartTime"], float)
            r = raw(n1, "EndSerialConsoleSession", {"InstanceId": inst, "SerialPort": 0, "Reason": "raw"})
            assert r.status_code == 200, r.text
            assert r.json()["Success"] is True and r.json()["RequestId"] == r.headers["x-amzn-RequestId"]
            ended_and_freed(s, n0, key, inst, re.escape(one["Principal"]), "raw")
        finally:
            s.close()


# --- one node, memory store ------------------------------------------------------------------


@contextlib.contextmanager
def single_node(workdir: Path, console: SingleConsole, inst: str, idle_s: int, teardown_s: int = TEARDOWN_S,
                extra: str = ""):
    """A node alone (memory store); `extra` goes into its `[sessions]`."""
    config = workdir / "single.toml"
    config.write_text(with_session_settings(f"""region = "{REGION}"
state_dir = "{workdir / 'single'}"

[sessions]
teardown_seconds = 1

[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
actions = ["*"]

[[instances]]
id = "{inst}"
account = "{ACCOUNT}"
console = "{console.uri}"
""", idle_s=idle_s, teardown_s=teardown_s, extra=extra))
    host_key = subprocess.run(
        [str(_binary()), "host-key", "--config", str(config), "--public-key-only"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.strip()
    with _serve("single", config, workdir) as server:
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{server.ssh_port} {host_key}\n")
        yield {"server": server, "known_hosts": known_hosts, "config": config}


def test_one_node_lists_ends_and_ends_idle_sessions(tmp_path, key):  # noqa: F811
    inst = INST[3]
    console = SingleConsole()
    try:
        with single_node(tmp_path, console, inst, idle_s=3) as node:
            s = open_session(node, key, inst)
            try:
                assert [x["InstanceId"] for x in listed(node)] == [inst]
                assert cli(node, "end", inst, "--reason", "alone").returncode == 0
                ended_and_freed(s, node, key, inst, r"arn:aws:iam::\d+:\S+", "alone")
            finally:
                s.close()
            # Pushed by ended_and_freed: a quiet session now ends by itself after 3 s.
            s = Session(ssh_args(node, key, f"{inst}.port0", "-tt"))
            try:
                s.send(b"\r")
                s.expect(rb"single login: ")
                quiet_from = time.monotonic()
                s.expect(rb"serialgate: this session was ended by serialgate: idle", timeout=10)
                assert 2.5 <= time.monotonic() - quiet_from <= 6
                assert s.proc.wait(timeout=5) is not None
                wait_for("a push on the freed port", lambda: try_push(node, inst, key) == "ok", timeout=2)
            finally:
                s.close()
    finally:
        console.close()
