#!/usr/bin/env bash
# Benchmark of a cluster: three nodes on one redis-server, one owner per console, sessions
# through the other nodes relayed to it (README "Many nodes"). The consoles are TCP echo servers
# started here that serve one client at a time, as a serial server port does; they count the
# clients that came while another was connected (must stay 0).
#
#   1. Keystroke echo round trip: 1 byte out, its echo back, ECHO_N times, through an SSH session
#      opened on the console's owner and through one opened on another node (relayed), paths
#      interleaved one round trip each so that background noise hits them alike. Two consoles
#      (alike, in one process) serve the two sessions at once: an instance takes one session.
#      The difference is what the relay adds to a keystroke.
#   2. Bulk output: the console answers a trigger byte with BULK_MIB MiB as fast as it can; read
#      through each session, BULK_ROUNDS times per path, in turns. MB/s (10^6 bytes/s), median of
#      the rounds; the relayed rate as a share of the owner's.
#   3. Failover, FAILOVERS times: kill -9 the owner of a third console, then through another node
#      push a key (boto3, retried until accepted), open an SSH session and wait for the console's
#      first byte; the time from the kill. The killed node is restarted (and must rejoin) before
#      the next run. Each run also shows when the console saw its new owner connect.
# Everything goes through OpenSSH's `ssh -tt` (pipes, no local terminal), whose own cost is in
# every figure alike; keys are pushed with SendSerialConsoleSSHPublicKey.
#
# Usage: scripts/bench-cluster.sh
# Environment:
#   ECHO_N=300        echo round trips measured per path
#   WARMUP=20         unmeasured round trips per path first
#   BULK_MIB=32       MiB per bulk read
#   BULK_ROUNDS=3     bulk reads per path
#   FAILOVERS=10      failover runs
#   LEASE=3           [store] lease_seconds of the nodes (>= 3): the ownership lease too
#   SERIALGATE_LOG    serialgate's log filter (default warn: the log is not what is measured)
#   PYTHON            a python with boto3 (default: the repository's .venv (scripts/test.sh makes it), then /tmp/e2e-venv,
#                     python3); `pip install -r tests/e2e/requirements.txt` provides one
#   SKIP_BUILD=1      do not run cargo build (binary from ${CARGO_TARGET_DIR:-target}/release)
#   KEEP_WORK=1       keep the working directory (configs, node logs, console status) and print
#                     its path
#
# Needs: redis-server, redis-cli, ssh, ssh-keygen, curl (Debian: redis-server openssh-client curl).
# Targets (printed, not asserted): the relay adds < 0.5 ms to the p99 echo round trip; relayed
# bulk output >= 80% of the owner's; failover (kill to first byte of a new session) < lease + 2 s.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
STARTED_AT=$SECONDS

ECHO_N="${ECHO_N:-300}"
WARMUP="${WARMUP:-20}"
BULK_MIB="${BULK_MIB:-32}"
BULK_ROUNDS="${BULK_ROUNDS:-3}"
FAILOVERS="${FAILOVERS:-10}"
LEASE="${LEASE:-3}"
export SERIALGATE_LOG="${SERIALGATE_LOG:-warn}"

die() {
    echo "bench-cluster: $*" >&2
    exit 1
}

for v in ECHO_N WARMUP BULK_MIB BULK_ROUNDS FAILOVERS LEASE; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
((ECHO_N >= 1 && BULK_MIB >= 1 && BULK_ROUNDS >= 1 && FAILOVERS >= 1)) ||
    die "ECHO_N, BULK_MIB, BULK_ROUNDS and FAILOVERS must be >= 1"
((LEASE >= 3)) || die "LEASE must be >= 3 (serialgate's minimum lease_seconds)"

for tool in redis-server redis-cli ssh ssh-keygen curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install redis-server openssh-client curl)"
done
if [[ -z "${PYTHON:-}" ]]; then
    for p in "$REPO_ROOT/.venv/bin/python" /tmp/e2e-venv/bin/python python3; do
        if [[ -x "$p" || "$p" == python3 ]] && "$p" -c 'import boto3' 2>/dev/null; then PYTHON="$p"; break; fi
    done
