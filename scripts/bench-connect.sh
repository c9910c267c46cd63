#!/usr/bin/env bash
# Benchmark of `serialgate connect`: wall time from process start to the console's `login:`
# prompt, against the two-step path a user has without it (the AWS CLI's
# `send-serial-console-ssh-public-key`, then OpenSSH's `ssh` reading until `login:`). Same machine,
# same run, same serialgate server (release build, `sim:` console, `[sessions] teardown_seconds =
# 0`, a loose throttle), alternating the two paths in each round.
#
#   one-step: serialgate connect INSTANCE --non-interactive --send '' --expect 'login: '
#             (resolve credentials, generate an ed25519 key in memory, SSH handshake + host key
#             check, push, authenticate, open the console, send Enter, match)
#   two-step: aws ec2-instance-connect send-serial-console-ssh-public-key ... ; then
#             ssh -tt -i KEY INSTANCE.port0@127.0.0.1 with Enter written once it is connected
#             The key is a fresh `ssh-keygen -t ed25519` per round, made OUTSIDE the timed part.
#
# Both clocks start when the first process is spawned and stop when `login: ` appears on its
# stdout (read by the same Python harness). ssh uses KexAlgorithms=curve25519-sha256; the russh
# client negotiates its default (mlkem768x25519-sha256, a little more work), so nothing favours
# serialgate there.
#
# Usage: scripts/bench-connect.sh
# Environment:
#   ROUNDS=10        rounds (each measures both paths once)
#   PYTHON           a python with the AWS CLI installed beside it (default: .venv/bin/python, then
#                    /tmp/e2e-venv/bin/python); `pip install -r tests/e2e/requirements.txt`
#   SKIP_BUILD=1     do not run cargo build --release
#
# Target (printed, not asserted): the one-step path is >= 5x faster (mean).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

ROUNDS="${ROUNDS:-10}"
die() {
    echo "bench-connect: $*" >&2
    exit 1
}
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 1000)) || die "ROUNDS must be 1..1000"

for tool in ssh ssh-keygen curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is required (Debian: openssh-client, curl)"
done
if [[ -z "${PYTHON:-}" ]]; then
    for p in "$REPO_ROOT/.venv/bin/python" /tmp/e2e-venv/bin/python; do
        if [[ -x "$p" ]]; then PYTHON="$p" && break; fi
    done
fi
[[ -n "${PYTHON:-}" ]] || die "no venv with the AWS CLI: python3 -m venv .venv && .venv/bin/pip install -r tests/e2e/requirements.txt"
AWS="$(dirname "$PYTHON")/aws"
[[ -x "$AWS" ]] || die "$AWS is missing: $(dirname "$PYTHON")/pip install -r tests/e2e/requirements.txt"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release --quiet -p serialgate
fi
SERIALGATE="$REPO_ROOT/target/release/serialgate"
[[ -x "$SERIALGATE" ]] || die "release binary missing: cargo build --release -p serialgate"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bench-connect.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r API_PORT SSH_PORT < <("$PYTHON" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)

INSTANCE="i-0b0000000000000c1"
cat >"$WORK/serialgate.toml" <<EOF
region = "us-east-1"
state_dir = "$WORK/state"

[api]
listen = "127.0.0.1:$API_PORT"

[ssh]
listen = "127.0.0.1:$SSH_PORT"

[sessions]
teardown_seconds = 0

[throttle]
rate_per_second = 1000.0
burst = 1000

[[accounts]]
id = "000000000000"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "test"
secret_access_key = "test"

[[instances]]
id = "$INSTANCE"
account = "000000000000"
console = "sim:"
EOF

SERIALGATE_LOG=warn "$SERIALGATE" serve --config "$WORK/serialgate.toml" >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
for ((i = 0; i < 200; i++)); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "serve exited"; }
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$API_PORT/health" 2>/dev/null && break
    sleep 0.05
done
curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$API_PORT/health" || die "serve is not healthy"
HOST_KEY="$("$SERIALGATE" host-key --config "$WORK/serialgate.toml")"
echo "[127.0.0.1]:$SSH_PORT $(head -n1 <<<"$HOST_KEY")" >"$WORK/known_hosts"
FINGERPRINT="$(tail -n1 <<<"$HOST_KEY")"

echo "bench-connect: serialgate $("$SERIALGATE" --version | cut -d' ' -f2) (release), $ROUNDS rounds," \
    "$(ssh -V 2>&1), awscli $("$AWS" --version 2>&1 | cut -d' ' -f1 | cut -d/ -f2)" >&2

