"""SendSSHPublicKey into real guests: two QEMU VMs (TCG) that serialgate runs, each with OpenSSH's
sshd asking `serialgate authorized-keys` for keys, which the guest fetches from 169.254.169.254
(QEMU's user network carries it to serialgate's socket for that VM alone).

The guest is scripts/vm-guest.sh's sshd variant: the busybox guest plus this host's sshd and the
serialgate binary under test, configured at boot from the instance id and signer key serialgate
puts on its kernel command line. Each VM's sshd is forwarded to a loopback port
(`[instances.qemu] ssh_forward`). Keys are pushed with the AWS CLI and `serialgate ssh`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, _binary, _free_ports, _serve

VM_A = "i-0a0a0a0a0a0a0a0a0"
VM_B = "i-0b0b0b0b0b0b0b0b0"
REGION = "us-east-1"
ACCOUNT = "000000000000"
AK, SK = "test", "test"
TTL_S = 5
BOOT_TIMEOUT = 180.0
_AWS_SCRIPT = Path(sys.executable).with_name("aws")
AWS_CLI = [str(_AWS_SCRIPT)] if _AWS_SCRIPT.is_file() else [sys.executable, "-m", "awscli"]


def client_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
    env.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_MAX_ATTEMPTS="1")
    return env


def push(vms, instance: str, user: str, pub: Path) -> dict:
    r = subprocess.run([*AWS_CLI, "ec2-instance-connect", "send-ssh-public-key", "--instance-id", instance,
                        "--instance-os-user", user, "--ssh-public-key", f"file://{pub}",
                        "--endpoint-url", vms["server"].url, "--region", REGION, "--output", "json"],
                       env=client_env(), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def ssh(vms, instance: str, key: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key), "-p", str(vms["ports"][instance]),
         "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={vms['known_hosts']}", "-o", "ConnectTimeout=30",
         "root@127.0.0.1", command],
        capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)


def new_key(tmp_path: Path, name: str = "id_ed25519") -> Path:
    key = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    return key


def fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True, check=True)
    return out.stdout.split()[1]


def host_keys(port: int, deadline: float) -> str:
    """The guest's sshd host key lines, once it answers on its forwarded port."""
    while True:
        r = subprocess.run(["ssh-keyscan", "-T", "5", "-t", "ed25519", "-p", str(port), "127.0.0.1"],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0 and "ssh-ed25519" in r.stdout:
            return r.stdout
        assert time.monotonic() < deadline, f"no sshd on port {port}: {r.stderr}"
        time.sleep(1)


@pytest.fixture(scope="module")
def vms(tmp_path_factory):
    guest = subprocess.run([str(REPO_ROOT / "scripts" / "vm-guest.sh"), "--sshd", str(_binary())],
                           capture_output=True, text=True, timeout=600)
    assert guest.returncode == 0, guest.stderr
    guest_dir = Path(guest.stdout.strip().splitlines()[-1])
    workdir = tmp_path_factory.mktemp("vmssh")
    ports = dict(zip((VM_A, VM_B), _free_ports(2)))
    instances = "".join(f"""
[[instances]]
id = "{instance}"
account = "{ACCOUNT}"
instance_type = "t3.micro"

[instances.qemu]
kernel = "{guest_dir / 'vmlinuz'}"
initrd = "{guest_dir / 'initramfs-sshd.cpio.gz'}"
accel = "tcg"
stop_timeout_seconds = 5
ssh_forward = "127.0.0.1:{port}"
""" for instance, port in ports.items())
    config = workdir / "vmssh.toml"
    config.write_text(f"""
region = "{REGION}"
state_dir = "{workdir / 'state'}"

[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
actions = ["*"]

[keys]
ttl_seconds = {TTL_S}
{instances}""")
    with _serve("vmssh", config, workdir) as server:
        deadline = time.monotonic() + BOOT_TIMEOUT
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text("".join(host_keys(port, deadline) for port in ports.values()))
        yield {"server": server, "ports": ports, "known_hosts": known_hosts, "workdir": workdir}


def test_a_pushed_key_logs_in_to_the_guest_it_was_pushed_for(vms, tmp_path):
    key = new_key(tmp_path)
    push(vms, VM_A, "root", key.with_suffix(".pub"))
    r = ssh(vms, VM_A, key, "hostname; cat /proc/cmdline")
    assert r.returncode == 0, r.stderr
    assert "serialgate-vm" in r.stdout
    # The guest learnt which instance it is from serialgate, and its helper checked records for it.
    assert f"serialgate.instance={VM_A}" in r.stdout


def test_the_other_guest_refuses_that_key(vms, tmp_path):
    key = new_key(tmp_path)
    push(vms, VM_A, "root", key.with_suffix(".pub"))
    r = ssh(vms, VM_B, key, "true")
    assert r.returncode == 255 and "Permission denied" in r.stderr, r.stderr
    # Still valid where it belongs: the refusal was B's, not the window's.
    assert ssh(vms, VM_A, key, "true").returncode == 0


def test_the_guest_logs_who_pushed_the_key(vms, tmp_path):
    key = new_key(tmp_path)
    pub = key.with_suffix(".pub")
    request = push(vms, VM_B, "root", pub)["RequestId"]
    r = ssh(vms, VM_B, key, "grep 'Providing ssh key' /var/log/messages")
    assert r.returncode == 0, r.stderr
    line = next(l for l in r.stdout.splitlines() if request in l)
    assert f"fingerprint: {fingerprint(pub)}" in line
    assert f"for principal: arn:aws:iam::{ACCOUNT}:root" in line


def test_serialgate_ssh_logs_in_in_one_step(vms):
    r = subprocess.run(
        [str(_binary()), "ssh", f"root@{VM_B}", "--region", REGION, "--endpoint-url", vms["server"].url,
         "--address", "127.0.0.1", "--port", str(vms["ports"][VM_B]), "--",
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={vms['known_hosts']}",
         "echo one-step-$((6*7))"],
        env=client_env(), capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert "one-step-42" in r.stdout


def test_the_key_stops_working_after_its_window(vms, tmp_path):
    key = new_key(tmp_path)
    push(vms, VM_A, "root", key.with_suffix(".pub"))
    # The grant was stored before the push answered: it ends by this instant, plus a second for
    # the records' whole-second expiry.
    expired_at = time.monotonic() + TTL_S + 1
    assert ssh(vms, VM_A, key, "true").returncode == 0
    while (left := expired_at - time.monotonic()) > 0:
        time.sleep(left)
    r = ssh(vms, VM_A, key, "true")
    assert r.returncode == 255 and "Permission denied" in r.stderr, r.stderr
