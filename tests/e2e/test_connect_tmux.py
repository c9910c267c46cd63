"""`serialgate connect` as a person uses it: in a real terminal (a tmux pane), typing into the
console, Enter ~B then h for SysRq help, Enter ~? for the escapes, Enter ~. to leave; and the
terminal is back in cooked mode afterwards (`stty -a` run in the same pane), also when the
session is ended by SIGTERM.

Needs Debian's `tmux`. Each test runs its own tmux server (`tmux -L <name>`), killed at the end.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import DESIGN_EXAMPLE, _binary, _serve

REGION = "us-east-1"
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
INSTANCES = {"keys": "i-0e400000000000001", "signal": "i-0e400000000000002"}
WAIT = 20.0


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    if shutil.which("tmux") is None:
        pytest.fail("tmux is not installed (Debian package `tmux`); the interactive tests need it",
                    pytrace=False)
    workdir = tmp_path_factory.mktemp("connect-tmux")
    config = workdir / "tmux.toml"
    text = DESIGN_EXAMPLE.read_text().replace(
        'state_dir = "/var/lib/serialgate"', f'state_dir = "{workdir / "state"}"')
    for instance in INSTANCES.values():
        text += f'\n[[instances]]\nid = "{instance}"\naccount = "111122223333"\nconsole = "sim:"\n'
    config.write_text(text + "\n[throttle]\nrate_per_second = 1000.0\nburst = 1000\n")
    with _serve("connect-tmux", config, workdir) as server:
        fingerprint = subprocess.run(
            [str(_binary()), "host-key", "--config", str(config)], capture_output=True, text=True,
            check=True, timeout=30).stdout.split("\n")[1].strip()
        yield {"server": server, "fingerprint": fingerprint}


class Pane:
    """A detached tmux session on a private server, running one shell command."""

    def __init__(self, command: str, env: dict[str, str]):
        self.socket = f"sg-{uuid.uuid4().hex[:12]}"
        self.env = env
        self.tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", "t", command)

    def tmux(self, *args: str) -> str:
        r = subprocess.run(["tmux", "-L", self.socket, *args], env=self.env, capture_output=True,
                           text=True, timeout=10)
        assert r.returncode == 0, f"tmux {args}: {r.stderr}"
        return r.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", "t")

    def keys(self, *keys: str, literal: bool = False) -> None:
        self.tmux("send-keys", "-t", "t", *(["-l"] if literal else []), *keys)

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear within {timeout} s; screen:\n{screen}")
            time.sleep(0.05)

    def pane_pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "t", "#{pane_pid}").strip())

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], env=self.env,
                       capture_output=True, timeout=10)


def wait_file(path: Path, timeout: float = WAIT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {timeout} s")


def start(gw, tmp_path: Path, instance: str) -> tuple[Pane, Path, Path]:
    """Runs connect in a pane; afterwards the pane's shell writes the exit code and `stty -a`."""
    server = gw["server"]
    exit_file, stty_file = tmp_path / "exit", tmp_path / "stty"
    connect = shlex.join([
        str(_binary()), "connect", instance, "--region", REGION, "--endpoint-url", server.url,
        "--ssh-endpoint", f"127.0.0.1:{server.ssh_port}", "--host-key-fingerprint", gw["fingerprint"],
    ])
    command = (f"{connect}; echo $? > {shlex.quote(str(exit_file))}; "
               f"stty -a > {shlex.quote(str(stty_file))}; sleep 60")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_", "TMUX"))}
    env.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true",
               HOME=str(tmp_path), TERM="xterm")
    return Pane(f"sh -c {shlex.quote(command)}", env), exit_file, stty_file


def assert_cooked(stty: str) -> None:
    flags = stty.split()
    assert "icanon" in flags and "-icanon" not in flags, stty
    assert "echo" in flags and "-echo" not in flags, stty
    assert "isig" in flags and "opost" in flags, stty


def test_interactive_session_in_a_terminal(gw, tmp_path):
    pane, exit_file, stty_file = start(gw, tmp_path, INSTANCES["keys"])
    try:
        pane.wait_for("Escape character is '~'")
        pane.keys("Enter")
        pane.wait_for("sim login: ")
        pane.keys("root", "Enter")
        pane.wait_for("Password: ")
        pane.keys("secret", "Enter")
        pane.wait_for("root@sim:~# ")
        pane.keys("uname -r", "Enter")
        pane.wait_for("6.1.0-sim")
        # Enter ~B then h: the BREAK reaches the console, SysRq prints its help.
        pane.keys("Enter")
        pane.keys("~B", literal=True)
        time.sleep(0.2)
        pane.keys("h", literal=True)
        pane.wait_for("sysrq: HELP : loglevel")
        pane.keys("Enter")
        pane.keys("~?", literal=True)
        pane.wait_for("Supported escape sequences")
        # A resize is passed on without disturbing the session.
        pane.tmux("resize-window", "-t", "t", "-x", "100", "-y", "30")
        pane.keys("sysrq-count", "Enter")
        pane.wait_for("sysrq-count\n1\n")
        pane.keys("Enter")
        pane.keys("~.", literal=True)
        assert wait_file(exit_file).strip() == "0", pane.screen()
        pane.wait_for("closed.")
        assert_cooked(wait_file(stty_file))
    finally:
        pane.close()


def test_sigterm_restores_the_terminal(gw, tmp_path):
    pane, exit_file, stty_file = start(gw, tmp_path, INSTANCES["signal"])
    try:
        pane.wait_for("Escape character is '~'")
        pane.keys("Enter")
        pane.wait_for("sim login: ")
        # The pane's shell is our `sh -c`; its only child is serialgate.
        shell = pane.pane_pid()
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(children) == 1, children
        os.kill(int(children[0]), 15)
        assert wait_file(exit_file).strip() == "143", pane.screen()
        assert_cooked(wait_file(stty_file))
    finally:
        pane.close()