WORK="$WORK" ROUNDS="$ROUNDS" SERIALGATE="$SERIALGATE" AWS="$AWS" INSTANCE="$INSTANCE" \
    API_URL="http://127.0.0.1:$API_PORT" SSH_PORT="$SSH_PORT" FINGERPRINT="$FINGERPRINT" \
    "$PYTHON" - <<'EOF'
import os, selectors, statistics, subprocess, sys, time

E = os.environ
work, rounds = E["WORK"], int(E["ROUNDS"])
env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
           AWS_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
           AWS_EC2_METADATA_DISABLED="true", HOME=work)
LIMIT = 60.0


def read_until(proc, needle: bytes, t0: float, on_first=None) -> float:
    """Seconds from t0 until `needle` appears on proc's stdout; on_first() after the first byte."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    seen, first = b"", True
    while time.monotonic() - t0 < LIMIT:
        if not sel.select(timeout=1):
            continue
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            raise RuntimeError(f"stream ended before {needle!r}: {seen[-300:]!r}; stderr: {proc.stderr.read()!r}")
        seen += chunk
        if needle in seen:
            return time.monotonic() - t0
        if first and on_first:
            first = False
            on_first()
    raise RuntimeError(f"no {needle!r} within {LIMIT} s: {seen[-300:]!r}")


def one_step() -> float:
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [E["SERIALGATE"], "connect", E["INSTANCE"], "--endpoint-url", E["API_URL"],
         "--ssh-endpoint", f"127.0.0.1:{E['SSH_PORT']}", "--host-key-fingerprint", E["FINGERPRINT"],
         "--non-interactive", "--send", "", "--expect", "login: "],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        elapsed = read_until(proc, b"login: ", t0)
        code = proc.wait(timeout=LIMIT)
        if code != 0:
            raise RuntimeError(f"serialgate connect exited {code}: {proc.stderr.read()!r}")
        return elapsed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def two_step(key: str) -> float:
    t0 = time.monotonic()
    push = subprocess.run(
        [E["AWS"], "ec2-instance-connect", "send-serial-console-ssh-public-key", "--endpoint-url",
         E["API_URL"], "--instance-id", E["INSTANCE"], "--serial-port", "0",
         "--ssh-public-key", f"file://{key}.pub"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=LIMIT)
    if push.returncode != 0:
        raise RuntimeError(f"aws exited {push.returncode}: {push.stderr!r}")
    pushes.append(time.monotonic() - t0)
    ssh = subprocess.Popen(
        ["ssh", "-F", "/dev/null", "-tt", "-i", key, "-p", E["SSH_PORT"], "-o", "BatchMode=yes",
         "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={work}/known_hosts", "-o", "KexAlgorithms=curve25519-sha256",
         "-o", "ConnectTimeout=10", f"{E['INSTANCE']}.port0@127.0.0.1"],
        env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # ssh prints nothing until the console does: write Enter right away (it is read once the
        # session is up, as a person's first keystroke would be).
        ssh.stdin.write(b"\r")
        ssh.stdin.flush()
        return read_until(ssh, b"login: ", t0)
    finally:
        try:
            ssh.stdin.write(b"\r~.")
            ssh.stdin.flush()
            ssh.wait(timeout=10)
        except Exception:
            ssh.kill()
            ssh.wait()


one, two, pushes = [], [], []
for n in range(rounds):
    key = f"{work}/key{n}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True, timeout=30)
    order = (("one", one_step), ("two", lambda: two_step(key)))
    for name, fn in (order if n % 2 == 0 else order[::-1]):
        # Let the server finish releasing the previous session's slot (untimed).
        time.sleep(0.3)
        (one if name == "one" else two).append(fn())
    print(f"round {n + 1:3d}: connect {one[-1] * 1000:7.1f} ms   aws+ssh {two[-1] * 1000:7.1f} ms",
          file=sys.stderr)


def line(name, xs):
    ms = [x * 1000 for x in xs]
    return (f"{name:<28} mean {statistics.mean(ms):7.1f} ms   median {statistics.median(ms):7.1f} ms   "
            f"min {min(ms):7.1f} ms   max {max(ms):7.1f} ms")


print(line("serialgate connect", one))
print(line("aws CLI push + ssh", two))
print(line("  of which the aws CLI push", pushes))
mean_ratio = statistics.mean(two) / statistics.mean(one)
median_ratio = statistics.median(two) / statistics.median(one)
print(f"speed-up (aws+ssh / connect): mean {mean_ratio:.1f}x, median {median_ratio:.1f}x "
      f"(target >= 5x: {'met' if mean_ratio >= 5 else 'NOT met'})")
EOF
