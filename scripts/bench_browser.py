"""Browser console benchmark (README "Browser console"); run by scripts/bench-browser.sh.

One node, four instances. In the same run, against the SSH path:
1. Keystroke echo: one byte in, its echo back, N times per path, the paths taking turns: through
   the browser console's WebSocket (the `websockets` client speaking the page's framing, acks
   included) and through SSH (paramiko, a pty channel), each on its own echoing console.
2. Bulk output into a browser tab: `seq 1 100000` (~0.6 MB) on the built-in simulator, ROUNDS
   times, in headless Chromium with the real page (xterm.js writing every byte, acks pacing
   the server), timed by the browser itself (a probe around the page's WebSocket, on the
   browser's clock: the command sent to the last output message); the same through OpenSSH
   (`ssh -tt`, command sent to the final prompt).
Prints p50/p99 and MB/s with the WebSocket path's ratio to SSH; the target (printed, not
asserted) is the WebSocket path within 20% of SSH on both.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "e2e"))

import paramiko  # noqa: E402
from conftest import _binary, _serve  # noqa: E402
from single_console import SingleConsole  # noqa: E402
from ssh_session import Session  # noqa: E402
from test_browser import CHROMEDRIVER, CHROMIUM, open_ws, presign, spend  # noqa: E402
from test_multinode import ACCOUNT, AK, REGION, SK, try_push  # noqa: E402

N = int(os.environ.get("N", "500"))
WARMUP = int(os.environ.get("WARMUP", "50"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
INST = [f"i-0c8{n:014x}" for n in range(1, 5)]  # echo WS, echo SSH, bulk browser, bulk SSH


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


@contextlib.contextmanager
def node(work: Path, echoers: list[SingleConsole]):
    instances = "".join(
        f'\n[[instances]]\nid = "{i}"\naccount = "{ACCOUNT}"\nconsole = "{c}"\n'
        for i, c in zip(INST, [echoers[0].uri, echoers[1].uri, "sim:", "sim:"]))
    config = work / "bench.toml"
    config.write_text(f"""region = "{REGION}"
state_dir = "{work / 'state'}"

[sessions]
teardown_seconds = 1

[recordings]
enabled = false

[throttle]
rate_per_second = 10000.0
burst = 10000

