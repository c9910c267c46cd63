#!/usr/bin/env bash
# Benchmark of serialgate's shared state: the embedded (in-memory) stores against 1, 2 and 3
# nodes on one Redis, all in the same run on this machine.
#
# For each setup it measures:
#   1. API pushes/s: wrk with a pre-signed SendSerialConsoleSSHPublicKey (full SigV4), the
#      connections spread over the nodes, one wrk per node at once; the rates are added up.
#   2. Push latency: PUSHES pushes one at a time on a kept-alive connection (python http.client);
#      p50/p99. The difference to the embedded setup is what the Redis hop adds.
#   3. Redis operations per push and per session open: `INFO commandstats` before and after.
#   4. Session opens/s: push a key (node i), then OpenSSH `ssh -tt` to the next node (cross-node
#      for 2+ nodes), wait for the console, leave. SESSIONS one at a time, then PARALLEL workers.
#      The OpenSSH client's own cost (about 20-40 ms of CPU here) is in every figure alike.
# Every node writes its audit trail to SQLite (the default, synchronous=FULL) in its own
# state_dir, as in production.
#
# Usage: scripts/bench-multinode.sh
# Environment:
#   DURATION=10       seconds of each measured wrk run
#   CONNECTIONS=16    wrk connections in all (spread over the nodes)
#   PUSHES=500        sequential pushes for the latency and ops-per-push figures
#   SESSIONS=40       sessions opened one at a time per setup
#   PARALLEL=4        parallel session workers (each opens SESSIONS/PARALLEL... see below)
#   PER_WORKER=10     sessions per parallel worker
#   SERIALGATE_LOG    serialgate's log filter (default warn: the log is not what is measured)
#   PYTHON            a python with boto3 (default /tmp/e2e-venv/bin/python, else .venv, else python3)
#   SKIP_BUILD=1      do not run cargo build
#
# Needs: wrk, redis-server, redis-cli, ssh, ssh-keygen (Debian: wrk redis-server openssh-client).
# Figures are printed, not asserted.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DURATION="${DURATION:-10}"
CONNECTIONS="${CONNECTIONS:-16}"
PUSHES="${PUSHES:-500}"
SESSIONS="${SESSIONS:-40}"
PARALLEL="${PARALLEL:-4}"
PER_WORKER="${PER_WORKER:-10}"
export SERIALGATE_LOG="${SERIALGATE_LOG:-warn}"

die() {
    echo "bench-multinode: $*" >&2
    exit 1
}

for v in DURATION CONNECTIONS PUSHES SESSIONS PARALLEL PER_WORKER; do
    [[ "${!v}" =~ ^[0-9]+$ && "${!v}" -ge 1 ]] || die "$v must be a whole number >= 1, got '${!v}'"
done
((CONNECTIONS >= 3)) || die "CONNECTIONS must be >= 3 (spread over up to 3 nodes)"

for tool in wrk redis-server redis-cli ssh ssh-keygen curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install wrk redis-server openssh-client curl)"
done
if [[ -z "${PYTHON:-}" ]]; then
    for p in /tmp/e2e-venv/bin/python "$REPO_ROOT/.venv/bin/python" python3; do
        if [[ -x "$p" || "$p" == python3 ]] && "$p" -c 'import boto3' 2>/dev/null; then PYTHON="$p"; break; fi
    done
fi
[[ -n "${PYTHON:-}" ]] || die "no python with boto3; pip install -r tests/e2e/requirements.txt"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release --quiet -p serialgate
fi
SERIALGATE="$REPO_ROOT/target/release/serialgate"
[[ -x "$SERIALGATE" ]] || die "release binary missing: cargo build --release -p serialgate"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-multinode.XXXXXX")"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_ports() { # n
    "$PYTHON" -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))' "$1"
}

# --- redis -----------------------------------------------------------------------------------

read -r REDIS_PORT < <(free_ports 1)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    </dev/null >"$WORK/redis.log" 2>&1 &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
for _ in $(seq 100); do
    [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] && break
    sleep 0.05
done
[[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] || die "redis-server did not start"
redis_ops() { # total calls of every command so far
    redis-cli -p "$REDIS_PORT" INFO commandstats | awk -F'[=,:]' '/^cmdstat_/ && $1 != "cmdstat_info" { n += $3 } END { print n + 0 }'
}

# Redis's CPU time so far, microseconds (user + system, from /proc).
redis_cpu_us() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f\n", ($14 + $15) * 1e6 / hz }' "/proc/$REDIS_PID/stat"
}

ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
INSTANCES=$((SESSIONS + PARALLEL * PER_WORKER + 10))

# --- nodes -----------------------------------------------------------------------------------

