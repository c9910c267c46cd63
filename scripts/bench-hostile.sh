#!/usr/bin/env bash
# Benchmark under attack: what legitimate clients get while an unauthenticated attacker works
# on serialgate (release build), each figure as a ratio to the same run without the attacker.
#
#   * API: SendSerialConsoleSSHPublicKey pushes/s with full SigV4, driven by wrk from 127.0.0.1
#     (one pre-signed request, as scripts/bench-api.sh does).
#   * SSH: keystroke echo round trip p99 through a serialgate session onto a unix-socket echo
#     console (crates/bench-ssh `echo`, as scripts/bench-ssh.sh does).
#
# The attacker (scripts/hostile_attacker.py) runs from 127.0.0.2 (loopback accepts any 127/8
# source): SLOWLORIS slowloris connections to the API (one header line a second) and IDLE idle
# connections split over both listeners, reopened when the server closes them (a second later);
# and from 127.0.0.3 JUNK_RATE junk-signature requests a second (unknown keys, too many signed
# headers, oversized and malformed Authorization values) on keep-alive connections. The server
# runs under `ulimit -n SERVER_NOFILE` (soft and hard), so its connection caps are the ones
# derived from a common default limit.
#
# Besides the ratios it reports the CPU serialgate and the attacker used during each measured
# run, pushes per second of serialgate CPU (the server's own efficiency under attack, whatever
# share of the CPUs the attacker left it), and what the attack alone costs serialgate.
#
# Usage: scripts/bench-hostile.sh
# Environment:
#   DURATION=10        seconds of each measured wrk run (< 840: the signature lasts 15 minutes)
#   CONNECTIONS=16     wrk connections;  THREADS=1  wrk threads
#   WARMUP=2           seconds of unmeasured wrk before each measured run
#   ECHO_N=2000        echo round trips per phase
#   ROUNDS=2           baseline/attacked pairs, alternating; the figures are means over them
#   SLOWLORIS=100  IDLE=2000  JUNK_RATE=200   the attack (JUNK_RATE in requests/s)
#   ATTACKER_IP=127.0.0.2  JUNK_IP=127.0.0.3
#   SERVER_NOFILE=1024 the server's open-file limit (empty: inherit this shell's)
#   PIN=0:1            taskset CPU lists: serialgate on the first, wrk, the echo client and the
#                      attacker on the second, so the attacker's own CPU is not taken from the
#                      server, as when it attacks from elsewhere (default: no pinning)
#   SERIALGATE_LOG=info  PYTHON (with botocore; default .venv/bin/python, /tmp/e2e-venv, python3)
#   SKIP_BUILD=1       do not run cargo build;  KEEP_WORK=1  keep the temporary directory
#
# Targets (printed, not asserted): pushes/s under attack >= 80% of the baseline; echo p99 under
# attack < 5 ms. Without PIN all processes share the machine's CPUs, so the attacker's own CPU
# (a Python process) is part of what the legitimate clients lose. Run it on an otherwise idle
# machine: other load makes the baseline wander more than the attack does.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2}"
ECHO_N="${ECHO_N:-2000}"
ROUNDS="${ROUNDS:-2}"
SLOWLORIS="${SLOWLORIS:-100}"
IDLE="${IDLE:-2000}"
JUNK_RATE="${JUNK_RATE:-200}"
ATTACKER_IP="${ATTACKER_IP:-127.0.0.2}"
JUNK_IP="${JUNK_IP:-127.0.0.3}"
SERVER_NOFILE="${SERVER_NOFILE-1024}"
PIN="${PIN:-}"

die() {
    echo "bench-hostile: $*" >&2
    exit 1
}

for v in DURATION CONNECTIONS THREADS WARMUP ECHO_N ROUNDS SLOWLORIS IDLE; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION >= 1 && DURATION < 840)) || die "DURATION must be 1..839 s (the signature lasts 15 min)"
((CONNECTIONS >= THREADS && THREADS >= 1)) || die "need CONNECTIONS >= THREADS >= 1"
((ROUNDS >= 1)) || die "ROUNDS must be at least 1"
SERVER_PIN=(env)
CLIENT_PIN=(env)
if [[ -n "$PIN" ]]; then
    [[ "$PIN" =~ ^([0-9,-]+):([0-9,-]+)$ ]] || die "PIN must be SERVER_CPUS:CLIENT_CPUS, e.g. 0:1"
    command -v taskset >/dev/null 2>&1 || die "PIN needs taskset (util-linux)"
    SERVER_PIN=(taskset -c "${BASH_REMATCH[1]}")
    CLIENT_PIN=(taskset -c "${BASH_REMATCH[2]}")
