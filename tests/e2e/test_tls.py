"""The API over HTTPS (`[api] tls_cert_file` / `tls_key_file`) with real clients: the AWS CLI with
`--ca-bundle` (and AWS_CA_BUNDLE), boto3 with `verify=`, and `serialgate connect` / `push` with
`--ca-bundle` (and AWS_CA_BUNDLE). Clients that do not trust the CA fail; plain HTTP to the TLS
port fails cleanly.

The PKI is made here with the openssl CLI: a root CA, an intermediate CA, and a server
certificate for 127.0.0.1 and localhost signed by the intermediate. The server's certificate file
holds the chain (leaf, then intermediate) and clients trust the root only, so every successful
handshake also shows that the chain is sent.
"""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import SSLError
from conftest import _binary
from hostile import (
    ATTACKER_IP,
    LEGIT_IP,
    REGION,
    assert_no_panic,
    aws_cli,
    cli_ok,
    connect_from,
    eic,
    new_key,
    raw_http,
    serve,
)

ACCOUNT = "111100007777"
CREDS = ("AKIATLSSUITE00000001", "tls-suite-secret")
PUSHED = "i-0c7000000000000001"
CONNECTED = "i-0c7000000000000002"

# The TLS handshake counts against the header timeout.
HEADER_TIMEOUT_S = 2

# Exit codes of serialgate connect / push.
OK, USAGE, NETWORK = 0, 2, 5


def openssl(*args: str) -> None:
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)}\n{r.stderr}"


def ca(d: Path, name: str, subject: str, signer: tuple[Path, Path] | None = None) -> tuple[Path, Path]:
    """A CA certificate and key: self-signed, or signed by `signer` (an intermediate)."""
    key, pem = d / f"{name}.key", d / f"{name}.pem"
    if signer is None:
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", str(key), "-out", str(pem), "-days", "2", "-subj", subject,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return pem, key
    ext = d / f"{name}.ext"
    ext.write_text("basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
    sign(d, name, subject, ext, signer)
    return pem, key


def sign(d: Path, name: str, subject: str, ext: Path, signer: tuple[Path, Path]) -> None:
    key, csr, pem = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem"
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", subject)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(signer[0]), "-CAkey", str(signer[1]),
            "-CAserial", str(d / f"{name}.srl"), "-CAcreateserial", "-out", str(pem), "-days", "2",
            "-extfile", str(ext))


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pki")
    root = ca(d, "root", "/CN=serialgate test root CA")
    intermediate = ca(d, "intermediate", "/CN=serialgate test intermediate CA", signer=root)
    ext = d / "server.ext"
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                   "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n")
    sign(d, "server", "/CN=127.0.0.1", ext, intermediate)
    chain = d / "server-chain.pem"
    chain.write_text((d / "server.pem").read_text() + intermediate[0].read_text())
    stranger = ca(d, "stranger", "/CN=someone else's CA")
    garbage = d / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nAAECAwQFBgcICQ==\n-----END CERTIFICATE-----\n")
    return {"ca": root[0], "chain": chain, "key": d / "server.key", "stranger": stranger[0], "garbage": garbage}


@pytest.fixture(scope="module")
def server(pki, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tls")
    text = f"""
region = "us-east-1"
state_dir = "{workdir / 'state'}"

[api]
tls_cert_file = "{pki['chain']}"
tls_key_file = "{pki['key']}"
header_read_timeout_seconds = {HEADER_TIMEOUT_S}

[sessions]
teardown_seconds = 1

[throttle]
rate_per_second = 1000.0
burst = 1000

[[accounts]]
id = "{ACCOUNT}"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "{CREDS[0]}"
secret_access_key = "{CREDS[1]}"

[[instances]]
id = "{PUSHED}"
account = "{ACCOUNT}"
console = "sim:"

[[instances]]
id = "{CONNECTED}"
account = "{ACCOUNT}"
console = "sim:"
"""
    with serve("tls", text, workdir, ca_file=pki["ca"]) as s:
        yield s
    assert_no_panic(s)


@pytest.fixture
def pubkey(tmp_path) -> Path:
    return Path(f"{new_key(tmp_path)}.pub")


def test_health_over_https(server, pki):
    assert server.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    with urllib.request.urlopen(f"{server.url}/health", timeout=5, context=context) as r:
        assert r.status == 200


# --- AWS CLI ----------------------------------------------------------------------------------


def cli_push(server, pubkey: Path, *extra: str, extra_env: dict | None = None):
    return aws_cli(server, CREDS, "ec2-instance-connect", "send-serial-console-ssh-public-key",
                   "--instance-id", PUSHED, "--serial-port", "0", "--ssh-public-key", f"file://{pubkey}",
                   *extra, extra_env=extra_env)


def test_aws_cli_with_ca_bundle(server, pki, pubkey):
    out = cli_ok(cli_push(server, pubkey, "--ca-bundle", str(pki["ca"])))
    assert out["Success"] is True, out


def test_aws_cli_with_aws_ca_bundle(server, pki, pubkey):
    out = cli_ok(cli_push(server, pubkey, extra_env={"AWS_CA_BUNDLE": str(pki["ca"])}))
    assert out["Success"] is True, out


def test_aws_cli_without_the_ca_fails(server, pubkey):
    r = cli_push(server, pubkey)
    assert r.returncode != 0, r.stdout
    assert "SSL validation failed" in r.stderr or "CERTIFICATE_VERIFY_FAILED" in r.stderr, r.stderr


# --- boto3 ------------------------------------------------------------------------------------


def test_boto3_with_verify(server, pki, pubkey):
    resp = eic(server, CREDS, verify=str(pki["ca"])).send_serial_console_ssh_public_key(
        InstanceId=PUSHED, SerialPort=0, SSHPublicKey=pubkey.read_text())
    assert resp["Success"] is True, resp


def test_boto3_without_the_ca_fails(server, pki, pubkey):
    for verify in (None, str(pki["stranger"])):
        with pytest.raises(SSLError):
            eic(server, CREDS, verify=verify).send_serial_console_ssh_public_key(
                InstanceId=PUSHED, SerialPort=0, SSHPublicKey=pubkey.read_text())


# --- serialgate connect / push ----------------------------------------------------------------


def client_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SERIALGATE_"))}
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", HOME=str(home), NO_COLOR="1",
               AWS_ACCESS_KEY_ID=CREDS[0], AWS_SECRET_ACCESS_KEY=CREDS[1])
    env.update(extra)
    return env


