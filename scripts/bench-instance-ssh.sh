#!/usr/bin/env bash
# Benchmark of logging in to an instance with SendSSHPublicKey: a real OpenSSH server (sshd on a
# free loopback port) is the instance, its sshd_config runs `serialgate authorized-keys` as
# AuthorizedKeysCommand against a serialgate server (release build) on the same machine.
#
#   1. Wall time of one login, alternating in each round:
#        one-step: serialgate ssh root@INSTANCE -- true
#                  (credentials, DescribeInstances, an ed25519 key generated, SendSSHPublicKey,
#                  the key written to tmpfs, ssh, removal)
#        two-step: aws ec2-instance-connect send-ssh-public-key …; then ssh -i KEY root@… true
#                  (the key made with ssh-keygen outside the timed part)
#   2. The helper's cost per login, two ways, ROUNDS_HELPER runs each:
#        direct:   `serialgate authorized-keys --config CFG root SHA256:…` as sshd runs it
#                  (process start to exit, the key live, one HTTP fetch each)
#        via sshd: `ssh … true` against that sshd, and against a second sshd identical but for
#                  a static AuthorizedKeysFile holding the same key; the difference of the
#                  medians is what the helper adds to a login (sshd runs it for the key query and
#                  again for the signed request).
#
# Usage: scripts/bench-instance-ssh.sh   (as root: sshd needs it)
# Environment:
#   ROUNDS=10          rounds of part 1 (each measures both paths once)
#   ROUNDS_HELPER=200  runs of each measurement of part 2
#   PYTHON             a python with the AWS CLI installed beside it (default: .venv/bin/python, then
#                      /tmp/e2e-venv/bin/python); `pip install -r tests/e2e/requirements.txt`
#   SKIP_BUILD=1       do not run cargo build --release
#
# Target (printed, not asserted): the helper's direct p99 < 20 ms.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

ROUNDS="${ROUNDS:-10}"
ROUNDS_HELPER="${ROUNDS_HELPER:-200}"
die() {
    echo "bench-instance-ssh: $*" >&2
    exit 1
}
[[ "$ROUNDS" =~ ^[0-9]+$ ]] && ((ROUNDS >= 1 && ROUNDS <= 1000)) || die "ROUNDS must be 1..1000"
[[ "$ROUNDS_HELPER" =~ ^[0-9]+$ ]] && ((ROUNDS_HELPER >= 10 && ROUNDS_HELPER <= 100000)) ||
    die "ROUNDS_HELPER must be 10..100000"
((EUID == 0)) || die "run as root (sshd runs its AuthorizedKeysCommand as root here)"

SSHD=/usr/sbin/sshd
[[ -x "$SSHD" ]] || die "$SSHD is missing (Debian: apt-get install -y openssh-server)"
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
SERIALGATE="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/serialgate"
[[ -x "$SERIALGATE" ]] || die "release binary missing: cargo build --release -p serialgate"

# The work directory is root-owned and 0700 under a root-owned parent: sshd accepts the
# AuthorizedKeysCommand only on such a path, so the binary is linked (else copied) there.
WORK="$(mktemp -d /var/lib/bench-instance-ssh.XXXXXX 2>/dev/null || mktemp -d /run/bench-instance-ssh.XXXXXX)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ln "$SERIALGATE" "$WORK/serialgate" 2>/dev/null || cp "$SERIALGATE" "$WORK/serialgate"
HELPER="$WORK/serialgate"

read -r API_PORT SSH_PORT SSHD_PORT FILE_SSHD_PORT < <("$PYTHON" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
for s in socks:
    s.close()
EOF
)

INSTANCE="i-0b0000000000000e1"
TOKEN="bench-instance-key-token-0123456789"
cat >"$WORK/serialgate.toml" <<EOF
region = "us-east-1"
state_dir = "$WORK/state"

[api]
listen = "127.0.0.1:$API_PORT"

[ssh]
listen = "127.0.0.1:$SSH_PORT"

[keys]
ttl_seconds = 3600

