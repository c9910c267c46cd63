"""A VM serialgate runs, in a cluster: three `serialgate serve` nodes on one `redis-server`, one
`[instances.qemu]` instance (the guest scripts/vm-guest.sh prepares, under TCG), driven with the
AWS CLI, boto3 and OpenSSH.

The VM runs on the node that owns its console and nowhere else: a sampler thread scans the
process table for the whole module and the last test checks it never saw two QEMUs for the
instance. Every node's DescribeInstances agrees; a key pushed on one node opens a session
through another, and GetConsoleOutput asked of a third has what the session typed; stop, start
and reboot sent to nodes that do not own the VM are carried out by the one that does; `kill -9`
of the owner moves the console and the VM to a survivor (the killed node's QEMU dies with it);
a SIGTERM of the next owner hands the VM to the last node at once.

The tests run in file order and share the cluster, as test_vm.py shares its VM.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, _binary, _free_ports, _serve
from ssh_session import Session
from test_cluster import ec2
from test_multinode import (  # noqa: F401  (fixtures)
    AK,
    ACCOUNT,
    LEASE_S,
    REGION,
    SK,
    cluster_status,
    key,
    owners,
    ready,
    redis,
    try_push,
    wait_for,
)
from test_ssh_openssh import push, ssh_args

INSTANCE = "i-0c3000000000000a1"
SECRET = "cluster-vm-test-secret-0123456789"
BOOT_TIMEOUT = 120.0
# A clean stop is the guest's own poweroff on the ACPI button; stop_timeout_seconds bounds it.
STOP_TIMEOUT = 30.0
SAMPLE_EVERY_S = 0.05


# --- the process table ------------------------------------------------------------------------


def qemu_processes(marker: str) -> dict[int, str]:
    """Live (not zombie) qemu-system processes whose command line contains `marker`: pid ->
    command line. `comm` first: most processes are ruled out by one small read."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if not (proc / "comm").read_text().startswith("qemu-system"):
                continue
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (proc / "status").read_text()
        except OSError:
            continue
        st = re.search(r"^State:\s+(\S)", status, re.M)
        if st and st.group(1) not in ("Z", "X") and marker in cmdline:
            found[int(proc.name)] = cmdline
    return found


def vm_marker(node=None) -> str:
    """What a QEMU command line for the instance contains (its sockets are under the node's
    state_dir, in vm/INSTANCE/): for one node, or for any."""
    tail = f"/vm/{INSTANCE}/"
    return f"{node['state_dir']}{tail}" if node else tail


class Sampler(threading.Thread):
    """Counts the instance's QEMU processes every SAMPLE_EVERY_S for as long as it runs and
    keeps the largest count, with the processes of every sample that saw more than one."""

    def __init__(self):
        super().__init__(daemon=True)
        self.halt = threading.Event()
        self.samples = 0
        self.max = 0
        self.overlaps: list[tuple[float, dict[int, str]]] = []
        self.error: BaseException | None = None
        self.started_at = time.monotonic()

    def run(self):
        try:
            while not self.halt.is_set():
                found = qemu_processes(vm_marker())
                self.samples += 1
                self.max = max(self.max, len(found))
                if len(found) > 1:
                    self.overlaps.append((time.monotonic() - self.started_at, found))
                self.halt.wait(SAMPLE_EVERY_S)
        except BaseException as e:  # noqa: BLE001  (reported by the tests, not lost in a thread)
            self.error = e

    def check(self) -> None:
        assert self.error is None, f"the sampler failed: {self.error!r}"
        assert self.is_alive(), "the sampler stopped"
        assert self.max <= 1, f"two QEMUs for {INSTANCE} at once: {self.overlaps[:3]}"


# --- the cluster ------------------------------------------------------------------------------


