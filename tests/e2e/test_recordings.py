"""Session recordings (asciicast v2), with real clients and Debian's `asciinema`.

Every SSH session is recorded in `state_dir/recordings/`: what the user saw (`o`), the terminal's
size changes (`r`), and what they typed (`i`) only with `[recordings] input = true`.

- a paramiko session with a 100×30 pty on the `sim:` console logs in, resizes and runs a command;
  its recording has the pty's size, the resize, every byte the client received, and no input
  (the password is typed, not echoed); `asciinema cat` and `asciinema play` print it, and
  `serialgate recordings play` prints the same; `export` gives the file; `list` filters by
  instance and time; the audit records of the session name the recording;
- with input kept, an OpenSSH session's typing is recorded; a character split across console
  writes stays whole; a spectator's view is recorded too, and named in its audit record;
- retention deletes recordings past `max_age_days` when the server starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
from conftest import _binary, _serve
from ssh_session import Session
from test_console_log import Scripted

REGION = "us-east-1"
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SIM = "i-0e000000000000001"
SCRIPTED = "i-0e000000000000002"
TIMEOUT = 15.0


@contextlib.contextmanager
def server(workdir: Path, recordings: str = "", before_start=None):
    """A node with the `sim:` console and a scripted one; `recordings` goes into `[recordings]`."""
    scripted = Scripted(workdir / "scripted.sock")
    config = workdir / "serialgate.toml"
    config.write_text(f"""
region = "{REGION}"
state_dir = "{workdir / 'state'}"

[[accounts]]
id = "111122223333"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
actions = ["*"]

[[instances]]
id = "{SIM}"
account = "111122223333"
console = "sim:"

[[instances]]
id = "{SCRIPTED}"
account = "111122223333"
console = "unix:{scripted.path}"

[sessions]
teardown_seconds = 1

