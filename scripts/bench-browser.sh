#!/usr/bin/env bash
# The browser console against the SSH path, same run (scripts/bench_browser.py): keystroke echo
# p50/p99 through the WebSocket bridge and through SSH, and bulk output MB/s into a headless
# Chromium tab (timed by the browser) and through OpenSSH. Needs what scripts/test.sh installs
# (.venv, Chromium and its driver).
#
# Usage: scripts/bench-browser.sh
# Environment: N=500 WARMUP=50 ROUNDS=5 SKIP_BUILD=1
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release --locked -p serialgate
fi
export SERIALGATE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/serialgate"
export PATH="$PWD/.venv/bin:$PATH"
exec .venv/bin/python scripts/bench_browser.py
