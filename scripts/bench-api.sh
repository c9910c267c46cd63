#!/usr/bin/env bash
# Benchmark of the API: SendSerialConsoleSSHPublicKey with full SigV4 verification, driven by wrk,
# against serialgate (release build) and then, in the same run, against crates/bench-bare, a
# server on the same HTTP stack that answers the same request with a fixed 200: the ceiling.
#
# Usage: scripts/bench-api.sh
# Environment:
#   DURATION=10       seconds of each measured wrk run (at least 10 recommended; < 840, the
#                     signature is valid for 15 minutes)
#   CONNECTIONS=16    wrk connections
#   THREADS=2         wrk threads
#   WARMUP=2          seconds of an unmeasured wrk run before each measured one (0: none)
#   SERIALGATE_LOG    serialgate's log filter (default info: every request is audited to its log
#                     file, as in production)
#   PYTHON            a python with botocore (default: /tmp/e2e-venv/bin/python if present, else
#                     python3); `pip install -r tests/e2e/requirements.txt` provides one
#   SKIP_BUILD=1      do not run cargo build
#
# Targets (printed, not asserted): serialgate reaches >= 50% of the bare throughput, p99 < 5 ms.
# The script fails if wrk sees non-200 answers beyond 1% or socket errors dominate.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-2}"
WARMUP="${WARMUP:-2}"
DURATION="${DURATION%s}"
WARMUP="${WARMUP%s}"

die() {
    echo "bench-api: $*" >&2
    exit 1
}

for v in DURATION CONNECTIONS THREADS WARMUP; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION >= 1 && DURATION < 840)) || die "DURATION must be 1..839 s (the signature lasts 15 min)"
((CONNECTIONS >= THREADS && THREADS >= 1)) || die "need CONNECTIONS >= THREADS >= 1"

# --- tools ---------------------------------------------------------------------------------------

if ! command -v wrk >/dev/null 2>&1; then
    echo "bench-api: installing wrk (Debian package)" >&2
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
    if [[ -x /tmp/e2e-venv/bin/python ]]; then PYTHON=/tmp/e2e-venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c 'import botocore' 2>/dev/null ||
    die "$PYTHON cannot import botocore; run: python3 -m venv /tmp/e2e-venv && /tmp/e2e-venv/bin/pip install -r tests/e2e/requirements.txt"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release --quiet -p serialgate -p bench-bare
fi
SERIALGATE="$REPO_ROOT/target/release/serialgate"
BARE="$REPO_ROOT/target/release/bench-bare"
[[ -x "$SERIALGATE" && -x "$BARE" ]] || die "release binaries missing: cargo build --release -p serialgate -p bench-bare"

# --- workspace and cleanup -----------------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-api.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_server() {
    local pid="$1"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Three distinct free loopback ports, all bound at once so that they differ.
read -r SG_PORT SSH_PORT BARE_PORT < <("$PYTHON" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)

wait_health() { # name url log pid
    local name="$1" url="$2" log="$3" pid="$4" i
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench-api: $name exited before serving $url; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench-api: $name did not answer $url within 10 s; its log:" >&2
    cat "$log" >&2
    exit 1
}

# --- the signed request --------------------------------------------------------------------------

# Signs the request once for HOST with botocore and writes: request.body, request.headers (for
# curl -H @file) and bench.lua (for wrk). The Lua counts non-200 answers and prints a summary.
sign_request() { # host outdir
    HOST="$1" OUT="$2" KEY_FILE="$REPO_ROOT/testdata/keys/ed25519.pub" "$PYTHON" - <<'EOF'
import json, os
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

host, out = os.environ["HOST"], os.environ["OUT"]
key = open(os.environ["KEY_FILE"]).read().strip()
body = json.dumps({"InstanceId": "i-0123456789abcdef0", "SerialPort": 0, "SSHPublicKey": key})
req = AWSRequest(
    method="POST",
    url=f"http://{host}/",
    data=body.encode(),
    headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey",
        "Host": host,
    },
)
SigV4Auth(Credentials("test", "test"), "ec2-instance-connect", "us-east-1").add_auth(req)
headers = {k: v for k, v in req.headers.items()}
assert "Authorization" in headers and "X-Amz-Date" in headers, headers

