"""The fault suite: several nodes on one real `redis-server`, faults injected while sessions write
and pushes land, and a history checker that judges what the outside world saw.

Every node's hub is connected to a fake console (faults/console.py) that records which session
wrote each line and when; every node reaches Redis through its own TCP proxy
(faults/proxy.py). The faults:

* Redis paused (SIGSTOP) past the lease: every session must close before its lease expires,
  while Redis is still paused, so that a node that takes the slot afterwards is alone.
* Redis connections dropped (reset) over and over, and one node cut off (partitioned) from
  Redis while its session writes.
* A node killed with SIGKILL at random points of push/open/close loops, over 200 iterations.
* A node stopped with SIGTERM while sessions are open: each ends with a notice, a released
  slot and its end record.

After each fault the checker (faults/history.py) asserts: one writer per console port, every
acknowledged push audited, every opened session with a start record (and an end record where
its node survived), one push opens at most one session.

Random choices come from one seed, printed at the start (`FAULT_SEED=…` replays the choices;
the timing of the processes is the machine's). Timings are short (`lease_seconds = 3`,
`timeout_ms = 500`, `teardown_seconds = 1`); the waits are on events (console output, clients
ending, processes exiting) except where time passing is the fault itself (Redis paused past
the lease).
"""

from __future__ import annotations

import os
import random
import secrets
import sqlite3
import subprocess
import threading
import time

import pytest

from faults.clients import ConsoleSession, Key, Push, SessionRecord, new_key, push, push_until_ok
from faults.console import FakeConsoles, Line
from faults.history import History, check, read_audit
from faults.procs import LEASE_S, TEARDOWN_S, Cluster, Incarnation, Node, RedisServer

# The kill -9 loops: lanes (one instance each, run in parallel) x iterations per lane.
KILL_LANES = 8
KILL_ITERATIONS_PER_LANE = int(os.environ.get("FAULT_KILL_ITERATIONS", "208")) // KILL_LANES
# Where in an iteration a node is killed, and how often (the rest, 88 %: no kill).
KILL_POINTS = {
    None: 88,
    "during-push": 2,  # a few ms after the push was sent
    "after-push": 2,  # once the push was acknowledged
    "during-open": 2,  # while the SSH handshake and session open run
    "after-open": 2,  # as soon as the client saw the first console output
    "while-typing": 2,
    "during-close": 2,  # right after the client asked to leave
}


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seed(request) -> int:
    raw = os.environ.get("FAULT_SEED")
    value = int(raw) if raw else secrets.randbits(32)
    # Printed past pytest's capture, so that every run shows it, passing or failing.
    capman = request.config.pluginmanager.getplugin("capturemanager")
    with capman.global_and_fixture_disabled():
        print(f"\ntest_faults: FAULT_SEED={value} (export FAULT_SEED={value} to replay this run's choices)",
              flush=True)
    return value


@pytest.fixture
def rng(seed, request) -> random.Random:
    """One generator per test, derived from the seed and the test's name: one test run alone
    with the same seed makes the same choices."""
    return random.Random(f"{seed}:{request.node.name}")


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    r = RedisServer(tmp_path_factory.mktemp("fault-redis"))
    r.start()
    yield r
    r.kill()


