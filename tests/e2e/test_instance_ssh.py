"""SendSSHPublicKey end to end, with a real OpenSSH server as the instance.

The instance is `/usr/sbin/sshd` on a free loopback port with its own configuration and host key:
no authorized_keys files, only `AuthorizedKeysCommand serialgate authorized-keys --config CFG %u
%f` (run as root), which fetches the keys pushed for the user from a `serialgate serve` and prints
those whose signed records verify. Clients: the AWS CLI's `send-ssh-public-key` followed by plain
`ssh`, and `serialgate ssh` in one step (DescribeInstances, push, the system's ssh).

sshd must be installed (Debian: `apt-get install -y openssh-server`); without it these tests
fail. They log in as root and as `sgtest`, a user they create when it is missing, so they run as
root (as CI does).
"""

from __future__ import annotations

import contextlib
import http.server
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO_ROOT, Server, _binary, _die_with_parent, _free_ports, _serve, _stop
from hostile import REGION, aws_cli, cli_ok, new_key, serve
from test_tls import ca, sign

SSHD = Path("/usr/sbin/sshd")
ACCOUNT = "111100008888"
CREDS = ("AKIAINSTANCESSH00001", "instance-ssh-secret")
INSTANCE = "i-0e5500000000000001"  # the sshd of these tests
OTHER = "i-0e5500000000000002"  # another instance, with a token of its own
TOKEN = "instance-one-key-token-0123456789"
OTHER_TOKEN = "instance-two-key-token-0123456789"
# Short, so that a key's end can be waited for; long enough for a login on a loaded machine.
TTL_S = 8
SECOND_USER = "sgtest"
NO_KEYS = 255

SERVER_CONFIG = """
region = "{region}"
state_dir = "{state}"
{api}
[keys]
ttl_seconds = {ttl}

[throttle]
rate_per_second = 1000.0
burst = 1000

[[accounts]]
id = "{account}"

[[accounts.credentials]]
access_key_id = "{ak}"
secret_access_key = "{sk}"
user = "operator"
actions = ["SendSSHPublicKey", "ec2:DescribeInstances"]

[[instances]]
id = "{instance}"
account = "{account}"
console = "sim:"
key_token = "{token}"
public_ip_address = "127.0.0.1"

[[instances]]
id = "{other}"
account = "{account}"
console = "sim:"
key_token = "{other_token}"
private_ip_address = "127.0.0.1"
"""


@dataclass
class Instance:
    """The sshd standing in for instance INSTANCE, and what reaches it."""

    port: int
    helper_config: Path
    helper: Path  # the serialgate binary as sshd runs it
    workdir: Path
    stderr_path: Path

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace")


# --- setup ------------------------------------------------------------------------------------


def _root_owned_path_ok(path: Path) -> bool:
    """sshd runs an AuthorizedKeysCommand only if it and every parent directory are owned by root
    and writable by no one else."""
    for p in [path, *path.parents]:
        st = p.stat()
        if st.st_uid != 0 or st.st_mode & 0o022:
            return False
    return True


