#!/usr/bin/env bash
# What the output side costs (crates/bench-ssh `source-console`, `direct` and `log-cost`): one
# console that prints on command (a unix socket, `bench-ssh source-console`), read straight from
# its socket (the baseline), then through one SSH session of serialgate in six set-ups, each a
# fresh serialgate: console log and recording off; log on; log and the session's recording on;
# log on and 1 spectator; log on and 8 spectators (each draining its own SSH session); log on and
# 8 spectators of which one never reads. Recording is off except where named, so each row adds
# one thing to "log-on". Then the same bursts through an in-process hub without SSH
# (`bench-ssh hub-fanout`: the writer alone, recording, 1, 8 and 7+1 stalled spectators), which
# separates the fan-out's own cost from the SSH streams'.
#
#   1. bulk: the console prints BULK_MB MiB of 80-byte text lines as fast as the line takes them,
#      ROUNDS times after one unmeasured burst; MB/s at the SSH client and serialgate's CPU
#      (all threads, /proc) per MB;
#   2. trickle: writes of 1 to 16 bytes at TRICKLE_RATE bytes/s for TRICKLE_MS, as QEMU's UART
#      delivers a guest's output; serialgate's CPU share meanwhile.
#
# The log is rotated as configured by default (8 MiB x 4), the recording is uncapped, both in
# $TMPDIR (TMPDIR=/dev/shm takes the disk out). Targets (printed, not asserted): the trickle
# under 10% of one core; the log, the recording and 8 spectators each cost under 15% of bulk
# throughput; a stalled spectator changes neither.
#
# Usage: scripts/bench-fanout.sh
# Environment: BULK_MB=64 ROUNDS=3 TRICKLE_RATE=262144 TRICKLE_MS=5000 SKIP_BUILD=1 KEEP_WORK=1
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

BULK_MB="${BULK_MB:-64}"
ROUNDS="${ROUNDS:-3}"
TRICKLE_RATE="${TRICKLE_RATE:-262144}"
TRICKLE_MS="${TRICKLE_MS:-5000}"

