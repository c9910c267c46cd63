#!/usr/bin/env bash
# Benchmarks of the SSH gateway (crates/bench-ssh), all against one console: a unix-socket echo
# server (`bench-ssh console`) that prints a banner on connect, echoes every byte, and answers
# ENQ (0x05) with "ok\r\n".
#
#   1. Session-open rate: TCP connect -> first console byte (handshake, auth, channel, pty, shell,
#      then the first keystroke, ENQ, and the console's answer: the same event whether the server
#      connects to the console per session, as sshd + socat does, or keeps it connected, as
#      serialgate's console hubs do), SESSIONS one at a time and PARALLEL workers x PER_WORKER,
#      serialgate against OpenSSH's sshd (Debian's openssh-server, started here on a loopback
#      port with `ForceCommand socat - UNIX-CONNECT:<console>`), same russh client, kex
#      curve25519-sha256 on both. serialgate's key push precedes each open and is not timed.
#   2. Keystroke echo round trip: 1 byte out, its echo back, ECHO_N times, through a serialgate
#      session and directly on the console socket (and through sshd + socat for reference).
#   3. Memory per idle connected session: a fresh serialgate, IDLE_SESSIONS keys pushed, VmRSS
#      read, IDLE_SESSIONS sessions opened (IDLE_CONCURRENCY at a time) and left idle, VmRSS read
#      again; (after - before) / IDLE_SESSIONS. The client is a separate process. Also: what each
#      configured instance costs at rest (against a serialgate with one instance), and whether a
#      second round of sessions grows the process again (a leak would).
#
# Usage: scripts/bench-ssh.sh            (as root: sshd is installed if missing and run as root)
# Environment:
#   SESSIONS=200          sessions opened one at a time, per server
#   PARALLEL=16           parallel workers
#   PER_WORKER=25         sessions per parallel worker
#   WARMUP=10             unmeasured sessions per server before measuring
#   PTY=1                 request a pty before the shell, as interactive ssh does (0: no pty)
#   ECHO_N=2000           echo round trips measured per path
#   IDLE_SESSIONS=1000    idle sessions for the memory benchmark
#   IDLE_CONCURRENCY=32   sessions authenticating at once while opening them (the gateway admits
#                         64 unauthenticated connections per address)
#   SETTLE_MS=2000        idle time before the memory is read
#   SERIALGATE_LOG=info   serialgate's log filter (info: every session is logged, as in production)
#   SKIP_BUILD=1          do not run cargo build
#   KEEP_WORK=1           keep the temporary directory (configs, server logs) and print its path
#   TMPDIR=/tmp           where the temporary directory goes, serialgate's state_dir with it: its
#                         audit.db is written with fsync (SQLite, synchronous=FULL) at every push
#                         and session start/end; TMPDIR=/dev/shm (tmpfs) takes the disk out
#
# About sshd: it runs the ForceCommand through root's shell; `SetEnv SHLVL=1` keeps Debian's bash
# from sourcing ~/.bashrc (root's may be slow), so sshd is measured, not the dotfiles. sshd keeps
# Nagle on until a session turns interactive, so on Linux loopback its channel-open confirmation
# waits ~40 ms for the client's delayed ACK: that stall is part of sshd's open latency (OpenSSH's
# own client sees it too). The "cpu ms" column (server CPU per session) is free of such timers.
# About 40 s with the default sizes on 2 CPUs, plus the build.
#
# Targets (printed, not asserted): serialgate opens sessions at >= sshd's rate; the gateway adds
# < 1 ms to the p99 echo round trip; an idle session costs the gateway < 64 KiB.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
STARTED_AT=$SECONDS

SESSIONS="${SESSIONS:-200}"
PARALLEL="${PARALLEL:-16}"
PER_WORKER="${PER_WORKER:-25}"
WARMUP="${WARMUP:-10}"
PTY="${PTY:-1}"
ECHO_N="${ECHO_N:-2000}"
IDLE_SESSIONS="${IDLE_SESSIONS:-1000}"
IDLE_CONCURRENCY="${IDLE_CONCURRENCY:-32}"
SETTLE_MS="${SETTLE_MS:-2000}"

die() {
    echo "bench-ssh: $*" >&2
    exit 1
}

for v in SESSIONS PARALLEL PER_WORKER WARMUP ECHO_N IDLE_SESSIONS IDLE_CONCURRENCY SETTLE_MS; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v must be a whole number, got '${!v}'"
done
[[ "$PTY" == 0 || "$PTY" == 1 ]] || die "PTY must be 0 or 1"
((SESSIONS >= 1 && PARALLEL >= 1 && PER_WORKER >= 1 && ECHO_N >= 1 && IDLE_SESSIONS >= 1)) ||
    die "SESSIONS, PARALLEL, PER_WORKER, ECHO_N and IDLE_SESSIONS must be >= 1"
((IDLE_CONCURRENCY >= 1 && IDLE_CONCURRENCY <= 64)) ||
    die "IDLE_CONCURRENCY must be 1..64 (the gateway's unauthenticated-per-address limit)"
[[ "$PTY" == 1 ]] && PTY_FLAG=true || PTY_FLAG=false

