"""README.md, run as a newcomer runs it: every block in order, in one shell on a terminal.

The quick start's server runs as the reader's first terminal (on free ports, against a fresh
home directory, so a fresh state directory and known_hosts); every other block is typed into one
interactive bash on a pseudo-terminal, so what one block exports the next one sees, and OpenSSH
and `serialgate connect` get a real terminal. Each block says in its marker what must appear
(`readme_blocks.py`); a failing command ends the shell (`set -e`) and fails the test with the
output. The substitutions are the ones a second machine would need: free ports for 4580 and 2222,
a private directory for /tmp/, the built binary as `serialgate`, `serialgate connect` told the
SSH port (`SERIALGATE_SSH_ENDPOINT`, as it would otherwise assume 2222), and OpenSSH told where the
fresh home's known_hosts is (it reads `~` from the password database, not from $HOME).
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import termios
import threading
import time
from pathlib import Path

import readme_blocks
from conftest import REPO_ROOT, Server, _binary, _free_ports, _wait_healthy

README = REPO_ROOT / "README.md"
# Printed by bash each time it is ready for the next command line: after an interactive
# command has exited, this is the sign that the terminal belongs to the shell again.
PROMPT = "[readme]$ "


def _controlling_terminal() -> None:
    """In the child: a session of its own with the pty (its stdin) as controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """An interactive bash on a pseudo-terminal; everything it prints is kept."""

    def __init__(self, env: dict[str, str], cwd: Path):
        master, slave = os.openpty()
        self.master = master
        self.proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile", "-i"], stdin=slave, stdout=slave, stderr=slave,
            env=env, cwd=cwd, start_new_session=True, preexec_fn=_controlling_terminal)
        os.close(slave)
        self.out = bytearray()
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()
        # No echo of what is typed (the output is then what the commands print), no job control
        # (background jobs stay in the shell's process group, so they end with it), and every
        # failing command reported (the block's marker may allow one, e.g. an ssh session that
        # ends with its escape exits 255).
        self.type(f"stty -echo; set +m; set -o pipefail; PS1='{PROMPT}'; PS2=''; "
                  "trap 'echo \"README_FAILED status=$? command=$BASH_COMMAND\"' ERR\n")

    def _pump(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                chunk = b""
            with self.cond:
                if chunk:
                    self.out += chunk
                self.cond.notify_all()
            if not chunk:
                return

    def type(self, text: str) -> None:
        data = text.encode()
        while data:
            n = os.write(self.master, data[:1024])
            data = data[n:]

    def wait_for(self, pattern: str, since: int, deadline: float, what: str, failed=None) -> re.Match:
        """Waits for `pattern` (a regex) in the output after byte offset `since`; `failed(printed)`
        may raise at once when the block has already failed, rather than waiting out the
        deadline."""
        rx = re.compile(pattern.encode())
        with self.cond:
            while True:
                m = rx.search(self.out, since)
                if m:
                    return m
                if failed is not None:
                    failed(self.out[since:].decode(errors="replace"))
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    why = "the shell exited" if self.proc.poll() is not None else "timed out"
                    tail = self.out[since:].decode(errors="replace")[-3000:]
                    raise AssertionError(f"{what}: {why} waiting for /{pattern}/; the block printed:\n{tail}")
                self.cond.wait(min(left, 0.5))

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        os.close(self.master)


class Substitutions:
    """What differs on this machine from the reader's: ports, /tmp/, the binary's name."""

    def __init__(self, api: int, ssh: int, tmp: Path, bin_dir: Path):
        self.rules = [
            (re.compile(r"cargo run --release -p serialgate --"), "serialgate"),
            (re.compile(r"target/release/serialgate"), "serialgate"),
            (re.compile(r"\$PWD/target/release"), str(bin_dir)),
            (re.compile(r"(?<![0-9])4580(?![0-9])"), str(api)),
            (re.compile(r"(?<![0-9])2222(?![0-9])"), str(ssh)),
            (re.compile(r"/tmp/"), f"{tmp}/"),
        ]

    def __call__(self, text: str) -> str:
        for rx, to in self.rules:
            text = rx.sub(to, text)
        return text


def test_every_block_has_a_marker():
    _, problems = readme_blocks.blocks(README)
    assert not problems, "\n".join(problems)


def test_the_readme_runs_as_written(tmp_path):
    blocks, problems = readme_blocks.blocks(README)
    assert not problems, "\n".join(problems)
    home, tmp, bin_dir = tmp_path / "home", tmp_path / "tmp", tmp_path / "bin"
    for d in (home, tmp, bin_dir):
        d.mkdir()
    (bin_dir / "serialgate").symlink_to(_binary())
    # OpenSSH takes `~` from the password database, not $HOME: point it at the fresh home.
    (bin_dir / "ssh").write_text('#!/bin/sh\nexec /usr/bin/ssh -o UserKnownHostsFile="$HOME/.ssh/known_hosts" "$@"\n')
    (bin_dir / "ssh").chmod(0o755)
    api, ssh = _free_ports(2)
    subst = Substitutions(api, ssh, tmp, bin_dir)
    venv_bin = Path(os.environ.get("VIRTUAL_ENV", REPO_ROOT / ".venv")) / "bin"
    env = {
        "PATH": f"{bin_dir}:{venv_bin}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(home), "TERM": "xterm", "LANG": "C.UTF-8", "NO_COLOR": "1",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true", "CARGO_TARGET_DIR": str(tmp_path / "no-cargo-here"),
        # `serialgate connect --endpoint-url` assumes SSH on port 2222 of the same host.
        "SERIALGATE_SSH_ENDPOINT": f"127.0.0.1:{ssh}",
    }
    server: subprocess.Popen | None = None
    server_log = tmp_path / "server.log"
    terminal = Terminal(env, REPO_ROOT)
    try:
        for n, block in enumerate(blocks):
            if block.mode == "illustrative":
                continue
            if block.mode == "server":
                first = subst(block.text.splitlines()[0].split("#")[0]).split()
                assert first[:2] == ["serialgate", "serve"], (block.where(), first)
                with open(server_log, "wb") as log:
                    server = subprocess.Popen(
                        first + ["--api-listen", f"127.0.0.1:{api}", "--ssh-listen", f"127.0.0.1:{ssh}"],
                        env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                        start_new_session=True)
                _wait_healthy(Server("quick start", f"http://127.0.0.1:{api}", api, ssh, README, server, server_log))
                continue
            if block.mode == "config":
                path = tmp / f"readme-{block.line}.toml"
                path.write_text(subst(block.text))
                r = subprocess.run(["serialgate", "config", "--config", str(path)], env=env,
                                   capture_output=True, text=True, timeout=30)
                assert r.returncode == 0, f"{block.where()}: {r.stderr}"
                continue
            run_block(terminal, block, n, subst)
    finally:
        terminal.close()
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=10)