def run_client(args: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(_binary()), *args], env=client_env(home, **env), capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    return subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(errors="replace"),
                                       r.stderr.decode(errors="replace"))


def explain(r) -> str:
    return f"exit {r.returncode}\n--- stdout ---\n{r.stdout[-2000:]}\n--- stderr ---\n{r.stderr[-2000:]}"


def serialgate_push(server, pubkey: Path, *extra: str, home: Path, **env: str):
    return run_client(["push", PUSHED, "--key", str(pubkey), "--region", REGION,
                       "--endpoint-url", server.url, *extra], home, **env)


def test_serialgate_connect_with_ca_bundle_reaches_the_login_prompt(server, pki, tmp_path):
    fingerprint = subprocess.run(
        [str(_binary()), "host-key", "--config", str(server.config_path)],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout.split("\n")[1].strip()
    r = run_client(
        ["connect", CONNECTED, "--endpoint-url", server.url, "--region", REGION,
         "--ssh-endpoint", f"{LEGIT_IP}:{server.ssh_port}", "--host-key-fingerprint", fingerprint,
         "--connect-timeout", "10", "--ca-bundle", str(pki["ca"]),
         "--non-interactive", "--timeout", "15", "--send", "", "--expect", "login: "],
        tmp_path,
    )
    assert r.returncode == OK, explain(r)
    assert "sim login: " in r.stdout, explain(r)


def test_serialgate_push_with_ca_bundle_and_aws_ca_bundle(server, pki, pubkey, tmp_path):
    r = serialgate_push(server, pubkey, "--ca-bundle", str(pki["ca"]), home=tmp_path)
    assert r.returncode == OK, explain(r)
    r = serialgate_push(server, pubkey, home=tmp_path, AWS_CA_BUNDLE=str(pki["ca"]))
    assert r.returncode == OK, explain(r)
    # The flag wins over the variable, as in the AWS CLI.
    r = serialgate_push(server, pubkey, "--ca-bundle", str(pki["ca"]), home=tmp_path,
                        AWS_CA_BUNDLE=str(pki["stranger"]))
    assert r.returncode == OK, explain(r)


def test_serialgate_without_the_ca_fails_and_says_what_to_do(server, pki, pubkey, tmp_path):
    for extra in ([], ["--ca-bundle", str(pki["stranger"])]):
        r = serialgate_push(server, pubkey, *extra, home=tmp_path)
        assert r.returncode == NETWORK, explain(r)
        assert "certificate" in r.stderr.lower(), explain(r)
        assert "--ca-bundle" in r.stderr, explain(r)


def test_serialgate_with_an_unusable_bundle_is_a_usage_error(server, pki, pubkey, tmp_path):
    for bundle in (pki["garbage"], tmp_path / "missing.pem"):
        r = serialgate_push(server, pubkey, "--ca-bundle", str(bundle), home=tmp_path)
        assert r.returncode == USAGE, explain(r)
        assert str(bundle) in r.stderr, explain(r)
        assert "panicked" not in r.stderr, explain(r)


# --- plain HTTP to the TLS port ---------------------------------------------------------------


def test_plain_http_to_the_tls_port_fails_cleanly(server, pki):
    r = raw_http(server.api_port, f"GET /health HTTP/1.1\r\nHost: {LEGIT_IP}\r\n\r\n".encode(), timeout=10)
    # No HTTP answer (a TLS alert, then the close), or a plain refusal; never the health page,
    # and never a hang.
    assert r.status in (None, 400), (r.status, r.head[:200], r.error)
    assert b'"ok"' not in r.body
    assert r.elapsed < 5, r.elapsed
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://{LEGIT_IP}:{server.api_port}/health", timeout=5).read()
    # The server is none the worse for it.
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    with urllib.request.urlopen(f"{server.url}/health", timeout=5, context=context) as resp:
        assert resp.status == 200


def test_a_connection_that_never_starts_the_handshake_is_closed(server, pki):
    """Slowloris on the handshake: the header timeout covers it."""
    stalled = [connect_from(ATTACKER_IP, server.api_port, timeout=HEADER_TIMEOUT_S + 8) for _ in range(5)]
    try:
        t0 = time.monotonic()
        for s in stalled:
            try:
                assert s.recv(4096) == b""
            except ConnectionResetError:
                pass
        took = time.monotonic() - t0
        assert HEADER_TIMEOUT_S - 1 <= took <= HEADER_TIMEOUT_S + 5, took
    finally:
        for s in stalled:
            s.close()
    context = ssl.create_default_context(cafile=str(pki["ca"]))
    with urllib.request.urlopen(f"{server.url}/health", timeout=5, context=context) as resp:
        assert resp.status == 200