# --- tools ---------------------------------------------------------------------------------------

[[ "$(id -u)" == 0 ]] || die "run as root: sshd must run as root to log a user in (and it is installed with apt-get)"
if [[ ! -x /usr/sbin/sshd ]] || ! command -v socat >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
    echo "bench-ssh: installing openssh-server and socat (Debian packages)" >&2
    if ! apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends openssh-server socat >/dev/null; then
        apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
        apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends openssh-server socat >/dev/null
    fi
fi
[[ -x /usr/sbin/sshd ]] || die "/usr/sbin/sshd is still missing"
command -v socat >/dev/null 2>&1 || die "socat is still missing"

# File descriptors: serialgate holds two per session (client TCP, console socket), the client
# and the console one each.
WANT_FDS=$((IDLE_SESSIONS * 2 + 1024))
if (($(ulimit -n) < WANT_FDS)); then
    ulimit -n "$WANT_FDS" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
fi
(($(ulimit -n) >= WANT_FDS)) || die "need ulimit -n >= $WANT_FDS for $IDLE_SESSIONS sessions (hard limit $(ulimit -Hn))"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release --quiet -p serialgate -p bench-ssh
fi
SERIALGATE="$REPO_ROOT/target/release/serialgate"
BENCH="$REPO_ROOT/target/release/bench-ssh"
[[ -x "$SERIALGATE" && -x "$BENCH" ]] || die "release binaries missing: cargo build --release -p serialgate -p bench-ssh"
CLIENT_KEY="$REPO_ROOT/testdata/keys/ed25519"
[[ -r "$CLIENT_KEY" && -r "$CLIENT_KEY.pub" ]] || die "missing $CLIENT_KEY(.pub)"

# --- workspace and cleanup -----------------------------------------------------------------------

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-ssh.XXXXXX")"
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
        echo "bench-ssh: kept $WORK" >&2
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

# Waits until PORT accepts TCP connections (and, if given, LOG contains READY), or fails with
# the log. The server must still be running.
wait_ready() { # name pid port log [ready-pattern]
    local name="$1" pid="$2" port="$3" log="$4" ready="${5:-}" i
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench-ssh: $name exited while starting; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
            { [[ -z "$ready" ]] || grep -q "$ready" "$log"; }; then
            return 0
        fi
        sleep 0.05
    done
    echo "bench-ssh: $name not ready on 127.0.0.1:$port within 10 s; its log:" >&2
    cat "$log" >&2
    exit 1
}

read -r API_PORT SSH_PORT SSHD_PORT < <("$BENCH" free-ports 3)
INSTANCES=$((IDLE_SESSIONS > PARALLEL ? IDLE_SESSIONS : PARALLEL))

# --- the console ---------------------------------------------------------------------------------

CONSOLE_SOCK="$WORK/console.sock"
"$BENCH" console --socket "$CONSOLE_SOCK" </dev/null >"$WORK/console.log" 2>&1 &
CONSOLE_PID=$!
PIDS+=("$CONSOLE_PID")
for ((i = 0; i < 200; i++)); do
    [[ -S "$CONSOLE_SOCK" ]] && break
    kill -0 "$CONSOLE_PID" 2>/dev/null || { cat "$WORK/console.log" >&2; die "the console exited"; }
    sleep 0.05
done
[[ -S "$CONSOLE_SOCK" ]] || die "the console did not create $CONSOLE_SOCK within 10 s"

# --- serialgate ----------------------------------------------------------------------------------

"$BENCH" config --instances "$INSTANCES" --console "$CONSOLE_SOCK" \
    --api-listen "127.0.0.1:$API_PORT" --ssh-listen "127.0.0.1:$SSH_PORT" \
    --state-dir "$WORK/state" >"$WORK/serialgate.toml"
"$SERIALGATE" host-key --config "$WORK/serialgate.toml" --public-key-only >"$WORK/serialgate_host_key.pub"

SG_PID=""
start_serialgate() { # config log
    SERIALGATE_LOG="${SERIALGATE_LOG:-info}" NO_COLOR=1 \
        "$SERIALGATE" serve --config "$1" </dev/null >"$2" 2>&1 &
    SG_PID=$!
    PIDS+=("$SG_PID")
    wait_ready serialgate "$SG_PID" "$SSH_PORT" "$2" "ready"
    wait_ready serialgate "$SG_PID" "$API_PORT" "$2"
}

# The baseline for benchmark 3: serialgate at rest with a single instance.
"$BENCH" config --instances 1 --console "$CONSOLE_SOCK" \
    --api-listen "127.0.0.1:$API_PORT" --ssh-listen "127.0.0.1:$SSH_PORT" \
    --state-dir "$WORK/state-baseline" >"$WORK/serialgate-baseline.toml"
start_serialgate "$WORK/serialgate-baseline.toml" "$WORK/serialgate-baseline.log"
sleep 1
BASELINE_RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$SG_PID/status")
stop_server "$SG_PID"

start_serialgate "$WORK/serialgate.toml" "$WORK/serialgate.log"

# --- sshd ----------------------------------------------------------------------------------------