def run_block(terminal: Terminal, block: readme_blocks.Block, n: int, subst: Substitutions) -> None:
    text = subst(block.text)
    if block.lang == "python":
        text = f"python3 - <<'README_PYTHON'\n{text}README_PYTHON\n"
    deadline = time.monotonic() + block.timeout

    def failed(printed: str) -> None:
        for f in re.finditer(r"README_FAILED status=(\d+) command=(.*)\r?\n", printed):
            command = f.group(2).strip()
            if not any(re.search(subst(allowed), command) for allowed in block.may_fail):
                raise AssertionError(f"{block.where()}: `{command}` failed with status {f.group(1)}; "
                                     f"the block printed:\n{printed[-3000:]}")

    start = len(terminal.out)
    terminal.type(text)
    seen = start
    for step in block.steps:
        if step.kind == "expect":
            seen = terminal.wait_for(subst(step.arg), start, deadline, f"{block.where()} expect", failed).end()
        else:
            terminal.type(readme_blocks.unescape(step.arg))
    # Typed while a session still reads the terminal, the end marker would go to the console:
    # wait until the shell prompts again after the last thing expected.
    terminal.wait_for(re.escape(PROMPT), seen, deadline, f"{block.where()} prompt", failed)
    terminal.type(f'echo "README_BLOCK_{n}_DONE"\n')
    end = terminal.wait_for(f"README_BLOCK_{n}_DONE", start, deadline, f"{block.where()} end", failed)
    failed(end.string[start:end.start()].decode(errors="replace"))