@pytest.fixture(scope="module")
def helper_binary():
    """The serialgate binary at a path sshd accepts: where it is, or hard-linked (else copied)
    into a fresh root-owned directory."""
    binary = _binary().resolve()
    if _root_owned_path_ok(binary):
        yield binary
        return
    for parent in (Path("/run"), Path("/var/lib"), Path("/opt")):
        if parent.is_dir() and _root_owned_path_ok(parent) and os.access(parent, os.W_OK):
            break
    else:
        pytest.fail("no root-owned directory to put the AuthorizedKeysCommand in", pytrace=False)
    d = Path(tempfile.mkdtemp(prefix="serialgate-akc-", dir=parent))
    os.chmod(d, 0o755)
    target = d / "serialgate"
    try:
        os.link(binary, target)
    except OSError:
        shutil.copy2(binary, target)
    os.chmod(target, 0o755)
    try:
        yield target
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def second_user():
    """`sgtest`, created when missing, with a password field sshd does not take for locked."""
    try:
        pwd.getpwnam(SECOND_USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", "-p", "*", SECOND_USER], check=True, timeout=30)
    return SECOND_USER


def server_config(workdir: Path, api: str = "") -> str:
    return SERVER_CONFIG.format(
        region=REGION, state=workdir / "state", api=api, ttl=TTL_S, account=ACCOUNT, ak=CREDS[0],
        sk=CREDS[1], instance=INSTANCE, token=TOKEN, other=OTHER, other_token=OTHER_TOKEN,
    )


def signer_key(config_path: Path) -> str:
    r = subprocess.run([str(_binary()), "signer-key", "--config", str(config_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("instance-ssh")
    config = workdir / "server.toml"
    config.write_text(server_config(workdir))
    with _serve("instance-ssh", config, workdir, creds={"operator": CREDS},
                instances={"sshd": INSTANCE, "other": OTHER}) as s:
        yield s


@pytest.fixture(scope="module")
def signer_line(server) -> str:
    line = signer_key(server.config_path)
    assert line.startswith("ssh-ed25519 ") and line.endswith(" serialgate-signer"), line
    return line


def helper_config(directory: Path, name: str, endpoint: str, signer: str, *,
                  instance: str = INSTANCE, token: str = TOKEN, ca_file: Path | None = None) -> Path:
    token_file = directory / f"{name}.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    path = directory / f"{name}.toml"
    path.write_text(
        f'endpoint = "{endpoint}"\ninstance_id = "{instance}"\nkey_token_file = "{token_file}"\n'
        f'signer_public_key = "{signer}"\ntimeout_ms = 5000\n'
        + (f'ca_file = "{ca_file}"\n' if ca_file else "")
    )
    return path


@pytest.fixture(scope="module")
def instance(server, signer_line, helper_binary, second_user, tmp_path_factory):
    """sshd on a free loopback port, trusting only what `serialgate authorized-keys` prints."""
    if not SSHD.is_file():
        pytest.fail(f"{SSHD} is missing: install OpenSSH's server (apt-get install -y openssh-server)",
                    pytrace=False)
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_ed25519")],
                   check=True, timeout=30)
    cfg = helper_config(d, "authorized-keys", server.url, signer_line)
    (port,) = _free_ports(1)
    sshd_config = d / "sshd_config"
    sshd_config.write_text(f"""
ListenAddress 127.0.0.1
Port {port}
HostKey {d / 'host_ed25519'}
PidFile none
UsePAM no
AuthorizedKeysFile none
AuthorizedKeysCommand {helper_binary} authorized-keys --config {cfg} %u %f
AuthorizedKeysCommandUser root
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
LogLevel VERBOSE
""")
    # The privilege separation directory sshd insists on.
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    stderr_path = d / "sshd.stderr.log"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(sshd_config)], stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err, preexec_fn=_die_with_parent)
    inst = Instance(port=port, helper_config=cfg, helper=helper_binary, workdir=d, stderr_path=stderr_path)
    try:
        deadline = time.monotonic() + 15
        while f"Server listening on 127.0.0.1 port {port}" not in inst.log():
            assert proc.poll() is None, f"sshd exited {proc.returncode}:\n{inst.log()}"
            assert time.monotonic() < deadline, f"sshd did not start:\n{inst.log()}"
            time.sleep(0.05)
        yield inst
    finally:
        _stop(proc)


# --- helpers ----------------------------------------------------------------------------------


def push(server: Server, user: str, pub: Path, instance_id: str = INSTANCE) -> str:
    """`aws ec2-instance-connect send-ssh-public-key`; returns the RequestId."""
    out = cli_ok(aws_cli(server, CREDS, "ec2-instance-connect", "send-ssh-public-key",
                         "--instance-id", instance_id, "--instance-os-user", user,
                         "--ssh-public-key", f"file://{pub}"))
    assert out["Success"] is True, out
    return out["RequestId"]


SSH_OPTIONS = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]


def ssh(inst: Instance, key: Path, user: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", *SSH_OPTIONS, "-o", "IdentitiesOnly=yes", "-i", str(key), "-p", str(inst.port),
         f"{user}@127.0.0.1", *command],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def run_helper(inst: Instance, user: str, *fingerprint: str, config: Path | None = None) -> subprocess.CompletedProcess:
    """The helper as sshd runs it."""
    return subprocess.run(
        [str(inst.helper), "authorized-keys", "--config", str(config or inst.helper_config), user, *fingerprint],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, env={"PATH": "/usr/bin:/bin"},
    )


def fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return out.split()[1]


def public_line(pub: Path) -> str:
    """The key as the helper prints it: `type base64`, no comment."""
    return " ".join(pub.read_text().split()[:2])


