"""A real VM behind serialgate: QEMU (TCG) started and supervised by serialgate, driven with the
AWS CLI (`aws ec2 …`, `aws ec2-instance-connect …`), boto3 and OpenSSH.

One module-scoped server runs the guest that scripts/vm-guest.sh prepares (Debian's cloud kernel
and a busybox initramfs with a getty on ttyS0, root/root, kernel.sysrq=1). The tests run in file
order and share the VM, as a user would: boot, log in, SysRq, reboot while connected, console
output, stop, start, the account switch, and finally kill -9 serialgate to check no QEMU lives on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from conftest import REPO_ROOT, _binary, _serve
from ssh_session import Session

INSTANCE = "i-0123456789abcdef0"
REGION = "us-east-1"
AK, SK = "test", "test"
BOOT_TIMEOUT = 120.0
_AWS_SCRIPT = Path(sys.executable).with_name("aws")
AWS_CLI = [str(_AWS_SCRIPT)] if _AWS_SCRIPT.is_file() else [sys.executable, "-m", "awscli"]


def aws(vm, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_MAX_ATTEMPTS="1")
    r = subprocess.run([*AWS_CLI, *args, "--endpoint-url", vm["server"].url, "--region", REGION,
                        "--output", "json"], env=env, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, f"aws {' '.join(args)}: {r.stderr}"
    return r


def state(vm) -> str:
    r = aws(vm, "ec2", "describe-instances", "--instance-ids", INSTANCE)
    return json.loads(r.stdout)["Reservations"][0]["Instances"][0]["State"]["Name"]


def ec2(vm):
    return boto3.client("ec2", endpoint_url=vm["server"].url, region_name=REGION, aws_access_key_id=AK,
                        aws_secret_access_key=SK, config=Config(retries={"total_max_attempts": 1}))


def wait_state(vm, wanted: str, timeout: float = BOOT_TIMEOUT) -> None:
    client = ec2(vm)
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        r = client.describe_instances(InstanceIds=[INSTANCE])
        seen = r["Reservations"][0]["Instances"][0]["State"]["Name"]
        if seen == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"instance is {seen}, not {wanted}, after {timeout} s")


def push(vm, key: Path) -> subprocess.CompletedProcess:
    return aws(vm, "ec2-instance-connect", "send-serial-console-ssh-public-key", "--instance-id", INSTANCE,
               "--serial-port", "0", "--ssh-public-key", f"file://{key}.pub", check=False)


@pytest.fixture(scope="module")
def vm(tmp_path_factory):
    guest = subprocess.run([str(REPO_ROOT / "scripts" / "vm-guest.sh")], capture_output=True, text=True,
                           timeout=600)
    assert guest.returncode == 0, guest.stderr
    guest_dir = Path(guest.stdout.strip().splitlines()[-1])
    workdir = tmp_path_factory.mktemp("vm")
    config = workdir / "vm.toml"
    config.write_text(f"""
region = "us-east-1"
state_dir = "{workdir / 'state'}"

[[accounts]]
id = "000000000000"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
actions = ["*"]

[[instances]]
id = "{INSTANCE}"
account = "000000000000"
instance_type = "t3.micro"
tags = {{ Name = "ci-vm" }}

[instances.qemu]
kernel = "{guest_dir / 'vmlinuz'}"
initrd = "{guest_dir / 'initramfs.cpio.gz'}"
accel = "tcg"
stop_timeout_seconds = 10