fi

# --- tools ---------------------------------------------------------------------------------------

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench-hostile: installing wrk (Debian package)" >&2
    SUDO=""
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "wrk is missing and this is not root: apt-get install wrk"
        SUDO="sudo"
    fi
    if ! $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q wrk >/dev/null; then
        $SUDO apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
        $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -q wrk >/dev/null
    fi
    command -v wrk >/dev/null 2>&1 || die "wrk is still missing after apt-get install"
fi
command -v curl >/dev/null 2>&1 || die "curl is required"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then
        PYTHON="$REPO_ROOT/.venv/bin/python"
    elif [[ -x /tmp/e2e-venv/bin/python ]]; then
        PYTHON=/tmp/e2e-venv/bin/python
    else
        PYTHON=python3
    fi
fi
"$PYTHON" -c 'import botocore' 2>/dev/null ||
    die "$PYTHON cannot import botocore; run: python3 -m venv .venv && .venv/bin/pip install -r tests/e2e/requirements.txt"

# The attacker holds SLOWLORIS + IDLE sockets, wrk and the echo client a few.
WANT_FDS=$((SLOWLORIS + IDLE + 1024))
if (($(ulimit -n) < WANT_FDS)); then
    ulimit -n "$WANT_FDS" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
(($(ulimit -n) >= WANT_FDS)) || die "need ulimit -n >= $WANT_FDS for the attacker (hard limit $(ulimit -Hn))"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release --quiet -p serialgate -p bench-ssh
fi
SERIALGATE="$REPO_ROOT/target/release/serialgate"
BENCH="$REPO_ROOT/target/release/bench-ssh"
[[ -x "$SERIALGATE" && -x "$BENCH" ]] || die "release binaries missing: cargo build --release -p serialgate -p bench-ssh"
CLIENT_KEY="$REPO_ROOT/testdata/keys/ed25519"
[[ -r "$CLIENT_KEY" && -r "$CLIENT_KEY.pub" ]] || die "missing $CLIENT_KEY(.pub)"

# --- workspace and cleanup -----------------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-hostile.XXXXXX")"
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
        echo "bench-hostile: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() { # name pid port log [ready-pattern]
    local name="$1" pid="$2" port="$3" log="$4" ready="${5:-}" i
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench-hostile: $name exited while starting; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
            { [[ -z "$ready" ]] || grep -q "$ready" "$log"; }; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench-hostile: $name not ready on 127.0.0.1:$port within 10 s; its log:" >&2
    cat "$log" >&2
    exit 1
}

read -r API_PORT SSH_PORT < <("$BENCH" free-ports 2)

# --- the console and serialgate ------------------------------------------------------------------

CONSOLE_SOCK="$WORK/console.sock"
"$BENCH" console --socket "$CONSOLE_SOCK" </dev/null >"$WORK/console.log" 2>&1 &
PIDS+=("$!")
for ((i = 0; i < 200; i++)); do
    [[ -S "$CONSOLE_SOCK" ]] && break
    sleep 0.05
done
[[ -S "$CONSOLE_SOCK" ]] || die "the console did not create $CONSOLE_SOCK within 10 s"

# Two instances: pushes go to the first, the echo session to the last. Default limits otherwise.
"$BENCH" config --instances 2 --console "$CONSOLE_SOCK" \
    --api-listen "127.0.0.1:$API_PORT" --ssh-listen "127.0.0.1:$SSH_PORT" \
    --state-dir "$WORK/state" >"$WORK/serialgate.toml"
"$SERIALGATE" host-key --config "$WORK/serialgate.toml" --public-key-only >"$WORK/host_key.pub" 2>"$WORK/host-key.log"

