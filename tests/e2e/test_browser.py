"""The browser console: a presigned link opens an instance's serial console in a browser.

A link signed as any SDK can sign one (botocore's query-string SigV4) or by `serialgate
console-url` is spent once: the server verifies it, pushes a grant (`OpenSerialConsole`, the
serial push's rules, audited) and hands the browser a cookie bound to the console's path. The
page and its assets are served under a strict Content-Security-Policy. The page's WebSocket
(driven here by a real client, `websockets`) is refused from another origin, opens the serial
session with the cookie, carries output, input and BREAK, counts as the port's one session, and
leaves the same audit records as an SSH session.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import struct
import subprocess
import urllib.parse

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from conftest import REPO_ROOT, _binary
from single_console import SingleConsole
from test_multinode import AK, REGION, SK, audit_records, wait_for  # noqa: F401
from test_sessions import PUSH_AK, PUSH_SK, single_node

INST = [f"i-0c5{n:014x}" for n in range(1, 4)]

OUTPUT, STATUS, END = 0, 2, 3


def presign(server, inst: str, port: int = 0, expires: int = 60, ak: str = AK, sk: str = SK) -> str:
    req = AWSRequest(method="GET", url=f"{server.url}/console/{inst}/{port}")
    SigV4QueryAuth(Credentials(ak, sk), "ec2-instance-connect", REGION, expires=expires).add_auth(req)
    return req.url


def get(url: str, headers: dict | None = None) -> http.client.HTTPResponse:
    """One GET, redirects not followed; the body is read into `.body`."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("GET", u.path + (f"?{u.query}" if u.query else ""), headers=headers or {})
    resp = conn.getresponse()
    resp.body = resp.read()
    conn.close()
    return resp


def spend(server, inst: str) -> str:
    """Spends a fresh link; the cookie it sets, as a `Cookie` header value."""
    resp = get(presign(server, inst))
    assert resp.status == 303, resp.body
    return resp.getheader("Set-Cookie").split(";")[0]


def ws_url(server, inst: str) -> str:
    return f"ws://127.0.0.1:{server.api_port}/console/{inst}/0/ws"


def open_ws(server, inst: str, cookie: str | None, origin: str | None = None):
    headers = {"Cookie": cookie} if cookie else {}
    return connect(ws_url(server, inst), additional_headers=headers,
                   origin=origin or f"http://127.0.0.1:{server.api_port}", open_timeout=30)


def frames_until(ws, want: bytes, timeout: float = 30) -> bytes:
    """Output received until it contains `want`."""
    seen = b""
    while want not in seen:
        msg = ws.recv(timeout=timeout)
        assert isinstance(msg, bytes), msg
        if msg[0] == OUTPUT:
            seen += msg[1:]
        elif msg[0] == END:
            raise AssertionError(f"session ended: {msg[1:]!r} after {seen!r}")
    return seen


def refused(ws) -> tuple[str, int]:
    """The end message a refused socket gets, and its close code."""
    msg = ws.recv(timeout=30)
    assert msg[0] == END, msg
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=30)
    return msg[1:].decode(), ws.close_code


