#!/usr/bin/env bash
# What the console log costs (crates/bench-ssh `source-console` and `log-cost`): one serialgate
# with `[console_log]` on, then one with it off, each serving one SSH session on a console that
# prints on command (a unix socket, `bench-ssh source-console`):
#
#   1. bulk: the console prints BULK_MB MiB of 80-byte text lines as fast as the line takes them,
#      ROUNDS times after one unmeasured burst; MB/s at the SSH client and serialgate's CPU
#      (all threads, /proc) per MB;
#   2. trickle: writes of 1 to 16 bytes at TRICKLE_RATE bytes/s for TRICKLE_MS; serialgate's CPU
#      share meanwhile (the many tiny chunks are the log writer's worst case per byte).
#
# The log is rotated as configured by default (8 MiB x 4), in $TMPDIR (TMPDIR=/dev/shm takes
# the disk out). Target (printed, not asserted): the log costs under 15% of bulk throughput.
#
# Usage: scripts/bench-console-log.sh
# Environment: BULK_MB=64 ROUNDS=3 TRICKLE_RATE=262144 TRICKLE_MS=5000 SKIP_BUILD=1 KEEP_WORK=1
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

BULK_MB="${BULK_MB:-64}"
ROUNDS="${ROUNDS:-3}"
TRICKLE_RATE="${TRICKLE_RATE:-262144}"
TRICKLE_MS="${TRICKLE_MS:-5000}"

die() {
    echo "bench-console-log: $*" >&2
    exit 1
}

for v in BULK_MB ROUNDS TRICKLE_RATE TRICKLE_MS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && ((${!v} >= 1)) || die "$v must be a whole number >= 1, got '${!v}'"
done
BULK_BYTES=$((BULK_MB * 1024 * 1024))

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release --quiet -p serialgate -p bench-ssh
fi
TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
SERIALGATE="$TARGET/release/serialgate"
BENCH="$TARGET/release/bench-ssh"
[[ -x "$SERIALGATE" && -x "$BENCH" ]] || die "release binaries missing: cargo build --release -p serialgate -p bench-ssh"
CLIENT_KEY="$REPO_ROOT/testdata/keys/ed25519"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-console-log.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP_WORK:-}" == 1 ]]; then
        echo "bench-console-log: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() { # name pid port log
    local i
    for ((i = 0; i < 200; i++)); do
        kill -0 "$2" 2>/dev/null || { cat "$4" >&2; die "$1 exited while starting"; }
        if (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null && grep -q "ready" "$4"; then
            return 0
        fi
        sleep 0.05
    done
    cat "$4" >&2
    die "$1 not ready within 10 s"
}

CONSOLE_SOCK="$WORK/console.sock"
"$BENCH" source-console --socket "$CONSOLE_SOCK" --bulk-bytes "$BULK_BYTES" \
    --trickle-rate "$TRICKLE_RATE" --trickle-ms "$TRICKLE_MS" </dev/null >"$WORK/console.out" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 200; i++)); do
    [[ -S "$CONSOLE_SOCK" ]] && break
    sleep 0.05
done
[[ -S "$CONSOLE_SOCK" ]] || die "the console did not start"

RESULTS=()
for log in on off; do
    read -r API_PORT SSH_PORT < <("$BENCH" free-ports 2)
    CONFIG="$WORK/serialgate-$log.toml"
    "$BENCH" config --instances 1 --console "$CONSOLE_SOCK" \
        --api-listen "127.0.0.1:$API_PORT" --ssh-listen "127.0.0.1:$SSH_PORT" \
        --state-dir "$WORK/state-$log" >"$CONFIG"
    [[ "$log" == on ]] && enabled=true || enabled=false
    printf '\n[console_log]\nenabled = %s\n' "$enabled" >>"$CONFIG"
    "$SERIALGATE" host-key --config "$CONFIG" --public-key-only >"$WORK/host_key-$log.pub"
    SERIALGATE_LOG=info NO_COLOR=1 "$SERIALGATE" serve --config "$CONFIG" </dev/null >"$WORK/serialgate-$log.log" 2>&1 &
    SG_PID=$!
    PIDS+=("$SG_PID")
    wait_ready serialgate "$SG_PID" "$SSH_PORT" "$WORK/serialgate-$log.log"
    RESULTS+=("$("$BENCH" log-cost --gateway-ssh "127.0.0.1:$SSH_PORT" --gateway-api "127.0.0.1:$API_PORT" \
        --gateway-host-key "$WORK/host_key-$log.pub" --instances 1 --key "$CLIENT_KEY" \
        --pid "$SG_PID" --bulk-bytes "$BULK_BYTES" --rounds "$ROUNDS" --label "$log" | tee /dev/stderr | grep '^RESULT')")
    if [[ "$log" == on ]]; then
        du -sh "$WORK/state-on/console" >&2 || true
    fi
    kill "$SG_PID" 2>/dev/null || true
    wait "$SG_PID" 2>/dev/null || true
done

printf '%s\n' "${RESULTS[@]}" | awk -F'\t' '
    $2 == "on"  { on_mbs = $3; on_cpu = $4; on_tr = $5 }
    $2 == "off" { off_mbs = $3; off_cpu = $4; off_tr = $5 }
    END {
        cost = (off_mbs - on_mbs) / off_mbs * 100
        printf "\n%-34s %12s %12s\n", "console log", "on", "off"
        printf "%-34s %12.1f %12.1f\n", "bulk MB/s (one session)", on_mbs, off_mbs
        printf "%-34s %12.2f %12.2f\n", "serialgate CPU ms per MB", on_cpu, off_cpu
        printf "%-34s %12.2f %12.2f\n", "trickle: serialgate CPU %", on_tr, off_tr
        printf "\nthroughput cost of the log: %.1f%% (target < 15%%): %s\n", cost, (cost < 15 ? "met" : "NOT met")
    }'