def lua(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

with open(f"{out}/request.body", "w") as f:
    f.write(body)
with open(f"{out}/request.headers", "w") as f:
    for k, v in headers.items():
        f.write(f"{k}: {v}\n")
with open(f"{out}/bench.lua", "w") as f:
    f.write("-- generated by scripts/bench-api.sh: one pre-signed SendSerialConsoleSSHPublicKey\n")
    f.write('wrk.method = "POST"\n')
    f.write(f"wrk.body = {lua(body)}\n")
    for k, v in headers.items():
        f.write(f"wrk.headers[{lua(k)}] = {lua(v)}\n")
    f.write(r'''
local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

non200 = 0
first_bad = ""

function response(status, headers, body)
    if status ~= 200 then
        non200 = non200 + 1
        if first_bad == "" then
            first_bad = status .. " " .. tostring(body)
        end
    end
end

function done(summary, latency, requests)
    local bad, sample = 0, ""
    for _, t in ipairs(threads) do
        bad = bad + t:get("non200")
        local s = t:get("first_bad")
        if sample == "" and s ~= nil and s ~= "" then sample = s end
    end
    local e = summary.errors
    io.write(string.format(
        "BENCH requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d non200=%d connect=%d read=%d write=%d timeout=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max, bad, e.connect, e.read, e.write, e.timeout))
    if sample ~= "" then
        io.write("BENCH_SAMPLE " .. string.gsub(sample, "\n", " ") .. "\n")
    end
end
''')
EOF
}

# One request with curl: must be a 200 with Success true, or the benchmark is meaningless.
check_once() { # name url dir
    local name="$1" url="$2" dir="$3" code
    code="$(curl -sS -o "$dir/curl.out" -w '%{http_code}' --max-time 5 -X POST \
        -H @"$dir/request.headers" --data-binary @"$dir/request.body" "$url")" || true
    if [[ "$code" != 200 ]] || ! grep -q '"Success":true' "$dir/curl.out"; then
        echo "bench-api: the signed request to $name did not get 200 {\"Success\":true}:" >&2
        echo "  HTTP $code: $(cat "$dir/curl.out" 2>/dev/null)" >&2
        echo "  request headers:" >&2
        sed 's/^/    /' "$dir/request.headers" >&2
        exit 1
    fi
}