def vm_node_config(workdir: Path, name: str, redis, guest: Path) -> tuple[Path, Path]:
    """A node's configuration (test_cluster.node_config takes console URIs only): the one VM,
    with the same kernel and initramfs paths on every node. Returns (config, state_dir)."""
    state_dir = workdir / name
    path = workdir / f"{name}.toml"
    path.write_text(
        f"""region = "{REGION}"
state_dir = "{state_dir}"

[store]
redis = "{redis.url}"
lease_seconds = {LEASE_S}
timeout_ms = 500

[cluster]
node = "{name}"
listen = "127.0.0.1:{_free_ports(1)[0]}"
secret = "{SECRET}"

[sessions]
teardown_seconds = 1

[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
actions = ["*"]

[[instances]]
id = "{INSTANCE}"
account = "{ACCOUNT}"
instance_type = "t3.micro"

[instances.qemu]
kernel = "{guest / 'vmlinuz'}"
initrd = "{guest / 'initramfs.cpio.gz'}"
accel = "tcg"
stop_timeout_seconds = 10
"""
    )
    return path, state_dir


@pytest.fixture(scope="module")
def sampler():
    s = Sampler()
    s.start()
    yield s
    s.halt.set()
    s.join(timeout=10)


@pytest.fixture(scope="module")
def ns(tmp_path_factory, redis, sampler):
    """Three nodes, node0…node2, once each answers /ready and the console has an owner."""
    guest = subprocess.run([str(REPO_ROOT / "scripts" / "vm-guest.sh")], capture_output=True, text=True,
                           timeout=600)
    assert guest.returncode == 0, guest.stderr
    guest_dir = Path(guest.stdout.strip().splitlines()[-1])
    workdir = tmp_path_factory.mktemp("cluster-vm")
    known_hosts = workdir / "known_hosts"
    with contextlib.ExitStack() as stack:
        out = []
        for i in range(3):
            name = f"node{i}"
            config, state_dir = vm_node_config(workdir, name, redis, guest_dir)
            host_key = subprocess.run(
                [str(_binary()), "host-key", "--config", str(config), "--public-key-only"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.strip()
            server = stack.enter_context(_serve(name, config, workdir))
            with open(known_hosts, "a") as f:
                f.write(f"[127.0.0.1]:{server.ssh_port} {host_key}\n")
            out.append({"server": server, "known_hosts": known_hosts, "config": config, "name": name,
                        "state_dir": state_dir})
        for node in out:
            wait_for("/ready", lambda: ready(node)[0] == 200, timeout=LEASE_S + 10)
        wait_for("the VM's console to have an owner", lambda: owner(out), timeout=15)
        yield out
        # Killed rather than stopped: a clean stop hands the VM to the next node, which would
        # boot it again only to be stopped in turn.
        for node in out:
            if node["server"].proc.poll() is None:
                node["server"].proc.send_signal(signal.SIGKILL)
                node["server"].proc.wait(timeout=10)
        wait_for("no QEMU after the nodes", lambda: not qemu_processes(vm_marker()), timeout=10)


def alive(ns) -> list[dict]:
    return [n for n in ns if n["server"].proc.poll() is None]


def owner(ns) -> str | None:
    """The node that owns the console, as the store has it (any node's config reads it)."""
    return owners(alive(ns)[0]).get(INSTANCE)


def owner_node(ns) -> dict:
    name = owner(ns)
    node = next((n for n in ns if n["name"] == name), None)
    assert node is not None, f"the console's owner is {name!r}, not one of the nodes"
    return node


def non_owners(ns) -> list[dict]:
    name = owner(ns)
    return [n for n in alive(ns) if n["name"] != name]


def state(node) -> str:
    r = ec2(node).describe_instances(InstanceIds=[INSTANCE])
    return r["Reservations"][0]["Instances"][0]["State"]["Name"]


def wait_states(nodes: list[dict], wanted: str, timeout: float) -> None:
    """Every node's DescribeInstances says `wanted` (each may get there at its own time)."""
    for node in nodes:
        seen: list[str] = []
        try:
            wait_for(f"{node['name']} to say {wanted}", lambda: seen.append(state(node)) or seen[-1] == wanted,
                     timeout=timeout, every=0.2)
        except AssertionError:
            raise AssertionError(f"{node['name']} says {seen[-1] if seen else None}, not {wanted}, "
                                 f"after {timeout} s") from None


def one_vm_on(node) -> int:
    """The one QEMU of the instance, on `node`: its pid."""
    everywhere = qemu_processes(vm_marker())
    mine = qemu_processes(vm_marker(node))
    assert len(everywhere) == 1 and set(mine) == set(everywhere), \
        f"QEMUs: {everywhere}; expected one under {node['state_dir']}"
    return next(iter(mine))


def login(s: Session, since: int = 0) -> int:
    s.send(b"\r")
    n = s.expect(rb"login: ", since, timeout=BOOT_TIMEOUT)
    s.send(b"root\r")
    n = s.expect(rb"Password: ", n)
    s.send(b"root\r")
    return s.expect(rb"serialgate-vm# ", n)


def session(node, key: Path) -> Session:
    return Session(ssh_args(node, key, f"{INSTANCE}.port0", "-tt"))


def leave(s: Session) -> None:
    with contextlib.suppress(OSError):
        s.send(b"\r~.")
    s.close()


def push_when_free(node, key: Path) -> None:
    """A push once the previous session's teardown (1 s) has freed the slot."""
    wait_for("the slot to be free", lambda: try_push(node, INSTANCE, key) == "ok", timeout=15, every=0.3)


# --- tests ------------------------------------------------------------------------------------


def test_one_owner_one_vm_running_everywhere(ns, sampler):
    nodes, consoles = cluster_status(ns[0])
    assert {n["node"] for n in nodes} == {n["name"] for n in ns}, nodes
    owned_by = consoles[INSTANCE]["owner"]
    assert owned_by in {n["name"] for n in ns}, consoles
    wait_states(ns, "running", BOOT_TIMEOUT)
    one_vm_on(owner_node(ns))
    assert owner(ns) == owned_by, "the console changed owners while nothing happened"
    sampler.check()


def test_push_on_one_node_session_through_another_output_from_a_third(ns, key, sampler):
    own = owner_node(ns)
    pusher, via = non_owners(ns)
    push(pusher, INSTANCE, key)  # the AWS CLI
    s = session(via, key)
    try:
        n = login(s)
        token = secrets.token_hex(6)
        # Typed with a break in it, so that the command's echo is not the output.
        s.send(f'echo TOKEN-""{token}\r'.encode())
        s.expect(rf"\r\nTOKEN-{token}\r\n".encode(), n)
        # boto3 decodes GetConsoleOutput's base64 as the AWS CLI does.
        wait_for("the token in the owner's console output",
                 lambda: f"TOKEN-{token}" in ec2(own).get_console_output(InstanceId=INSTANCE, Latest=True)["Output"])
    finally:
        leave(s)
    one_vm_on(own)
    sampler.check()


def test_stop_and_start_through_nodes_that_do_not_own_the_vm(ns, sampler):
    stopper, starter = non_owners(ns)
    r = ec2(stopper).stop_instances(InstanceIds=[INSTANCE])
    assert r["StoppingInstances"][0]["PreviousState"]["Name"] == "running", r
    wait_states(ns, "stopped", STOP_TIMEOUT)
    wait_for("no QEMU once stopped", lambda: not qemu_processes(vm_marker()), timeout=10)
    r = ec2(starter).start_instances(InstanceIds=[INSTANCE])
    change = r["StartingInstances"][0]
    assert change["PreviousState"]["Name"] == "stopped", change
    assert change["CurrentState"]["Name"] == "pending", change
    wait_states(ns, "running", BOOT_TIMEOUT)
    one_vm_on(owner_node(ns))
    sampler.check()


def test_reboot_through_a_node_that_does_not_own_the_vm_while_logged_in(ns, key, sampler):
    own = owner_node(ns)
    qemu = one_vm_on(own)
    via, rebooter = non_owners(ns)
    push_when_free(rebooter, key)
    s = session(via, key)
    try:
        n = login(s)
        ec2(rebooter).reboot_instances(InstanceIds=[INSTANCE])
        n = s.expect(rb"Linux version", n, timeout=BOOT_TIMEOUT)
        s.expect(rb"login: ", n, timeout=BOOT_TIMEOUT)
    finally:
        leave(s)
    # A reboot resets the guest; the VM stays where it was.
    assert one_vm_on(own) == qemu
    wait_states(ns, "running", 15)
    sampler.check()


def test_killing_the_owner_moves_the_vm_to_a_survivor(ns, key, sampler):
    victim = owner_node(ns)
    old_qemu = one_vm_on(victim)
    victim["server"].proc.send_signal(signal.SIGKILL)
    victim["server"].proc.wait(timeout=10)
    killed = time.monotonic()
    survivors = alive(ns)
    # QEMU dies with the node that started it (pdeathsig), long before its lease runs out.
    wait_for("the killed node's QEMU to go", lambda: old_qemu not in qemu_processes(vm_marker()), timeout=5)
    new_name = wait_for("a survivor to take the console",
                        lambda: (o := owner(ns)) not in (None, victim["name"]) and o, timeout=LEASE_S + 10)
    new_owner = next(n for n in survivors if n["name"] == new_name)
    wait_for("the VM on the new owner", lambda: qemu_processes(vm_marker(new_owner)), timeout=15)
    started = time.monotonic() - killed
    wait_states(survivors, "running", BOOT_TIMEOUT)
    took = time.monotonic() - killed
    print(f"\nkill -9 of the owner: a QEMU on {new_name} after {started:.1f} s, "
          f"running on every survivor after {took:.1f} s")
    assert took < LEASE_S + BOOT_TIMEOUT / 2, f"failover took {took:.1f} s"
    one_vm_on(new_owner)
    # A new session, relayed through the other survivor, reaches the new VM's shell.
    via = next(n for n in survivors if n is not new_owner)
    push_when_free(new_owner, key)
    s = session(via, key)
    try:
        login(s)
    finally:
        leave(s)
    one_vm_on(new_owner)
    sampler.check()


def test_a_clean_stop_hands_the_vm_over_at_once(ns, key, sampler):
    """SIGTERM of the owner: it kills its QEMU and releases the console, and the last node
    starts the VM without waiting for a lease to run out."""
    leaving = owner_node(ns)
    old_qemu = one_vm_on(leaving)
    heir = next(n for n in alive(ns) if n is not leaving)
    leaving["server"].proc.send_signal(signal.SIGTERM)
    assert leaving["server"].proc.wait(timeout=30) == 0
    stopped = time.monotonic()
    assert old_qemu not in qemu_processes(vm_marker()), "the stopped node left its QEMU behind"
    wait_for("the VM on the last node", lambda: qemu_processes(vm_marker(heir)), timeout=LEASE_S + 10)
    handed = time.monotonic() - stopped
    wait_states([heir], "running", BOOT_TIMEOUT)
    print(f"\nSIGTERM of the owner: a QEMU on {heir['name']} {handed:.1f} s after it stopped")
    # A released console is taken within a second, well inside a lease.
    assert handed < LEASE_S, f"the handover took {handed:.1f} s"
    push_when_free(heir, key)
    s = session(heir, key)
    try:
        login(s)
    finally:
        leave(s)
    one_vm_on(heir)
    sampler.check()

def test_at_no_instant_two_vms(sampler):
    sampler.check()
    # It did watch: many samples, and it saw the VM.
    assert sampler.samples > 100 and sampler.max == 1, (sampler.samples, sampler.max)
    print(f"\nsampler: {sampler.samples} scans, at most {sampler.max} QEMU at once")
