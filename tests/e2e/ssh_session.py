"""`Session`: OpenSSH's `ssh -tt` driven through pipes, with bounded waits on its output."""

from __future__ import annotations

import re
import subprocess
import threading
import time

TIMEOUT = 15.0


class Session:
    """`ssh -tt` with piped stdin: the client still treats it as a terminal session, so its
    escape character works, and everything the console prints arrives on stdout."""

    def __init__(self, args: list[str]):
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = bytearray()
        self.err = bytearray()
        self.cond = threading.Condition()
        for stream, buf in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, buf), daemon=True).start()

    def _pump(self, stream, buf):
        while True:
            chunk = stream.read1(4096)
            if not chunk:
                return
            with self.cond:
                buf += chunk
                self.cond.notify_all()

    def expect(self, pattern: bytes, since: int = 0, timeout: float = TIMEOUT) -> int:
        """Waits for `pattern` (regex) in stdout after offset `since`; returns the match end."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = rx.search(self.out, since)
                if m:
                    return m.end()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {pattern!r}; got {bytes(self.out[-800:])!r}; stderr {bytes(self.err)!r}")
                self.cond.wait(left)

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close(self) -> int:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                return self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        return self.proc.returncode
