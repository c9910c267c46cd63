"""Spectators: read-only views of a serial port, beside the session that holds it.

A key pushed with serialgate's `SpectateSerialConsole` (by `serialgate push --spectate`, or a
raw SigV4 request as an SDK would send it) watches the port through OpenSSH as
`i-….port0.spectate`: it first sees the last lines of the console's history, then live output;
what it types never reaches the console (one notice says so); it does not count against the one
session per port; the number of spectators is capped (`[sessions] max_spectators`); the writer
is told when one joins and leaves; a grant opens one view; each view is audited. On two nodes
sharing one Redis, a spectator connected to the node that does not own the console watches
through the relay, and the session list counts spectators from every node.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import _binary
from single_console import SingleConsole
from ssh_session import Session
from test_cluster import consoles  # noqa: F401  (fixture)
from test_multinode import (  # noqa: F401  (fixtures)
    AK,
    REGION,
    SK,
    audit_records,
    key,
    redis,
    try_push,
    wait_for,
)
from test_sessions import PUSH_AK, PUSH_SK, raw, single_node, two_nodes  # noqa: F401
from test_ssh_openssh import ssh_args

INST = [f"i-0c4{n:014x}" for n in range(1, 4)]


def new_key(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


def push_spectator(node, inst: str, key: Path) -> subprocess.CompletedProcess:
    """`serialgate push --spectate`, the CLI a user runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return subprocess.run(
        [str(_binary()), "push", inst, "--spectate", "--key", f"{key}.pub",
         "--endpoint-url", node["server"].url, "--region", REGION],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def spectate(node, inst: str, key: Path) -> Session:
    r = push_spectator(node, inst, key)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "no RequestId printed"
    return Session(ssh_args(node, key, f"{inst}.port0.spectate", "-tt"))


def writer(node, inst: str, key: Path) -> Session:
    assert try_push(node, inst, key) == "ok"
    s = Session(ssh_args(node, key, f"{inst}.port0", "-tt"))
    s.send(b"\r")
    s.expect(rb"single login: ")
    return s


def spectator_ends(node, inst: str) -> list[dict]:
    return [r for r in audit_records(node, inst)
            if r.get("kind") == "session-end" and r.get("target") == "spectate:port0"]


def test_spectators_watch_read_only_capped_and_outside_the_limit(tmp_path, key):  # noqa: F811
    inst = INST[0]
    console = SingleConsole()
    watchers: list[Session] = []
    try:
        with single_node(tmp_path, console, inst, idle_s=0, teardown_s=1, extra="max_spectators = 2") as node:
            w = writer(node, inst, key)
            try:
                w.send(b"before-the-spectator\r")
                w.expect(rb"before-the-spectator")
                # The first spectator sees the history first: what the writer did before it came.
                a = spectate(node, inst, new_key(tmp_path, "a"))
                watchers.append(a)
                a.expect(rb"before-the-spectator")
                w.expect(rb"is now watching this console, read-only \(1 watching\)")
                # Live output reaches it.
                w.send(b"live-from-the-writer\r")
                a.expect(rb"live-from-the-writer")
                # What it types does not reach the console; one notice says so.
                a.send(b"spectator-typed\r")
                a.expect(rb"You are watching read-only")
                a.send(b"typed-again\r")
                w.send(b"after-the-typing\r")
                a.expect(rb"after-the-typing")
                assert b"spectator-typed" not in console.received
                assert b"typed-again" not in console.received
                with a.cond:
                    assert bytes(a.out).count(b"You are watching read-only") == 1

                # The slot is still the writer's alone: a second writer is refused as before.
                assert try_push(node, inst, new_key(tmp_path, "w2")) == "SerialConsoleSessionLimitExceededException"

                # Second spectator: a raw SigV4 request, as an SDK would send it.
                b_key = new_key(tmp_path, "b")
                r = raw(node, "SpectateSerialConsole",
                        {"InstanceId": inst, "SerialPort": 0, "SSHPublicKey": Path(f"{b_key}.pub").read_text()})
                assert r.status_code == 200, r.text
                assert r.json()["Success"] is True and r.json()["RequestId"]
                b = Session(ssh_args(node, b_key, f"{inst}.port0.spectate.replay-lines=1", "-tt"))
                watchers.append(b)
                w.expect(rb"\(2 watching\)")
                w.send(b"for-both\r")
                b.expect(rb"for-both")
                a.expect(rb"for-both")

                # A third is over the cap of two: told so, nothing shown.
                c = spectate(node, inst, new_key(tmp_path, "c"))
                watchers.append(c)
                c.expect(rb"already has the most spectators allowed \(2\)")
                assert c.proc.wait(timeout=10) == 1

                # A grant opens one view: the same key again is refused.
                again = subprocess.run(ssh_args(node, b_key, f"{inst}.port0.spectate"), capture_output=True,
                                       timeout=30, stdin=subprocess.DEVNULL)
                assert again.returncode == 255 and b"Permission denied" in again.stderr, again.stderr

                # A spectator leaving is announced to the writer; ~. leaves.
                b.send(b"\r~.")
                assert b.proc.wait(timeout=10) is not None
                w.expect(rb"stopped watching \(1 watching\)")
            finally:
                w.send(b"\r~.")
                w.close()
            # With the writer gone the spectator still watches, and the port takes a new writer
            # after the teardown: spectators do not hold it.
            wait_for("a push on the port", lambda: try_push(node, inst, key) == "ok", timeout=5)
            w = writer(node, inst, key)
            try:
                w.send(b"second-writer\r")
                a.expect(rb"second-writer")
            finally:
                w.send(b"\r~.")
                w.close()

            # A credential that may push keys but not watch is refused.
            denied = raw(node, "SpectateSerialConsole",
                         {"InstanceId": inst, "SSHPublicKey": Path(f"{key}.pub").read_text()},
                         ak=PUSH_AK, sk=PUSH_SK)
            assert denied.status_code == 403, denied.text
            assert denied.json()["__type"] == "AuthException", denied.text
            assert "serialgate:SpectateSerialConsole" in denied.json()["Message"], denied.text

            a.send(b"\r~.")
            assert a.proc.wait(timeout=10) is not None
            ends = wait_for("the spectators' end records", lambda: (
                spectator_ends(node, inst) if len(spectator_ends(node, inst)) >= 3 else None))
            outcomes = sorted(r["outcome"] for r in ends)
            # `~.` is OpenSSH's own escape too: the client closes the channel itself.
            assert outcomes.count("refused") == 1, outcomes
            assert set(outcomes) - {"refused"} <= {"client-closed", "client-escape"}, outcomes
            pushes = [r for r in audit_records(node, inst) if r.get("operation") == "SpectateSerialConsole"]
            assert sorted(r["outcome"] for r in pushes).count("success") == 3, pushes
            assert any(r["outcome"] != "success" for r in pushes), pushes
    finally:
        for s in watchers:
            s.close()
        console.close()


def test_a_spectator_on_another_node_watches_through_the_relay(two_nodes, consoles, key, tmp_path):  # noqa: F811
    inst = INST[1]
    consoles[inst] = con = SingleConsole()
    with two_nodes(consoles) as (n0, n1):
        w = writer(n0, inst, key)
        try:
            watchers = [spectate(n, inst, new_key(tmp_path, f"s{i}")) for i, n in enumerate((n0, n1))]
            try:
                for s in watchers:
                    s.expect(rb"single login: ")
                w.send(b"across-the-cluster\r")
                con.wait_for("the writer's input", lambda: b"across-the-cluster" in con.received)
                for s in watchers:
                    s.expect(rb"across-the-cluster")
                w.expect(rb"\(2 watching\)")
                # The session list, from either node, counts them; they have no rows of their own.
                listed = raw(n1, "ListSerialConsoleSessions", {})
                assert listed.status_code == 200, listed.text
                rows = listed.json()["Sessions"]
                assert [(x["InstanceId"], x["Spectators"]) for x in rows] == [(inst, 2)], rows
                watchers[1].send(b"not-from-here\r")
                watchers[1].expect(rb"You are watching read-only")
                w.send(b"marker\r")
                watchers[1].expect(rb"marker")
                assert b"not-from-here" not in con.received
            finally:
                for s in watchers:
                    s.send(b"\r~.")
                    s.close()
        finally:
            w.send(b"\r~.")
            w.close()
        assert con.overlaps == 0