NODE_PIDS=()
NODE_API=()
NODE_SSH=()
start_nodes() { # setup-name n redis(0/1)
    local name="$1" n="$2" redis="$3" i
    NODE_PIDS=()
    NODE_API=()
    NODE_SSH=()
    : >"$WORK/$name.known_hosts"
    for ((i = 0; i < n; i++)); do
        local dir="$WORK/$name/node$i" api ssh
        mkdir -p "$dir"
        read -r api ssh relay < <(free_ports 3)
        {
            echo "region = \"us-east-1\""
            echo "state_dir = \"$dir/state\""
            if ((redis)); then
                printf '[store]\nredis = "redis://127.0.0.1:%s/0"\n' "$REDIS_PORT"
                # One owner per console; the other nodes relay to it.
                printf '[cluster]\nnode = "%s-%s"\nlisten = "127.0.0.1:%s"\nsecret = "bench-cluster-secret-0123456789"\n' \
                    "$name" "$i" "$relay"
            fi
            printf '[sessions]\nteardown_seconds = 1\n'
            printf '[throttle]\nrate_per_second = 1000000.0\nburst = 1000000\n'
            printf '[[accounts]]\nid = "000000000000"\nserial_console_access = true\n'
            printf '[[accounts.credentials]]\naccess_key_id = "test"\nsecret_access_key = "test"\n'
            for ((k = 0; k < INSTANCES; k++)); do
                printf '[[instances]]\nid = "i-%017x"\naccount = "000000000000"\nconsole = "sim:"\n' $((0xbe00000 + k))
            done
        } >"$dir/serialgate.toml"
        echo "[127.0.0.1]:$ssh $("$SERIALGATE" host-key --config "$dir/serialgate.toml" --public-key-only)" \
            >>"$WORK/$name.known_hosts"
        NO_COLOR=1 "$SERIALGATE" serve --config "$dir/serialgate.toml" \
            --api-listen "127.0.0.1:$api" --ssh-listen "127.0.0.1:$ssh" </dev/null >"$dir/serve.log" 2>&1 &
        local pid=$!
        PIDS+=("$pid")
        NODE_PIDS+=("$pid")
        NODE_API+=("$api")
        NODE_SSH+=("$ssh")
        local ok=0
        for _ in $(seq 200); do
            kill -0 "$pid" 2>/dev/null || { cat "$dir/serve.log" >&2; die "node $i of $name exited"; }
            if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$api/health" 2>/dev/null; then ok=1; break; fi
            sleep 0.05
        done
        ((ok)) || die "node $i of $name did not become healthy"
    done
    # A new Redis holds sessions back for one lease time (15 s by default): wait for /ready.
    local api
    for api in "${NODE_API[@]}"; do
        ok=0
        for _ in $(seq 600); do
            if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$api/ready" 2>/dev/null; then ok=1; break; fi
            sleep 0.05
        done
        ((ok)) || die "a node of $name did not become ready: $(curl -sS "http://127.0.0.1:$api/ready")"
    done
}