SG_LOG="$WORK/serialgate.log"
(
    if [[ -n "$SERVER_NOFILE" ]]; then ulimit -n "$SERVER_NOFILE"; fi
    SERIALGATE_LOG="${SERIALGATE_LOG:-info}" NO_COLOR=1 exec "${SERVER_PIN[@]}" "$SERIALGATE" serve --config "$WORK/serialgate.toml"
) </dev/null >"$SG_LOG" 2>&1 &
SG_PID=$!
PIDS+=("$SG_PID")
wait_ready serialgate "$SG_PID" "$SSH_PORT" "$SG_LOG" "ready"
wait_ready serialgate "$SG_PID" "$API_PORT" "$SG_LOG"

# --- the signed push for wrk ---------------------------------------------------------------------

INSTANCE="$("$PYTHON" -c 'print("i-%017x" % 0x0be0000000000000)')"
read -r AK SK < <(sed -n 's/^access_key_id = "\(.*\)"$/\1/p; s/^secret_access_key = "\(.*\)"$/\1/p' "$WORK/serialgate.toml" | paste -sd' ')
HOST="127.0.0.1:$API_PORT" OUT="$WORK" AK="$AK" SK="$SK" INSTANCE="$INSTANCE" \
    KEY_FILE="$CLIENT_KEY.pub" "$PYTHON" - <<'EOF'
import json, os
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

host, out = os.environ["HOST"], os.environ["OUT"]
key = open(os.environ["KEY_FILE"]).read().strip()
body = json.dumps({"InstanceId": os.environ["INSTANCE"], "SerialPort": 0, "SSHPublicKey": key})
req = AWSRequest(method="POST", url=f"http://{host}/", data=body.encode(), headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey",
    "Host": host,
})
SigV4Auth(Credentials(os.environ["AK"], os.environ["SK"]), "ec2-instance-connect", "us-east-1").add_auth(req)

