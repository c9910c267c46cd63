"""Managed-VM benchmark, driven by scripts/bench-vm.sh (see there)."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

INSTANCE = "i-0123456789abcdef0"
RUNS = int(os.environ.get("RUNS", "3"))
FLOOD_LINES = int(os.environ.get("FLOOD_LINES", "200000"))
WORK = Path(".")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kvm_usable() -> bool:
    try:
        with open("/dev/kvm", "rb+"):
            pass
    except OSError:
        return False
    flags = Path("/proc/cpuinfo").read_text()
    return " vmx" in flags or " svm" in flags


class Serve:
    def __init__(self, binary: str, guest: str, accel: str, work: Path):
        self.api, self.ssh = free_port(), free_port()
        self.work = work
        self.config = work / f"{accel}.toml"
        self.config.write_text(f"""
state_dir = "{work / accel}"
[[accounts]]
id = "000000000000"
serial_console_access = true
[[accounts.credentials]]
access_key_id = "test"
secret_access_key = "test"
actions = ["*"]
[[instances]]
id = "{INSTANCE}"
account = "000000000000"
state = "stopped"
[instances.qemu]
kernel = "{guest}/vmlinuz"
initrd = "{guest}/initramfs.cpio.gz"
accel = "{accel}"
stop_timeout_seconds = 2
[sessions]
teardown_seconds = 0
[throttle]
rate_per_second = 100000.0
burst = 100000
""")
        self.proc = subprocess.Popen([binary, "serve", "--config", str(self.config), "--api-listen",
                                      f"127.0.0.1:{self.api}", "--ssh-listen", f"127.0.0.1:{self.ssh}"],
                                     stderr=open(work / f"{accel}.log", "wb"), stdin=subprocess.DEVNULL)
        self.ec2 = boto3.client("ec2", endpoint_url=f"http://127.0.0.1:{self.api}", region_name="us-east-1",
                                aws_access_key_id="test", aws_secret_access_key="test",
                                config=Config(retries={"total_max_attempts": 1}))
        deadline = time.monotonic() + 20
        while True:
            try:
                self.ec2.describe_instances()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def output(self) -> bytes:
        # botocore already base64-decodes GetConsoleOutput's Output.
        r = self.ec2.get_console_output(InstanceId=INSTANCE, Latest=True)
        return r.get("Output", "").encode("utf-8", "replace")

    def state(self) -> str:
        r = self.ec2.describe_instances(InstanceIds=[INSTANCE])
        return r["Reservations"][0]["Instances"][0]["State"]["Name"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def boot_times(s: Serve) -> tuple[list[float], list[float]]:
    first, prompt = [], []
    for _ in range(RUNS):
        if s.state() != "stopped":
            s.ec2.stop_instances(InstanceIds=[INSTANCE], Force=True)
            while s.state() != "stopped":
                time.sleep(0.05)
        before = s.output()
        t0 = time.monotonic()
        s.ec2.start_instances(InstanceIds=[INSTANCE])
        got_first = None
        while True:
            out = s.output()
            now = time.monotonic() - t0
            new = out[len(before):] if out.startswith(before) else out
            if got_first is None and out != before:
                got_first = now
            if b"login: " in new:
                first.append(got_first or now)
                prompt.append(now)
                break
            if now > 180:
                raise SystemExit("no login prompt within 180 s")
            time.sleep(0.02)
    return first, prompt


def ssh_flood(s: Serve, work: Path) -> tuple[float, float, float]:
    """Bytes/s of a `seq` flood read through an SSH session, and serialgate's CPU seconds."""
    key = work / "id"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    hk = subprocess.run([args.binary, "host-key", "--config", str(s.config), "--public-key-only"],
                        capture_output=True, text=True, check=True).stdout.strip()
    kh = work / "known_hosts"
    kh.write_text(f"[127.0.0.1]:{s.ssh} {hk}\n")
    s_client = boto3.client("ec2-instance-connect", endpoint_url=f"http://127.0.0.1:{s.api}", region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")
    s_client.send_serial_console_ssh_public_key(InstanceId=INSTANCE, SerialPort=0,
                                               SSHPublicKey=Path(f"{key}.pub").read_text())
    p = subprocess.Popen(["ssh", "-F", "/dev/null", "-tt", "-e", "none", "-i", str(key), "-p", str(s.ssh),
                          "-o", f"UserKnownHostsFile={kh}", "-o", "StrictHostKeyChecking=yes",
                          "-o", "KexAlgorithms=curve25519-sha256", f"{INSTANCE}.port0@127.0.0.1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(work / "ssh.stderr", "wb"))
    return drive_flood(lambda b: (p.stdin.write(b), p.stdin.flush()), lambda: p.stdout.read1(65536) or None,
                       s.proc.pid, lambda: p.kill())


def drive_flood(send, recv, cpu_pid, close) -> tuple[float, float, float]:
    buf = bytearray()
    lock = threading.Condition()

    def pump():
        while True:
            try:
                d = recv()
            except OSError:  # closed by `close()` at the end of the run
                return
            if d is None:
                return
            with lock:
                buf.extend(d)
                lock.notify_all()

    threading.Thread(target=pump, daemon=True).start()

    def expect(pat: bytes, since: int, timeout: float = 120) -> int:
        rx = re.compile(pat)
        end = time.monotonic() + timeout
        with lock:
            while True:
                m = rx.search(buf, since)
                if m:
                    return m.end()
                if time.monotonic() > end:
                    raise SystemExit(f"timeout waiting for {pat!r}: {bytes(buf[-300:])!r} (logs in {WORK})")
                lock.wait(0.5)

    send(b"\r")
    n = expect(rb"login: ", 0)
    send(b"root\r")
    n = expect(rb"Password: ", n)
    send(b"root\r")
    n = expect(rb"# ", n)
    cpu0 = cpu_seconds(cpu_pid) if cpu_pid else 0.0
    t0 = time.monotonic()
    send(f"seq 1 {FLOOD_LINES}; echo FLOOD-DONE\r".encode())
    end = expect(rb"\r\nFLOOD-DONE", n, timeout=600)
    dt = time.monotonic() - t0
    cpu = (cpu_seconds(cpu_pid) - cpu0) if cpu_pid else 0.0
    close()
    return (end - n) / dt, dt, cpu


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def direct_flood(guest: str, accel: str, work: Path) -> tuple[float, float, float]:
    """The same flood read straight from QEMU's telnet socket, no serialgate."""
    sock_path = work / f"direct-{accel}.sock"
    q = subprocess.Popen(["qemu-system-x86_64", "-accel", accel, "-machine", "pc", "-m", "256", "-nodefaults",
                          "-no-user-config", "-display", "none", "-monitor", "none", "-kernel", f"{guest}/vmlinuz",
                          "-initrd", f"{guest}/initramfs.cpio.gz", "-append", "console=ttyS0 panic=-1",
                          "-chardev", f"socket,id=s0,path={sock_path},server=on,wait=off,telnet=on",
                          "-serial", "chardev:s0"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                c = socket.socket(socket.AF_UNIX)
                c.connect(str(sock_path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

        def recv():
            d = c.recv(65536)
            # Strip telnet commands (IAC x y) and unescape IAC IAC; enough for QEMU's stream.
            out, i = bytearray(), 0
            while i < len(d):
                if d[i] == 255 and i + 1 < len(d):
                    if d[i + 1] == 255:
                        out.append(255)
                        i += 2
                    elif d[i + 1] in (251, 252, 253, 254):
                        i += 3
                    else:
                        i += 2
                    continue
                out.append(d[i])
                i += 1
            return bytes(out) if d else None

        return drive_flood(lambda b: c.sendall(b), recv, None, lambda: c.close())
    finally:
        q.kill()
        q.wait()


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--guest", required=True)
    args = ap.parse_args()
    accels = ["tcg"] + (["kvm"] if kvm_usable() else [])
    global WORK
    work = WORK = Path(tempfile.mkdtemp(prefix="sg-bench-vm-"))
    rows = []
    try:
        for accel in accels:
            s = Serve(args.binary, args.guest, accel, work)
            try:
                first, prompt = boot_times(s)
                rate, dt, cpu = ssh_flood(s, work)
            finally:
                s.stop()
            d_rate, d_dt, _ = direct_flood(args.guest, accel, work)
            rows.append((accel, first, prompt, rate, dt, cpu, d_rate))
    except BaseException:
        print(f"logs kept in {work}", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)
    print(f"\nserialgate managed VM benchmark ({RUNS} boots, flood = seq 1 {FLOOD_LINES})")
    for accel, first, prompt, rate, dt, cpu, d_rate in rows:
        print(f"  [{accel}] StartInstances -> first console byte: median {statistics.median(first):.2f} s "
              f"(min {min(first):.2f}, max {max(first):.2f})")
        print(f"  [{accel}] StartInstances -> login prompt:       median {statistics.median(prompt):.2f} s "
              f"(min {min(prompt):.2f}, max {max(prompt):.2f})")
        print(f"  [{accel}] flood through SSH session: {rate / 1024:.0f} KiB/s in {dt:.1f} s, "
              f"serialgate CPU {cpu:.2f} s ({100 * cpu / dt:.0f}% of one core)")
        print(f"  [{accel}] flood read from QEMU's socket directly: {d_rate / 1024:.0f} KiB/s; "
              f"ratio SSH/direct {rate / d_rate:.2f}")
    if "kvm" not in accels:
        print("  [kvm] not measured: /dev/kvm missing or the CPU does not advertise vmx/svm")


if __name__ == "__main__":
    main()
