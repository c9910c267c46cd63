"""The processes of a fault run: one `redis-server` the test can pause, kill and restart empty,
and `serialgate serve` nodes (each reaching Redis through its own `FaultProxy`) the test can
kill with SIGKILL, stop with SIGTERM and start again on the same ports and state directory.

Every start of a node is an *incarnation* with its own pid; the history checker needs to know
how each one ended (killed, or stopped in order) to know which records it owes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from conftest import _binary, _die_with_parent, _free_ports

from faults.proxy import FaultProxy

REGION = "us-east-1"
ACCOUNT = "111122223333"
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

# Short timings, so that faults past the lease fit in seconds (see test_faults.py).
LEASE_S = 3
TEARDOWN_S = 1
STORE_TIMEOUT_MS = 500
KEY_TTL_S = 60

STARTUP_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


class RedisServer:
    """A throwaway redis-server without persistence: a restart brings it back empty."""

    def __init__(self, workdir: Path):
        if shutil.which("redis-server") is None:
            raise AssertionError(
                "redis-server is not installed; the fault suite needs it and does not skip "
                "(scripts/test.sh installs it)"
            )
        self.port = _free_ports(1)[0]
        self.log = workdir / "redis.log"
        self.proc: subprocess.Popen | None = None
        self.paused = False

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
                raise AssertionError(f"redis-server exited: {self.log.read_text()}")
            r = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True)
            if r.stdout.strip() == "PONG":
                return
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not answer on port {self.port}")

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.proc is not None and self.paused:
            self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart_empty(self) -> None:
        self.kill()
        self.start()


@dataclass
class Incarnation:
    """One run of a node's process."""

    node: str
    number: int
    pid: int
    started: float
    ended: float | None = None
    how: str = "running"  # running, killed (SIGKILL), stopped (SIGTERM, exit 0), failed
    returncode: int | None = None

    @property
    def node_id(self) -> str:
        """The `node` field of its audit records (`cluster-node:pid`)."""
        return f"{self.node}:{self.pid}"


def node_config(path: Path, state_dir: Path, redis_url: str, instances: dict[str, str],
                node: str, relay_port: int) -> None:
    """A node's configuration: one account, the given instances (id -> console URI), and its
    place in the cluster (the consoles have one owner at a time; the others relay to it)."""
    blocks = "".join(
        f'\n[[instances]]\nid = "{i}"\naccount = "{ACCOUNT}"\nconsole = "{uri}"\n'
        for i, uri in instances.items()
    )
    path.write_text(
        f"""region = "{REGION}"
state_dir = "{state_dir}"

[store]
redis = "{redis_url}"
lease_seconds = {LEASE_S}
timeout_ms = {STORE_TIMEOUT_MS}

[cluster]
node = "{node}"
listen = "127.0.0.1:{relay_port}"
secret = "fault-suite-cluster-secret"

[sessions]
teardown_seconds = {TEARDOWN_S}

[keys]
ttl_seconds = {KEY_TTL_S}

[throttle]
rate_per_second = 10000.0
burst = 10000

[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
{blocks}"""
    )