def test_a_link_opens_the_console_once_through_a_websocket(tmp_path):
    inst = INST[0]
    console = SingleConsole()
    try:
        with single_node(tmp_path, console, inst, idle_s=0, teardown_s=1) as node:
            server = node["server"]
            url = presign(server, inst)
            resp = get(url)
            assert resp.status == 303, resp.body
            assert resp.getheader("Location") == f"/console/{inst}/0"
            cookie = resp.getheader("Set-Cookie")
            for attr in ("HttpOnly", "SameSite=Strict", f"Path=/console/{inst}/0"):
                assert attr in cookie, cookie
            # As long as a session may last (the key's 60 s, 1 h, and 30 s to reconnect).
            assert "Max-Age=3690" in cookie, cookie
            assert "Secure" not in cookie, "plain HTTP here: a Secure cookie would never come back"
            # The same link again: spent.
            again = get(url)
            assert again.status == 403, again.body
            assert b"already used" in again.body

            # The page and its assets, under a policy that allows no third-party or inline script.
            page = get(f"{server.url}/console/{inst}/0")
            assert page.status == 200
            csp = page.getheader("Content-Security-Policy")
            assert "default-src 'self'" in csp and "script-src 'self';" in csp, csp
            assert b"/console/assets/xterm.js" in page.body, "the page is the terminal (xterm.js bundled)"
            js = get(f"{server.url}/console/assets/xterm.js")
            assert js.status == 200 and js.getheader("Content-Type").startswith("text/javascript")
            assert get(f"{server.url}/console/assets/..%2Fsecret").status == 404

            # Another site's page cannot open the socket, cookie or not.
            with pytest.raises(InvalidStatus) as refused:
                open_ws(server, inst, cookie.split(";")[0], origin="http://evil.example")
            assert refused.value.response.status_code == 403

            with open_ws(server, inst, cookie.split(";")[0]) as ws:
                ws.send(bytes([1]) + struct.pack(">HH", 100, 30))
                status = ws.recv(timeout=30)
                assert status[0] == STATUS, status
                info = json.loads(status[1:])
                assert info["instance"] == inst and info["port"] == 0, info
                assert info["principal"].startswith("arn:aws:iam::"), info
                assert info["ends_at_ms"] > 0
                ws.send(b"\x00\r")
                frames_until(ws, b"single login: ")
                ws.send(b"\x00hello from a browser\r")
                frames_until(ws, b"hello from a browser")
                console.wait_for("the browser's input", lambda: b"hello from a browser" in console.received)
                # BREAK: this console (plain TCP) has none, and says so as it would over SSH.
                ws.send(b"\x02")
                frames_until(ws, b"BREAK")

                # The port has its one session: a second link is refused as a second push would be.
                # (Another lifetime makes it another link: two signed in the same second with
                # the same parameters are one link, already spent.)
                busy = get(presign(server, inst, expires=59))
                assert busy.status == 400, busy.body
                assert b"session" in busy.body.lower(), busy.body
            # Closing the page ends the session, with the same records as an SSH session.
            ends = wait_for("the session's end record", lambda: [
                r for r in audit_records(node, inst) if r.get("kind") == "session-end"] or None)
            assert ends[0]["outcome"] == "client-closed", ends
            pushes = [r for r in audit_records(node, inst) if r.get("operation") == "OpenSerialConsole"]
            assert [p["outcome"] for p in pushes].count("success") == 1, pushes
    finally:
        console.close()


def test_a_page_that_lost_its_connection_takes_its_session_back(tmp_path):
    inst = INST[1].replace("0c5", "0c9")
    console = SingleConsole()
    try:
        with single_node(tmp_path, console, inst, idle_s=0, teardown_s=30) as node:
            server = node["server"]
            cookie = spend(server, inst)
            ws = open_ws(server, inst, cookie).__enter__()
            ws.send(bytes([1]) + struct.pack(">HH", 80, 24))
            assert ws.recv(timeout=30)[0] == STATUS
            ws.send(b"\x00before\r")
            frames_until(ws, b"before")
            # The network drops: no close frame, the TCP connection just goes.
            ws.socket.shutdown(socket.SHUT_RDWR)
            ws.socket.close()

            # The page reconnects with its cookie: the same session, no new link, no new slot.
            with open_ws(server, inst, cookie) as again:
                again.send(bytes([1]) + struct.pack(">HH", 80, 24))
                assert again.recv(timeout=30)[0] == STATUS
                again.send(b"\x00after\r")
                frames_until(again, b"after")
            starts = [r for r in audit_records(node, inst) if r.get("kind") == "session-start"]
            assert len(starts) == 1, starts
            # That page closed its socket (as Disconnect or closing the tab does): the session
            # ended, and nothing takes it back.
            ends = wait_for("the session's end record", lambda: [
                r for r in audit_records(node, inst) if r.get("kind") == "session-end"] or None)
            assert ends[0]["outcome"] == "client-closed", ends
            with open_ws(server, inst, cookie) as late:
                text, code = refused(late)
                # (The port is in its teardown, so that is what the page is told.)
                assert code == 4002 and "torn down for" in text, (code, text)
    finally:
        console.close()


