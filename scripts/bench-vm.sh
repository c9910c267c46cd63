#!/usr/bin/env bash
# Benchmarks a serialgate-managed VM under TCG (and KVM when usable):
#   1. StartInstances -> first console byte, and -> the login prompt (GetConsoleOutput polled);
#   2. console throughput while the guest floods ttyS0 (`seq`), through an SSH session vs.
#      reading QEMU's socket directly, with serialgate's CPU time during the flood.
# Figures are printed, never asserted.   RUNS=3 FLOOD_LINES=200000
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-system-x86_64 >/dev/null || { echo "needs qemu-system-x86 (apt-get install qemu-system-x86)" >&2; exit 1; }
guest=$(scripts/vm-guest.sh)
cargo build --release -q -p serialgate
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv && .venv/bin/pip install -q -r tests/e2e/requirements.txt
fi
exec .venv/bin/python scripts/bench_vm.py --binary target/release/serialgate --guest "$guest"