mkdir -p "$WORK/sshd" /run/sshd
ssh-keygen -q -t ed25519 -N '' -C bench-ssh-sshd -f "$WORK/sshd/ssh_host_ed25519_key"
cp "$CLIENT_KEY.pub" "$WORK/sshd/authorized_keys"
cat >"$WORK/sshd/sshd_config" <<EOF
# Written by scripts/bench-ssh.sh: sshd onto the same console as serialgate.
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $WORK/sshd/ssh_host_ed25519_key
PidFile $WORK/sshd/sshd.pid
AuthorizedKeysFile $WORK/sshd/authorized_keys
KexAlgorithms curve25519-sha256
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin yes
StrictModes no
PrintMotd no
PrintLastLog no
UseDNS no
X11Forwarding no
# The parallel benchmark opens $PARALLEL connections at once; the default 10:30:100 would
# randomly drop some of them.
MaxStartups 200
ForceCommand socat - UNIX-CONNECT:$CONSOLE_SOCK
# sshd runs the command with the user's shell; Debian's bash, started by sshd, sources ~/.bashrc
# (root's may be slow: pyenv, nvm, ...) unless it is a nested shell. SHLVL=1 makes it one, so
# the figures measure sshd, not this machine's dotfiles.
SetEnv SHLVL=1
EOF
/usr/sbin/sshd -t -f "$WORK/sshd/sshd_config" || die "sshd rejects its configuration ($WORK/sshd/sshd_config)"
/usr/sbin/sshd -D -e -f "$WORK/sshd/sshd_config" </dev/null >"$WORK/sshd.log" 2>&1 &
SSHD_PID=$!
PIDS+=("$SSHD_PID")
wait_ready sshd "$SSHD_PID" "$SSHD_PORT" "$WORK/sshd.log"

GATEWAY_ARGS=(--gateway-ssh "127.0.0.1:$SSH_PORT" --gateway-api "127.0.0.1:$API_PORT"
    --gateway-host-key "$WORK/serialgate_host_key.pub" --instances "$INSTANCES" --key "$CLIENT_KEY")
SSHD_ARGS=(--sshd "127.0.0.1:$SSHD_PORT" --sshd-host-key "$WORK/sshd/ssh_host_ed25519_key.pub")

echo "bench-ssh: serialgate $("$SERIALGATE" --version | awk '{print $2}') (SSH 127.0.0.1:$SSH_PORT, $INSTANCES instances," \
    "log ${SERIALGATE_LOG:-info}) vs $(/usr/sbin/sshd -V 2>&1 | head -n1 | cut -d, -f1) (127.0.0.1:$SSHD_PORT);" \
    "$(nproc) CPUs shared by servers, console and client"
echo

# --- 1 and 2 -------------------------------------------------------------------------------------

"$BENCH" open-rate "${GATEWAY_ARGS[@]}" "${SSHD_ARGS[@]}" \
    --sessions "$SESSIONS" --parallel "$PARALLEL" --per-worker "$PER_WORKER" \
    --warmup "$WARMUP" --pty "$PTY_FLAG" --gateway-pid "$SG_PID" --sshd-pid "$SSHD_PID" | tee "$WORK/open-rate.out" | grep -v '^SUMMARY '

"$BENCH" echo "${GATEWAY_ARGS[@]}" "${SSHD_ARGS[@]}" --console "$CONSOLE_SOCK" \
    --n "$ECHO_N" | tee "$WORK/echo.out" | grep -v '^SUMMARY '

# --- 3, on a fresh serialgate --------------------------------------------------------------------

stop_server "$SSHD_PID"
stop_server "$SG_PID"
start_serialgate "$WORK/serialgate.toml" "$WORK/serialgate-idle.log"
"$BENCH" idle "${GATEWAY_ARGS[@]}" --pid "$SG_PID" --sessions "$IDLE_SESSIONS" \
    --concurrency "$IDLE_CONCURRENCY" --settle-ms "$SETTLE_MS" --baseline-rss-kib "$BASELINE_RSS" | tee "$WORK/idle.out" | grep -v '^SUMMARY '

# --- summary -------------------------------------------------------------------------------------

for f in "$WORK/serialgate.log" "$WORK/serialgate-idle.log"; do
    n=$(grep -ciE ' (ERROR|WARN) ' "$f" || true)
    if ((n > 0)); then
        echo "bench-ssh: serialgate logged $n warnings/errors in $(basename "$f"); first ones:"
        grep -iE ' (ERROR|WARN) ' "$f" | head -n 5 | sed 's/^/   /'
    fi
done

[[ "${SKIP_BUILD:-}" == 1 ]] && BUILT="build skipped" || BUILT="build included"
echo "== summary (pty: $([[ "$PTY" == 1 ]] && echo yes || echo no); $(nproc) CPUs; script took $((SECONDS - STARTED_AT)) s, $BUILT)"
printf '%-36s %14s %22s %14s  %s\n' "" "serialgate" "reference" "ratio/direct" "target"
cat "$WORK/open-rate.out" "$WORK/echo.out" "$WORK/idle.out" | sed -n 's/^SUMMARY //p'