fi
[[ -n "${PYTHON:-}" ]] && "$PYTHON" -c 'import boto3' 2>/dev/null ||
    die "no python with boto3; python3 -m venv /tmp/e2e-venv && /tmp/e2e-venv/bin/pip install -r tests/e2e/requirements.txt"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release --quiet -p serialgate
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
[[ -x "$TARGET_DIR/release/serialgate" ]] ||
    die "release binary missing in $TARGET_DIR/release: cargo build --release -p serialgate"

# --- workspace and cleanup -----------------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-cluster.XXXXXX")"
# A run copy: the failover runs restart nodes, and a build finishing meanwhile must not swap the
# binary under them.
mkdir "$WORK/bin"
cp "$TARGET_DIR/release/serialgate" "$WORK/bin/"
SERIALGATE="$WORK/bin/serialgate"
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [[ "${KEEP_WORK:-}" == 1 ]]; then
        echo "bench-cluster: kept $WORK" >&2
    else
        rm -rf "$WORK"
    fi
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

# --- the consoles --------------------------------------------------------------------------------

cat >"$WORK/consoles.py" <<'EOF'
"""TCP consoles that each serve one client at a time, as a serial server port does: a second
client while the first is connected is closed at once and counted. Each echoes every byte
unchanged, except STX (0x02), which it answers with the bulk output: BULK bytes of printable
ASCII, then ETX (0x03). The counts, and when each console last accepted its client (CLOCK_MONOTONIC,
shared by every process), are kept in a JSON status file.

Usage: consoles.py STATUS PORTS BULK NAME...   (PORTS gets "NAME PORT" lines once listening)"""
import json, os, socket, sys, threading, time

status_path, ports_path, bulk = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = sys.argv[4:]
PATTERN = (bytes(range(0x20, 0x7F)) * 700)[:65536]
lock = threading.Lock()
stats = {n: {"connections": 0, "overlaps": 0, "last_accept": 0.0} for n in names}
active = {n: None for n in names}

def save():  # under lock
    with open(status_path + ".tmp", "w") as f:
        json.dump(stats, f)
    os.replace(status_path + ".tmp", status_path)

