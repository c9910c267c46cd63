"""`serialgate connect`, `push` and `push-os-user-key` against a running `serialgate serve`:
scripted sessions (login, typing, BREAK through the escape, ~. and a literal ~), host key
verification (pinned fingerprint, known_hosts plain and hashed, --accept-new, changed, unknown),
and every error a person can meet, each with its actionable text and exit code.

Every subprocess runs with an isolated AWS environment (no ~/.aws, no instance metadata) and a
bounded timeout.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import DESIGN_EXAMPLE, _binary, _serve

REGION = "us-east-1"
AK, SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
RUN_TIMEOUT = 60

# Exit codes (serialgate connect --help).
OK, USAGE, API_REFUSED, CREDENTIALS, NETWORK, HOST_KEY = 0, 2, 3, 4, 5, 6
TIMEOUT, SCRIPT_CUT, SIGTERM_EXIT = 124, 125, 143

# One simulator instance per test that opens a session, so no test waits for another's teardown.
SIMS = {
    name: f"i-0e1{n:014x}"
    for n, name in enumerate(
        ["login", "break", "tilde", "disconnect", "cut", "timeout", "pinned", "known", "hashed",
         "accept1", "accept2", "limit", "push", "signal", "escape_none", "no_remote_escape",
         "relogin", "nopass", "wait_held", "wait_int", "wait_torn"],
        start=1,
    )
}
STOPPED = "i-0e200000000000001"
T2 = "i-0e200000000000002"
DISABLED = "i-0e200000000000003"
OTHER_ACCOUNT = "i-0e200000000000004"
FFF = "i-fff0000000000e001"
NOT_FFF = "i-0e200000000000005"  # in the restricted key's account, outside its i-fff* allow-list
UNREACHABLE = "i-0123456789abcdef0"  # the example's: its unix socket does not exist

DISABLED_CREDS = ("AKIACONNECTDISABLED1", "connect-disabled-secret")
RESTRICTED_CREDS = ("AKIACONNECTRESTRICT1", "connect-restricted-secret")
OTHER_CREDS = ("AKIACONNECTOTHERACC1", "connect-other-secret")
THROTTLED_CREDS = ("AKIACONNECTTHROTTLE1", "connect-throttle-secret")

LOGIN = ["--send", "", "--expect", "login: ", "--send", "root", "--expect", "Password: ",
         "--send", "secret", "--expect", r"root@sim:~# "]


def _config(workdir: Path, extra: str) -> Path:
    text = DESIGN_EXAMPLE.read_text().replace(
        'state_dir = "/var/lib/serialgate"', f'state_dir = "{workdir / "state"}"')
    parts = [text]
    for instance in SIMS.values():
        parts.append(f'\n[[instances]]\nid = "{instance}"\naccount = "111122223333"\nconsole = "sim:"\n')
    parts.append(extra)
    path = workdir / "connect.toml"
    path.write_text("".join(parts))
    return path


EXTRA = f"""
[[instances]]
id = "{STOPPED}"
account = "111122223333"
state = "stopped"
console = "sim:"

[[instances]]
id = "{T2}"
account = "111122223333"
instance_type = "t2.micro"
console = "sim:"

[[accounts]]
id = "222200001111"
serial_console_access = false

[[accounts.credentials]]
access_key_id = "{DISABLED_CREDS[0]}"
secret_access_key = "{DISABLED_CREDS[1]}"

[[instances]]
id = "{DISABLED}"
account = "222200001111"
console = "sim:"

[[accounts]]
id = "333300001111"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{RESTRICTED_CREDS[0]}"
secret_access_key = "{RESTRICTED_CREDS[1]}"
instances = ["i-fff*"]

[[instances]]
id = "{FFF}"
account = "333300001111"
console = "sim:"

[[instances]]
id = "{NOT_FFF}"
account = "333300001111"
console = "sim:"

[[accounts]]
id = "444400001111"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{OTHER_CREDS[0]}"
secret_access_key = "{OTHER_CREDS[1]}"

[[instances]]
id = "{OTHER_ACCOUNT}"
account = "444400001111"
console = "sim:"

[sessions]
teardown_seconds = 1