def assert_denied(r: subprocess.CompletedProcess) -> None:
    assert r.returncode == 255 and "Permission denied" in r.stderr, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"


def sg_ssh_env(tmp: Path) -> dict[str, str]:
    runtime = tmp / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
    env.update(AWS_ACCESS_KEY_ID=CREDS[0], AWS_SECRET_ACCESS_KEY=CREDS[1], AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true",
               HOME=str(tmp), XDG_RUNTIME_DIR=str(runtime))
    return env


def sg_ssh_argv(server: Server, inst: Instance, target: str, *ssh_args: str) -> list[str]:
    return [str(_binary()), "ssh", target, "--endpoint-url", server.url, "--region", REGION,
            "-p", str(inst.port), "--", *SSH_OPTIONS, *ssh_args]


# --- push with the AWS CLI, log in with plain ssh ----------------------------------------------


@pytest.mark.parametrize("user", ["root", SECOND_USER])
def test_a_pushed_key_logs_in_with_plain_ssh(server, instance, tmp_path, user):
    key = new_key(tmp_path)
    push(server, user, key.with_suffix(".pub"))
    r = ssh(instance, key, user, "echo", "in-as-$(id -un)")
    assert r.returncode == 0, f"{r.stderr}\n--- sshd ---\n{instance.log()[-3000:]}"
    assert r.stdout.strip() == f"in-as-{user}"


def test_the_helper_prints_the_verified_key_and_logs_who_pushed_it(server, instance, tmp_path):
    key = new_key(tmp_path)
    pub = key.with_suffix(".pub")
    request_id = push(server, "root", pub)
    r = run_helper(instance, "root", fingerprint(pub))
    assert r.returncode == 0, r.stderr
    assert r.stdout == public_line(pub) + "\n"
    line = (f"Providing ssh key from serialgate with fingerprint: {fingerprint(pub)}, "
            f"request-id: {request_id}, for principal: arn:aws:iam::{ACCOUNT}:user/operator")
    assert line in r.stderr, r.stderr
    # sshd asks once per offered key: another key's fingerprint gets nothing.
    other = new_key(tmp_path, "other")
    r = run_helper(instance, "root", fingerprint(other.with_suffix(".pub")))
    assert (r.returncode, r.stdout) == (NO_KEYS, "")


def test_the_key_stops_working_after_its_window(server, instance, tmp_path):
    key = new_key(tmp_path)
    pub = key.with_suffix(".pub")
    push(server, SECOND_USER, pub)
    assert ssh(instance, key, SECOND_USER, "true").returncode == 0
    # Wait for the grant to lapse, watching the helper's answer.
    deadline = time.monotonic() + TTL_S + 10
    while run_helper(instance, SECOND_USER, fingerprint(pub)).returncode == 0:
        assert time.monotonic() < deadline, "the key was still served after its window"
        time.sleep(0.5)
    assert_denied(ssh(instance, key, SECOND_USER, "true"))


def test_a_key_for_another_user_or_instance_is_refused(server, instance, tmp_path):
    key = new_key(tmp_path)
    pub = key.with_suffix(".pub")
    push(server, SECOND_USER, pub)
    assert_denied(ssh(instance, key, "root", "true"))
    other = new_key(tmp_path, "other")
    push(server, "root", other.with_suffix(".pub"), instance_id=OTHER)
    assert_denied(ssh(instance, other, "root", "true"))
    r = run_helper(instance, "root", fingerprint(other.with_suffix(".pub")))
    assert (r.returncode, r.stdout) == (NO_KEYS, "")


def test_a_wrong_instance_token_gets_nothing(server, instance, signer_line, tmp_path):
    key = new_key(tmp_path)
    pub = key.with_suffix(".pub")
    push(server, "root", pub)
    assert run_helper(instance, "root").returncode == 0
    # Another instance's token, claiming to be this one.
    wrong = helper_config(tmp_path, "wrong", server.url, signer_line, token=OTHER_TOKEN)
    r = run_helper(instance, "root", config=wrong)
    assert (r.returncode, r.stdout) == (NO_KEYS, ""), r.stderr