def send_bulk(conn):
    for _ in range(bulk // len(PATTERN)):
        conn.sendall(PATTERN)
    conn.sendall(PATTERN[: bulk % len(PATTERN)] + b"\x03")

def serve(name, conn):
    try:
        while data := conn.recv(65536):
            for i, piece in enumerate(data.split(b"\x02")):
                if i:
                    send_bulk(conn)
                if piece:
                    conn.sendall(piece)
    except OSError:
        pass
    finally:
        conn.close()
        with lock:
            if active[name] is conn:
                active[name] = None

def accept(name, listener):
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with lock:
            if active[name] is not None:
                stats[name]["overlaps"] += 1
                save()
                conn.close()
                continue
            active[name] = conn
            stats[name]["connections"] += 1
            stats[name]["last_accept"] = time.monotonic()
            save()
        threading.Thread(target=serve, args=(name, conn), daemon=True).start()

listeners = {}
for n in names:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    listeners[n] = s
with lock:
    save()
with open(ports_path + ".tmp", "w") as f:
    f.writelines(f"{n} {s.getsockname()[1]}\n" for n, s in listeners.items())
os.replace(ports_path + ".tmp", ports_path)
threads = [threading.Thread(target=accept, args=(n, s), daemon=True) for n, s in listeners.items()]
for t in threads:
    t.start()
for t in threads:
    t.join()
EOF

# Instance ids: two for the echo and bulk sessions (owner path, relayed path), one for failover.
INST_A="i-0bc0000000000000a"
INST_B="i-0bc0000000000000b"
INST_F="i-0bc0000000000000f"
"$PYTHON" "$WORK/consoles.py" "$WORK/consoles.json" "$WORK/consoles.ports" $((BULK_MIB * 1048576)) \
    "$INST_A" "$INST_B" "$INST_F" </dev/null >"$WORK/consoles.log" 2>&1 &
CONSOLES_PID=$!
PIDS+=("$CONSOLES_PID")
for _ in $(seq 200); do
    [[ -s "$WORK/consoles.ports" ]] && break
    kill -0 "$CONSOLES_PID" 2>/dev/null || { cat "$WORK/consoles.log" >&2; die "the consoles exited"; }
    sleep 0.05
done
[[ -s "$WORK/consoles.ports" ]] || die "the consoles did not start within 10 s"
declare -A CONSOLE_PORT
while read -r name port; do CONSOLE_PORT[$name]=$port; done <"$WORK/consoles.ports"

# --- redis ---------------------------------------------------------------------------------------

read -r REDIS_PORT < <(free_ports 1)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    </dev/null >"$WORK/redis.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    [[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] && break
    sleep 0.05
done
[[ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]] || die "redis-server did not start"

# --- the nodes -----------------------------------------------------------------------------------

AK=AKIAIOSFODNN7EXAMPLE
SK=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
: >"$WORK/known_hosts"
NODES=3
NODE_PID=()
NODE_API=()
NODE_SSH=()
read -r -a PORTS < <(free_ports $((NODES * 3)))
for ((i = 0; i < NODES; i++)); do
    dir="$WORK/node$i"
    mkdir -p "$dir"
    NODE_API[i]=${PORTS[i * 3]}
    NODE_SSH[i]=${PORTS[i * 3 + 1]}
    {
        printf 'region = "us-east-1"\nstate_dir = "%s/state"\n' "$dir"
        printf '[store]\nredis = "redis://127.0.0.1:%s/0"\nlease_seconds = %s\ntimeout_ms = 500\n' "$REDIS_PORT" "$LEASE"
        printf '[cluster]\nnode = "node%s"\nlisten = "127.0.0.1:%s"\nsecret = "bench-cluster-secret-0123456789"\n' \
            "$i" "${PORTS[i * 3 + 2]}"
        printf '[sessions]\nteardown_seconds = 1\n'
        printf '[throttle]\nrate_per_second = 1000000.0\nburst = 1000000\n'
        printf '[[accounts]]\nid = "111122223333"\nserial_console_access = true\n'
        printf '[[accounts.credentials]]\naccess_key_id = "%s"\nsecret_access_key = "%s"\n' "$AK" "$SK"
        for inst in "$INST_A" "$INST_B" "$INST_F"; do
            printf '[[instances]]\nid = "%s"\naccount = "111122223333"\nconsole = "tcp:127.0.0.1:%s"\n' \
                "$inst" "${CONSOLE_PORT[$inst]}"
        done
    } >"$dir/serialgate.toml"
    echo "[127.0.0.1]:${NODE_SSH[i]} $("$SERIALGATE" host-key --config "$dir/serialgate.toml" --public-key-only)" \
        >>"$WORK/known_hosts"
done

wait_url() { # pid url what tries
    local pid="$1" url="$2" what="$3" tries="$4"
    for ((t = 0; t < tries; t++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench-cluster: $what: $(curl -sS --max-time 1 "$url" 2>&1)" >&2
    return 1
}

start_node() { # index; appends to its log, so a restarted node's log keeps the earlier runs
    local i="$1" dir="$WORK/node$1"
    NO_COLOR=1 "$SERIALGATE" serve --config "$dir/serialgate.toml" \
        --api-listen "127.0.0.1:${NODE_API[i]}" --ssh-listen "127.0.0.1:${NODE_SSH[i]}" \
        </dev/null >>"$dir/serve.log" 2>&1 &
    NODE_PID[i]=$!
    PIDS+=("${NODE_PID[i]}")
    wait_url "${NODE_PID[i]}" "http://127.0.0.1:${NODE_API[i]}/health" "node$i not healthy" 200 ||
        { tail -n 20 "$dir/serve.log" >&2; die "node$i did not start"; }
}

# A new Redis holds sessions back for one lease time: wait for /ready.
wait_ready() { # index
    local i="$1"
    wait_url "${NODE_PID[i]}" "http://127.0.0.1:${NODE_API[i]}/ready" "node$i not ready" $(((LEASE + 20) * 20)) ||
        { tail -n 20 "$WORK/node$i/serve.log" >&2; die "node$i did not become ready"; }
}

for ((i = 0; i < NODES; i++)); do start_node "$i"; done
for ((i = 0; i < NODES; i++)); do wait_ready "$i"; done

# --- the client side -----------------------------------------------------------------------------

cat >"$WORK/driver.py" <<'EOF'
"""The client side of scripts/bench-cluster.sh: sessions through OpenSSH's `ssh -tt` (pipes),
pushes with boto3, owners from `serialgate cluster status --json`.

  driver.py owner INSTANCE                  prints the owner's name (waits for one)
  driver.py wait-node NAME SINCE_MS         waits until NAME has announced itself since SINCE_MS
  driver.py paths OWNER_SSH INST_A RELAY_SSH INST_B
  driver.py failover PID API SSH INSTANCE   kill -9 PID, then push + session through API/SSH
  driver.py failover-report FILE
"""
import json, os, select, signal, statistics, subprocess, sys, tempfile, time

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

E = os.environ
SERIALGATE, CONFIG, KEY, KNOWN = E["SERIALGATE"], E["CONFIG"], E["KEY"], E["KNOWN"]
LEASE = int(E["LEASE"])
ENQ, STX, ETX = b"\x05", b"\x02", b"\x03"
# How often a new session resends its probe until the console answers.
PROBE_EVERY = 0.02


def fail(msg):
    print(f"bench-cluster: {msg}", file=sys.stderr)
    sys.exit(1)


def status():
    r = subprocess.run([SERIALGATE, "cluster", "status", "--config", CONFIG, "--json"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode:
        fail(f"serialgate cluster status: {r.stderr.strip()}")
    lines = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return ({x["node"]: x for x in lines if "node" in x},
            {x["instance"]: x["owner"] for x in lines if "instance" in x})


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def pct(samples, p):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


class Closed(Exception):
    pass


class Session:
    """`ssh -tt` with piped stdin and stdout: raw bytes both ways, read with select."""

    def __init__(self, ssh_port, instance):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            ["ssh", "-F", "/dev/null", "-i", KEY, "-p", str(ssh_port), "-tt",
             "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={KNOWN}",
             "-o", "IdentitiesOnly=yes", "-o", "KexAlgorithms=curve25519-sha256",
             "-o", "ConnectTimeout=10", f"{instance}.port0@127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, bufsize=0)
        self.fd_in, self.fd_out = self.proc.stdin.fileno(), self.proc.stdout.fileno()

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode(errors="replace").strip()

    def send(self, data):
        try:
            os.write(self.fd_in, data)
        except BrokenPipeError:
            raise Closed(self.stderr())

    def read(self, timeout):
        """A chunk of output, or None after `timeout` seconds without any."""
        if not select.select([self.fd_out], [], [], timeout)[0]:
            return None
        data = os.read(self.fd_out, 1 << 16)
        if not data:
            raise Closed(self.stderr())
        return data

    def first_byte(self, timeout):
        """Sends ENQ every PROBE_EVERY until the console echoes one; returns when it did."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.send(ENQ)
            data = self.read(PROBE_EVERY)
            while data is not None:
                if ENQ in data:
                    return time.monotonic()
                data = self.read(0)
        raise Closed(f"no answer from the console within {timeout} s; {self.stderr()}")

    def drain(self, quiet=0.2):
        while self.read(quiet) is not None:
            pass

    def round_trip(self, b):
        t = time.perf_counter()
        self.send(b)
        while True:
            data = self.read(5)
            if data is None:
                fail(f"no echo of {b!r} within 5 s")
            if b in data:
                return time.perf_counter() - t

    def bulk(self):
        """The console's bulk output: (bytes, seconds)."""
        n = 0
        t = time.perf_counter()
        self.send(STX)
        while True:
            data = self.read(30)
            if data is None:
                fail(f"bulk output stalled after {n} bytes")
            n += len(data)
            if data.endswith(ETX):
                return n - 1, time.perf_counter() - t

    def close(self):
        try:
            self.send(b"\r~.")
            self.proc.wait(timeout=10)
        except (Closed, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def pusher(api_port):
    c = boto3.session.Session().client(
        "ec2-instance-connect", endpoint_url=f"http://127.0.0.1:{api_port}", region_name="us-east-1",
        aws_access_key_id=E["AK"], aws_secret_access_key=E["SK"],
        config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5))
    pub = open(KEY + ".pub").read()

    def push(instance):
        """None when accepted, else the error."""
        try:
            c.send_serial_console_ssh_public_key(InstanceId=instance, SerialPort=0, SSHPublicKey=pub)
            return None
        except ClientError as e:
            return e.response["Error"]["Code"]
        except BotoCoreError as e:
            return type(e).__name__
    return push


def cmd_owner(instance):
    print(wait_for(f"an owner of {instance}", lambda: status()[1].get(instance), LEASE + 15))


def cmd_wait_node(name, since_ms):
    wait_for(f"{name} to announce itself again",
             lambda: status()[0].get(name, {}).get("renewed_ms", 0) >= int(since_ms), LEASE + 15)


def cmd_paths(owner_ssh, inst_a, relay_ssh, inst_b):
    n, warmup, rounds = int(E["ECHO_N"]), int(E["WARMUP"]), int(E["BULK_ROUNDS"])
    bulk_bytes = int(E["BULK_MIB"]) * 1048576
    api = E["PUSH_API"]
    push = pusher(api)
    for inst in (inst_a, inst_b):
        if err := push(inst):
            fail(f"push for {inst}: {err}")
    paths = {"owner": Session(owner_ssh, inst_a), "relayed": Session(relay_ssh, inst_b)}
    for s in paths.values():
        s.first_byte(15)
        s.drain()
    echo = {k: [] for k in paths}
    for i in range(warmup + n):
        b = bytes([ord("a") + i % 26])  # letters only: no newline, no escape
        for k, s in paths.items():
            t = s.round_trip(b)
            if i >= warmup:
                echo[k].append(t * 1000)
    rates = {k: [] for k in paths}
    for _ in range(rounds):
        for k, s in paths.items():
            got, secs = s.bulk()
            if got != bulk_bytes:
                fail(f"{k}: bulk output of {got} bytes, sent {bulk_bytes}")
            rates[k].append(got / secs / 1e6)
    for s in paths.values():
        s.close()

    print(f"== 1. keystroke echo round trip: 1 byte out, its echo back, {n} times per path, "
          f"paths interleaved ({warmup} unmeasured first)")
    print(f"{'path':<40} {'p50 ms':>9} {'p99 ms':>9} {'max ms':>9} {'mean ms':>9}")
    label = {"owner": "session on the owner (ssh->console)", "relayed": "session on another node (relayed)"}
    for k in paths:
        print(f"{label[k]:<40} {pct(echo[k], 50):>9.3f} {pct(echo[k], 99):>9.3f} "
              f"{max(echo[k]):>9.3f} {statistics.mean(echo[k]):>9.3f}")
    a50 = pct(echo["relayed"], 50) - pct(echo["owner"], 50)
    a99 = pct(echo["relayed"], 99) - pct(echo["owner"], 99)
    verdict = "met" if a99 < 0.5 else "NOT met"
    print(f"added by the relay (relayed - owner): p50 {a50:.3f} ms, p99 {a99:.3f} ms; "
          f"target p99 added < 0.5 ms: {verdict}")
    print()
    print(f"== 2. bulk output: {bulk_bytes >> 20} MiB from the console per read, {rounds} reads per path, in turns")
    print(f"{'path':<40} {'median MB/s':>12} {'min':>9} {'max':>9}")
    for k in paths:
        print(f"{label[k]:<40} {statistics.median(rates[k]):>12.1f} {min(rates[k]):>9.1f} {max(rates[k]):>9.1f}")
    share = statistics.median(rates["relayed"]) / statistics.median(rates["owner"])
    print(f"relayed / owner: {share:.0%}; target >= 80%: {'met' if share >= 0.8 else 'NOT met'}")
    print()
    print(f"SUMMARY echo p50/p99 ms (owner, relayed): {pct(echo['owner'], 50):.3f}/{pct(echo['owner'], 99):.3f}, "
          f"{pct(echo['relayed'], 50):.3f}/{pct(echo['relayed'], 99):.3f}; added p99 {a99:.3f} ms (< 0.5 ms {verdict})")
    print(f"SUMMARY bulk MB/s (owner, relayed): {statistics.median(rates['owner']):.1f}, "
          f"{statistics.median(rates['relayed']):.1f}; {share:.0%} (>= 80% {'met' if share >= 0.8 else 'NOT met'})")


def console_accept(instance):
    with open(E["CONSOLE_STATUS"]) as f:
        return json.load(f)[instance]["last_accept"]


def cmd_failover(pid, api, ssh_port, instance):
    push = pusher(api)
    # A session that ended holds its slot for teardown_seconds: start each run from a free slot
    # (a push accepted), so that the run measures the failover alone.
    wait_for("the console's session slot to be free", lambda: push(instance) is None, 15)
    refused = {}
    t0 = time.monotonic()
    os.kill(int(pid), signal.SIGKILL)
    deadline = t0 + LEASE + 30
    while True:
        while err := push(instance):
            refused[err] = refused.get(err, 0) + 1
            if time.monotonic() > deadline:
                fail(f"no push accepted within {LEASE + 30} s: {refused}")
            time.sleep(0.05)
        pushed = time.monotonic()
        s = Session(ssh_port, instance)
        try:
            first = s.first_byte(max(1.0, deadline - time.monotonic()))
            break
        except Closed as e:  # the session did not reach the console: push again
            refused[f"session: {str(e)[:80]}"] = refused.get(f"session: {str(e)[:80]}", 0) + 1
            s.close()
            if time.monotonic() > deadline:
                fail(f"no session reached the console within {LEASE + 30} s: {refused}")
    s.close()
    console = console_accept(instance) - t0
    new_owner = status()[1].get(instance) or "-"
    why = ", ".join(f"{v} x {k}" for k, v in sorted(refused.items())) or "none"
    print(f"{first - t0:.3f} {pushed - t0:.3f} {console:.3f} {new_owner} refused: {why}")


def cmd_failover_report(path):
    runs = [float(line.split()[0]) for line in open(path) if line.strip()]
    med = statistics.median(runs)
    verdict = "met" if med < LEASE + 2 else "NOT met"
    print(f"kill -9 of the owner -> first console byte of a new session through another node, {len(runs)} runs: "
          f"median {med:.2f} s, min {min(runs):.2f} s, max {max(runs):.2f} s; lease {LEASE} s; "
          f"target < lease + 2 s = {LEASE + 2} s: {verdict}")
    print(f"SUMMARY failover s (median, min, max): {med:.2f}, {min(runs):.2f}, {max(runs):.2f}; "
          f"lease {LEASE} s (< {LEASE + 2} s {verdict})")


commands = {"owner": cmd_owner, "wait-node": cmd_wait_node, "paths": cmd_paths,
            "failover": cmd_failover, "failover-report": cmd_failover_report}
commands[sys.argv[1]](*sys.argv[2:])
EOF

driver() {
    SERIALGATE="$SERIALGATE" CONFIG="$WORK/node0/serialgate.toml" KEY="$WORK/client_key" KNOWN="$WORK/known_hosts" \
        LEASE="$LEASE" AK="$AK" SK="$SK" CONSOLE_STATUS="$WORK/consoles.json" ECHO_N="$ECHO_N" WARMUP="$WARMUP" \
        BULK_MIB="$BULK_MIB" BULK_ROUNDS="$BULK_ROUNDS" PUSH_API="${NODE_API[0]}" "$PYTHON" "$WORK/driver.py" "$@"
}

# Drops a reaped process from the cleanup list: its id may be reused.
forget_pid() { # pid
    local keep=() pid
    for pid in "${PIDS[@]}"; do [[ "$pid" == "$1" ]] || keep+=("$pid"); done
    PIDS=("${keep[@]}")
}

node_index() { # name -> index
    [[ "$1" =~ ^node([0-9]+)$ ]] || die "unknown node '$1'"
    echo "${BASH_REMATCH[1]}"
}

echo "bench-cluster: serialgate $("$SERIALGATE" --version | awk '{print $2}'), $NODES nodes on redis-server" \
    "127.0.0.1:$REDIS_PORT, lease $LEASE s; $(nproc) CPUs shared by the nodes, Redis, the consoles and the clients"
echo

# --- 1 and 2 -------------------------------------------------------------------------------------

OWNER_A=$(node_index "$(driver owner "$INST_A")")
OWNER_B=$(node_index "$(driver owner "$INST_B")")
RELAY_B=$(((OWNER_B + 1) % NODES))
echo "owner path: $INST_A through node$OWNER_A (its owner); relayed path: $INST_B through node$RELAY_B (owner node$OWNER_B)"
driver paths "${NODE_SSH[OWNER_A]}" "$INST_A" "${NODE_SSH[RELAY_B]}" "$INST_B" | tee "$WORK/results.out" | grep -v '^SUMMARY '

# --- 3 -------------------------------------------------------------------------------------------

echo "== 3. failover of $INST_F: kill -9 its owner, push (retried) + ssh through another node, first console byte"
: >"$WORK/failover.out"
for ((run = 1; run <= FAILOVERS; run++)); do
    victim=$(node_index "$(driver owner "$INST_F")")
    via=$(((victim + 1) % NODES))
    line=$(driver failover "${NODE_PID[victim]}" "${NODE_API[via]}" "${NODE_SSH[via]}" "$INST_F")
    wait "${NODE_PID[victim]}" 2>/dev/null || true
    forget_pid "${NODE_PID[victim]}"
    echo "$line" >>"$WORK/failover.out"
    read -r first pushed console new_owner rest <<<"$line"
    printf 'run %2d: killed node%s; console reconnected (by %s) at %s s, push through node%s accepted at %s s, first byte at %s s (%s)\n' \
        "$run" "$victim" "$new_owner" "$console" "$via" "$pushed" "$first" "$rest"
    # The killed node comes back and must rejoin before the next run.
    since_ms=$(date +%s%3N)
    start_node "$victim"
    wait_ready "$victim"
    driver wait-node "node$victim" "$since_ms"
done
driver failover-report "$WORK/failover.out" | tee -a "$WORK/results.out" | grep -v '^SUMMARY '
echo

# --- summary -------------------------------------------------------------------------------------

overlaps=$("$PYTHON" -c 'import json, sys; print(sum(c["overlaps"] for c in json.load(open(sys.argv[1])).values()))' "$WORK/consoles.json")
((overlaps == 0)) || echo "bench-cluster: WARNING: a console saw $overlaps clients while it had one (two owners at once)"
for ((i = 0; i < NODES; i++)); do
    n=$(grep -ciE ' (ERROR|WARN) ' "$WORK/node$i/serve.log" || true)
    if ((n > 0)); then
        echo "bench-cluster: node$i logged $n warnings/errors (the failovers cause some); first ones:"
        grep -iE ' (ERROR|WARN) ' "$WORK/node$i/serve.log" | head -n 3 | sed 's/^/   /'
    fi
done
[[ "${SKIP_BUILD:-}" == 1 ]] && BUILT="build skipped" || BUILT="build included"
echo "== summary ($(nproc) CPUs; script took $((SECONDS - STARTED_AT)) s, $BUILT; consoles saw $overlaps overlapping clients)"
sed -n 's/^SUMMARY //p' "$WORK/results.out"