class World:
    """One test's consoles, nodes, clients and history."""

    def __init__(self, tmp_path, redis: RedisServer, history: History):
        self.tmp_path = tmp_path
        self.redis = redis
        self.history = history
        self.keydir = tmp_path / "keys"
        self.keydir.mkdir()
        self.consoles: FakeConsoles | None = None
        self.cluster: Cluster | None = None
        self.sessions: list[ConsoleSession] = []

    def build(self, n_nodes: int, instances: list[str]) -> list[Node]:
        self.consoles = FakeConsoles(instances)
        self.cluster = Cluster(self.tmp_path, self.redis, n_nodes, {i: self.consoles.uri(i) for i in instances})
        self.cluster.start()
        # One owner per console: exactly one node connects to it; the others relay.
        for i in instances:
            self.consoles.wait_connected(i, 1)
        return self.cluster.nodes

    def key(self) -> Key:
        return new_key(self.keydir)

    def session(self, node: Node, instance: str, key: Key) -> ConsoleSession:
        s = ConsoleSession(self.history, node, instance, key)
        self.sessions.append(s)
        return s

    def check(self, problems: list[str] | None = None) -> None:
        """Ends what the clients still hold, stops every node (SIGTERM, in order) and runs the
        history checker; `problems` the test found itself are reported with the checker's."""
        for s in self.sessions:
            s.stop_typing()
        stopping = self.cluster.stop_all()
        verdict = check(self.history, self.consoles, self.cluster.nodes)
        verdict.problems[:0] = (problems or []) + stopping
        print(verdict.summary)
        verdict.assert_ok(self.history)

    def teardown(self) -> None:
        for s in self.sessions:
            s.kill()
        if self.cluster is not None:
            self.cluster.close()
        if self.consoles is not None:
            self.consoles.stop()


@pytest.fixture
def world(tmp_path, redis, seed, request):
    """Redis running (not paused) and a fresh history; the test builds its nodes."""
    redis.resume()
    if redis.proc is None or redis.proc.poll() is not None:
        redis.start()
    w = World(tmp_path, redis, History(seed, request.node.name))
    try:
        yield w
    finally:
        w.teardown()
        redis.resume()


# --- helpers -----------------------------------------------------------------------------------


def instances(prefix: int, n: int) -> list[str]:
    """Instance ids private to one test (17 hex digits), so tests never share a slot."""
    return [f"i-{prefix:03x}{k:014x}" for k in range(n)]


def open_typing(w: World, node: Node, instance: str, acks: int = 3) -> ConsoleSession:
    """Push, open a session, see `acks` lines acknowledged, then keep typing in the background."""
    key = w.key()
    push_until_ok(w.history, node, instance, key)
    s = w.session(node, instance, key)
    assert s.open(), f"session on {node.name} for {instance} did not open:\n{s.text()}"
    for _ in range(acks - 1):
        seq = s.type_line()
        assert seq is not None and s.wait_acked(seq), s.text()
    s.start_typing(0.05)
    return s


def take_over(w: World, node: Node, instance: str, timeout: float) -> ConsoleSession:
    """What the next user does once a session is gone: push until a push is acknowledged,
    connect until the session opens (a refused open leaves the grant unspent), type a few lines
    and leave. The slot frees when the earlier session's lease is released or lapses."""
    key = w.key()
    deadline = time.monotonic() + timeout
    push_until_ok(w.history, node, instance, key, timeout=timeout)
    while True:
        s = w.session(node, instance, key)
        if s.open(timeout=10):
            break
        s.kill()
        if time.monotonic() > deadline:
            raise AssertionError(f"no session opened on {node.name} for {instance} within {timeout:.0f} s "
                                 f"after its push was acknowledged:\n{s.text()[-600:]}")
        time.sleep(0.1)
    # Long enough (half a second) that an earlier session still typing every 50 ms would
    # interleave its lines with these.
    for _ in range(10):
        seq = s.type_line()
        if seq is None or not s.wait_acked(seq, timeout=5):
            break
        time.sleep(0.05)
    s.close()
    return s