[throttle]
rate_per_second = 1000.0
burst = 1000
"""

THROTTLE_EXTRA = f"""
[[accounts]]
id = "555500001111"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{THROTTLED_CREDS[0]}"
secret_access_key = "{THROTTLED_CREDS[1]}"

[[instances]]
id = "i-0e300000000000001"
account = "555500001111"
console = "sim:"

# Two requests, then (nearly) nothing.
[throttle]
rate_per_second = 0.001
burst = 2
"""


def _host_key(config: Path) -> tuple[str, str]:
    out = subprocess.run([str(_binary()), "host-key", "--config", str(config)],
                         capture_output=True, text=True, check=True, timeout=30).stdout.split("\n")
    return out[0].strip(), out[1].strip()


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("connect")
    config = _config(workdir, EXTRA)
    with _serve("connect", config, workdir) as server:
        public, fingerprint = _host_key(config)
        yield {"server": server, "public": public, "fingerprint": fingerprint, "dir": workdir}


@pytest.fixture(scope="module")
def slow_teardown(tmp_path_factory):
    """A server whose ports stay busy for 3 s after a session ends: long enough to see a push
    refused, then waited out."""
    workdir = tmp_path_factory.mktemp("connect-teardown")
    config = _config(workdir, "\n[sessions]\nteardown_seconds = 3\n")
    with _serve("connect-teardown", config, workdir) as server:
        yield {"server": server, "fingerprint": _host_key(config)[1], "dir": workdir}


@pytest.fixture(scope="module")
def throttled(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("connect-throttle")
    config = workdir / "throttle.toml"
    config.write_text(DESIGN_EXAMPLE.read_text().replace(
        'state_dir = "/var/lib/serialgate"', f'state_dir = "{workdir / "state"}"') + THROTTLE_EXTRA)
    with _serve("connect-throttle", config, workdir) as server:
        yield {"server": server, "fingerprint": _host_key(config)[1], "dir": workdir}


def env_for(home: Path, creds: tuple[str, str] | None = (AK, SK)) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", HOME=str(home), NO_COLOR="1")
    if creds:
        env.update(AWS_ACCESS_KEY_ID=creds[0], AWS_SECRET_ACCESS_KEY=creds[1])
    return env


def connect_args(gw, instance: str, *extra: str, pin: bool = True, region: bool = True) -> list[str]:
    server = gw["server"]
    args = [str(_binary()), "connect", instance, "--endpoint-url", server.url,
            "--ssh-endpoint", f"127.0.0.1:{server.ssh_port}", "--connect-timeout", "10"]
    if region:
        args += ["--region", REGION]
    if pin:
        args += ["--host-key-fingerprint", gw["fingerprint"]]
    return args + list(extra)


def run(args: list[str], home: Path, creds=(AK, SK), timeout: float = RUN_TIMEOUT):
    """Runs a command; stdout and stderr decoded as is (\r\n kept, unlike text mode)."""
    r = subprocess.run(args, env=env_for(home, creds), capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(errors="replace"),
                                       r.stderr.decode(errors="replace"))


def scripted(gw, tmp_path, instance: str, *steps: str, creds=(AK, SK), **kw):
    return run(connect_args(gw, instance, "--non-interactive", *steps, **kw), tmp_path, creds)


def explain(r) -> str:
    return f"exit {r.returncode}\n--- stdout ---\n{r.stdout[-2000:]}\n--- stderr ---\n{r.stderr[-2000:]}"


# --- scripted sessions ----------------------------------------------------------------------


def test_script_logs_in_and_runs_a_command(gw, tmp_path):
    r = scripted(gw, tmp_path, SIMS["login"], *LOGIN, "--send", "uname -r", "--expect", r"6\.1\.0-sim")
    assert r.returncode == OK, explain(r)
    assert "sim login: " in r.stdout and "uname -r\r\n6.1.0-sim" in r.stdout, explain(r)


def test_break_through_the_escape_reaches_the_console(gw, tmp_path):
    r = scripted(gw, tmp_path, SIMS["break"], *LOGIN,
                 "--send-raw", r"\r~B", "--send-raw", "h", "--expect", "sysrq: HELP : loglevel",
                 "--send", "sysrq-count", "--expect", r"sysrq-count\r\n1\r\n")
    assert r.returncode == OK, explain(r)


def test_a_literal_tilde_is_not_a_break(gw, tmp_path):
    # Enter ~~ sends one ~ (doubled again for the server, whose own escape is ~); mid-line ~B is
    # plain text. The console must see "~x" and "a~Bb", and no BREAK at all.
    r = scripted(gw, tmp_path, SIMS["tilde"], *LOGIN,
                 "--send-raw", "~~", "--send", "x", "--expect", r"-sh: ~x: not found",
                 "--send", "echo a~Bb", "--expect", r"\r\na~Bb\r\n",
                 "--send", "sysrq-count", "--expect", r"sysrq-count\r\n0\r\n")
    assert r.returncode == OK, explain(r)


def test_escape_none_sends_everything_as_typed(gw, tmp_path):
    # With the client's escape off, Enter ~B reaches the server's own escape: a BREAK.
    r = scripted(gw, tmp_path, SIMS["escape_none"], "--escape", "none", *LOGIN,
                 "--send-raw", r"\r~B", "--send-raw", "h", "--expect", "sysrq: HELP")
    assert r.returncode == OK, explain(r)


def test_no_break_without_a_remote_escape_says_so(gw, tmp_path):
    # As against AWS (no in-band escape): Enter ~B sends nothing and prints a one-line notice.
    r = scripted(gw, tmp_path, SIMS["no_remote_escape"], "--remote-escape", "none", *LOGIN,
                 "--send-raw", r"\r~B", "--send", "sysrq-count", "--expect", r"sysrq-count\r\n0\r\n")
    assert r.returncode == OK, explain(r)
    assert "No BREAK sent" in r.stderr, explain(r)


def test_tilde_dot_ends_the_session(gw, tmp_path):
    r = scripted(gw, tmp_path, SIMS["disconnect"], "--send", "", "--expect", "login: ",
                 "--send-raw", r"\r~.")
    assert r.returncode == OK, explain(r)
    # The session really ended: after the teardown (1 s here) the instance takes a push again.
    time.sleep(1.5)
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    p = run([str(_binary()), "push", SIMS["disconnect"], "--key", f"{key}.pub", "--region", REGION,
             "--endpoint-url", gw["server"].url], tmp_path)
    assert p.returncode == OK, explain(p)


def test_steps_after_tilde_dot_are_reported(gw, tmp_path):
    r = scripted(gw, tmp_path, SIMS["cut"], "--send-raw", r"\r~.", "--expect", "login: ")
    assert r.returncode == SCRIPT_CUT, explain(r)
    assert "steps 2..2 did not run" in r.stderr, explain(r)


def test_expect_timeout_is_bounded_and_says_what_it_saw(gw, tmp_path):
    started = time.monotonic()
    r = scripted(gw, tmp_path, SIMS["timeout"], "--timeout", "1", "--send", "",
                 "--expect", "login: ", "--expect", "this never appears")
    elapsed = time.monotonic() - started
    assert r.returncode == TIMEOUT, explain(r)
    assert "/this never appears/ did not match within 1 s" in r.stderr, explain(r)
    assert elapsed < 15, elapsed


def test_second_session_is_refused_and_sigterm_ends_the_first(gw, tmp_path):
    instance = SIMS["limit"]
    first = subprocess.Popen(
        connect_args(gw, instance, "--non-interactive", "--send", "", "--expect", "login: ",
                     "--expect", "never appears", "--timeout", "50"),
        env=env_for(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        seen = bytearray()
        ready = threading.Event()

        def pump():
            while chunk := first.stdout.read1(4096):
                seen.extend(chunk)
                if b"login: " in seen:
                    ready.set()

        threading.Thread(target=pump, daemon=True).start()
        assert ready.wait(20), f"first session never showed login: {bytes(seen)!r}"
        r = scripted(gw, tmp_path, instance, "--send", "")
        assert r.returncode == API_REFUSED, explain(r)
        assert "SerialConsoleSessionLimitExceededException" in r.stderr, explain(r)
        assert "already open" in r.stderr and "30 seconds" in r.stderr, explain(r)
        assert "--wait" in r.stderr, explain(r)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == SIGTERM_EXIT
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=10)


@contextlib.contextmanager
def _holding(gw, tmp_path, instance: str):
    """A session on `instance` that holds its port until SIGTERM (sent on exit, if still open)."""
    holder = subprocess.Popen(
        connect_args(gw, instance, "--non-interactive", "--send", "", "--expect", "login: ",
                     "--expect", "never appears", "--timeout", "50"),
        env=env_for(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _read_until(holder.stdout, b"login: ", 20), "the holding session never showed login:"
        yield holder
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGTERM)
            holder.wait(timeout=15)


def _read_until(stream, marker: bytes, timeout: float) -> bool:
    """Reads `stream` on a thread (draining it on) until `marker` appears; False on timeout."""
    seen = bytearray()
    found = threading.Event()

    def pump():
        while chunk := stream.read1(4096):
            seen.extend(chunk)
            if marker in seen:
                found.set()

    threading.Thread(target=pump, daemon=True).start()
    return found.wait(timeout)


def test_wait_rides_out_the_teardown(slow_teardown, tmp_path):
    instance = SIMS["wait_torn"]
    r = scripted(slow_teardown, tmp_path, instance, "--send", "", "--expect", "login: ",
                 "--send-raw", r"\r~.")
    assert r.returncode == OK, explain(r)
    # The port is tearing down for 3 s from here: without --wait the push is refused, and the
    # explanation says when the port frees and names --wait.
    r = scripted(slow_teardown, tmp_path, instance, "--send", "")
    assert r.returncode == API_REFUSED, explain(r)
    assert "SerialConsoleSessionLimitExceededException" in r.stderr, explain(r)
    assert "being torn down" in r.stderr and "--wait" in r.stderr, explain(r)
    # With it, connect waits the teardown out (one line per attempt: stderr is no terminal).
    r = scripted(slow_teardown, tmp_path, instance, "--wait=30", "--send", "", "--expect", "login: ")
    assert r.returncode == OK, explain(r)
    assert re.search(rf"{instance} port 0 is busy \(the previous session is being torn down\); "
                     r"attempt 2 in \d s", r.stderr), explain(r)


def test_wait_connects_once_the_other_session_ends(gw, tmp_path):
    instance = SIMS["wait_held"]
    with _holding(gw, tmp_path, instance) as holder:
        waiter = subprocess.Popen(
            connect_args(gw, instance, "--wait=40", "--non-interactive", "--send", "", "--expect", "login: "),
            env=env_for(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert _read_until(waiter.stderr, b"is busy", 20), "the waiter never said it waits"
            holder.send_signal(signal.SIGTERM)
            assert holder.wait(timeout=15) == SIGTERM_EXIT
            assert waiter.wait(timeout=30) == OK
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait(timeout=10)


def test_ctrl_c_stops_the_wait(gw, tmp_path):
    instance = SIMS["wait_int"]
    with _holding(gw, tmp_path, instance):
        waiter = subprocess.Popen(
            connect_args(gw, instance, "--wait", "--non-interactive"),
            env=env_for(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            err = bytearray()
            busy = threading.Event()

            def pump():
                while chunk := waiter.stderr.read1(4096):
                    err.extend(chunk)
                    if b"is busy" in err:
                        busy.set()

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
            assert busy.wait(20), f"the waiter never said it waits: {bytes(err)!r}"
            waiter.send_signal(signal.SIGINT)
            assert waiter.wait(timeout=15) == 128 + signal.SIGINT, bytes(err)
            reader.join(timeout=10)
            assert b"stopped waiting for " + instance.encode() + b" port 0" in err, bytes(err)
        finally:
            if waiter.poll() is None:
                waiter.kill()
                waiter.wait(timeout=10)


def test_login_logs_in_once_and_finds_the_shell_the_next_time(gw, tmp_path):
    # A serial console keeps its state between sessions: the first script logs in, the second
    # finds the shell prompt and goes straight on (after the 1 s teardown, which --wait rides).
    instance = SIMS["relogin"]
    # A password is typed as it is: Enter ~. in it is no escape, for this client or the server.
    steps = ["--login", "root:~.secret", "--send", "uname -r", "--expect", r"6\.1\.0-sim"]
    first = scripted(gw, tmp_path, instance, *steps)
    assert first.returncode == OK, explain(first)
    assert "sim login: root\r\nPassword: " in first.stdout, explain(first)
    second = scripted(gw, tmp_path, instance, "--wait=30", *steps)
    assert second.returncode == OK, explain(second)
    assert "login: " not in second.stdout and "Password: " not in second.stdout, explain(second)
    assert "root@sim:~# uname -r\r\n6.1.0-sim" in second.stdout, explain(second)


def test_login_without_a_password_says_how_to_give_one(gw, tmp_path):
    r = scripted(gw, tmp_path, SIMS["nopass"], "--login", "alice")
    assert r.returncode == USAGE, explain(r)
    assert "--login alice:PASSWORD" in r.stderr and "SERIALGATE_LOGIN_PASSWORD" in r.stderr, explain(r)


# --- host key verification ------------------------------------------------------------------


def test_pinned_fingerprint_accepts_and_a_wrong_one_refuses(gw, tmp_path):
    wrong = "SHA256:" + "A" * 43
    r = scripted(gw, tmp_path, SIMS["pinned"], "--host-key-fingerprint", wrong, pin=False)
    assert r.returncode == HOST_KEY, explain(r)
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr, explain(r)
    assert gw["fingerprint"] in r.stderr, explain(r)
    # Nothing was pushed for the refused attempt: connecting right away works.
    r = scripted(gw, tmp_path, SIMS["pinned"], "--send", "", "--expect", "login: ")
    assert r.returncode == OK, explain(r)


def test_known_hosts_entry_changed_key_and_unknown_host(gw, tmp_path):
    port = gw["server"].ssh_port
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {gw['public']}\n")
    r = scripted(gw, tmp_path, SIMS["known"], "--known-hosts", str(known), "--send", "",
                 "--expect", "login: ", pin=False)
    assert r.returncode == OK, explain(r)

    other = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True, timeout=30)
    known.write_text("# a comment\n" + f"[127.0.0.1]:{port} " + Path(f"{other}.pub").read_text())
    r = scripted(gw, tmp_path, SIMS["known"], "--known-hosts", str(known), pin=False)
    assert r.returncode == HOST_KEY, explain(r)
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr, explain(r)
    assert f"Offending ED25519 key in {known}:2" in r.stderr, explain(r)

    # --accept-new never overrides a changed key.
    r = scripted(gw, tmp_path, SIMS["known"], "--known-hosts", str(known), "--accept-new", pin=False)
    assert r.returncode == HOST_KEY, explain(r)

    known.write_text("")
    r = scripted(gw, tmp_path, SIMS["known"], "--known-hosts", str(known), pin=False)
    assert r.returncode == HOST_KEY, explain(r)
    assert "can't be established" in r.stderr, explain(r)
    assert "--accept-new" in r.stderr and f"--host-key-fingerprint {gw['fingerprint']}" in r.stderr, explain(r)


def test_hashed_known_hosts_entry(gw, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{gw['server'].ssh_port} {gw['public']}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, timeout=30,
                   capture_output=True)
    assert known.read_text().startswith("|1|")
    r = scripted(gw, tmp_path, SIMS["hashed"], "--known-hosts", str(known), "--send", "",
                 "--expect", "login: ", pin=False)
    assert r.returncode == OK, explain(r)


def test_accept_new_records_the_key_in_the_default_known_hosts(gw, tmp_path):
    known = tmp_path / ".ssh" / "known_hosts"  # HOME is tmp_path
    r = scripted(gw, tmp_path, SIMS["accept1"], "--accept-new", "--send", "", "--expect", "login: ",
                 pin=False)
    assert r.returncode == OK, explain(r)
    assert "Permanently added" in r.stderr or "permanently added" in r.stderr, explain(r)
    port = gw["server"].ssh_port
    assert known.read_text() == f"[127.0.0.1]:{port} {gw['public'].split()[0]} {gw['public'].split()[1]}\n"
    assert (known.stat().st_mode & 0o777) == 0o600
    r = scripted(gw, tmp_path, SIMS["accept2"], "--send", "", "--expect", "login: ", pin=False)
    assert r.returncode == OK, explain(r)


# --- errors with their next step --------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance", "creds", "code", "texts"),
    [
        (DISABLED, DISABLED_CREDS, API_REFUSED,
         ["SerialConsoleAccessDisabledException", "aws ec2 enable-serial-console-access --region us-east-1"]),
        (T2, (AK, SK), API_REFUSED, ["EC2InstanceTypeInvalidException", "Nitro"]),
        (STOPPED, (AK, SK), API_REFUSED,
         ["EC2InstanceStateInvalidException", f"aws ec2 start-instances --instance-ids {STOPPED}"]),
        ("i-0e2ffffffffffffff", (AK, SK), API_REFUSED,
         ["EC2InstanceNotFoundException", "Check the instance id and the Region"]),
        # Another account's instance does not exist for the caller (nor does its owner show).
        (OTHER_ACCOUNT, (AK, SK), API_REFUSED,
         ["EC2InstanceNotFoundException", "Check the instance id and the Region"]),
        (NOT_FFF, RESTRICTED_CREDS, API_REFUSED,
         ["AuthException", "ec2-instance-connect:SendSerialConsoleSSHPublicKey"]),
        (UNREACHABLE, (AK, SK), API_REFUSED, ["EC2InstanceUnavailableException", "try again"]),
        (SIMS["login"], (AK, "wrong-secret"), CREDENTIALS,
         ["InvalidSignatureException", "secret access key"]),
        (SIMS["login"], ("AKIANOTKNOWN00000000", "x"), CREDENTIALS,
         ["UnrecognizedClientException", "does not know this access key"]),
        (SIMS["login"], None, CREDENTIALS, ["no AWS credentials found", "AWS_ACCESS_KEY_ID"]),
    ],
    ids=["access-disabled", "type-invalid", "state-invalid", "not-found", "other-account-not-found",
         "auth-restricted-key", "unavailable", "bad-secret", "unknown-key", "no-credentials"],
)
def test_errors_are_explained(gw, tmp_path, instance, creds, code, texts):
    r = scripted(gw, tmp_path, instance, "--send", "", creds=creds)
    assert r.returncode == code, explain(r)
    for text in texts:
        assert text in r.stderr, explain(r)
    assert "Traceback" not in r.stderr and "panicked" not in r.stderr and "Error {" not in r.stderr
    assert "444400001111" not in r.stderr, "a refusal names another account"


def test_wrong_region_names_the_expected_one(gw, tmp_path):
    r = scripted(gw, tmp_path, SIMS["login"], "--region", "eu-west-1", "--send", "", region=False)
    assert r.returncode == CREDENTIALS, explain(r)
    assert "InvalidSignatureException" in r.stderr, explain(r)
    assert "not 'eu-west-1'; expecting 'us-east-1'" in r.stderr and "--region" in r.stderr, explain(r)


def test_throttling_is_retried_then_explained(throttled, tmp_path):
    server = throttled["server"]
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    instance = "i-0e300000000000001"
    # The budget is two requests; spend it.
    for _ in range(2):
        p = run([str(_binary()), "push", instance, "--key", f"{key}.pub", "--region", REGION,
                 "--endpoint-url", server.url], tmp_path, THROTTLED_CREDS)
        assert p.returncode in (OK, API_REFUSED), explain(p)
    started = time.monotonic()
    r = run(connect_args(throttled, instance, "--non-interactive"), tmp_path, THROTTLED_CREDS)
    assert r.returncode == API_REFUSED, explain(r)
    assert "ThrottlingException" in r.stderr and "3 attempts with backoff" in r.stderr, explain(r)
    assert time.monotonic() - started < 30


def test_network_errors_are_one_line(gw, tmp_path):
    server = gw["server"]
    closed = _closed_port()
    # The key is pushed once the SSH server is verified, so an unreachable API is met after a
    # working SSH endpoint.
    ssh = ["--ssh-endpoint", f"127.0.0.1:{server.ssh_port}", "--host-key-fingerprint", gw["fingerprint"]]
    cases = [
        ([str(_binary()), "connect", SIMS["login"], "--region", REGION, "--endpoint-url",
          f"http://127.0.0.1:{closed}", *ssh, "--non-interactive"], "cannot reach the EC2 Instance Connect API"),
        ([str(_binary()), "connect", SIMS["login"], "--region", REGION, "--endpoint-url",
          "http://serialgate.invalid:4580", *ssh, "--non-interactive"], "cannot reach the EC2 Instance Connect API"),
        ([str(_binary()), "connect", SIMS["login"], "--region", REGION, "--endpoint-url", server.url,
          "--ssh-endpoint", f"127.0.0.1:{closed}", "--host-key-fingerprint", gw["fingerprint"],
          "--non-interactive"], "cannot connect to the SSH endpoint"),
        ([str(_binary()), "connect", SIMS["login"], "--region", REGION, "--endpoint-url", server.url,
          "--ssh-endpoint", "serialgate.invalid", "--host-key-fingerprint", gw["fingerprint"],
          "--non-interactive"], "cannot resolve the SSH endpoint serialgate.invalid"),
    ]
    for args, text in cases:
        r = run(args, tmp_path)
        assert r.returncode == NETWORK, explain(r)
        assert text in r.stderr, explain(r)
        assert len(r.stderr.strip().splitlines()) == 1, explain(r)


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_usage_errors(gw, tmp_path):
    r = run(connect_args(gw, "not-an-instance", "--non-interactive"), tmp_path)
    assert r.returncode == USAGE and "is not an instance id" in r.stderr, explain(r)
    r = run(connect_args(gw, SIMS["login"], "--send", "x"), tmp_path)
    assert r.returncode == USAGE and "--non-interactive" in r.stderr, explain(r)
    r = run(connect_args(gw, SIMS["login"], "--non-interactive", region=False), tmp_path)
    assert r.returncode == USAGE and "no AWS Region configured" in r.stderr, explain(r)
    r = run(connect_args(gw, SIMS["login"], "--host-key-fingerprint", "MD5:00", "--non-interactive",
                         pin=False), tmp_path)
    assert r.returncode == USAGE and "invalid --host-key-fingerprint" in r.stderr, explain(r)


# --- push and push-os-user-key ----------------------------------------------------------------

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_push_prints_the_request_id_and_openssh_connects(gw, tmp_path):
    server = gw["server"]
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    # The private key file works too: its public half is pushed.
    p = run([str(_binary()), "push", SIMS["push"], "--key", str(key), "--region", REGION,
             "--endpoint-url", server.url], tmp_path)
    assert p.returncode == OK, explain(p)
    assert UUID.match(p.stdout.strip()), explain(p)
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{server.ssh_port} {gw['public']}\n")
    s = subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key), "-p", str(server.ssh_port), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known}", "-o", "IdentitiesOnly=yes",
         "-o", "ConnectTimeout=10", "-tt", f"{SIMS['push']}.port0@127.0.0.1"],
        input=b"\r~.", capture_output=True, timeout=30)
    assert s.returncode in (0, 255), s.stderr
    assert b"Permission denied" not in s.stderr, s.stderr


def test_push_os_user_key(gw, tmp_path):
    server = gw["server"]
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    base = [str(_binary()), "push-os-user-key", SIMS["push"], "--os-user", "ec2-user", "--key",
            f"{key}.pub", "--region", REGION, "--endpoint-url", server.url]
    p = run(base, tmp_path)
    assert p.returncode == OK, explain(p)
    assert UUID.match(p.stdout.strip()), explain(p)
    p = run(base + ["--availability-zone", "us-east-1f"], tmp_path)
    assert p.returncode == API_REFUSED, explain(p)
    assert "EC2InstanceNotFoundException" in p.stderr, explain(p)
    assert "in the Availability Zone us-east-1f" in p.stderr and "Region" not in p.stderr, explain(p)
    p = run(base[:2] + [STOPPED] + base[3:], tmp_path)
    assert p.returncode == API_REFUSED and "start-instances" in p.stderr, explain(p)
    p = run(base[:6] + [str(tmp_path / "missing.pub")] + base[7:], tmp_path)
    assert p.returncode == USAGE and "cannot read the key" in p.stderr, explain(p)
