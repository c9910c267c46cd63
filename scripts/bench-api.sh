#!/usr/bin/env bash
# Benchmark of the API: SendSerialConsoleSSHPublicKey with full SigV4 verification, driven by wrk,
# against serialgate (release build, default durable SQLite audit: WAL, synchronous=FULL) and
# then, in the same run, against crates/bench-bare, a server on the same HTTP stack that answers
# the same request with a fixed 200: the ceiling. Each push is acknowledged only after its audit
# record is committed, so the run also measures the disk: the fsync latency of the state
# directory's filesystem is measured in the same run, and at the end the audit database must
# hold a record for every answered push.
#
# The serialgate runs are three: the key allowed by a one-statement policy, then by the last
# statement of ten attached policies of twenty statements each, in the two shapes of the policy
# micro benchmark (crates/iam/benches/eval.rs: mixed, and worst), to measure what policy
# evaluation costs a push.
#
# Usage: scripts/bench-api.sh
# Environment:
#   DURATION=10       seconds of each measured wrk run (at least 10 recommended; all runs
#                     together must stay under 840 s, the signature is valid for 15 minutes)
#   CONNECTIONS="16 64"  wrk connection counts, one measured run each (space-separated)
#   THREADS=2         wrk threads
#   WARMUP=2          seconds of an unmeasured wrk run before each measured one (0: none)
#   FSYNC_SAMPLES=200 4 KiB write + fsync rounds of the disk probe
#   SERIALGATE_LOG    serialgate's log filter (default info: every request is audited to its log
#                     file, as in production)
#   PYTHON            a python with botocore (default: /tmp/e2e-venv/bin/python if present, else
#                     python3); `pip install -r tests/e2e/requirements.txt` provides one
#   SKIP_BUILD=1      do not run cargo build (binaries from ${CARGO_TARGET_DIR:-target}/release)
#   TMPDIR            where the state directory (and so audit.db) lives: the disk measured
#   KEEP_WORK=1       keep the working directory (logs, audit.db, wrk outputs) and print its path
#
# Targets (printed, not asserted): at the largest connection count serialgate reaches >= 50% of
# the bare throughput; at the smallest, p99 < 5 ms. The script fails if wrk sees non-200 answers
# beyond 1%, if socket errors dominate, or if an answered push has no audit record.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16 64}"
THREADS="${THREADS:-2}"
WARMUP="${WARMUP:-2}"
FSYNC_SAMPLES="${FSYNC_SAMPLES:-200}"
DURATION="${DURATION%s}"
WARMUP="${WARMUP%s}"

die() {
    echo "bench-api: $*" >&2
    exit 1
}