def test_a_mistyped_command_line_is_a_failure_like_any_other(instance):
    # sshd treats any nonzero exit as no keys; the helper keeps to AWS's one failure code.
    for argv in ([], ["--bogus", "root"], ["root", "SHA256:x", "extra"]):
        r = subprocess.run([str(instance.helper), "authorized-keys", *argv], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
        assert (r.returncode, r.stdout) == (NO_KEYS, ""), (argv, r.returncode, r.stderr)
        assert "Usage: serialgate authorized-keys" in r.stderr, r.stderr
    # Asking for help is not a failure.
    r = subprocess.run([str(instance.helper), "authorized-keys", "--help"], capture_output=True, text=True,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and "AuthorizedKeysCommand" in r.stdout, r.stdout


# --- HTTPS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The same configuration on an HTTPS listener whose certificate a private CA signed."""
    d = tmp_path_factory.mktemp("instance-ssh-tls")
    root = ca(d, "root", "/CN=instance keys test CA")
    ext = d / "server.ext"
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n")
    sign(d, "server", "/CN=127.0.0.1", ext, root)
    stranger = ca(d, "stranger", "/CN=someone else's CA")
    api = f'\n[api]\ntls_cert_file = "{d / "server.pem"}"\ntls_key_file = "{d / "server.key"}"\n'
    with serve("instance-ssh-tls", server_config(d, api), d, ca_file=root[0]) as s:
        yield s, root[0], stranger[0]


def test_the_helper_fetches_over_https_trusting_its_ca_file(tls_server, instance, tmp_path):
    server, ca_file, stranger = tls_server
    key = new_key(tmp_path)
    pub = key.with_suffix(".pub")
    cli_ok(aws_cli(server, CREDS, "ec2-instance-connect", "send-ssh-public-key", "--instance-id", INSTANCE,
                   "--instance-os-user", "root", "--ssh-public-key", f"file://{pub}",
                   extra_env={"AWS_CA_BUNDLE": str(ca_file)}))
    signer = signer_key(server.config_path)
    trusted = helper_config(tmp_path, "trusted", server.url, signer, ca_file=ca_file)
    r = run_helper(instance, "root", fingerprint(pub), config=trusted)
    assert (r.returncode, r.stdout) == (0, public_line(pub) + "\n"), r.stderr
    # The system's roots, or another CA, do not vouch for this server: nothing, and why.
    for name, ca_path in (("system", None), ("stranger", stranger)):
        config = helper_config(tmp_path, name, server.url, signer, ca_file=ca_path)
        r = run_helper(instance, "root", fingerprint(pub), config=config)
        assert (r.returncode, r.stdout) == (NO_KEYS, ""), r.stderr
        assert "TLS with 127.0.0.1" in r.stderr and "certificate" in r.stderr.lower(), r.stderr


# --- a proxy that changes the answer -----------------------------------------------------------


class _Tamper(http.server.BaseHTTPRequestHandler):
    upstream = ""
    mode = "pass"

    def do_GET(self):  # noqa: N802 (http.server's name)
        request = urllib.request.Request(self.upstream + self.path, headers={
            name: self.headers[name] for name in ("X-Serialgate-Instance", "X-Serialgate-Proof") if self.headers[name]
        })
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        if status == 200:
            body = tamper(body, self.mode)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def tamper(body: bytes, mode: str) -> bytes:
    lines = body.decode().split("\n")
    key_at = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    if mode == "key":
        key = lines[key_at]
        at = len(key) - 10  # inside the base64 of the key
        lines[key_at] = key[:at] + ("A" if key[at] != "A" else "B") + key[at + 1:]
    elif mode == "instance":
        lines = [f"#Instance={OTHER}" if line.startswith("#Instance=") else line for line in lines]
    elif mode == "timestamp":
        lines = [re.sub(r"^#Timestamp=(\d+)", lambda m: f"#Timestamp={int(m[1]) + 3600}", line) for line in lines]
    return "\n".join(lines).encode()


@contextlib.contextmanager
def tampering_proxy(upstream: str, mode: str):
    handler = type("Handler", (_Tamper,), {"upstream": upstream, "mode": mode})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("mode", ["key", "instance", "timestamp"])
def test_a_changed_answer_makes_the_helper_print_nothing(server, instance, signer_line, tmp_path, mode):
    key = new_key(tmp_path)
    pub = key.with_suffix(".pub")
    push(server, "root", pub)
    with tampering_proxy(server.url, "pass") as url:
        config = helper_config(tmp_path, "pass", url, signer_line)
        r = run_helper(instance, "root", config=config)
        assert (r.returncode, r.stdout) == (0, public_line(pub) + "\n"), "the proxy itself must not break the answer"
    with tampering_proxy(server.url, mode) as url:
        config = helper_config(tmp_path, mode, url, signer_line)
        r = run_helper(instance, "root", config=config)
    assert (r.returncode, r.stdout) == (NO_KEYS, ""), r.stderr
    assert "Ignoring a key record for root" in r.stderr, r.stderr


# --- serialgate ssh ------------------------------------------------------------------------------


def test_serialgate_ssh_runs_a_remote_command(server, instance, tmp_path):
    env = sg_ssh_env(tmp_path)
    r = subprocess.run(sg_ssh_argv(server, instance, f"{SECOND_USER}@{INSTANCE}", "echo", "hello-from-$(id -un)"),
                       env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, f"{r.stderr}\n--- sshd ---\n{instance.log()[-3000:]}"
    assert r.stdout.strip() == f"hello-from-{SECOND_USER}"
    # The remote command's exit code comes back, and the key file is gone.
    r = subprocess.run(sg_ssh_argv(server, instance, f"root@{INSTANCE}", "exit 7"),
                       env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert r.returncode == 7, r.stderr
    assert list((tmp_path / "runtime").iterdir()) == []


def test_serialgate_ssh_forwards_a_port_and_cleans_up_on_sigterm(server, instance, tmp_path):
    pong = socket.create_server(("127.0.0.1", 0))
    target_port = pong.getsockname()[1]

    def answer():
        with contextlib.suppress(OSError):
            conn, _ = pong.accept()
            with conn:
                conn.sendall(b"pong\n")

    threading.Thread(target=answer, daemon=True).start()
    (local_port,) = _free_ports(1)
    env = sg_ssh_env(tmp_path)
    proc = subprocess.Popen(
        sg_ssh_argv(server, instance, f"root@{INSTANCE}", "-N", "-o", "ExitOnForwardFailure=yes",
                    "-L", f"127.0.0.1:{local_port}:127.0.0.1:{target_port}"),
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_die_with_parent,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"serialgate ssh exited {proc.returncode}: {proc.stderr.read()}"
            with contextlib.suppress(OSError):
                with socket.create_connection(("127.0.0.1", local_port), timeout=10) as c:
                    data = c.makefile("rb").readline()
                    if data:
                        break
            assert time.monotonic() < deadline, "the forwarded port never answered"
            time.sleep(0.1)
        assert data == b"pong\n"
        key_files = list((tmp_path / "runtime").iterdir())
        assert len(key_files) == 1 and (key_files[0].stat().st_mode & 0o777) == 0o600, key_files
        # With -N ssh runs until a signal ends it: this one reaches ssh through serialgate, which
        # then removes the key and exits with ssh's code (OpenSSH exits 0 on SIGTERM).
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read()
        assert list((tmp_path / "runtime").iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        pong.close()


def test_print_command_pushes_nothing(server, instance, tmp_path):
    env = sg_ssh_env(tmp_path)
    r = subprocess.run([str(_binary()), "ssh", INSTANCE, "--endpoint-url", server.url, "--region", REGION,
                        "--print-command", "--", "-L", "8080:localhost:80", "echo", "a b"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    runtime = re.escape(str(tmp_path / "runtime"))
    assert re.fullmatch(
        rf"ssh -o IdentitiesOnly=yes -i {runtime}/serialgate-ssh-[0-9a-f]{{32}} -p 22 ec2-user@127\.0\.0\.1 "
        r"-L 8080:localhost:80 echo 'a b'\n", r.stdout), r.stdout
    assert list((tmp_path / "runtime").iterdir()) == []
    assert run_helper(instance, "ec2-user").returncode == NO_KEYS
    # The other instance has a private address only; --address needs no AWS at all.
    r = subprocess.run([str(_binary()), "ssh", f"admin@{OTHER}", "--endpoint-url", server.url, "--region", REGION,
                        "--print-command"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.rstrip().endswith(" admin@127.0.0.1"), r.stdout + r.stderr
    r = subprocess.run([str(_binary()), "ssh", OTHER, "--address", "host.example", "--print-command"],
                       env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.rstrip().endswith(" ec2-user@host.example"), r.stdout + r.stderr
