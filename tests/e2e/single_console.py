"""`SingleConsole`: a console on a TCP port that serves one client at a time, as a serial server
port does (or QEMU's socket): a second client that connects while the first is still there is
closed at once and counted, so a test can assert that no two nodes were ever connected together.

It greets each client with a prompt, echoes what it receives (and a new prompt on each CR), and
keeps everything it received.
"""

from __future__ import annotations

import socket
import threading
import time

PROMPT = b"single login: "


class SingleConsole:
    def __init__(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.cond = threading.Condition()
        self.received = bytearray()
        # Clients served, and clients that came while another was connected (must stay 0).
        self.connections = 0
        self.overlaps = 0
        self.active: socket.socket | None = None
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"tcp:127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.cond:
                if self.active is not None:
                    self.overlaps += 1
                    conn.close()
                    self.cond.notify_all()
                    continue
                self.active = conn
                self.connections += 1
                self.cond.notify_all()
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.sendall(PROMPT)
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                with self.cond:
                    self.received += data
                    self.cond.notify_all()
                reply = data.replace(b"\r", b"\r\n" + PROMPT)
                conn.sendall(reply)
        except OSError:
            pass
        finally:
            conn.close()
            with self.cond:
                if self.active is conn:
                    self.active = None
                self.cond.notify_all()

    def wait_for(self, what: str, check, timeout: float = 15.0):
        """Waits (on the console's own events) until `check()` holds."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                v = check()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out waiting for {what}: connections={self.connections} "
                        f"overlaps={self.overlaps} received={bytes(self.received[-200:])!r}"
                    )
                self.cond.wait(left)

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        with self.cond:
            if self.active is not None:
                self.active.close()