# Runs wrk (warm-up, then measured) and leaves the measured output in $dir/wrk.out.
run_wrk() { # name url dir
    local name="$1" url="$2" dir="$3"
    if ((WARMUP > 0)); then
        wrk -t "$THREADS" -c "$CONNECTIONS" -d "${WARMUP}s" -s "$dir/bench.lua" "$url" >"$dir/warmup.out" 2>&1 ||
            { cat "$dir/warmup.out" >&2; die "wrk warm-up against $name failed"; }
    fi
    echo "== $name: wrk -t $THREADS -c $CONNECTIONS -d ${DURATION}s --latency $url"
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "$dir/bench.lua" "$url" >"$dir/wrk.out" 2>&1 ||
        { cat "$dir/wrk.out" >&2; die "wrk against $name failed"; }
    grep -v '^BENCH' "$dir/wrk.out" | sed 's/^/   /'
    local line
    line="$(grep '^BENCH ' "$dir/wrk.out")" || die "no summary line from the wrk Lua done hook for $name"
    local requests=0 duration_us=1 p50_us=0 p90_us=0 p99_us=0 max_us=0 non200=0
    local connect=0 read=0 write=0 timeout=0 kv
    for kv in ${line#BENCH }; do
        [[ "$kv" =~ ^([a-z0-9_]+)=([0-9]+)$ ]] && printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
    done
    local errors=$((connect + read + write + timeout))
    if ((non200 > 0)); then
        echo "!! $name: $non200 of $requests responses were not 200; first: $(grep '^BENCH_SAMPLE' "$dir/wrk.out" | cut -c14- | cut -c1-300)" >&2
    fi
    if ((requests == 0 || non200 * 100 > requests)); then
        die "$name: $non200 of $requests responses were errors: the figures would measure error handling, not the API"
    fi
    if ((errors * 10 > requests)); then
        die "$name: $errors socket errors for $requests requests"
    fi
    # name rps p50_ms p99_ms non200 errors
    awk -v n="$name" -v r="$requests" -v d="$duration_us" -v p50="$p50_us" -v p99="$p99_us" \
        -v bad="$non200" -v err="$errors" \
        'BEGIN { printf "%s %.1f %.3f %.3f %d %d\n", n, r / (d / 1e6), p50 / 1000, p99 / 1000, bad, err }' \
        >"$dir/result"
}

# --- serialgate ----------------------------------------------------------------------------------

mkdir -p "$WORK/serialgate" "$WORK/bare" "$WORK/state"
cat >"$WORK/bench.toml" <<EOF
# Written by scripts/bench-api.sh: the embedded demo setup, with a throttle that never bites.
region = "us-east-1"
state_dir = "$WORK/state"

[api]
listen = "127.0.0.1:$SG_PORT"

[ssh]
listen = "127.0.0.1:$SSH_PORT"

[throttle]
rate_per_second = 1000000.0
burst = 1000000

[[accounts]]
id = "000000000000"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "test"
secret_access_key = "test"

[[instances]]
id = "i-0123456789abcdef0"
account = "000000000000"
instance_type = "t3.micro"
state = "running"
console = "sim:"
EOF

SG_LOG_FILE="$WORK/serialgate.log"
SERIALGATE_LOG="${SERIALGATE_LOG:-info}" NO_COLOR=1 \
    "$SERIALGATE" serve --config "$WORK/bench.toml" \
    --api-listen "127.0.0.1:$SG_PORT" --ssh-listen "127.0.0.1:$SSH_PORT" \
    </dev/null >"$SG_LOG_FILE" 2>&1 &
SG_PID=$!
PIDS+=("$SG_PID")
wait_health serialgate "http://127.0.0.1:$SG_PORT/health" "$SG_LOG_FILE" "$SG_PID"

sign_request "127.0.0.1:$SG_PORT" "$WORK/serialgate"
check_once serialgate "http://127.0.0.1:$SG_PORT/" "$WORK/serialgate"
echo "bench-api: serialgate $("$SERIALGATE" --version | awk '{print $2}') on 127.0.0.1:$SG_PORT, log filter ${SERIALGATE_LOG:-info}; signed request verified (200)"
run_wrk serialgate "http://127.0.0.1:$SG_PORT/" "$WORK/serialgate"
stop_server "$SG_PID"

# --- bare ceiling --------------------------------------------------------------------------------

BARE_LOG_FILE="$WORK/bench-bare.log"
"$BARE" "127.0.0.1:$BARE_PORT" </dev/null >"$BARE_LOG_FILE" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_health bench-bare "http://127.0.0.1:$BARE_PORT/health" "$BARE_LOG_FILE" "$BARE_PID"

sign_request "127.0.0.1:$BARE_PORT" "$WORK/bare"
check_once bench-bare "http://127.0.0.1:$BARE_PORT/" "$WORK/bare"
run_wrk bench-bare "http://127.0.0.1:$BARE_PORT/" "$WORK/bare"
stop_server "$BARE_PID"

# --- report --------------------------------------------------------------------------------------

read -r _ SG_RPS SG_P50 SG_P99 _ _ <"$WORK/serialgate/result"
read -r _ BARE_RPS BARE_P50 BARE_P99 _ _ <"$WORK/bare/result"

echo
echo "== results ($THREADS threads, $CONNECTIONS connections, ${DURATION} s each, $(nproc) CPUs shared by wrk and the server)"
printf '%-22s %12s %10s %10s\n' "" "requests/s" "p50 ms" "p99 ms"
printf '%-22s %12s %10s %10s\n' "serialgate (SigV4)" "$SG_RPS" "$SG_P50" "$SG_P99"
printf '%-22s %12s %10s %10s\n' "bench-bare (ceiling)" "$BARE_RPS" "$BARE_P50" "$BARE_P99"
awk -v s="$SG_RPS" -v b="$BARE_RPS" -v p99="$SG_P99" 'BEGIN {
    ratio = s / b
    printf "ratio serialgate/bare throughput: %.3f (%.1f%%)\n", ratio, ratio * 100
    printf "target >= 50%% of bare throughput: %s\n", (ratio >= 0.5 ? "met" : "NOT met")
    printf "target p99 < 5 ms (serialgate p99 %.3f ms): %s\n", p99, (p99 < 5 ? "met" : "NOT met")
}'