class Node:
    """A `serialgate serve` on fixed loopback ports, reaching Redis through its own proxy."""

    def __init__(self, workdir: Path, name: str, redis: RedisServer, instances: dict[str, str],
                 spawner: ThreadPoolExecutor):
        self.name = name
        self.spawner = spawner
        self.workdir = workdir
        self.state_dir = workdir / name
        self.config = workdir / f"{name}.toml"
        self.log = workdir / f"{name}.log"
        self.proxy = FaultProxy(name, redis.port)
        self.api_port, self.ssh_port, self.relay_port = _free_ports(3)
        node_config(self.config, self.state_dir, self.proxy.url, instances, name, self.relay_port)
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.proc: subprocess.Popen | None = None
        self.incarnations: list[Incarnation] = []
        # Held while the node is being killed or started, so that two threads of a test do
        # not restart it twice.
        self.lock = threading.RLock()

    @property
    def audit_db(self) -> Path:
        return self.state_dir / "audit.db"

    @property
    def current(self) -> Incarnation | None:
        return self.incarnations[-1] if self.incarnations else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> Incarnation:
        with self.lock:
            assert not self.alive(), f"{self.name} is already running"
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
            env.update({"SERIALGATE_LOG": "info", "NO_COLOR": "1", "HOME": str(self.workdir)})
            cmd = [str(_binary()), "serve", "--config", str(self.config),
                   "--api-listen", f"127.0.0.1:{self.api_port}", "--ssh-listen", f"127.0.0.1:{self.ssh_port}"]
            def spawn() -> subprocess.Popen:
                with open(self.log, "ab") as log:
                    log.write(f"\n===== {self.name}: start {len(self.incarnations) + 1} =====\n".encode())
                    log.flush()
                    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                            cwd=self.workdir, preexec_fn=_die_with_parent)

            # The parent-death signal fires when the *thread* that forked the child ends, so
            # nodes are forked by one thread that lives as long as the test, whichever thread
            # of the test asked for the restart.
            self.proc = self.spawner.submit(spawn).result()
            inc = Incarnation(self.name, len(self.incarnations) + 1, self.proc.pid, time.monotonic())
            self.incarnations.append(inc)
            self._wait_healthy()
            return inc

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        last = "no attempt"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._ended("failed")
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} while starting:\n"
                                     f"{self.log_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1.0) as resp:
                    if resp.status == 200 and json.loads(resp.read()).get("status") == "ok":
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError) as e:
                last = repr(e)
            time.sleep(0.02)
        raise AssertionError(f"{self.name} did not become healthy ({last}):\n{self.log_text()[-4000:]}")

    def _ended(self, how: str) -> None:
        inc = self.current
        if inc is not None and inc.ended is None:
            inc.ended = time.monotonic()
            inc.how = how
            inc.returncode = self.proc.returncode if self.proc else None

    def kill9(self) -> Incarnation | None:
        """SIGKILL; returns the incarnation it ended (None if the node was not running)."""
        with self.lock:
            if not self.alive():
                return None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            inc = self.current
            self._ended("killed")
            return inc

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM and wait for the exit; returns the exit status (None if not running). A node
        that does not stop in time is killed, and that incarnation counts as killed."""
        with self.lock:
            if not self.alive():
                return None
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._ended("killed")
                raise AssertionError(f"{self.name} did not stop within {timeout:.0f} s of SIGTERM")
            self._ended("stopped" if code == 0 else "failed")
            return code

    def restart(self) -> Incarnation:
        with self.lock:
            if self.alive():
                return self.current
            return self.start()

    def wait_log(self, pattern: str, since: int = 0, timeout: float = 15.0) -> int:
        """Waits for a regex in the node's log after byte offset `since`; returns the end offset."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            m = rx.search(text, since)
            if m:
                return m.end()
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no /{pattern}/ in its log within {timeout:.0f} s")
            time.sleep(0.05)

    def log_size(self) -> int:
        return len(self.log_text())


class Cluster(contextlib.ExitStack):
    """Nodes on one Redis, each through its own proxy; stopped (SIGTERM) when the block ends."""

    def __init__(self, workdir: Path, redis: RedisServer, n: int, instances: dict[str, str]):
        super().__init__()
        self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spawner")
        self.callback(self.spawner.shutdown)
        self.nodes = [Node(workdir, f"node{i}", redis, instances, self.spawner) for i in range(n)]
        self.callback(self._stop_all)

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        return self

    def stop_all(self) -> list[str]:
        """SIGTERM every live node and wait; returns what went wrong (a node that did not stop
        in time, and was killed, or exited with an error)."""
        errors = []
        for node in self.nodes:
            try:
                code = node.terminate()
                if code not in (None, 0):
                    errors.append(f"{node.name} exited with status {code}")
            except AssertionError as e:
                errors.append(str(e))
        for node in self.nodes:
            node.proxy.heal()
        return errors

    def _stop_all(self) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.terminate(timeout=5)
            with contextlib.suppress(Exception):
                node.proxy.stop()

    def incarnations(self) -> list[Incarnation]:
        return [inc for node in self.nodes for inc in node.incarnations]