def lua(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

with open(f"{out}/request.body", "w") as f:
    f.write(body)
with open(f"{out}/request.headers", "w") as f:
    for k, v in req.headers.items():
        f.write(f"{k}: {v}\n")
with open(f"{out}/push.lua", "w") as f:
    f.write('wrk.method = "POST"\n')
    f.write(f"wrk.body = {lua(body)}\n")
    for k, v in req.headers.items():
        f.write(f"wrk.headers[{lua(k)}] = {lua(v)}\n")
    f.write(r'''
local threads = {}
function setup(thread) table.insert(threads, thread) end
non200 = 0
function response(status, headers, body)
    if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
    local bad = 0
    for _, t in ipairs(threads) do bad = bad + t:get("non200") end
    local e = summary.errors
    io.write(string.format("BENCH requests=%d duration_us=%d p99_us=%d non200=%d errors=%d\n",
        summary.requests, summary.duration, latency:percentile(99), bad,
        e.connect + e.read + e.write + e.timeout))
end
''')
EOF
code="$(curl -sS -o "$WORK/curl.out" -w '%{http_code}' --max-time 5 -X POST \
    -H @"$WORK/request.headers" --data-binary @"$WORK/request.body" "http://127.0.0.1:$API_PORT/")" || true
[[ "$code" == 200 ]] || die "the signed push got HTTP $code: $(cat "$WORK/curl.out")"

# CPU seconds (user + system) a process has used so far.
cpu_s() { # pid
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# --- one phase: pushes/s, then echo p99 ----------------------------------------------------------

phase() { # name [attacker-pid]
    local name="$1" attacker="${2:-}" line requests=0 duration_us=1 p99_us=0 non200=0 errors=0 kv
    local sg_cpu0 att_cpu0=0 sg_cpu att_cpu=0
    if ((WARMUP > 0)); then
        "${CLIENT_PIN[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" -s "$WORK/push.lua" "http://127.0.0.1:$API_PORT/" >/dev/null 2>&1 ||
            die "$name: wrk warm-up failed"
    fi
    # CPU used during the measured run: how the 2 CPUs were shared out.
    sg_cpu0="$(cpu_s "$SG_PID")"
    [[ -n "$attacker" ]] && att_cpu0="$(cpu_s "$attacker")"
    "${CLIENT_PIN[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "$WORK/push.lua" \
        "http://127.0.0.1:$API_PORT/" >"$WORK/wrk-$name.out" 2>&1 || { cat "$WORK/wrk-$name.out" >&2; die "$name: wrk failed"; }
    sg_cpu="$(awk -v a="$sg_cpu0" -v b="$(cpu_s "$SG_PID")" -v d="$DURATION" 'BEGIN { printf "%.0f", 100 * (b - a) / d }')"
    [[ -n "$attacker" ]] && att_cpu="$(awk -v a="$att_cpu0" -v b="$(cpu_s "$attacker")" -v d="$DURATION" 'BEGIN { printf "%.0f", 100 * (b - a) / d }')"
    line="$(grep '^BENCH ' "$WORK/wrk-$name.out")" || die "$name: no summary from wrk"
    for kv in ${line#BENCH }; do
        [[ "$kv" =~ ^([a-z0-9_]+)=([0-9]+)$ ]] && printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
    done
    ((requests > 0 && non200 * 100 <= requests)) || die "$name: $non200 of $requests pushes were not 200"
    "${CLIENT_PIN[@]}" "$BENCH" echo --gateway-ssh "127.0.0.1:$SSH_PORT" --gateway-api "127.0.0.1:$API_PORT" \
        --gateway-host-key "$WORK/host_key.pub" --instances 2 --key "$CLIENT_KEY" \
        --console "$CONSOLE_SOCK" --n "$ECHO_N" >"$WORK/echo-$name.out" 2>&1 ||
        { cat "$WORK/echo-$name.out" >&2; die "$name: the echo benchmark failed"; }
    local echo_p50 echo_p99
    read -r echo_p50 echo_p99 < <(awk '/^serialgate session \(ssh->unix\)/ {print $(NF-3), $(NF-2)}' "$WORK/echo-$name.out")
    [[ -n "$echo_p99" ]] || die "$name: no echo figures in $(cat "$WORK/echo-$name.out")"
    awk -v n="$name" -v r="$requests" -v d="$duration_us" -v p99="$p99_us" -v e50="$echo_p50" -v e99="$echo_p99" \
        -v bad="$non200" -v err="$errors" -v cpu="$sg_cpu" \
        'BEGIN { printf "%s %.1f %.3f %s %s %d %d %s\n", n, r / (d / 1e6), p99 / 1000, e50, e99, bad, err, cpu }' >"$WORK/result-$name"
    printf '   %-9s pushes/s %8.1f  push p99 %7.3f ms  echo p50 %s ms  p99 %s ms  (non-200 %d, socket errors %d)\n' \
        "$name" "$(awk -v r="$requests" -v d="$duration_us" 'BEGIN{print r/(d/1e6)}')" \
        "$(awk -v p="$p99_us" 'BEGIN{print p/1000}')" "$echo_p50" "$echo_p99" "$non200" "$errors"
    echo "             CPU during the pushes: serialgate ${sg_cpu}% of a CPU${attacker:+, the attacker ${att_cpu}%}"
}

# The attack alone, no legitimate load: what it costs serialgate, and what the attacker burns.
attack_only() {
    start_attacker alone
    local sg0 att0
    sg0="$(cpu_s "$SG_PID")"
    att0="$(cpu_s "$ATTACKER_PID")"
    sleep "$DURATION"
    echo "   attack alone for ${DURATION} s: serialgate $(awk -v a="$sg0" -v b="$(cpu_s "$SG_PID")" -v d="$DURATION" \
        'BEGIN { printf "%.0f", 100 * (b - a) / d }')% of a CPU, the attacker $(awk -v a="$att0" \
        -v b="$(cpu_s "$ATTACKER_PID")" -v d="$DURATION" 'BEGIN { printf "%.0f", 100 * (b - a) / d }')%"
    kill -TERM "$ATTACKER_PID" 2>/dev/null || true
    wait "$ATTACKER_PID" 2>/dev/null || true
    echo "             attacker: $(sed -n 's/^ATTACK //p' "$WORK/attacker-alone.out")"
}

echo "bench-hostile: serialgate $("$SERIALGATE" --version | awk '{print $2}') (release), open-file limit ${SERVER_NOFILE:-inherited};" \
    "wrk -t $THREADS -c $CONNECTIONS -d ${DURATION}s; echo x $ECHO_N; $(nproc) CPUs, ${PIN:+pinned server:clients $PIN}${PIN:-shared by all}"
start_attacker() { # round
    "${CLIENT_PIN[@]}" "$PYTHON" "$REPO_ROOT/scripts/hostile_attacker.py" --api "127.0.0.1:$API_PORT" --ssh "127.0.0.1:$SSH_PORT" \
        --source "$ATTACKER_IP" --junk-source "$JUNK_IP" --slowloris "$SLOWLORIS" --idle "$IDLE" \
        --junk-rate "$JUNK_RATE" >"$WORK/attacker-$1.out" 2>&1 &
    ATTACKER_PID=$!
    PIDS+=("$ATTACKER_PID")
    local i
    for ((i = 0; i < 300; i++)); do
        grep -qs '^READY' "$WORK/attacker-$1.out" && return 0
        kill -0 "$ATTACKER_PID" 2>/dev/null || { cat "$WORK/attacker-$1.out" >&2; die "the attacker exited"; }
        sleep 0.05
    done
    die "the attacker did not get ready within 15 s"
}

# Baseline and attacked phases alternate, ROUNDS times, so that whatever else the machine does
# meanwhile weighs on both alike; the figures are the means over the rounds.
for ((round = 1; round <= ROUNDS; round++)); do
    echo "== round $round/$ROUNDS: baseline (no attacker)"
    phase "baseline$round"
    echo "== round $round/$ROUNDS: attacked ($SLOWLORIS slowloris + $IDLE idle connections from $ATTACKER_IP, $JUNK_RATE junk signatures/s from $JUNK_IP)"
    start_attacker "$round"
    phase "attacked$round" "$ATTACKER_PID"
    kill -TERM "$ATTACKER_PID" 2>/dev/null || true
    wait "$ATTACKER_PID" 2>/dev/null || true
    echo "             attacker: $(sed -n 's/^ATTACK //p' "$WORK/attacker-$round.out")"
done

echo "== the attack alone (no legitimate load)"
attack_only

# --- report --------------------------------------------------------------------------------------

# name rps push_p99 echo_p50 echo_p99 non200 errors serialgate_cpu_percent, one line per phase
mean() { # prefix column
    cat "$WORK"/result-"$1"* | awk -v c="$2" '{ s += $c; n++ } END { printf "%.3f", s / n }'
}
B_RPS="$(mean baseline 2)" A_RPS="$(mean attacked 2)"
B_P99="$(mean baseline 3)" A_P99="$(mean attacked 3)"
B_E99="$(mean baseline 5)" A_E99="$(mean attacked 5)"
# Pushes per second of serialgate CPU: the server's own efficiency, whatever share of the CPUs
# the attacker and the clients left it.
per_cpu() { # prefix
    cat "$WORK"/result-"$1"* | awk '$8 > 0 { s += $2 / ($8 / 100); n++ } END { printf "%.1f", (n ? s / n : 0) }'
}
B_PER_CPU="$(per_cpu baseline)" A_PER_CPU="$(per_cpu attacked)"
echo
echo "== results (means over $ROUNDS rounds)"
printf '%-24s %12s %12s %10s\n' "" "baseline" "attacked" "ratio"
awk -v br="$B_RPS" -v ar="$A_RPS" -v bp="$B_P99" -v ap="$A_P99" -v be="$B_E99" -v ae="$A_E99" \
    -v bc="$B_PER_CPU" -v ac="$A_PER_CPU" 'BEGIN {
    printf "%-24s %12.1f %12.1f %10.3f\n", "pushes/s", br, ar, ar / br
    printf "%-24s %12.1f %12.1f %10.3f\n", "pushes/serialgate CPU-s", bc, ac, (bc > 0 ? ac / bc : 0)
    printf "%-24s %12.3f %12.3f %10.3f\n", "push p99 ms", bp, ap, (bp > 0 ? ap / bp : 0)
    printf "%-24s %12.3f %12.3f %10.3f\n", "echo p99 ms", be, ae, (be > 0 ? ae / be : 0)
    printf "target pushes/s under attack >= 80%% of baseline: %s (%.1f%%)\n", (ar / br >= 0.8 ? "met" : "NOT met"), 100 * ar / br
    printf "target echo p99 under attack < 5 ms: %s (%.3f ms)\n", (ae < 5 ? "met" : "NOT met"), ae
}'
n=$(grep -c 'Too many open files' "$SG_LOG" || true)
((n == 0)) || echo "bench-hostile: serialgate logged 'Too many open files' $n times"
n=$(grep -c 'panicked' "$SG_LOG" || true)
((n == 0)) || echo "bench-hostile: serialgate panicked: $(grep -m1 panicked "$SG_LOG")"
