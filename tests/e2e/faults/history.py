"""What a fault run recorded, and the checker that judges it.

The history is what the outside world saw: the fake console's lines (who wrote when), the pushes
the API answered, the sessions the SSH clients saw, and how each node incarnation ended. The
checker holds it against serialgate's promises:

1. **One writer per port.** On every console, the tagged lines of different sessions never
   interleave: once session B wrote, session A never writes again.
2. **Every acknowledged push is audited.** A push answered with HTTP 200 has a `success` API
   record under its request id in the audit database of the node that answered, and no record
   of a refusal under the same id.
3. **Every session that opened has a start record** (the client saw console output, so the
   start record was durable before that, whatever happened to the node later), written by the
   node incarnation that served it, and **every session that ended on a node that survived has
   an end record** (a node stopped with SIGTERM survived; one killed with SIGKILL did not).
4. **One push, at most one session.** No two session-start records name the same request id,
   and every session started on a push whose success record exists (a grant is usable only
   once its audit record is durable).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from faults.clients import Push, SessionRecord
from faults.console import FakeConsoles, Line
from faults.procs import Node


@dataclass
class History:
    seed: int
    label: str
    pushes: list[Push] = field(default_factory=list)
    sessions: list[SessionRecord] = field(default_factory=list)
    kills: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note_kill(self, what: str) -> None:
        with self.lock:
            self.kills.append(what)


def read_audit(db: Path) -> list[dict]:
    """Every record of a node's `audit.db` (schema: crates/audit/src/sqlite.rs)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(str(db), timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM audit ORDER BY time_ms, id")]
    finally:
        conn.close()


@dataclass
class Verdict:
    problems: list[str]
    summary: str

    def assert_ok(self, history: History) -> None:
        if self.problems:
            shown = "\n  ".join(self.problems[:40])
            more = f"\n  … and {len(self.problems) - 40} more" if len(self.problems) > 40 else ""
            raise AssertionError(
                f"{history.label}: {len(self.problems)} violation(s) (FAULT_SEED={history.seed} "
                f"replays this run's choices)\n  {shown}{more}\n{self.summary}"
            )


def check(history: History, consoles: FakeConsoles, nodes: list[Node]) -> Verdict:
    """Runs every check. Call it once every node has stopped, so that its records are final."""
    running = [f"{n.name}#{i.number}" for n in nodes for i in n.incarnations if i.how == "running"]
    assert not running, f"check() needs every node stopped; still running: {running}"
    problems: list[str] = []
    sessions = {s.id: s for s in history.sessions}
    t0 = min([s.started for s in history.sessions] + [p.started for p in history.pushes], default=0.0)

    # 1. One writer per port.
    for name in consoles.ports:
        problems += _overlaps(name, consoles.lines_of(name), sessions, t0)

    records = {n.name: read_audit(n.audit_db) for n in nodes}
    every = [r for rs in records.values() for r in rs]

    # 2. Every acknowledged push is audited, by the node that acknowledged it.
    for p in history.pushes:
        if not p.acked:
            continue
        mine = [r for r in records[p.node] if r["kind"] == "api" and r["request_id"] == p.request_id]
        if not any(r["outcome"] == "success" for r in mine):
            problems.append(f"push {p.request_id} ({p.instance}, {p.node}#{p.incarnation}) was acknowledged "
                            f"but {p.node}'s audit database has no success record for it "
                            f"(records under that id: {[r['outcome'] for r in mine]})")
        refused = [r["outcome"] for r in mine if r["outcome"] != "success"]
        if refused:
            problems.append(f"push {p.request_id} ({p.instance}, {p.node}) was acknowledged but is also "
                            f"recorded as refused: {refused}")

    # 3. Sessions that opened have a start record; those that ended on a surviving node an end.
    starts = [r for r in every if r["kind"] == "session-start"]
    ends = [r for r in every if r["kind"] == "session-end"]
    incarnations = {n.name: n.incarnations for n in nodes}
    for s in history.sessions:
        if s.opened is None:
            continue
        tag = f"session S{s.id} ({s.instance} on {s.node})"
        # The incarnation that served it was alive between the client's start and the first
        # output it saw (a node killed and restarted meanwhile may have served it anew); its
        # start record names it (`node` = host:pid).
        candidates = {i.node_id: i for i in incarnations[s.node]
                      if i.started <= s.opened and (i.ended is None or i.ended >= s.started)}
        mine = [r for r in records[s.node] if r["kind"] == "session-start"
                and r["key_fingerprint"] == s.fingerprint and r["instance_id"] == s.instance]
        served = [r for r in mine if r["node"] in candidates]
        if not served:
            problems.append(f"{tag}: the client saw console output at +{s.opened - t0:.3f} s but "
                            f"{s.node}'s audit database has no session-start record for it "
                            f"(from incarnation {', '.join(f'#{i.number} ({i.how})' for i in candidates.values())}; "
                            f"records with its key: {[r['node'] for r in mine]})")
            continue
        if len(mine) > 1:
            problems.append(f"{tag}: {len(mine)} session-start records for one key: {[r['session_id'] for r in mine]}")
        start = served[0]
        inc = candidates[start["node"]]
        if inc.how == "killed":
            continue
        tag = f"{tag}#{inc.number}"
        if s.ended is None:
            problems.append(f"{tag}: the client never saw the session end, although its node stopped")
            continue
        end = [r for r in records[s.node] if r["kind"] == "session-end" and r["session_id"] == start["session_id"]]
        if not end:
            problems.append(f"{tag}: ended at +{s.ended - t0:.3f} s on a node that survived "
                            f"(stopped in order) but has no session-end record")

    # 4. One push, at most one session; sessions only on audited pushes.
    by_request = defaultdict(list)
    for r in starts:
        by_request[r["request_id"]].append(r)
    audited = {r["request_id"] for r in every if r["kind"] == "api" and r["outcome"] == "success"}
    for rid, rs in by_request.items():
        if len(rs) > 1:
            problems.append(f"push {rid} opened {len(rs)} sessions: "
                            f"{[(r['node'], r['session_id'], r['instance_id']) for r in rs]}")
        if rid not in audited:
            problems.append(f"session {rs[0]['session_id']} ({rs[0]['instance_id']}) started on push {rid}, "
                            f"which no node recorded as a success")
    per_session = defaultdict(lambda: [0, 0])
    for r in starts:
        per_session[r["session_id"]][0] += 1
    for r in ends:
        per_session[r["session_id"]][1] += 1
    for sid, (n_start, n_end) in per_session.items():
        if n_end > 1 or n_start > 1 or (n_end and not n_start):
            problems.append(f"session id {sid}: {n_start} start and {n_end} end records")

    summary = _summary(history, consoles, nodes, starts, ends)
    return Verdict(problems, summary)