[throttle]
rate_per_second = 1000.0
burst = 1000

[[accounts]]
id = "000000000000"

[[accounts.credentials]]
access_key_id = "test"
secret_access_key = "test"
actions = ["SendSSHPublicKey", "ec2:DescribeInstances"]

[[instances]]
id = "$INSTANCE"
account = "000000000000"
console = "sim:"
key_token = "$TOKEN"
public_ip_address = "127.0.0.1"
EOF

SERIALGATE_LOG=warn "$SERIALGATE" serve --config "$WORK/serialgate.toml" >"$WORK/serve.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 200; i++)); do
    kill -0 "${PIDS[0]}" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "serve exited"; }
    curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$API_PORT/health" 2>/dev/null && break
    sleep 0.05
done
curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$API_PORT/health" || die "serve is not healthy"
SIGNER="$("$SERIALGATE" signer-key --config "$WORK/serialgate.toml")"

printf '%s\n' "$TOKEN" >"$WORK/token"
chmod 600 "$WORK/token"
cat >"$WORK/authorized-keys.toml" <<EOF
endpoint = "http://127.0.0.1:$API_PORT"
instance_id = "$INSTANCE"
key_token_file = "$WORK/token"
signer_public_key = "$SIGNER"
EOF

ssh-keygen -q -t ed25519 -N "" -f "$WORK/host_ed25519"
ssh-keygen -q -t ed25519 -N "" -f "$WORK/user_key"
install -m 600 "$WORK/user_key.pub" "$WORK/authorized_keys"
mkdir -p /run/sshd
sshd_config() { # PORT AUTH_LINES
    cat <<EOF
ListenAddress 127.0.0.1
Port $1
HostKey $WORK/host_ed25519
PidFile none
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
LogLevel ERROR
$2
EOF
}
sshd_config "$SSHD_PORT" "AuthorizedKeysFile none
AuthorizedKeysCommand $HELPER authorized-keys --config $WORK/authorized-keys.toml %u %f
AuthorizedKeysCommandUser root" >"$WORK/sshd_helper.conf"
sshd_config "$FILE_SSHD_PORT" "AuthorizedKeysFile $WORK/authorized_keys" >"$WORK/sshd_file.conf"
for conf in sshd_helper sshd_file; do
    "$SSHD" -D -e -f "$WORK/$conf.conf" 2>"$WORK/$conf.log" &
    PIDS+=($!)
done
for port in "$SSHD_PORT" "$FILE_SSHD_PORT"; do
    for ((i = 0; i < 200; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
done

echo "bench-instance-ssh: serialgate $("$SERIALGATE" --version | cut -d' ' -f2) (release), $(ssh -V 2>&1)," \
    "awscli $("$AWS" --version 2>&1 | cut -d' ' -f1 | cut -d/ -f2), $(nproc) CPUs" >&2

WORK="$WORK" ROUNDS="$ROUNDS" ROUNDS_HELPER="$ROUNDS_HELPER" SERIALGATE="$SERIALGATE" HELPER="$HELPER" \
    AWS="$AWS" INSTANCE="$INSTANCE" API_URL="http://127.0.0.1:$API_PORT" SSHD_PORT="$SSHD_PORT" \
    FILE_SSHD_PORT="$FILE_SSHD_PORT" "$PYTHON" - <<'EOF'
import math, os, statistics, subprocess, sys, time

E = os.environ
work = E["WORK"]
env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
env.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1",
           AWS_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
           AWS_EC2_METADATA_DISABLED="true", HOME=work, XDG_RUNTIME_DIR=work)
SSH_OPTS = ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10"]


def run(argv, **kw):
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {r.returncode}: {r.stderr.decode(errors='replace')[-500:]}")
    return r


def timed(argv) -> float:
    t0 = time.perf_counter()
    run(argv)
    return time.perf_counter() - t0


def one_step() -> float:
    return timed([E["SERIALGATE"], "ssh", f"root@{E['INSTANCE']}", "--endpoint-url", E["API_URL"],
                  "--region", "us-east-1", "-p", E["SSHD_PORT"], "--", *SSH_OPTS, "true"])


def push(pub: str) -> None:
    run([E["AWS"], "ec2-instance-connect", "send-ssh-public-key", "--endpoint-url", E["API_URL"],
         "--instance-id", E["INSTANCE"], "--instance-os-user", "root", "--ssh-public-key", f"file://{pub}"])


def login(key: str, port: str) -> None:
    run(["ssh", *SSH_OPTS, "-o", "IdentitiesOnly=yes", "-i", key, "-p", port, "root@127.0.0.1", "true"])


def two_step(key: str) -> float:
    t0 = time.perf_counter()
    push(key + ".pub")
    login(key, E["SSHD_PORT"])
    return time.perf_counter() - t0


one, two = [], []
for n in range(int(E["ROUNDS"])):
    key = f"{work}/key{n}"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True, timeout=30)
    order = (("one", one_step), ("two", lambda: two_step(key)))
    for name, fn in (order if n % 2 == 0 else order[::-1]):
        (one if name == "one" else two).append(fn())
    print(f"round {n + 1:3d}: serialgate ssh {one[-1] * 1000:7.1f} ms   aws+ssh {two[-1] * 1000:7.1f} ms",
          file=sys.stderr)