die() {
    echo "bench-fanout: $*" >&2
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

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-fanout.XXXXXX")"
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
        echo "bench-fanout: kept $WORK" >&2
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
RESULTS+=("$("$BENCH" direct --socket "$CONSOLE_SOCK" --bulk-bytes "$BULK_BYTES" --rounds "$ROUNDS" \
    | tee /dev/stderr | grep '^RESULT')")
while read -r line; do RESULTS+=("$line"); done < <("$BENCH" hub-fanout --socket "$CONSOLE_SOCK" \
    --bulk-bytes "$BULK_BYTES" --rounds "$ROUNDS" | tee /dev/stderr | grep '^RESULT')

# label, console log, recording, spectators, one stalled spectator
RUNS=("log-off off off 0 no" "log-on on off 0 no" "recording on on 0 no" "1-spectator on off 1 no"
    "8-spectators on off 8 no" "7+1-stalled on off 7 yes")
for run in "${RUNS[@]}"; do
    read -r label log rec spectators stalled <<<"$run"
    read -r API_PORT SSH_PORT < <("$BENCH" free-ports 2)
    CONFIG="$WORK/serialgate-$label.toml"
    "$BENCH" config --instances 1 --console "$CONSOLE_SOCK" \
        --api-listen "127.0.0.1:$API_PORT" --ssh-listen "127.0.0.1:$SSH_PORT" \
        --state-dir "$WORK/state-$label" >"$CONFIG"
    [[ "$log" == on ]] && enabled=true || enabled=false
    printf '\n[console_log]\nenabled = %s\n' "$enabled" >>"$CONFIG"
    [[ "$rec" == on ]] && enabled=true || enabled=false
    printf '\n[recordings]\nenabled = %s\nmax_recording_bytes = %s\nmax_total_bytes = %s\n' \
        "$enabled" $((1 << 40)) $((1 << 40)) >>"$CONFIG"
    "$SERIALGATE" host-key --config "$CONFIG" --public-key-only >"$WORK/host_key-$label.pub"
    SERIALGATE_LOG=info NO_COLOR=1 "$SERIALGATE" serve --config "$CONFIG" </dev/null >"$WORK/serialgate-$label.log" 2>&1 &
    SG_PID=$!
    PIDS+=("$SG_PID")
    wait_ready serialgate "$SG_PID" "$SSH_PORT" "$WORK/serialgate-$label.log"
    extra=()
    [[ "$stalled" == yes ]] && extra+=(--stalled)
    RESULTS+=("$("$BENCH" log-cost --gateway-ssh "127.0.0.1:$SSH_PORT" --gateway-api "127.0.0.1:$API_PORT" \
        --gateway-host-key "$WORK/host_key-$label.pub" --instances 1 --key "$CLIENT_KEY" \
        --pid "$SG_PID" --bulk-bytes "$BULK_BYTES" --rounds "$ROUNDS" --label "$label" \
        --spectators "$spectators" "${extra[@]}" | tee /dev/stderr | grep '^RESULT')")
    kill "$SG_PID" 2>/dev/null || true
    wait "$SG_PID" 2>/dev/null || true
done

printf '%s\n' "${RESULTS[@]}" | awk -F'\t' '
    { mbs[$2] = $3; cpu[$2] = $4; tr[$2] = $5; order[n++] = $2 }
    END {
        printf "\n%-17s %10s %10s %14s %12s %14s\n", "set-up", "MB/s", "vs direct", "CPU ms per MB", "trickle CPU%", "bulk vs log-on"
        for (i = 0; i < n; i++) {
            k = order[i]
            if (k == "direct") { printf "%-17s %10.1f %10s %14s %12s %14s\n", k, mbs[k], "1.00", "-", "-", "-"; continue }
            if (k ~ /^hub/) { printf "%-17s %10.1f %10.2f %14.2f %12s %14s\n", k, mbs[k], mbs[k] / mbs["direct"], cpu[k], "-", "-"; continue }
            printf "%-17s %10.1f %10.2f %14.2f %12.2f %14.2f\n", k, mbs[k], mbs[k] / mbs["direct"], cpu[k], tr[k], mbs[k] / mbs["log-on"]
        }
        log_cost = (mbs["log-off"] - mbs["log-on"]) / mbs["log-off"] * 100
        rec_cost = (mbs["log-on"] - mbs["recording"]) / mbs["log-on"] * 100
        spect_cost = (mbs["log-on"] - mbs["8-spectators"]) / mbs["log-on"] * 100
        stall = (mbs["8-spectators"] - mbs["7+1-stalled"]) / mbs["8-spectators"] * 100
        printf "\ntrickle at the rate asked: %.1f%% of a core with the log (target < 10%%): %s\n", tr["log-on"], (tr["log-on"] < 10 ? "met" : "NOT met")
        printf "throughput cost of the log: %.1f%% (target < 15%%): %s\n", log_cost, (log_cost < 15 ? "met" : "NOT met")
        printf "throughput cost of the recording: %.1f%% (target < 15%%): %s\n", rec_cost, (rec_cost < 15 ? "met" : "NOT met")
        printf "throughput cost of 8 spectators: %.1f%% (target < 15%%): %s\n", spect_cost, (spect_cost < 15 ? "met" : "NOT met")
        printf "in process, without SSH: recording costs %.1f%% of the bare hub throughput, 8 spectators %.1f%%, 7+1 stalled %.1f%%\n", (mbs["hub"] - mbs["hub+recording"]) / mbs["hub"] * 100, (mbs["hub"] - mbs["hub+8-spectators"]) / mbs["hub"] * 100, (mbs["hub"] - mbs["hub+7+1-stalled"]) / mbs["hub"] * 100
        printf "one of the 8 stalled: %.1f%% (target: no change beyond noise, < 5%%): %s\n", stall, (stall < 5 ? "met" : "NOT met")
    }'