def test_refusals_say_why(tmp_path):
    inst = INST[1]
    console = SingleConsole()
    try:
        with single_node(tmp_path, console, inst, idle_s=0, teardown_s=1) as node:
            server = node["server"]
            # Longer than the server takes.
            long = get(presign(server, inst, expires=600))
            assert long.status == 400 and b"at most 60 seconds" in long.body, long.body
            # A tampered link.
            bad = get(presign(server, inst).replace(f"/console/{inst}/0", f"/console/{INST[2]}/0"))
            assert bad.status in (400, 403) and b"signature" in bad.body.lower(), bad.body
            # A credential without serialgate:OpenSerialConsole.
            denied = get(presign(server, inst, ak=PUSH_AK, sk=PUSH_SK))
            assert denied.status == 403 and b"OpenSerialConsole" in denied.body, denied.body
            # No cookie, or a cookie whose grant is gone: the socket opens and closes with why.
            with open_ws(server, inst, None) as ws:
                text, code = refused(ws)
                assert code == 4001 and "link" in text, (code, text)
            with open_ws(server, inst, "serialgate-console=" + "A" * 43) as ws:
                text, code = refused(ws)
                assert code == 4001 and "already used, or it expired" in text, (code, text)
    finally:
        console.close()


def test_console_url_prints_a_link_that_opens(tmp_path):
    inst = INST[2]
    console = SingleConsole()
    try:
        with single_node(tmp_path, console, inst, idle_s=0, teardown_s=1) as node:
            server = node["server"]
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
                       AWS_SHARED_CREDENTIALS_FILE=os.devnull)
            r = subprocess.run([str(_binary()), "console-url", inst, "--endpoint-url", server.url,
                                "--region", REGION], env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            link = r.stdout.strip()
            assert link.startswith(f"{server.url}/console/{inst}/0?X-Amz-Algorithm=AWS4-HMAC-SHA256"), link
            resp = get(link)
            assert resp.status == 303, resp.body
            with open_ws(server, inst, resp.getheader("Set-Cookie").split(";")[0]) as ws:
                ws.send(bytes([1]) + struct.pack(">HH", 80, 24))
                assert ws.recv(timeout=30)[0] == STATUS
                ws.send(b"\x00\r")
                frames_until(ws, b"single login: ")
    finally:
        console.close()


# --- a real browser -------------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def chromium():
    """Debian's headless Chromium, driven through its ChromeDriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1000,700"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screen_text(driver) -> str:
    return driver.execute_script(
        "const r = document.querySelector('.xterm-rows'); return r ? r.textContent : '';")


def test_chromium_opens_the_link_and_the_keyboard_drives_the_console(tmp_path, chromium):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    inst = INST[0].replace("0c5", "0c6")
    console = SingleConsole()
    try:
        with single_node(tmp_path, console, inst, idle_s=0, teardown_s=1) as node:
            server = node["server"]
            # The browser spends the link itself: the redirect, the cookie, the page, the socket.
            chromium.get(presign(server, inst))
            wait = WebDriverWait(chromium, 30)
            wait.until(lambda d: d.current_url.endswith(f"/console/{inst}/0"))
            # Connected when the session's status came: the countdown to its maximum duration.
            wait.until(lambda d: "left" in d.find_element(By.ID, "time-left").text)
            assert chromium.find_element(By.ID, "instance").text == inst

            # The terminal has the keyboard: Enter asks the console for a prompt, typing reaches
            # it, and its echo the screen.
            ActionChains(chromium).send_keys("\ue007").perform()
            wait.until(lambda d: "single login:" in screen_text(d))
            ActionChains(chromium).send_keys("root").send_keys("\ue007").perform()
            console.wait_for("the typed login", lambda: b"root\r" in console.received)
            wait.until(lambda d: "root" in screen_text(d))

            # Disconnect: the session ends and the page says so instead of reconnecting.
            chromium.find_element(By.ID, "disconnect").click()
            wait.until(lambda d: d.find_element(By.ID, "overlay").is_displayed())
            ends = wait_for("the session's end record", lambda: [
                r for r in audit_records(node, inst) if r.get("kind") == "session-end"] or None)
            assert ends[0]["outcome"] in ("client-closed", "client-escape"), ends
            # The page ran under its policy without a violation.
            errors = [e for e in chromium.get_log("browser") if e["level"] == "SEVERE"
                      and "Content Security Policy" in e["message"]]
            assert not errors, errors
    finally:
        console.close()


class Sim:
    """The built-in simulated machine (`sim:`): a login, a shell, SysRq on BREAK."""

    uri = "sim:"

    def close(self) -> None:
        pass


# Where the browser tests leave their screenshots (CI keeps target/).
ARTIFACTS = REPO_ROOT / "target" / "e2e-artifacts"


def test_one_command_opens_a_tab_that_logs_in_runs_breaks_and_frees_the_port(tmp_path, chromium):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    inst = "i-0c7000000000000001"
    with single_node(tmp_path, Sim(), inst, idle_s=0, teardown_s=30) as node:
        server = node["server"]
        # `serialgate connect --browser`, with a "browser" that hands the link to this test.
        opened = tmp_path / "opened-url"
        opener = tmp_path / "browser.sh"
        opener.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n')
        opener.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=AK, AWS_SECRET_ACCESS_KEY=SK, AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull, BROWSER=str(opener))
        r = subprocess.run([str(_binary()), "connect", inst, "--browser", "--endpoint-url", server.url,
                            "--region", REGION], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        link = opened.read_text()
        assert link == r.stdout.strip() and "X-Amz-Signature=" in link, (link, r.stdout)

        chromium.get(link)
        wait = WebDriverWait(chromium, 30)
        wait.until(lambda d: "left" in d.find_element(By.ID, "time-left").text)
        keys = ActionChains(chromium)
        keys.send_keys("\ue007").perform()
        wait.until(lambda d: "sim login:" in screen_text(d))
        ActionChains(chromium).send_keys("root\ue007").perform()
        wait.until(lambda d: "Password:" in screen_text(d))
        ActionChains(chromium).send_keys("x\ue007").perform()
        ActionChains(chromium).send_keys("echo hello from a browser\ue007").perform()
        ActionChains(chromium).send_keys("uname -a\ue007").perform()
        wait.until(lambda d: "Linux" in screen_text(d))

        # A resize reaches the session (its recording has the window change).
        chromium.set_window_size(1200, 820)

        # BREAK then h: the SysRq help, picked from the page's controls.
        Select(chromium.find_element(By.ID, "sysrq")).select_by_value("h")
        chromium.find_element(By.ID, "break").click()
        wait.until(lambda d: "sysrq: HELP" in screen_text(d))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        chromium.save_screenshot(str(ARTIFACTS / "browser-console.png"))

        # A second tab for the same port is refused while the first holds it.
        chromium.switch_to.new_window("tab")
        second = presign(server, inst, expires=58)
        chromium.get(second)
        wait.until(lambda d: "cannot open" in d.find_element(By.TAG_NAME, "h1").text)
        assert "session" in chromium.find_element(By.TAG_NAME, "p").text.lower()
        chromium.close()
        chromium.switch_to.window(chromium.window_handles[0])

        # Closing the tab ends the session; the port goes into teardown, as after SSH.
        chromium.close()
        ends = wait_for("the session's end record", lambda: [
            r for r in audit_records(node, inst) if r.get("kind") == "session-end"] or None)
        assert ends[0]["outcome"] == "client-closed", ends
        assert (ends[0]["principal_arn"] or "").startswith("arn:aws:iam::"), ends
        assert ends[0]["source_ip"] == "127.0.0.1", ends
        after = get(presign(server, inst, expires=57))
        assert after.status == 400 and b"torn down" in after.body, after.body

        # The recording has the resize.
        rec = subprocess.run([str(_binary()), "recordings", "list", "--config", str(node["config"]), "--json"],
                             capture_output=True, text=True, timeout=30)
        assert rec.returncode == 0, rec.stderr
        ids = [json.loads(line)["id"] for line in rec.stdout.splitlines() if line.strip()]
        cast = subprocess.run([str(_binary()), "recordings", "export", ids[-1], "--config", str(node["config"])],
                              capture_output=True, text=True, timeout=30)
        events = [json.loads(line) for line in cast.stdout.splitlines()[1:]]
        assert any(e[1] == "r" for e in events), events[:5]
