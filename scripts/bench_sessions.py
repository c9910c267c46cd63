"""Session control benchmark (README "Session control"); run by scripts/bench-sessions.sh.

1. End to disconnect, ROUNDS times: two nodes on one redis-server; a session opened through
   node0 with OpenSSH, `serialgate sessions end` through node1; the time from the command's
   start to the SSH client's exit (the CLI's own start-up and credential chain included).
2. `sessions list` latency with ENTRIES live entries in the directory (written directly into
   Redis, one instance's ports 1..ENTRIES), LIST_ROUNDS raw SigV4 calls, and one CLI call.
Prints p50/p99; targets (printed, not asserted): end to disconnect p99 < 1 s.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

import test_cluster  # noqa: E402
from single_console import SingleConsole  # noqa: E402
from test_multinode import Redis, try_push, wait_for  # noqa: E402
from test_sessions import INST, cli, raw, with_session_settings  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "50"))
ENTRIES = int(os.environ.get("ENTRIES", "1000"))
LIST_ROUNDS = int(os.environ.get("LIST_ROUNDS", "50"))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def show(what: str, xs: list[float]) -> None:
    print(f"{what}: n={len(xs)} p50={pct(xs, 50) * 1000:.1f} ms p99={pct(xs, 99) * 1000:.1f} ms "
          f"mean={statistics.mean(xs) * 1000:.1f} ms")


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    redis = Redis(work)
    redis.start()
    original = test_cluster.node_config

    def node_config(workdir, name, r, consoles, pinned, secret=test_cluster.SECRET):
        path, relay = original(workdir, name, r, consoles, pinned, secret)
        # The API's throttle (20/s by default) is not what is measured.
        throttle = "\n[throttle]\nrate_per_second = 10000.0\nburst = 10000\n"
        path.write_text(with_session_settings(path.read_text()) + throttle)
        return path, relay

    test_cluster.node_config = node_config
    inst = INST[4]
    consoles = {inst: SingleConsole()}
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    try:
        with test_cluster.nodes(work, redis, consoles, n=2) as (n0, n1):
            ends = []
            for _ in range(ROUNDS):
                wait_for("a free port", lambda: try_push(n0, inst, key) == "ok", timeout=10)
                s = open_session_pushed(n0, key, inst)
                wait_for("listed", lambda: raw(n1, "ListSerialConsoleSessions", {}).json()["Sessions"])
                t0 = time.monotonic()
                r = cli(n1, "end", inst, "--reason", "bench")
                assert r.returncode == 0, r.stderr
                s.proc.wait(timeout=10)
                ends.append(time.monotonic() - t0)
                s.close()
            show("sessions end -> SSH client disconnect (2 nodes, redis)", ends)

            key_name = "sg:{sessions}:live"
            now_ms = int(time.time() * 1000)
            entry = json.dumps({"token": "1", "exp": str(now_ms + 3_600_000), "principal": "arn:aws:iam::111122223333:user/bench",
                                "source": "192.0.2.1:40000", "started": str(now_ms), "node": "bench", "spectators": "0"})
            args = ["redis-cli", "-p", str(redis.port), "HSET", key_name]
            for port in range(1, ENTRIES + 1):
                args += [f"{inst}:{port}", entry]
            subprocess.run(args, check=True, capture_output=True)
            lists = []
            for _ in range(LIST_ROUNDS):
                t0 = time.monotonic()
                a = raw(n1, "ListSerialConsoleSessions", {})
                lists.append(time.monotonic() - t0)
                assert len(a.json().get("Sessions", [])) == ENTRIES, a.text[:300]
            show(f"ListSerialConsoleSessions with {ENTRIES} entries (raw SigV4)", lists)
            t0 = time.monotonic()
            assert cli(n1, "list").returncode == 0
            print(f"serialgate sessions list with {ENTRIES} entries (CLI, one call): {(time.monotonic() - t0) * 1000:.1f} ms")
    finally:
        for c in consoles.values():
            c.close()
        redis.kill()


def open_session_pushed(node, key, inst):
    from ssh_session import Session
    from test_ssh_openssh import ssh_args
    s = Session(ssh_args(node, key, f"{inst}.port0", "-tt"))
    s.send(b"\r")
    s.expect(rb"single login: ")
    return s


if __name__ == "__main__":
    main()