[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{AK}"
secret_access_key = "{SK}"
actions = ["*"]
{instances}""")
    with _serve("bench", config, work) as server:
        yield {"server": server, "config": config}


def ssh_channel(n, inst: str, key: Path) -> paramiko.Channel:
    assert try_push(n, inst, key) == "ok"
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    client.connect("127.0.0.1", port=n["server"].ssh_port, username=f"{inst}.port0", key_filename=str(key),
                   look_for_keys=False, allow_agent=False, timeout=30)
    chan = client.invoke_shell()
    chan.client = client  # kept alive with the channel
    return chan


def echo(n, key: Path) -> tuple[list[float], list[float]]:
    ws = open_ws(n["server"], INST[0], spend(n["server"], INST[0])).__enter__()
    ws.send(bytes([1]) + struct.pack(">HH", 80, 24))
    assert ws.recv(timeout=30)[0] == 2
    chan = ssh_channel(n, INST[1], key)
    via_ws, via_ssh = [], []
    for i in range(WARMUP + N):
        b = bytes([ord("a") + i % 26])
        t = time.perf_counter()
        ws.send(b"\x00" + b)
        while True:
            msg = ws.recv(timeout=10)
            if msg[0] == 0 and b in msg[1:]:
                break
        dt = time.perf_counter() - t
        ws.send(b"\x03" + struct.pack(">I", len(msg) - 1))
        if i >= WARMUP:
            via_ws.append(dt)
        t = time.perf_counter()
        chan.send(b)
        while b not in chan.recv(4096):
            pass
        if i >= WARMUP:
            via_ssh.append(time.perf_counter() - t)
    ws.close()
    chan.close()
    return via_ws, via_ssh


# Injected before the page's own scripts (DevTools bypasses the page's CSP for it): counts the
# output the page's WebSocket receives and when, and when input with a CR was sent, on the
# browser's own clock.
PROBE = """
(() => {
  const Native = window.WebSocket;
  const probe = window.__probe = { sentAt: 0, bytes: 0, lastAt: 0 };
  window.WebSocket = function (url, protocols) {
    const ws = new Native(url, protocols);
    const send = ws.send.bind(ws);
    ws.send = (data) => {
      const b = new Uint8Array(data.buffer || data);
      if (b[0] === 0 && b.includes(13)) probe.sentAt = performance.now();
      send(data);
    };
    ws.addEventListener('message', (e) => {
      const b = new Uint8Array(e.data);
      if (b[0] === 0) { probe.bytes += b.length - 1; probe.lastAt = performance.now(); }
    });
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, Native);
})();
"""


def browser_bulk(n) -> list[float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,700"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    rates = []
    try:
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
        driver.get(presign(n["server"], INST[2]))
        wait_screen(driver, lambda t: "left" in driver.find_element("id", "time-left").text)
        ActionChains(driver).send_keys("\ue007").perform()
        wait_screen(driver, lambda t: "sim login:" in t)
        ActionChains(driver).send_keys("root\ue007").perform()
        wait_screen(driver, lambda t: "Password:" in t)
        ActionChains(driver).send_keys("x\ue007").perform()
        wait_screen(driver, lambda t: "root@sim:~#" in t)
        for _ in range(ROUNDS):
            before = driver.execute_script("return window.__probe.bytes")
            ActionChains(driver).send_keys("seq 1 100000\ue007").perform()
            # Done when the terminal shows the last number and the prompt after it.
            wait_screen(driver, lambda t: "100000root@sim:~#" in t.replace(" ", "")[-40:], timeout=300)
            p = driver.execute_script("return window.__probe")
            rates.append((p["bytes"] - before) / ((p["lastAt"] - p["sentAt"]) / 1000) / 1e6)
    finally:
        driver.quit()
    return rates


def wait_screen(driver, check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        text = driver.execute_script(
            "const r = document.querySelector('.xterm-rows'); return r ? r.textContent : '';")
        if check(text):
            return
        assert time.monotonic() < deadline, text[-300:]
        time.sleep(0.05)


def ssh_bulk(n, key: Path) -> list[float]:
    assert try_push(n, INST[3], key) == "ok"
    s = Session(["ssh", "-tt", "-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                 "-o", "LogLevel=ERROR", "-i", str(key), "-p", str(n["server"].ssh_port),
                 f"{INST[3]}.port0@127.0.0.1"])
    s.send(b"\r")
    s.expect(rb"sim login: ")
    s.send(b"root\r")
    s.expect(rb"Password: ")
    s.send(b"x\r")
    at = s.expect(rb"root@sim:~# ")
    rates = []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        s.send(b"seq 1 100000\r")
        end = s.expect(rb"100000\r\nroot@sim:~# ", since=at, timeout=120)
        rates.append((end - at) / (time.perf_counter() - t) / 1e6)
        at = end
    s.send(b"\r~.")
    return rates


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    echoers = [SingleConsole(), SingleConsole()]
    with node(work, echoers) as n:
        via_ws, via_ssh = echo(n, key)
        browser = browser_bulk(n)
        ssh = ssh_bulk(n, key)
    print(f"serialgate {_binary()}; {N} keystrokes per path ({WARMUP} unmeasured first), {ROUNDS} bulk rounds")
    print(f"{'path':<28}{'echo p50 ms':>12}{'echo p99 ms':>12}{'bulk MB/s':>11}")
    for name, e, b in (("WebSocket (browser console)", via_ws, browser), ("SSH", via_ssh, ssh)):
        print(f"{name:<28}{pct(e, 50) * 1e3:>12.3f}{pct(e, 99) * 1e3:>12.3f}{statistics.median(b):>11.2f}")
    p50 = pct(via_ws, 50) / pct(via_ssh, 50)
    p99 = pct(via_ws, 99) / pct(via_ssh, 99)
    bulk = statistics.median(browser) / statistics.median(ssh)
    verdict = "met" if p50 <= 1.2 and p99 <= 1.2 and bulk >= 0.8 else "NOT met"
    print(f"WebSocket vs SSH: echo p50 x{p50:.2f}, p99 x{p99:.2f}, bulk x{bulk:.2f} (target: within 20%): {verdict}")


if __name__ == "__main__":
    main()