[sessions]
teardown_seconds = 1
""")
    with _serve("vm", config, workdir) as server:
        host_key = subprocess.run([str(_binary()), "host-key", "--config", str(config), "--public-key-only"],
                                  capture_output=True, text=True, check=True, timeout=30).stdout.strip()
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{server.ssh_port} {host_key}\n")
        key = workdir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
        yield {"server": server, "known_hosts": known_hosts, "key": key, "config": config, "state": {}}


def ssh(vm) -> Session:
    return Session([
        "ssh", "-F", "/dev/null", "-tt", "-i", str(vm["key"]), "-p", str(vm["server"].ssh_port),
        "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={vm['known_hosts']}",
        "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "KexAlgorithms=curve25519-sha256",
        f"{INSTANCE}.port0@127.0.0.1",
    ])


def test_boots_pending_then_running(vm):
    # Started by serve; then a forced stop and a start show the whole cycle.
    wait_state(vm, "running")
    aws(vm, "ec2", "stop-instances", "--instance-ids", INSTANCE, "--force")
    wait_state(vm, "stopped", 30)
    r = ec2(vm).start_instances(InstanceIds=[INSTANCE])
    change = r["StartingInstances"][0]
    assert change["PreviousState"]["Name"] == "stopped"
    assert change["CurrentState"]["Name"] == "pending"
    assert state(vm) in ("pending", "running")
    wait_state(vm, "running")
    assert state(vm) == "running"


def test_console_login_uname_and_sysrq(vm):
    r = push(vm, vm["key"])
    assert r.returncode == 0, r.stderr
    s = ssh(vm)
    vm["state"]["session"] = s
    s.send(b"\r")
    n = s.expect(rb"login: ", timeout=BOOT_TIMEOUT)
    s.send(b"root\r")
    n = s.expect(rb"Password: ", n)
    s.send(b"root\r")
    n = s.expect(rb"serialgate-vm# ", n)
    s.send(b"uname -r\r")
    n = s.expect(rb"\r\n6\.\d+\.\d+[^\r\n]*\r\n", n)
    # OpenSSH's ~~ becomes ~: the gateway sees Enter ~B and sends IAC BREAK to QEMU, right
    # behind the Enter (the backend lets the UART drain it first, or the guest would take the
    # Enter for the break).
    s.send(b"\r~~B")
    time.sleep(0.5)
    s.send(b"h")
    s.expect(rb"sysrq: HELP", n, timeout=20)


def test_the_guest_fetches_its_keys_at_169_254_169_254(vm):
    """The guest reaches its instance keys without a token, through QEMU's user network, and the
    answer is audited as GetInstanceKeys."""
    s: Session = vm["state"]["session"]
    aws(vm, "ec2-instance-connect", "send-ssh-public-key", "--instance-id", INSTANCE, "--instance-os-user",
        "root", "--ssh-public-key", f"file://{vm['key']}.pub")
    key_b64 = Path(f"{vm['key']}.pub").read_text().split()[1].encode()
    # busybox-static's wget crashes in its static glibc's service lookups; nc speaks HTTP/1.0 too.
    fetch = "printf 'GET /instance-keys/v1/{} HTTP/1.0\\r\\n\\r\\n' | nc 169.254.169.254 80; echo E$?ND\r"
    n = len(s.out)
    s.send(fetch.format("root").encode())
    end = s.expect(rb"E0ND", n, timeout=60)
    answer = s.out[n:end]
    assert b"HTTP/1.0 200 OK" in answer, answer
    assert f"#Instance={INSTANCE}".encode() in answer, answer
    assert b"ssh-ed25519 " + key_b64 in answer, answer
    # No key for that user: the same empty 404 as every refusal.
    s.send(fetch.format("nobody").encode())
    end2 = s.expect(rb"E0ND", end, timeout=60)
    assert b"HTTP/1.0 404 Not Found" in s.out[end:end2], s.out[end:end2]
    audit = subprocess.run([str(_binary()), "audit", "--config", str(vm["config"]), "--instance", INSTANCE],
                           capture_output=True, text=True, timeout=30)
    assert audit.returncode == 0, audit.stderr
    assert "GetInstanceKeys" in audit.stdout, audit.stdout


def test_reboot_while_connected_shows_the_boot_again(vm):
    s: Session = vm["state"]["session"]
    n = len(s.out)
    aws(vm, "ec2", "reboot-instances", "--instance-ids", INSTANCE)
    n = s.expect(rb"Linux version", n, timeout=BOOT_TIMEOUT)
    s.expect(rb"login: ", n, timeout=BOOT_TIMEOUT)


def test_get_console_output_has_the_boot_log(vm):
    r = aws(vm, "ec2", "get-console-output", "--instance-id", INSTANCE, "--latest")
    out = json.loads(r.stdout)
    assert out["InstanceId"] == INSTANCE
    assert "Linux version" in out["Output"]
    assert "login:" in out["Output"]


def test_stop_makes_pushes_invalid_and_start_resumes_the_session(vm):
    s: Session = vm["state"]["session"]
    n = len(s.out)
    aws(vm, "ec2", "stop-instances", "--instance-ids", INSTANCE)
    n = s.expect(rb"instance is stopped|Lost the connection", n, timeout=30)
    wait_state(vm, "stopped", 30)
    # The guest powered off on the ACPI request (its acpid runs poweroff); it was not killed
    # when the stop timeout ran out.
    log = vm["server"].stderr()
    assert "did not stop in time" not in log, log[-3000:]
    assert re.search(r'VM process exited .*status="exit status 0"', log), log[-3000:]
    # While stopped, a new key cannot be pushed (the connected session keeps its slot anyway).
    r = push(vm, vm["key"])
    assert r.returncode != 0
    assert "EC2InstanceStateInvalidException" in r.stderr or "SerialConsoleSessionLimitExceeded" in r.stderr
    aws(vm, "ec2", "start-instances", "--instance-ids", INSTANCE)
    n = s.expect(rb"Console connection restored", n, timeout=BOOT_TIMEOUT)
    s.expect(rb"Linux version", n, timeout=BOOT_TIMEOUT)
    s.send(b"\r~.")
    s.close()


def test_stopped_instance_refuses_pushes(vm):
    wait_state(vm, "running")
    time.sleep(1.5)  # the session's teardown (1 s)
    aws(vm, "ec2", "stop-instances", "--instance-ids", INSTANCE, "--force")
    wait_state(vm, "stopped", 30)
    r = push(vm, vm["key"])
    assert r.returncode != 0
    assert "EC2InstanceStateInvalidException" in r.stderr
    aws(vm, "ec2", "start-instances", "--instance-ids", INSTANCE)
    wait_state(vm, "running")


def test_serial_console_access_switch(vm):
    aws(vm, "ec2", "disable-serial-console-access")
    r = push(vm, vm["key"])
    assert "SerialConsoleAccessDisabledException" in r.stderr
    status = json.loads(aws(vm, "ec2", "get-serial-console-access-status").stdout)
    assert status == {"SerialConsoleAccessEnabled": False, "ManagedBy": "account"}
    aws(vm, "ec2", "enable-serial-console-access")
    r = push(vm, vm["key"])
    assert r.returncode == 0, r.stderr


def _qemu_pids(marker: str) -> list[int]:
    """Live (not zombie) qemu-system processes whose command line mentions `marker`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            status = (proc / "status").read_text()
        except OSError:
            continue
        name = re.search(r"^Name:\s+(\S+)", status, re.M)
        st = re.search(r"^State:\s+(\S)", status, re.M)
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if name and name.group(1).startswith("qemu-system") and st and st.group(1) != "Z" and marker in cmdline:
            pids.append(int(proc.name))
    return pids


def test_killing_serialgate_leaves_no_qemu(vm):
    marker = str(vm["config"].parent)
    assert _qemu_pids(marker), "the VM should be running before the kill"
    vm["server"].proc.send_signal(signal.SIGKILL)
    vm["server"].proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _qemu_pids(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _qemu_pids(marker) == []