stop_nodes() {
    local pid
    for pid in "${NODE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}

# Writes $dir/bench.lua and $dir/request.{body,headers}: one pre-signed push for 127.0.0.1:PORT
# (the same approach as scripts/bench-api.sh).
sign_request() { # port dir
    PORT="$1" OUT="$2" KEY_FILE="$WORK/client_key.pub" "$PYTHON" - <<'EOF'
import json, os
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
host, out = f"127.0.0.1:{os.environ['PORT']}", os.environ["OUT"]
body = json.dumps({"InstanceId": f"i-{0xbe00000:017x}", "SerialPort": 0,
                   "SSHPublicKey": open(os.environ["KEY_FILE"]).read().strip()})
req = AWSRequest(method="POST", url=f"http://{host}/", data=body.encode(), headers={
    "Content-Type": "application/x-amz-json-1.1",
    "X-Amz-Target": "AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey", "Host": host})
SigV4Auth(Credentials("test", "test"), "ec2-instance-connect", "us-east-1").add_auth(req)
lua = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
with open(f"{out}/request.json", "w") as f:
    json.dump({"body": body, "headers": dict(req.headers.items())}, f)
with open(f"{out}/bench.lua", "w") as f:
    f.write('wrk.method = "POST"\n' + f"wrk.body = {lua(body)}\n")
    for k, v in req.headers.items():
        f.write(f"wrk.headers[{lua(k)}] = {lua(v)}\n")
    f.write('''
non200 = 0
function response(status) if status ~= 200 then non200 = non200 + 1 end end
local threads = {}
function setup(t) table.insert(threads, t) end
function done(s, lat)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non200") end
  io.write(string.format("BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non200=%d errors=%d\\n",
    s.requests, s.duration, lat:percentile(50), lat:percentile(99), bad,
    s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout))
end
''')
EOF
}

# Pushes/s with wrk against every node at once; prints "rps p50_ms p99_ms non200".
bench_pushes() { # name
    local name="$1" n=${#NODE_API[@]} i per
    per=$((CONNECTIONS / n))
    local wpids=()
    for ((i = 0; i < n; i++)); do
        mkdir -p "$WORK/$name/wrk$i"
        sign_request "${NODE_API[$i]}" "$WORK/$name/wrk$i"
    done
    for ((i = 0; i < n; i++)); do
        wrk -t 1 -c "$per" -d "${DURATION}s" --latency -s "$WORK/$name/wrk$i/bench.lua" \
            "http://127.0.0.1:${NODE_API[$i]}/" >"$WORK/$name/wrk$i/out" 2>&1 &
        wpids+=($!)
    done
    for i in "${wpids[@]}"; do wait "$i" || die "wrk failed for $name"; done
    cat "$WORK/$name"/wrk*/out | grep '^BENCH ' | awk '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        rps += v["requests"] / (v["duration_us"] / 1e6); bad += v["non200"] + v["errors"]
        if (v["p50_us"] > p50) p50 = v["p50_us"]; if (v["p99_us"] > p99) p99 = v["p99_us"]
        total += v["requests"]
    } END { printf "%.0f %.3f %.3f %d %d\n", rps, p50 / 1000, p99 / 1000, bad, total }'
}

# Sequential pushes on one kept-alive connection; prints "p50_ms p99_ms".
bench_latency() { # name
    REQ="$WORK/$1/wrk0/request.json" PORT="${NODE_API[0]}" N="$PUSHES" "$PYTHON" - <<'EOF'
import http.client, json, os, time
req = json.load(open(os.environ["REQ"]))
c = http.client.HTTPConnection("127.0.0.1", int(os.environ["PORT"]), timeout=10)
lat = []
for _ in range(int(os.environ["N"])):
    t = time.perf_counter()
    c.request("POST", "/", body=req["body"], headers=req["headers"])
    r = c.getresponse(); body = r.read()
    assert r.status == 200, (r.status, body[:300])
    lat.append(time.perf_counter() - t)
lat.sort()
print(f"{lat[len(lat) // 2] * 1000:.3f} {lat[int(len(lat) * 0.99)] * 1000:.3f}")
EOF
}

# Session opens: push on node i, ssh to node i+1, wait for the console, leave. Prints
# "sequential_per_s parallel_per_s errors".
bench_sessions() { # name
    NAME="$1" APIS="${NODE_API[*]}" SSHS="${NODE_SSH[*]}" KEY="$WORK/client_key" \
        KNOWN="$WORK/$1.known_hosts" SEQ="$SESSIONS" PAR="$PARALLEL" PER="$PER_WORKER" "$PYTHON" - <<'EOF'
import os, subprocess, threading, time
import boto3
from botocore.config import Config
apis, sshs = os.environ["APIS"].split(), os.environ["SSHS"].split()
key, known = os.environ["KEY"], os.environ["KNOWN"]
pub = open(key + ".pub").read()
clients = [boto3.client("ec2-instance-connect", endpoint_url=f"http://127.0.0.1:{p}", region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1})) for p in apis]
errors = []