def in_threads(problems: list[str], *calls) -> None:
    """Runs each (fn, *args) in its own thread and waits for all; an AssertionError becomes a
    reported problem instead of vanishing with its thread."""
    def guarded(fn, args):
        try:
            fn(*args)
        except AssertionError as e:
            problems.append(str(e).strip().splitlines()[0])
    threads = [threading.Thread(target=guarded, args=(c[0], c[1:])) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def closed_in_time(s: ConsoleSession, since: float, limit: float, what: str) -> list[str]:
    """The session must have ended within `limit` seconds of `since`, with the lease notice."""
    problems = []
    if s.rec.ended is None or s.rec.ended - since > limit:
        when = "is still open" if s.rec.ended is None else f"ended only {s.rec.ended - since:.1f} s later"
        problems.append(f"session S{s.id} on {s.rec.node} ({s.rec.instance}) {when} after {what}: a session "
                        f"that cannot renew its lease must close before the lease ({LEASE_S} s) expires")
    elif not s.rec.lease_lost_notice:
        problems.append(f"session S{s.id} on {s.rec.node} closed after {what} without the lease-loss notice; "
                        f"it saw: {s.text()[-300:]!r}")
    return problems


# --- Redis paused ------------------------------------------------------------------------------


def test_redis_paused_past_the_lease(world: World):
    """Redis stops answering (SIGSTOP) while a session on each node writes. Nobody can renew, so
    every session must close before its lease expires, while Redis is still stopped. Then Redis
    continues, the leases have lapsed, and the other node takes each slot: alone."""
    w = world
    inst = instances(0xA01, 2)
    nodes = w.build(2, inst)
    sessions = [open_typing(w, nodes[k], inst[k]) for k in range(2)]

    w.redis.pause()
    paused = time.monotonic()
    try:
        # Time passing is the fault: Redis stays stopped past lease + teardown, so that every
        # lease taken before the pause has lapsed when it continues.
        resume_at = paused + LEASE_S + TEARDOWN_S + 0.5
        for s in sessions:
            s.wait_ended(timeout=max(0.0, resume_at - time.monotonic()))
        time.sleep(max(0.0, resume_at - time.monotonic()))
    finally:
        w.redis.resume()
    problems = []
    for s in sessions:
        problems += closed_in_time(s, paused, LEASE_S, "Redis was paused")
    # The old clients go on typing if their sessions still run; the checker sees it.
    in_threads(problems, *[(take_over, w, nodes[1 - k], inst[k], LEASE_S + TEARDOWN_S + 10) for k in range(2)])
    w.check(problems)


# --- Redis restarted empty ---------------------------------------------------------------------


def test_redis_restarted_empty(world: World):
    """Redis is killed and comes back empty: every lease is forgotten. Session A's node is cut
    off from Redis (partitioned) across the restart, so it cannot learn that; session C's node
    reaches the new Redis. A third node pushes and connects to both instances at once. No
    session may open on either instance while A or C still writes: the new Redis must refuse
    new sessions until every holder from before the restart has either learnt that its lease is
    gone or closed for want of renewal."""
    w = world
    inst = instances(0xA02, 2)
    nodes = w.build(3, inst)
    a = open_typing(w, nodes[0], inst[0])
    c = open_typing(w, nodes[1], inst[1])

    nodes[0].proxy.partition()
    w.redis.restart_empty()
    restarted = time.monotonic()
    problems: list[str] = []
    try:
        in_threads(problems,
                   (take_over, w, nodes[2], inst[0], LEASE_S + TEARDOWN_S + 15),
                   (take_over, w, nodes[2], inst[1], LEASE_S + TEARDOWN_S + 15))
        a.wait_ended(timeout=max(0.0, restarted + LEASE_S + 1 - time.monotonic()))
        c.wait_ended(timeout=max(0.0, restarted + LEASE_S + 1 - time.monotonic()))
    finally:
        nodes[0].proxy.heal()
    problems += closed_in_time(a, restarted, LEASE_S, "Redis restarted empty while its node was cut off")
    problems += closed_in_time(c, restarted, LEASE_S, "Redis restarted empty")
    w.check(problems)


# --- Redis connections dropped -----------------------------------------------------------------


def test_redis_connections_dropped_and_one_node_partitioned(world: World, rng: random.Random):
    """First the proxies reset every node's Redis connection at random moments for a few
    seconds, while sessions write and pushes land on both nodes; then node 0 alone is cut off
    from Redis while its session writes, and node 1 takes that slot once the lease lapsed."""
    w = world
    inst = instances(0xA03, 3)
    nodes = w.build(2, inst)
    sessions = [open_typing(w, nodes[k], inst[k]) for k in range(2)]

    # Phase 1: connections dropped at random.
    stop = threading.Event()
    drops = [0]

    def dropper():
        while not stop.is_set():
            for n in nodes:
                drops[0] += n.proxy.drop()
            stop.wait(rng.uniform(0.05, 0.6))

    def pusher():
        k = 0
        while not stop.is_set():
            push(w.history, nodes[k % 2], inst[2], w.key())
            k += 1

    threads = [threading.Thread(target=dropper), threading.Thread(target=pusher)]
    for t in threads:
        t.start()
    time.sleep(4.0)  # the fault's duration: drops keep coming meanwhile
    stop.set()
    for t in threads:
        t.join()
    problems: list[str] = []
    if drops[0] == 0:
        problems.append("the proxies never had a connection to drop")
    acked = [p for p in w.history.pushes if p.instance == inst[2] and p.acked]
    if not acked:
        problems.append(f"no push was acknowledged in {len([p for p in w.history.pushes if p.instance == inst[2]])} "
                        f"attempts while connections dropped: the nodes never recovered between drops")

    # The sessions that survived the drops (a renewal can fail without ending one) leave; a
    # session that ended meanwhile must have been told why.
    for s in sessions:
        if s.alive():
            s.close()
        elif not s.rec.lease_lost_notice:
            problems.append(f"session S{s.id} on {s.rec.node} ended during the drops without the lease-loss "
                            f"notice: {s.text()[-300:]!r}")

    # Phase 2: node 0 cut off from Redis while its session writes; node 1 takes the slot.
    a = open_typing(w, nodes[0], inst[0])
    nodes[0].proxy.partition()
    cut = time.monotonic()
    try:
        take_over(w, nodes[1], inst[0], LEASE_S + TEARDOWN_S + 10)
        a.wait_ended(timeout=max(0.0, cut + LEASE_S + 1 - time.monotonic()))
    finally:
        nodes[0].proxy.heal()
    problems += closed_in_time(a, cut, LEASE_S, "its node was cut off from Redis")
    w.check(problems)


# --- kill -9 -------------------------------------------------------------------------------------


class KillLoop:
    """Lanes of push/open/type/close iterations, one instance each, on random nodes; at random
    points a node is killed with SIGKILL and started again (same ports, same state_dir)."""

    def __init__(self, w: World, nodes: list[Node], seed_rng: random.Random):
        self.w = w
        self.nodes = nodes
        self.lane_seeds = [seed_rng.getrandbits(64) for _ in range(KILL_LANES)]
        self.iterations = 0
        self.kills = 0
        self.opened = 0
        self.problems: list[str] = []
        self.lock = threading.Lock()
        self.times: dict[str, float] = {}

    def kill_and_restart(self, node: Node, where: str) -> None:
        t = time.monotonic()
        with node.lock:
            inc = node.kill9()
            if inc is not None:
                with self.lock:
                    self.kills += 1
                self.w.history.note_kill(f"{node.name}#{inc.number} {where}")
            node.restart()
        self.phase("kill+restart", t)

    def alive_node(self, rng: random.Random) -> Node:
        """A random node; one being restarted is waited for (its lock is held meanwhile)."""
        node = rng.choice(self.nodes)
        with node.lock:
            if not node.alive():
                node.restart()
        return node

    def lane(self, n: int, instance: str) -> None:
        rng = random.Random(self.lane_seeds[n])
        points = list(KILL_POINTS)
        weights = list(KILL_POINTS.values())
        for _ in range(KILL_ITERATIONS_PER_LANE):
            point = rng.choices(points, weights)[0]
            # Usually the node the iteration talks to dies; sometimes another one.
            victim_pick = rng.random()
            delay = rng.uniform(0.0, 0.03)
            try:
                self.iteration(rng, instance, point, victim_pick, delay)
            except AssertionError as e:
                with self.lock:
                    self.problems.append(f"lane {n} ({instance}): {str(e).strip().splitlines()[0]}")
            except Exception as e:  # a broken harness must fail the test, not end a lane quietly
                with self.lock:
                    self.problems.append(f"lane {n} ({instance}): {e!r}")
            with self.lock:
                self.iterations += 1

    def phase(self, name: str, since: float) -> float:
        now = time.monotonic()
        with self.lock:
            self.times[name] = self.times.get(name, 0.0) + now - since
        return now

    def iteration(self, rng: random.Random, instance: str, point, victim_pick: float, delay: float) -> None:
        w = self.w
        t = time.monotonic()
        # Every random choice first, so the seed decides them whatever the timing does.
        push_node = self.alive_node(rng)
        open_node = self.alive_node(rng)
        racer_node = self.alive_node(rng)
        lines = rng.randint(1, 4)
        how = rng.choice(["escape", "hangup"])
        # Sometimes a second push for another key races the session's open (a few ms to
        # 150 ms after the client starts): it is refused (slot held) or lands before the open
        # takes the slot (and the open must then fail); never lost once acknowledged.
        race_after = rng.uniform(0.0, 0.15) if rng.random() < 0.2 else None

        def victim(node: Node) -> Node:
            return node if victim_pick < 0.75 else self.nodes[int(victim_pick * 1000) % len(self.nodes)]

        key = w.key()
        if point == "during-push":
            killer = threading.Timer(delay, self.kill_and_restart, args=(victim(push_node), point))
            killer.start()
            push(w.history, push_node, instance, key)
            killer.join()
        # The slot frees after the previous session's teardown, or after the lapse of a lease
        # whose node was killed: the push is refused until then.
        t = self.phase("pick", t)
        push_until_ok(w.history, push_node, instance, key, timeout=LEASE_S + TEARDOWN_S + 20)
        t = self.phase("push", t)
        if point == "after-push":
            self.kill_and_restart(victim(push_node), point)
        s = w.session(open_node, instance, key)
        raced: list = []
        racer = None
        if race_after is not None:
            key2 = w.key()
            racer = threading.Timer(race_after, lambda: raced.append((key2, push(w.history, racer_node, instance, key2))))
            racer.start()
        try:
            self.session_body(s, point, victim(open_node), lines, how, delay)
        finally:
            t = self.phase("session", t)
            if racer is not None:
                racer.join()
                key2, p2 = raced[0]
                if p2.acked:
                    self.must_open(instance, key2, p2)
                self.phase("race", t)

    def session_body(self, s: ConsoleSession, point, victim: Node, lines: int, how: str, delay: float) -> None:
        if point == "during-open":
            time.sleep(delay * 10)  # up to 0.3 s: somewhere in the handshake and session open
            self.kill_and_restart(victim, point)
        if not s.open(timeout=15):
            s.kill()
            return
        with self.lock:
            self.opened += 1
        if point == "after-open":
            self.kill_and_restart(victim, point)
        for k in range(lines):
            seq = s.type_line()
            if seq is None or not s.wait_acked(seq, timeout=10):
                break
            if point == "while-typing" and k == lines // 2:
                self.kill_and_restart(victim, point)
        if point == "during-close":
            s.leave(how)
            time.sleep(delay)
            self.kill_and_restart(victim, point)
        s.close(how)

    def must_open(self, instance: str, key: Key, pushed: Push) -> None:
        """An acknowledged push that nothing replaced opens a session once the slot is free:
        connect until it does; "Permission denied" means the push was lost, unless an earlier
        attempt may have spent it.

        The gateway spends a push when it authenticates the key, before the client hears so.
        Other lanes kill nodes at any moment, so an attempt whose node died under it, or that
        ended any other way than a refusal, may have spent the push without the client seeing
        a session; a refusal after such an attempt proves nothing."""
        w = self.w
        deadline = time.monotonic() + LEASE_S + TEARDOWN_S + 20
        attempt = 0
        maybe_spent = False
        while time.monotonic() < deadline:
            node = self.nodes[attempt % len(self.nodes)]
            attempt += 1
            with node.lock:
                if not node.alive():
                    node.restart()
            s = w.session(node, instance, key)
            if s.open(timeout=10):
                s.close()
                return
            s.kill()
            if b"[serialgate]" in s.out:
                # The key opened a session (serialgate spoke on its channel), whose console was
                # away the whole time (changing owners): the push was spent, not lost.
                return
            refused = b"Permission denied" in s.err
            intact = node.alive() and s.rec.incarnation is node.current
            if refused and intact:
                if maybe_spent:
                    return
                raise AssertionError(f"push {pushed.request_id} ({pushed.node}, key {key.fingerprint}) was "
                                     f"acknowledged while another session was opening, and nothing replaced "
                                     f"it, yet its key is refused: the push was lost")
            if not refused and b"Connection refused" not in s.err:
                maybe_spent = True
            time.sleep(0.2)
        raise AssertionError(f"push {pushed.request_id} was acknowledged but its key opened no session "
                             f"within {LEASE_S + TEARDOWN_S + 20} s")


def test_kill_9_at_random_points_of_push_open_close_loops(world: World, rng: random.Random):
    w = world
    inst = instances(0xA04, KILL_LANES)
    nodes = w.build(3, inst)
    loop = KillLoop(w, nodes, rng)
    threads = [threading.Thread(target=loop.lane, args=(n, inst[n])) for n in range(KILL_LANES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for node in nodes:
        node.restart()
    problems = list(loop.problems)
    if loop.iterations < 200:
        problems.append(f"only {loop.iterations} iterations ran")
    if loop.kills < 10:
        problems.append(f"only {loop.kills} nodes were killed in {loop.iterations} iterations")
    print(f"kill loop: {loop.iterations} iterations, {loop.opened} sessions opened, {loop.kills} kills; "
          f"lane seconds per phase: { {k: round(v, 1) for k, v in loop.times.items()} }")
    w.check(problems)


# --- SIGTERM -------------------------------------------------------------------------------------


def test_sigterm_ends_every_open_session_in_order(world: World):
    """Node 0 is stopped with SIGTERM while three sessions on it write (node 1 has one too,
    untouched). Each of node 0's sessions gets the shutdown notice, releases its slot (node 1
    takes it after the teardown, not after a lease lapse) and has its end record; node 0 exits
    with status 0."""
    w = world
    inst = instances(0xA05, 4)
    nodes = w.build(2, inst)
    on0 = [open_typing(w, nodes[0], i) for i in inst[:3]]
    on1 = open_typing(w, nodes[1], inst[3])
    holders = {i: _lease_holder(w.redis, i) for i in inst[:3]}
    problems: list[str] = [f"{i}: no lease hash with a holder found in Redis while its session is open; "
                           f"the release check below needs the key layout of crates/store-redis"
                           for i, h in holders.items() if not h]

    code = nodes[0].terminate()
    if code != 0:
        problems.append(f"node0 exited with status {code} after SIGTERM")
    for s in on0:
        if not s.wait_ended(timeout=5):
            problems.append(f"session S{s.id} was still connected after node0 exited")
        elif not s.rec.shutdown_notice:
            problems.append(f"session S{s.id} ended without the shutdown notice: {s.text()[-300:]!r}")
    # The slots were released, not left to lapse: no lease of node 0 is left in Redis.
    for i in inst[:3]:
        left = _lease_holder(w.redis, i)
        if left and left == holders[i]:
            problems.append(f"{i}: node0's lease ({left}) is still in Redis after node0 stopped: "
                            f"the session's slot was not released")
    records = read_audit(nodes[0].audit_db)
    for s in on0:
        ends = [r for r in records if r["kind"] == "session-end" and r["key_fingerprint"] == s.rec.fingerprint]
        if not ends:
            problems.append(f"session S{s.id} ({s.rec.instance}) has no session-end record after SIGTERM")
        elif ends[0]["outcome"] != "shutdown":
            problems.append(f"session S{s.id}: end record says {ends[0]['outcome']!r}, not 'shutdown'")
    if on1.alive() is False:
        problems.append(f"node1's session S{on1.id} ended although only node0 stopped")
    # Node 1 takes node 0's slots once their teardown is over.
    in_threads(problems, *[(take_over, w, nodes[1], i, TEARDOWN_S + 10) for i in inst[:3]])
    on1.close()
    w.check(problems)


def _lease_holder(redis: RedisServer, instance: str) -> str | None:
    """The holder recorded in the slot's lease hash in Redis (key layout: crates/store-redis)."""
    keys = subprocess.run(["redis-cli", "-p", str(redis.port), "--scan", "--pattern", f"*{{{instance}}}*lease*"],
                          capture_output=True, text=True, timeout=10).stdout.split()
    for k in keys:
        r = subprocess.run(["redis-cli", "-p", str(redis.port), "HGET", k, "holder"],
                           capture_output=True, text=True, timeout=10)
        if r.stdout.strip():
            return r.stdout.strip()
    return None


# --- the checker itself --------------------------------------------------------------------------
# The fault tests pass when the checker finds nothing, so the checker must be shown to find
# each kind of violation: synthetic histories, one violation each, no processes.


class _StubNode:
    def __init__(self, tmp_path, name: str, pids: list[tuple[int, str]]):
        self.name = name
        self.audit_db = tmp_path / f"{name}.db"
        self.incarnations = [Incarnation(name, k + 1, pid, started=float(k * 100), ended=float(k * 100 + 99),
                                         how=how) for k, (pid, how) in enumerate(pids)]
        conn = sqlite3.connect(self.audit_db)
        conn.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, kind TEXT NOT NULL, "
                     "request_id TEXT, operation TEXT, session_id TEXT, principal_arn TEXT, source_ip TEXT, "
                     "instance_id TEXT, target TEXT, key_fingerprint TEXT, outcome TEXT NOT NULL, "
                     "duration_ms INTEGER, bytes_in INTEGER, bytes_out INTEGER, node TEXT NOT NULL)")
        conn.commit()
        conn.close()

    def record(self, inc: int, kind: str, request_id: str, outcome: str, fingerprint: str = "",
               session_id: str | None = None, instance: str = "i-0000000000000000a") -> None:
        conn = sqlite3.connect(self.audit_db)
        conn.execute("INSERT INTO audit (time_ms, kind, request_id, session_id, instance_id, key_fingerprint, "
                     "outcome, node) VALUES (0, ?, ?, ?, ?, ?, ?, ?)",
                     (kind, request_id, session_id, instance, fingerprint, outcome,
                      self.incarnations[inc - 1].node_id))
        conn.commit()
        conn.close()


@pytest.fixture
def synthetic(tmp_path):
    inst = "i-0000000000000000a"
    consoles = FakeConsoles([inst])
    node = _StubNode(tmp_path, "n0", [(101, "stopped")])
    history = History(0, "synthetic")

    class S:
        pass

    s = S()
    s.inst, s.consoles, s.node, s.history = inst, consoles, node, history

    def session(sid: int, fp: str, opened=True, ended=True):
        rec = SessionRecord(sid, "n0", node.incarnations[0], inst, fp, started=1.0,
                            opened=2.0 if opened else None, ended=3.0 if ended else None)
        history.sessions.append(rec)
        return rec

    def pushed(rid: str):
        history.pushes.append(Push("n0", 1, inst, "fp", 0.0, 0.1, "ok", rid))

    def line(sid: int):
        with consoles.lock:
            consoles.lines.append(Line(len(consoles.lines), float(len(consoles.lines)),
                                       consoles.ports[inst], 1, 1, sid, 0, b"S%d:0" % sid))

    def verdict():
        return check(history, consoles, [node]).problems

    s.session, s.pushed, s.line, s.verdict = session, pushed, line, verdict
    yield s
    consoles.stop()


def _complete(s, sid: int, rid: str, fp: str) -> None:
    """A push, its session and every record they owe."""
    s.pushed(rid)
    s.node.record(1, "api", rid, "success", fp)
    s.session(sid, fp)
    s.node.record(1, "session-start", rid, "started", fp, f"n0/{sid}")
    s.node.record(1, "session-end", rid, "client-gone", fp, f"n0/{sid}")


def test_checker_accepts_a_clean_history(synthetic):
    s = synthetic
    _complete(s, 1, "r1", "fp1")
    _complete(s, 2, "r2", "fp2")
    for sid in (1, 1, 2, 2):
        s.line(sid)
    assert s.verdict() == []


def test_checker_finds_two_writers(synthetic):
    s = synthetic
    _complete(s, 1, "r1", "fp1")
    _complete(s, 2, "r2", "fp2")
    for sid in (1, 2, 1, 2):
        s.line(sid)
    problems = s.verdict()
    assert len(problems) == 1 and "two writers" in problems[0], problems


def test_checker_finds_an_acknowledged_push_without_its_record(synthetic):
    s = synthetic
    s.pushed("r9")
    s.node.record(1, "api", "r8", "success")
    problems = s.verdict()
    assert len(problems) == 1 and "r9" in problems[0] and "no success record" in problems[0], problems


def test_checker_finds_an_acknowledged_push_recorded_as_refused(synthetic):
    s = synthetic
    s.pushed("r9")
    s.node.record(1, "api", "r9", "success")
    s.node.record(1, "api", "r9", "SerialConsoleSessionLimitExceededException")
    problems = s.verdict()
    assert len(problems) == 1 and "recorded as refused" in problems[0], problems


def test_checker_finds_an_opened_session_without_start_record(synthetic):
    s = synthetic
    s.pushed("r1")
    s.node.record(1, "api", "r1", "success", "fp1")
    s.session(1, "fp1")
    problems = s.verdict()
    assert len(problems) == 1 and "no session-start record" in problems[0], problems


def test_checker_finds_a_missing_end_record_only_where_the_node_survived(synthetic, tmp_path):
    s = synthetic
    s.pushed("r1")
    s.node.record(1, "api", "r1", "success", "fp1")
    s.session(1, "fp1")
    s.node.record(1, "session-start", "r1", "started", "fp1", "n0/1")
    problems = s.verdict()
    assert len(problems) == 1 and "no session-end record" in problems[0], problems
    # The same history on a node killed with SIGKILL owes no end record.
    s.node.incarnations[0].how = "killed"
    assert s.verdict() == []


def test_checker_finds_one_push_opening_two_sessions(synthetic):
    s = synthetic
    _complete(s, 1, "r1", "fp1")
    s.session(2, "fp2")
    s.node.record(1, "session-start", "r1", "started", "fp2", "n0/2")
    s.node.record(1, "session-end", "r1", "client-gone", "fp2", "n0/2")
    problems = s.verdict()
    assert len(problems) == 1 and "opened 2 sessions" in problems[0], problems


def test_checker_finds_a_session_on_an_unaudited_push(synthetic):
    s = synthetic
    s.session(1, "fp1")
    s.node.record(1, "session-start", "r7", "started", "fp1", "n0/1")
    s.node.record(1, "session-end", "r7", "client-gone", "fp1", "n0/1")
    problems = s.verdict()
    assert len(problems) == 1 and "which no node recorded as a success" in problems[0], problems