for v in DURATION THREADS WARMUP FSYNC_SAMPLES; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((DURATION >= 1)) || die "DURATION must be at least 1 s"
((FSYNC_SAMPLES >= 10)) || die "FSYNC_SAMPLES must be at least 10"
read -r -a CONN_LIST <<<"$CONNECTIONS"
((${#CONN_LIST[@]} >= 1)) || die "CONNECTIONS is empty"
for c in "${CONN_LIST[@]}"; do
    [[ "$c" =~ ^[0-9]+$ ]] || die "CONNECTIONS must be whole numbers, got '$c'"
    ((c >= THREADS && THREADS >= 1)) || die "need every connection count >= THREADS >= 1 (got $c)"
done
# One signature per server serves every run against it, warm-ups included.
(((DURATION + WARMUP) * ${#CONN_LIST[@]} < 840)) ||
    die "the runs against one server take $(((DURATION + WARMUP) * ${#CONN_LIST[@]})) s; the signature lasts 15 min"

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
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
[[ -x "$TARGET_DIR/release/serialgate" && -x "$TARGET_DIR/release/bench-bare" ]] ||
    die "release binaries missing in $TARGET_DIR/release: cargo build --release -p serialgate -p bench-bare"

# --- workspace and cleanup -----------------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-api.XXXXXX")"
# Run copies, so that a build finishing meanwhile cannot swap a binary under the benchmark.
mkdir "$WORK/bin"
cp "$TARGET_DIR/release/serialgate" "$TARGET_DIR/release/bench-bare" "$WORK/bin/"
SERIALGATE="$WORK/bin/serialgate"
BARE="$WORK/bin/bench-bare"
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
        echo "bench-api: kept $WORK (logs, audit.db, wrk outputs)" >&2
    else
        rm -rf "$WORK"
    fi
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

# Responses (of any status) wrk received from serialgate, warm-ups included: each is a push
# serialgate answered, and so one that must have its audit record.
ANSWERED=0

# The number of responses in a wrk output file ("BENCH requests=N ..." from the Lua hook).
responses_in() { # file
    sed -n 's/^BENCH requests=\([0-9]*\) .*/\1/p' "$1"
}

# CPU time (user + system, clock ticks) the process PID has used so far.
cpu_ticks() { # pid
    awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# Runs wrk (warm-up, then measured) with CONNS connections against the server PID; leaves the
# measured output in $dir/wrk-CONNS.out and the figures in $dir/result-CONNS.
run_wrk() { # name url dir conns pid
    local name="$1" url="$2" dir="$3" conns="$4" pid="$5"
    local out="$dir/wrk-$conns.out" n cpu0 cpu1
    if ((WARMUP > 0)); then
        wrk -t "$THREADS" -c "$conns" -d "${WARMUP}s" -s "$dir/bench.lua" "$url" >"$dir/warmup-$conns.out" 2>&1 ||
            { cat "$dir/warmup-$conns.out" >&2; die "wrk warm-up against $name failed"; }
        n="$(responses_in "$dir/warmup-$conns.out")"
        ANSWERED=$((ANSWERED + ${n:-0}))
    fi
    echo "== $name: wrk -t $THREADS -c $conns -d ${DURATION}s --latency $url"
    cpu0="$(cpu_ticks "$pid")"
    wrk -t "$THREADS" -c "$conns" -d "${DURATION}s" --latency -s "$dir/bench.lua" "$url" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk against $name failed"; }
    cpu1="$(cpu_ticks "$pid")"
    grep -v '^BENCH' "$out" | sed 's/^/   /'
    local line
    line="$(grep '^BENCH ' "$out")" || die "no summary line from the wrk Lua done hook for $name"
    n="$(responses_in "$out")"
    ANSWERED=$((ANSWERED + ${n:-0}))
    local requests=0 duration_us=1 p50_us=0 p90_us=0 p99_us=0 max_us=0 non200=0
    local connect=0 read=0 write=0 timeout=0 kv
    for kv in ${line#BENCH }; do
        [[ "$kv" =~ ^([a-z0-9_]+)=([0-9]+)$ ]] && printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
    done
    local errors=$((connect + read + write + timeout))
    if ((non200 > 0)); then
        echo "!! $name: $non200 of $requests responses were not 200; first: $(grep '^BENCH_SAMPLE' "$out" | cut -c14- | cut -c1-300)" >&2
    fi
    if ((requests == 0 || non200 * 100 > requests)); then
        die "$name: $non200 of $requests responses were errors: the figures would measure error handling, not the API"
    fi
    if ((errors * 10 > requests)); then
        die "$name: $errors socket errors for $requests requests"
    fi
    # name rps p50_ms p99_ms non200 errors cpu_us_per_request
    awk -v n="$name" -v r="$requests" -v d="$duration_us" -v p50="$p50_us" -v p99="$p99_us" \
        -v bad="$non200" -v err="$errors" -v cpu="$((cpu1 - cpu0))" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%s %.1f %.3f %.3f %d %d %.1f\n", n, r / (d / 1e6), p50 / 1000, p99 / 1000, bad, err, cpu / hz * 1e6 / r }' \
        >"$dir/result-$conns"
}

# The disk under the state directory: FSYNC_SAMPLES rounds of rewriting a 4 KiB block of a
# preallocated file and fsync-ing it (what a WAL commit costs at least). Prints
# "median_ms p90_ms".
fsync_probe() { # dir
    DIR="$1" N="$FSYNC_SAMPLES" "$PYTHON" - <<'EOF'
import os, statistics, time
path = os.path.join(os.environ["DIR"], "fsync-probe")
n = int(os.environ["N"])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
try:
    os.pwrite(fd, b"\0" * 65536, 0)
    os.fsync(fd)
    samples = []
    for i in range(n):
        os.pwrite(fd, bytes([i % 251]) * 4096, (i % 16) * 4096)
        t = time.perf_counter()
        os.fsync(fd)
        samples.append(time.perf_counter() - t)
finally:
    os.close(fd)
    os.unlink(path)
samples.sort()
print("%.3f %.3f" % (statistics.median(samples) * 1e3, samples[int(len(samples) * 0.9)] * 1e3))
EOF
}

# --- serialgate ----------------------------------------------------------------------------------

# Ten policies of twenty statements each, the shapes of crates/iam/benches/eval.rs:
# - mixed: statements over assorted actions and resources (most ruled out by their action), the
#   push allowed by the very last statement (its tag compared with the caller's), so every Deny
#   is still tested after the Allow is found;
# - worst: every statement names the push and the instance, with four conditions each, every one
#   evaluated; the Denies never apply and the last statement allows.
write_policies() { # dir kind
    DIR="$1" KIND="$2" "$PYTHON" - <<'PYEOF'
import json, os
d, kind = os.environ["DIR"], os.environ["KIND"]
PUSH = "ec2-instance-connect:SendSerialConsoleSSHPublicKey"
LAST = {"Sid": "Serial", "Effect": "Allow", "Action": PUSH,
        "Resource": "arn:aws:ec2:*:000000000000:instance/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"}}}
def mixed(p, s):
    k = s % 5
    if k == 0:
        return {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:GetSerialConsoleAccessStatus"], "Resource": "*"}
    if k == 1:
        return {"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"}
    if k == 2:
        return {"Effect": "Allow", "Action": ["ec2:StartInstances", "ec2:StopInstances", "ec2:RebootInstances"],
                "Resource": "arn:aws:ec2:us-east-1:000000000000:instance/i-0*",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}
    if k == 3:
        return {"Effect": "Deny", "Action": "ec2-instance-connect:*", "Resource": "arn:aws:ec2:*:*:instance/i-prod*",
                "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}}}
    return {"Effect": "Allow", "Action": "ec2-instance-connect:SendSSHPublicKey",
            "Resource": "arn:aws:ec2:*:000000000000:instance/*",
            "Condition": {"StringEquals": {"ec2:osuser": "ec2-user"}}}
def worst(p, s):
    # Denies fail on their date (never before 2000), Allows on the address block.
    deny = s % 2 == 1
    return {"Effect": "Deny" if deny else "Allow", "Action": "ec2-instance-connect:Send*",
            "Resource": ["arn:aws:ec2:us-west-2:*:instance/*", "arn:aws:ec2:*:000000000000:instance/i-*"],
            "Condition": {"StringEquals": {"aws:ResourceTag/Team": "${aws:PrincipalTag/Team}"},
                          "IpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"] if deny else ["192.0.2.0/24"]},
                          "DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z" if deny else "2100-01-01T00:00:00Z"},
                          "ForAllValues:StringLike": {"aws:TagKeys": ["team", "env-*"]}}}
for p in range(10):
    statements = []
    for s in range(20):
        st = LAST if (p, s) == (9, 19) else (mixed if kind == "mixed" else worst)(p, s)
        statements.append(dict(st, Sid=st.get("Sid", f"P{p}S{s}")))
    with open(os.path.join(d, f"policy-{p}.json"), "w") as f:
        json.dump({"Version": "2012-10-17", "Statement": statements}, f)
PYEOF
}

# Runs the measured pushes against serialgate with `extra` added to the key's configuration.
bench_serialgate() { # name extra-credential-toml
    local name="$1" extra="$2"
    local dir="$WORK/$name" state="$WORK/state-$name"
    mkdir -p "$dir" "$state"
    cat >"$WORK/$name.toml" <<EOF
# Written by scripts/bench-api.sh: the embedded demo setup, with a throttle that never bites.
region = "us-east-1"
state_dir = "$state"

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
$extra

[[instances]]
id = "i-0123456789abcdef0"
account = "000000000000"
instance_type = "t3.micro"
state = "running"
console = "sim:"
tags = { Team = "db", env = "dev" }
EOF
    local log="$WORK/$name.log"
    SERIALGATE_LOG="${SERIALGATE_LOG:-info}" NO_COLOR=1 \
        "$SERIALGATE" serve --config "$WORK/$name.toml" \
        --api-listen "127.0.0.1:$SG_PORT" --ssh-listen "127.0.0.1:$SSH_PORT" \
        </dev/null >"$log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait_health "$name" "http://127.0.0.1:$SG_PORT/health" "$log" "$pid"

    sign_request "127.0.0.1:$SG_PORT" "$dir"
    check_once "$name" "http://127.0.0.1:$SG_PORT/" "$dir"
    ANSWERED=1
    echo "bench-api: $name: serialgate $("$SERIALGATE" --version | awk '{print $2}') on 127.0.0.1:$SG_PORT, log filter ${SERIALGATE_LOG:-info}; signed request verified (200)"
    for c in "${CONN_LIST[@]}"; do
        run_wrk "$name" "http://127.0.0.1:$SG_PORT/" "$dir" "$c" "$pid"
    done
    stop_server "$pid"

    # Every push was answered only after its record was committed: all of them must be there.
    # More records are fine (wrk stops with requests in flight whose answers it never reads).
    local records
    records="$(DB="$state/audit.db" "$PYTHON" -c '
import os, sqlite3
db = sqlite3.connect(os.environ["DB"])
print(db.execute("SELECT count(*) FROM audit WHERE kind = ?", ("api",)).fetchone()[0])')"
    echo "bench-api: $name: audit.db holds $records API records for $ANSWERED answered pushes"
    ((records >= ANSWERED)) || die "$name: $((ANSWERED - records)) answered pushes have no audit record"
}

read -r FSYNC_MS FSYNC_P90_MS < <(fsync_probe "$WORK")
echo "bench-api: fsync on the state directory's disk: median $FSYNC_MS ms, p90 $FSYNC_P90_MS ms ($FSYNC_SAMPLES samples)"
# The same key both times: allowed by a one-statement policy, then by the last of 200.
bench_serialgate serialgate 'actions = ["ec2-instance-connect:SendSerialConsoleSSHPublicKey"]'
for kind in mixed worst; do
    mkdir -p "$WORK/policy-files-$kind"
    write_policies "$WORK/policy-files-$kind" "$kind"
    files="$(printf '"%s", ' "$WORK/policy-files-$kind"/policy-*.json)"
    bench_serialgate "policies-$kind" "policy_file = [${files%, }]
tags = { Team = \"db\" }"
done
read -r FSYNC_AFTER_MS FSYNC_AFTER_P90_MS < <(fsync_probe "$WORK")

# --- bare ceiling --------------------------------------------------------------------------------

mkdir -p "$WORK/bare"
BARE_LOG_FILE="$WORK/bench-bare.log"
"$BARE" "127.0.0.1:$BARE_PORT" </dev/null >"$BARE_LOG_FILE" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_health bench-bare "http://127.0.0.1:$BARE_PORT/health" "$BARE_LOG_FILE" "$BARE_PID"

sign_request "127.0.0.1:$BARE_PORT" "$WORK/bare"
check_once bench-bare "http://127.0.0.1:$BARE_PORT/" "$WORK/bare"
for c in "${CONN_LIST[@]}"; do
    run_wrk bench-bare "http://127.0.0.1:$BARE_PORT/" "$WORK/bare" "$c" "$BARE_PID"
done
stop_server "$BARE_PID"

# --- report --------------------------------------------------------------------------------------

echo
echo "== results ($THREADS wrk threads, ${DURATION} s each, $(nproc) CPUs shared by wrk and the server)"
echo "fsync, 4 KiB, state directory's disk: median $FSYNC_MS ms before the runs, $FSYNC_AFTER_MS ms after (p90 $FSYNC_P90_MS / $FSYNC_AFTER_P90_MS ms)"
# fsync bound: the throughput if every request waited for exactly one fsync and nothing else,
# each connection having one request in flight: connections / median fsync.
# CPU µs/req: the server's own CPU time (all its threads) per request during the measured run.
printf '%-6s %-22s %12s %10s %10s %12s %9s %12s\n' "conns" "" "requests/s" "p50 ms" "p99 ms" "CPU us/req" "vs bare" "fsync bound"
for c in "${CONN_LIST[@]}"; do
    read -r _ SG_RPS SG_P50 SG_P99 _ _ SG_CPU <"$WORK/serialgate/result-$c"
    read -r _ MI_RPS MI_P50 MI_P99 _ _ MI_CPU <"$WORK/policies-mixed/result-$c"
    read -r _ WO_RPS WO_P50 WO_P99 _ _ WO_CPU <"$WORK/policies-worst/result-$c"
    read -r _ BARE_RPS BARE_P50 BARE_P99 _ _ BARE_CPU <"$WORK/bare/result-$c"
    awk -v c="$c" -v s="$SG_RPS" -v sp50="$SG_P50" -v sp99="$SG_P99" -v scpu="$SG_CPU" -v b="$BARE_RPS" \
        -v m="$MI_RPS" -v mp50="$MI_P50" -v mp99="$MI_P99" -v mcpu="$MI_CPU" \
        -v w="$WO_RPS" -v wp50="$WO_P50" -v wp99="$WO_P99" -v wcpu="$WO_CPU" \
        -v bp50="$BARE_P50" -v bp99="$BARE_P99" -v bcpu="$BARE_CPU" -v f="$FSYNC_MS" 'BEGIN {
        printf "%-6s %-22s %12.1f %10.3f %10.3f %12.1f %8.1f%% %12.0f\n", c, "serialgate (SigV4)", s, sp50, sp99, scpu, s / b * 100, (f > 0 ? c / (f / 1000) : 0)
        printf "%-6s %-22s %12.1f %10.3f %10.3f %12.1f %8.1f%%\n", c, "+ 10x20 mixed policies", m, mp50, mp99, mcpu, m / b * 100
        printf "%-6s %-22s %12.1f %10.3f %10.3f %12.1f %8.1f%%\n", c, "+ 10x20 worst policies", w, wp50, wp99, wcpu, w / b * 100
        printf "%-6s %-22s %12.1f %10.3f %10.3f %12.1f\n", c, "bench-bare (ceiling)", b, bp50, bp99, bcpu
    }'
done
for c in "${CONN_LIST[@]}"; do
    read -r _ SG_RPS _ _ _ _ SG_CPU <"$WORK/serialgate/result-$c"
    for kind in mixed worst; do
        read -r _ PO_RPS _ _ _ _ PO_CPU <"$WORK/policies-$kind/result-$c"
        awk -v c="$c" -v k="$kind" -v s="$SG_RPS" -v p="$PO_RPS" -v scpu="$SG_CPU" -v pcpu="$PO_CPU" 'BEGIN {
            printf "10x20 %s policies at %s connections: %.1f%% of the pushes/s with one policy (%+.1f CPU us/req); target >= 95%%: %s\n", k, c, p / s * 100, pcpu - scpu, (p / s >= 0.95 ? "met" : "NOT met")
        }'
    done
done
FIRST="${CONN_LIST[0]}"
LAST="${CONN_LIST[${#CONN_LIST[@]} - 1]}"
read -r _ SG_RPS _ _ _ _ <"$WORK/serialgate/result-$LAST"
read -r _ BARE_RPS _ _ _ _ <"$WORK/bare/result-$LAST"
read -r _ _ _ SG_P99_FIRST _ _ <"$WORK/serialgate/result-$FIRST"
awk -v c="$LAST" -v s="$SG_RPS" -v b="$BARE_RPS" -v c1="$FIRST" -v p99="$SG_P99_FIRST" 'BEGIN {
    ratio = s / b
    printf "target >= 50%% of bare throughput at %s connections (%.1f%%): %s\n", c, ratio * 100, (ratio >= 0.5 ? "met" : "NOT met")
    printf "target p99 < 5 ms at %s connections (%.3f ms): %s\n", c1, p99, (p99 < 5 ? "met" : "NOT met")
}'
