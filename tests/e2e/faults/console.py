"""A fake serial console: one TCP port per instance that every node's hub connects to.

Clients type lines that carry their session's tag (`S<session>:<seq>`). The console answers
each complete line with `ack S<session>:<seq>` on the connection it came from (so the session
that typed it sees console output), and records every line with the moment it arrived, the
connection (and so the node) it came from, and the session its tag names. One thread serves
every port through one selector, so the records of all connections are in one total order: the
order in which the console itself received the bytes, which is what "two writers" is about.
"""

from __future__ import annotations

import errno
import re
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

TAG = re.compile(rb"S(\d+):(\d+)")


@dataclass
class Line:
    """One line the console received."""

    index: int  # position in the console's total order of lines (all ports)
    t: float  # time.monotonic() when its last byte arrived
    port: int  # the console port (one per instance)
    conn: int  # connection id (the console counts them)
    peer: int  # the connecting side's port
    session: int | None  # from the tag, if the line has one
    seq: int | None
    raw: bytes


@dataclass
class Conn:
    id: int
    port: int
    peer: int
    sock: socket.socket
    opened: float
    closed: float | None = None
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)


class FakeConsoles:
    """Fake consoles on free loopback ports, one per name (an instance id)."""

    def __init__(self, names: list[str]):
        self.sel = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.lines: list[Line] = []
        self.conns: dict[int, Conn] = {}
        self.ports: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self._next_conn = 0
        self._stop = threading.Event()
        # Wakes the selector when stop() is called.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        for name in names:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            s.listen(64)
            s.setblocking(False)
            port = s.getsockname()[1]
            self.ports[name] = port
            self.names[port] = name
            self.sel.register(s, selectors.EVENT_READ, ("listen", port))
        self.thread = threading.Thread(target=self._run, name="fake-consoles", daemon=True)
        self.thread.start()

    def uri(self, name: str) -> str:
        return f"tcp:127.0.0.1:{self.ports[name]}"

    # --- queries (thread-safe snapshots) ---------------------------------------------------

    def lines_of(self, name: str) -> list[Line]:
        port = self.ports[name]
        with self.lock:
            return [ln for ln in self.lines if ln.port == port]

    def connected(self, name: str) -> int:
        """How many connections the console of `name` has right now."""
        port = self.ports[name]
        with self.lock:
            return sum(1 for c in self.conns.values() if c.port == port and c.closed is None)

    def wait_connected(self, name: str, n: int, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.connected(name) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"console {name}: {self.connected(name)} of {n} hubs connected")
            time.sleep(0.02)

    # --- the server --------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self.thread.join(timeout=5)
        for key in list(self.sel.get_map().values()):
            try:
                key.fileobj.close()
            except OSError:
                pass
        self._wake_w.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, events in self.sel.select(timeout=0.5):
                kind, what = key.data
                if kind == "wake":
                    continue
                if kind == "listen":
                    self._accept(key.fileobj, what)
                    continue
                conn: Conn = what
                if events & selectors.EVENT_READ:
                    self._read(conn)
                if events & selectors.EVENT_WRITE and conn.closed is None:
                    self._flush(conn)

    def _accept(self, listener: socket.socket, port: int) -> None:
        try:
            sock, (_, peer) = listener.accept()
        except OSError:
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.lock:
            self._next_conn += 1
            conn = Conn(self._next_conn, port, peer, sock, time.monotonic())
            self.conns[conn.id] = conn
        self.sel.register(sock, selectors.EVENT_READ, ("conn", conn))

    def _close(self, conn: Conn) -> None:
        if conn.closed is not None:
            return
        with self.lock:
            conn.closed = time.monotonic()
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()

    def _read(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            self._close(conn)
            return
        if not data:
            self._close(conn)
            return
        now = time.monotonic()
        conn.inbuf += data
        replies = bytearray()
        with self.lock:
            while True:
                cut = min((i for i in (conn.inbuf.find(b"\r"), conn.inbuf.find(b"\n")) if i >= 0), default=-1)
                if cut < 0:
                    break
                raw = bytes(conn.inbuf[:cut])
                del conn.inbuf[: cut + 1]
                if not raw:
                    continue
                m = TAG.search(raw)
                session, seq = (int(m.group(1)), int(m.group(2))) if m else (None, None)
                self.lines.append(Line(len(self.lines), now, conn.port, conn.id, conn.peer, session, seq, raw))
                if m:
                    replies += b"ack " + m.group(0) + b"\r\n"
        if replies:
            conn.outbuf += replies
            self._flush(conn)

    def _flush(self, conn: Conn) -> None:
        """Writes what is queued without ever blocking the one thread: a hub that stops reading
        only makes its own queue grow."""
        while conn.outbuf:
            try:
                n = conn.sock.send(conn.outbuf)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EINTR:
                    continue
                self._close(conn)
                return
            del conn.outbuf[:n]
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        try:
            self.sel.modify(conn.sock, want, ("conn", conn))
        except (KeyError, ValueError):
            pass