def one(n):
    inst = f"i-{0xbe00000 + 1 + n:017x}"
    node = n % len(apis)
    clients[node].send_serial_console_ssh_public_key(InstanceId=inst, SerialPort=0, SSHPublicKey=pub)
    port = sshs[(node + 1) % len(sshs)]
    p = subprocess.Popen(["ssh", "-F", "/dev/null", "-i", key, "-p", port, "-tt", "-o", "BatchMode=yes",
                          "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}",
                          "-o", "IdentitiesOnly=yes", "-o", "KexAlgorithms=curve25519-sha256",
                          "-o", "ConnectTimeout=10", f"{inst}.port0@127.0.0.1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdin.write(b"\r"); p.stdin.flush()
    got = b""
    while b"login: " not in got:
        chunk = p.stdout.read1(4096)
        if not chunk:
            errors.append(f"{inst}: {got[-200:]!r}")
            break
        got += chunk
    p.stdin.write(b"\r~."); p.stdin.flush()
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait()

seq, par, per = int(os.environ["SEQ"]), int(os.environ["PAR"]), int(os.environ["PER"])
t = time.perf_counter()
for n in range(seq):
    one(n)
seq_rate = seq / (time.perf_counter() - t)
def worker(w):
    for k in range(per):
        one(seq + w * per + k)
threads = [threading.Thread(target=worker, args=(w,)) for w in range(par)]
t = time.perf_counter()
for th in threads: th.start()
for th in threads: th.join()
par_rate = par * per / (time.perf_counter() - t)
print(f"{seq_rate:.1f} {par_rate:.1f} {len(errors)}")
if errors:
    import sys; print("first error:", errors[0], file=sys.stderr)
EOF
}

# --- the setups ------------------------------------------------------------------------------

RESULTS="$WORK/results"
: >"$RESULTS"
run_setup() { # name n redis
    local name="$1" n="$2" redis="$3"
    echo "== $name: $n node(s), $( ((redis)) && echo "Redis 127.0.0.1:$REDIS_PORT" || echo "embedded stores")" >&2
    # Each setup starts on an empty Redis (before its nodes start: flushing under running nodes is
    # a data loss, which holds sessions back for a lease time).
    redis-cli -p "$REDIS_PORT" FLUSHALL >/dev/null
    start_nodes "$name" "$n" "$redis"
    redis-cli -p "$REDIS_PORT" CONFIG RESETSTAT >/dev/null
    local pushes lat ops0 ops1 ops2 sessions cpu0 cpu1
    cpu0="$(redis_cpu_us)"
    pushes="$(bench_pushes "$name")"
    cpu1="$(redis_cpu_us)"
    ops0="$(redis_ops)"
    lat="$(bench_latency "$name")"
    ops1="$(redis_ops)"
    sessions="$(bench_sessions "$name")"
    ops2="$(redis_ops)"
    stop_nodes
    local total_sessions=$((SESSIONS + PARALLEL * PER_WORKER))
    awk -v name="$name" -v c0="$cpu0" -v c1="$cpu1" -v p="$pushes" -v l="$lat" -v s="$sessions" -v o0="$ops0" -v o1="$ops1" -v o2="$ops2" \
        -v np="$PUSHES" -v ns="$total_sessions" 'BEGIN {
        split(p, P, " "); split(l, L, " "); split(s, S, " ")
        opp = (o1 - o0) / np
        ops = (o2 - o1) / ns - opp   # the push before each session is not the session
        cpp = (c1 - c0) / P[5]       # Redis CPU per push during the wrk run, us
        printf "%s %s %s %s %s %s %s %s %s %.2f %.2f %.1f\n", name, P[1], P[2], P[3], P[4], L[1], L[2], S[1], S[2], opp, ops, cpp
    }' >>"$RESULTS"
}

run_setup embedded 1 0
run_setup redis-1 1 1
run_setup redis-2 2 1
run_setup redis-3 3 1

echo
echo "== results ($(nproc) CPUs shared by wrk, the nodes, Redis and the ssh clients; $DURATION s wrk runs, $CONNECTIONS connections in all)"
printf '%-10s %10s %9s %9s %7s | %11s %11s | %9s %9s | %10s %10s %12s\n' \
    setup pushes/s p50_ms p99_ms non200 seq_p50_ms seq_p99_ms "open/s" "open/s||" cmds/push cmds/open redis_us/push
while read -r name rps p50 p99 bad lp50 lp99 s1 s2 opp ops cpp; do
    if [[ "$name" == embedded ]]; then opp=-; ops=-; cpp=-; fi
    printf '%-10s %10s %9s %9s %7s | %11s %11s | %9s %9s | %10s %10s %12s\n' \
        "$name" "$rps" "$p50" "$p99" "$bad" "$lp50" "$lp99" "$s1" "$s2" "$opp" "$ops" "$cpp"
done <"$RESULTS"
awk '$1 == "embedded" { e = $6 } $1 == "redis-1" { r = $6 } END {
    printf "Redis hop: +%.3f ms per push at p50, one push at a time (redis-1 %.3f ms vs embedded %.3f ms)\n", r - e, r, e }' "$RESULTS"
awk '$1 ~ /^redis/ && $12 > 0 { n++; c += $12 } END { if (n) printf "One Redis core at %.1f us of Redis CPU per push carries about %.0f pushes/s\n", c / n, 1e6 / (c / n) }' "$RESULTS"
echo "(cmds: Redis commands executed, those inside Lua scripts included; round trips are fewer: 4 per"
echo " push (throttle script, account GET, slot-state script, push script: slot re-checked and grant"
echo " stored in one step) and 4 per session (grant HMGET + open script at auth: lease taken and grant"
echo " spent in one step; renew script at the shell request, release script at the end), plus one"
echo " renew script per lease_seconds/3)"
echo "(open/s: sessions opened one at a time; open/s||: with $PARALLEL parallel workers; a session open is"
echo " push on node i, OpenSSH connect + auth + shell on node i+1, first console output, leave)"
