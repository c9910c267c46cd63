"""Readiness: what `GET /ready` and the startup log say about a node's dependencies.

DESIGN.md's example configuration names a console socket (`unix:/run/vm1/ttyS0.sock`) that does
not exist here: startup must say so, with the cause, before the first push finds out.
"""

from __future__ import annotations

import json
import re
import urllib.request

from conftest import DESIGN_INSTANCE


def ready(server) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{server.url}/ready", timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_missing_console_is_reported_at_startup(design_server):
    log = design_server.stderr()
    line = next((l for l in log.splitlines() if "consoles:" in l), None)
    assert line is not None, log
    assert "0 of 1 connected" in line and DESIGN_INSTANCE in line, line
    assert re.search(r"No such file|not found|cannot connect", line, re.I), line
    # Reported before the node said it was ready, not at the first push.
    assert log.index(line) < log.index(" ready: API "), log


def test_ready_reports_each_dependency_without_naming_consoles(design_server):
    status, body = ready(design_server)
    # Memory store and SQLite audit work; an unreachable console is reported, not required.
    assert status == 200 and body["status"] == "ready", body
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["store"]["ok"] and checks["audit"]["ok"], body
    assert not checks["consoles"]["ok"] and not checks["consoles"]["required"], body
    assert checks["consoles"]["detail"] == "0 of 1 connected", body
    # The unauthenticated body names no instance and no path.
    assert DESIGN_INSTANCE not in json.dumps(body) and "/run/vm1" not in json.dumps(body), body