def pct(xs, p):
    """Nearest-rank percentile."""
    xs = sorted(xs)
    return xs[max(0, math.ceil(p / 100 * len(xs)) - 1)]


def line(name, xs):
    ms = [x * 1000 for x in xs]
    return (f"{name:<34} p50 {pct(ms, 50):7.1f} ms   p99 {pct(ms, 99):7.1f} ms   mean "
            f"{statistics.mean(ms):7.1f} ms   min {min(ms):7.1f} ms")


print(line("serialgate ssh ... -- true", one))
print(line("aws send-ssh-public-key + ssh", two))
print(f"speed-up (aws+ssh / serialgate ssh): mean {statistics.mean(two) / statistics.mean(one):.1f}x, "
      f"median {statistics.median(two) / statistics.median(one):.1f}x")

# Part 2: one live key for root, the user key the static sshd also has.
key = f"{work}/user_key"
push(key + ".pub")
fp = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", key + ".pub"], capture_output=True,
                    text=True, check=True).stdout.split()[1]
helper = [E["HELPER"], "authorized-keys", "--config", f"{work}/authorized-keys.toml", "root", fp]
runs = int(E["ROUNDS_HELPER"])
direct, via_helper, via_file = [], [], []
for _ in range(5):  # warm the page cache and the server's connections
    timed(helper)
for n in range(runs):
    t0 = time.perf_counter()
    r = subprocess.run(helper, stdin=subprocess.DEVNULL, capture_output=True, env={"PATH": "/usr/bin:/bin"})
    direct.append(time.perf_counter() - t0)
    if r.returncode != 0 or not r.stdout.startswith(b"ssh-ed25519 "):
        raise RuntimeError(f"the helper printed no key (exit {r.returncode}): {r.stderr!r}")
for n in range(runs):
    for port, xs in ((E["SSHD_PORT"], via_helper), (E["FILE_SSHD_PORT"], via_file))[:: 1 if n % 2 else -1]:
        t0 = time.perf_counter()
        login(key, port)
        xs.append(time.perf_counter() - t0)

print(line("helper, direct (as sshd runs it)", direct))
print(line("ssh login, AuthorizedKeysCommand", via_helper))
print(line("ssh login, AuthorizedKeysFile", via_file))
added = statistics.median(via_helper) - statistics.median(via_file)
print(f"the helper adds {added * 1000:.1f} ms to a login's median "
      f"({statistics.median(via_helper) / statistics.median(via_file):.2f}x the static file's); "
      f"direct p99 {pct(direct, 99) * 1000:.1f} ms (target < 20 ms: "
      f"{'met' if pct(direct, 99) < 0.020 else 'NOT met'})")
EOF