[recordings]
{recordings}
""")
    (workdir / "state").mkdir(mode=0o700, exist_ok=True)
    if before_start:
        before_start(workdir / "state" / "recordings")
    try:
        with _serve("recordings", config, workdir) as srv:
            host_key = subprocess.run(
                [str(_binary()), "host-key", "--config", str(config), "--public-key-only"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.strip()
            known_hosts = workdir / "known_hosts"
            known_hosts.write_text(f"[127.0.0.1]:{srv.ssh_port} {host_key}\n")
            yield {"server": srv, "config": config, "known_hosts": known_hosts, "dir": workdir,
                   "scripted": scripted, "recordings": workdir / "state" / "recordings"}
    finally:
        scripted.close()


def serialgate(node, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The CLI as a user runs it, with credentials for `push` and a home of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
    env.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, HOME=str(node["dir"]),
               XDG_STATE_HOME=str(node["dir"] / "state"))
    r = subprocess.run([str(_binary()), *args], env=env, capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    if check:
        assert r.returncode == 0, r.stderr.decode()
    return r


def push(node, inst: str, key: Path, *extra: str):
    serialgate(node, "push", inst, "--key", f"{key}.pub", "--endpoint-url", node["server"].url,
               "--region", REGION, *extra)


def new_key(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True, timeout=30)
    return path


def audit(node, inst: str) -> list[dict]:
    r = serialgate(node, "audit", "--config", str(node["config"]), "--json", "--instance", inst)
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


def wait_for(what: str, check, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def ended_sessions(node, inst: str, target: str = "port0") -> list[dict]:
    return [r for r in audit(node, inst) if r["kind"] == "session-end" and r["target"] == target]


def listed(node, *args: str) -> list[dict]:
    r = serialgate(node, "recordings", "list", "--config", str(node["config"]), "--json", *args)
    return [json.loads(line) for line in r.stdout.decode().splitlines() if line.strip()]


def events(path: Path) -> tuple[dict, list[list]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[0]), [json.loads(line) for line in lines[1:]]


def under_a_tty(command: list[str], out: Path) -> None:
    """Runs `command` with a terminal (asciinema opens /dev/tty), its stdout into `out`."""
    inner = f"{shlex.join(command)} > {shlex.quote(str(out))}"
    r = subprocess.run(["script", "-q", "-e", "-c", inner, "/dev/null"], capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout, r.stderr)


def exchange(chan: paramiko.Channel, buf: bytearray, data: bytes, marker: bytes) -> None:
    """Sends `data`, then reads into `buf` until `marker` arrives after it."""
    since = len(buf)
    chan.send(data)
    deadline = time.monotonic() + TIMEOUT
    while marker not in buf[since:]:
        assert time.monotonic() < deadline, f"no {marker!r} in {bytes(buf[-300:])!r}"
        data = chan.recv(4096)
        assert data, f"session ended early: {bytes(buf[-300:])!r}"
        buf += data


def test_a_session_is_recorded_and_asciinema_plays_it(tmp_path):
    key = new_key(tmp_path, "id")
    with server(tmp_path) as node:
        push(node, SIM, key)
        client = paramiko.SSHClient()
        client.load_host_keys(str(node["known_hosts"]))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect("127.0.0.1", port=node["server"].ssh_port, username=f"{SIM}.port0",
                       pkey=paramiko.Ed25519Key.from_private_key_file(str(key)),
                       look_for_keys=False, allow_agent=False, timeout=TIMEOUT)
        received = bytearray()
        try:
            chan = client.invoke_shell(term="xterm-256color", width=100, height=30)
            chan.settimeout(TIMEOUT)
            exchange(chan, received, b"\r", b"sim login: ")
            exchange(chan, received, b"root\r", b"Password: ")
            exchange(chan, received, b"hunter2-secret\r", b"root@sim:~# ")
            chan.resize_pty(width=132, height=43)
            exchange(chan, received, b"uname -r\r", b"6.1.0-sim\r\nroot@sim:~# ")
            exchange(chan, received, b"exit\r", b"sim login: ")
        finally:
            client.close()
        # The end record is written once the recording is complete.
        end = wait_for("the session's end record", lambda: ended_sessions(node, SIM))[0]

        rec = listed(node)
        assert len(rec) == 1, rec
        rec = rec[0]
        rid = rec["id"]
        assert rid.startswith(time.strftime("%Y", time.gmtime())) and f"-{SIM}-port0-" in rid, rid
        assert end["recording"] == rid
        start = [r for r in audit(node, SIM) if r["kind"] == "session-start"]
        assert [r["recording"] for r in start] == [rid]

        path = node["recordings"] / f"{rid}.cast"
        assert Path(rec["path"]) == path
        assert path.stat().st_mode & 0o777 == 0o600
        assert node["recordings"].stat().st_mode & 0o777 == 0o700
        header, evs = events(path)
        assert (header["version"], header["width"], header["height"]) == (2, 100, 30)
        assert header["env"]["TERM"] == "xterm-256color"
        sg = header["serialgate"]
        assert (sg["id"], sg["instance"], sg["port"], sg["spectator"], sg["input"]) == (rid, SIM, 0, False, False)
        assert sg["principal"].startswith("arn:aws:iam::111122223333:")
        assert abs(header["timestamp"] - time.time()) < 120
        # Output is every byte the client received, in order; times never go back; the resize
        # is there; input is not (the password appears nowhere).
        assert "".join(e[2] for e in evs if e[1] == "o") == received.decode()
        times = [e[0] for e in evs]
        assert times == sorted(times)
        assert ["r", "132x43"] in [e[1:] for e in evs]
        assert not [e for e in evs if e[1] == "i"]
        assert "hunter2-secret" not in path.read_text()
        assert rec["duration"] == evs[-1][0] and rec["size"] == path.stat().st_size

        # asciinema reads it: `cat` prints the output, `play` plays it.
        cat = tmp_path / "cat.out"
        under_a_tty(["asciinema", "cat", str(path)], cat)
        assert cat.read_bytes() == received
        played = tmp_path / "play.out"
        under_a_tty(["asciinema", "play", "-s", "20", "-i", "0.1", str(path)], played)
        assert played.read_bytes() == received
        # serialgate's own player prints the same, found by a prefix of the id.
        mine = serialgate(node, "recordings", "play", "--config", str(node["config"]), rid[:-4],
                          "--speed", "50", "--idle-limit", "0.1")
        assert mine.stdout == received
        exported = serialgate(node, "recordings", "export", "--config", str(node["config"]), rid)
        assert exported.stdout == path.read_bytes()

        # The table and the filters.
        table = serialgate(node, "recordings", "list", "--config", str(node["config"])).stdout.decode()
        assert rid in table and "arn:aws:iam::111122223333:" in table, table
        assert [r["id"] for r in listed(node, "--instance", SIM, "--since", "1h")] == [rid]
        assert listed(node, "--instance", SCRIPTED) == []
        assert listed(node, "--since", "2099-01-01T00:00:00Z") == []
        bad = serialgate(node, "recordings", "list", "--config", str(node["config"]), "--instance", "nope", check=False)
        assert bad.returncode != 0 and b"not an instance id" in bad.stderr
        for wrong in ["no-such-recording", "../serialgate.toml"]:
            r = serialgate(node, "recordings", "play", "--config", str(node["config"]), wrong, check=False)
            assert r.returncode != 0 and r.stdout == b"", r
            assert b"recording" in r.stderr, r.stderr


def test_input_when_kept_split_characters_and_spectators_are_recorded(tmp_path):
    key = new_key(tmp_path, "id")
    with server(tmp_path, recordings="input = true") as node:
        scripted: Scripted = node["scripted"]
        push(node, SCRIPTED, key)
        s = Session(["ssh", "-F", "/dev/null", "-i", str(key), "-p", str(node["server"].ssh_port),
                     "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={node['known_hosts']}",
                     "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-tt", f"{SCRIPTED}.port0@127.0.0.1"])
        spectator_key = new_key(tmp_path, "spectator")
        try:
            # Once what the user types reaches the console, the session is attached.
            s.send(b"first\r")
            scripted.wait_received(b"first\r")
            scripted.emit(b"ready\r\n")
            s.expect(rb"ready")
            push(node, SCRIPTED, spectator_key, "--spectate")
            v = Session(["ssh", "-F", "/dev/null", "-i", str(spectator_key), "-p", str(node["server"].ssh_port),
                         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={node['known_hosts']}",
                         "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-tt",
                         f"{SCRIPTED}.port0.spectate.replay-lines=0@127.0.0.1"])
            try:
                s.expect(rb"is now watching this console")
                s.send(b"typed-by-the-user\r")
                scripted.wait_received(b"typed-by-the-user\r")
                # A character split across two console writes, well apart.
                euro = "café €uro\r\n".encode()
                cut = euro.index(b"\xe2") + 1
                scripted.emit(euro[:cut])
                time.sleep(0.2)
                scripted.emit(euro[cut:])
                s.expect("€uro".encode())
                v.expect("€uro".encode())
            finally:
                v.send(b"~.")
                v.close()
        finally:
            s.send(b"~.")
            s.close()
        end = wait_for("the session's end record", lambda: ended_sessions(node, SCRIPTED))[0]
        spect = wait_for("the spectator's end record", lambda: ended_sessions(node, SCRIPTED, "spectate:port0"))[0]
        recs = {r["header"]["serialgate"]["spectator"]: r for r in listed(node, "--instance", SCRIPTED)}
        assert set(recs) == {False, True}, recs
        assert end["recording"] == recs[False]["id"]
        assert spect["recording"] == recs[True]["id"] and "-spectator-" in spect["recording"]

        header, evs = events(Path(recs[False]["path"]))
        assert header["serialgate"]["input"] is True
        # No pty size from a client on a pipe: the default 80x24.
        assert (header["width"], header["height"]) == (80, 24)
        typed = "".join(e[2] for e in evs if e[1] == "i")
        assert "typed-by-the-user\r" in typed, evs
        out = "".join(e[2] for e in evs if e[1] == "o")
        assert "ready\r\n" in out and "café €uro\r\n" in out and "\ufffd" not in out, out
        assert "is now watching this console" in out

        _, spectator_evs = events(Path(recs[True]["path"]))
        seen = "".join(e[2] for e in spectator_evs if e[1] == "o")
        # It joined after "ready" and asked for no history.
        assert seen == "café €uro\r\n", seen
        # What a spectator types never reaches the console, and is not recorded as input.
        assert not [e for e in spectator_evs if e[1] == "i"]
        cat = tmp_path / "cat.out"
        under_a_tty(["asciinema", "cat", recs[True]["path"]], cat)
        assert cat.read_bytes() == seen.encode()


def test_retention_deletes_recordings_past_their_age_at_start(tmp_path):
    header = {"version": 2, "width": 80, "height": 24, "timestamp": 1_700_000_000}
    old_path = None

    def plant(directory: Path):
        nonlocal old_path
        directory.mkdir(mode=0o700)
        for name, age_days in (("20231114T221320Z-old", 3), ("20261101T000000Z-recent", 0)):
            path = directory / f"{name}.cast"
            path.write_text(json.dumps(header) + "\n[0.5, \"o\", \"hello\"]\n")
            stamp = time.time() - age_days * 86_400
            os.utime(path, (stamp, stamp))
        old_path = directory / "20231114T221320Z-old.cast"

    with server(tmp_path, recordings="max_age_days = 2", before_start=plant) as node:
        wait_for("the old recording to go", lambda: not old_path.exists())
        assert [r["id"] for r in listed(node)] == ["20261101T000000Z-recent"]


@pytest.fixture(autouse=True)
def _needs_asciinema():
    assert subprocess.run(["asciinema", "--version"], capture_output=True, timeout=30).returncode == 0, \
        "asciinema is not installed (scripts/test.sh installs it)"
