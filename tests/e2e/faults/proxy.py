"""A TCP proxy between one node and Redis that the test controls.

Each node's `[store] redis` points at its own proxy, so the test can fail the link of one node
or of all of them:

* `drop()`: every connection through the proxy is reset now (the node's Redis client sees a
  broken connection and reconnects, through the proxy again).
* `partition()`: the link goes silent, the way a network partition looks from the node: open
  connections stay open but nothing crosses them any more, in either direction, and new ones
  are accepted and then left hanging. Every Redis call of the node runs into its timeout.
* `heal()`: ends a partition; the connections held during it are reset, so the node's client
  reconnects instead of reading a stream with holes in it.
"""

from __future__ import annotations

import socket
import struct
import threading


def _reset(sock: socket.socket) -> None:
    """Closes with an RST (SO_LINGER 0) rather than a FIN: the peer sees the link break."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Pair:
    def __init__(self, client: socket.socket):
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        # shutdown() first: it wakes a pump thread blocked in recv() on the same socket.
        for s in (self.client, self.upstream):
            if s is not None:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                _reset(s)


class FaultProxy:
    def __init__(self, name: str, upstream_port: int):
        self.name = name
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.pairs: list[_Pair] = []
        self.partitioned = False
        self.accepted = 0
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._stopped = False
        threading.Thread(target=self._accept_loop, name=f"proxy-{name}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    # --- faults ------------------------------------------------------------------------------

    def drop(self) -> int:
        """Resets every connection now; returns how many there were."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for p in pairs:
            p.close()
        return len(pairs)

    def partition(self) -> None:
        with self.lock:
            self.partitioned = True

    def heal(self) -> None:
        with self.lock:
            self.partitioned = False
        self.drop()

    def stop(self) -> None:
        self._stopped = True
        _reset(self.listener)
        self.drop()

    # --- plumbing ----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            pair = _Pair(client)
            with self.lock:
                self.accepted += 1
                self.pairs.append(pair)
                partitioned = self.partitioned
            if partitioned:
                # Accepted and left hanging: the node's connect "succeeds", its commands never
                # get an answer. heal() resets it.
                threading.Thread(target=self._drain, args=(pair, client), daemon=True).start()
                continue
            threading.Thread(target=self._connect, args=(pair,), daemon=True).start()

    def _connect(self, pair: _Pair) -> None:
        try:
            up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            up.settimeout(None)
        except OSError:
            # Redis is down: the node sees its connection refused, as without the proxy.
            pair.close()
            return
        pair.upstream = up
        if pair.closed.is_set():
            _reset(up)
            return
        for src, dst in ((pair.client, up), (up, pair.client)):
            threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True).start()

    def _drain(self, pair: _Pair, src: socket.socket) -> None:
        """Reads and discards, so the node's writes do not block on a full socket buffer."""
        while not pair.closed.is_set():
            try:
                if not src.recv(65536):
                    break
            except OSError:
                break
        pair.close()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        while not pair.closed.is_set():
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            with self.lock:
                silent = self.partitioned
            if silent:
                # The partition swallows bytes in both directions; the connection stays open
                # until heal() resets it. A Redis that dies meanwhile is not seen either.
                continue
            try:
                dst.sendall(data)
            except OSError:
                break
        with self.lock:
            silent = self.partitioned
        if silent:
            # Hold the client side open (silent) until heal(); only the upstream side is gone.
            self._hold(pair)
            return
        pair.close()

    def _hold(self, pair: _Pair) -> None:
        while not pair.closed.is_set():
            try:
                if not pair.client.recv(65536):
                    break
            except OSError:
                break
        pair.close()
