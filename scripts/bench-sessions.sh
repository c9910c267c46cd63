#!/usr/bin/env bash
# Benchmark of session control (README "Session control"): the time from `serialgate sessions
# end` to the SSH client's disconnect (p50/p99 over ROUNDS, two nodes on one redis-server), and
# ListSerialConsoleSessions latency with ENTRIES live entries in the directory. See
# scripts/bench_sessions.py for what is measured.
#
# Usage: scripts/bench-sessions.sh
# Environment: ROUNDS=50, ENTRIES=1000, LIST_ROUNDS=50; SKIP_BUILD=1 uses the built debug binary
#   (${CARGO_TARGET_DIR:-target}/debug/serialgate); PYTHON defaults to the repository's .venv.
# Needs: redis-server, redis-cli, ssh, ssh-keygen, and a python with boto3 (tests/e2e/requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build -p serialgate
fi
export SERIALGATE_BIN="${SERIALGATE_BIN:-$target/debug/serialgate}"
export SERIALGATE_E2E_LOG="${SERIALGATE_LOG:-warn}"
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
exec "$python" scripts/bench_sessions.py