def _overlaps(name: str, lines: list[Line], sessions: dict[int, SessionRecord], t0: float) -> list[str]:
    """Per console: the runs of each session's lines must not interleave."""
    first: dict[int, Line] = {}
    last: dict[int, Line] = {}
    for ln in lines:
        if ln.session is None:
            continue
        first.setdefault(ln.session, ln)
        last[ln.session] = ln
    order = sorted(first, key=lambda s: first[s].index)
    problems = []
    latest_end: tuple[int, Line] | None = None
    for s in order:
        if latest_end is not None and latest_end[1].index > first[s].index:
            a, a_last = latest_end
            after = [ln for ln in lines if ln.session == a and ln.index > first[s].index]
            sa, sb = sessions.get(a), sessions.get(s)
            problems.append(
                f"console {name}: two writers. Session S{s} ({_who(sb)}) first wrote at "
                f"+{first[s].t - t0:.3f} s, yet session S{a} ({_who(sa)}) wrote {len(after)} more line(s) "
                f"after that, the last at +{a_last.t - t0:.3f} s"
                + (f"; S{a}'s client saw a lease-loss notice: {sa.lease_lost_notice}" if sa else "")
            )
        if latest_end is None or last[s].index > latest_end[1].index:
            latest_end = (s, last[s])
    return problems


def _who(s: SessionRecord | None) -> str:
    if s is None:
        return "unknown session"
    return f"{s.node}#{s.incarnation.number}"


def _summary(history: History, consoles: FakeConsoles, nodes: list[Node], starts, ends) -> str:
    acked = sum(p.acked for p in history.pushes)
    unknown = sum(p.outcome == "unknown" for p in history.pushes)
    opened = sum(s.opened is not None for s in history.sessions)
    lines = sum(len(consoles.lines_of(n)) for n in consoles.ports)
    incs = [f"{n.name}#{i.number}:{i.how}" for n in nodes for i in n.incarnations]
    return (f"  [{history.label}] pushes: {len(history.pushes)} ({acked} acknowledged, {unknown} without answer); "
            f"sessions: {len(history.sessions)} ({opened} opened); console lines: {lines}; "
            f"audit: {len(starts)} starts, {len(ends)} ends; kills: {len(history.kills)}; "
            f"incarnations: {', '.join(incs)}")
