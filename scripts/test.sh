#!/usr/bin/env bash
# Runs every test serialgate has: formatting and lints, the Rust suites (unit, integration with
# the AWS SDK for Rust and a russh client), and the end-to-end suites that drive the built binary
# with the AWS CLI, boto3 and OpenSSH. Installs what it needs on first use (Debian packages when
# run as root, Python packages in .venv).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*" >&2; }

# --- system packages -----------------------------------------------------------------------------
# OpenSSH (client for the e2e tests; its server plays an instance that takes keys pushed with
# SendSSHPublicKey), QEMU and cpio (the
# managed-VM tests; the guest itself comes from `apt-get download`), Redis and PostgreSQL (the
# store contract and multi-node tests start their own servers), tmux (the interactive client
# test), openssl (the TLS test makes its CA and certificates), curl (README.md's examples, which
# tests/e2e/test_readme.py runs as written), asciinema (plays the session recordings back),
# npm (the build fetches the browser console's terminal, xterm.js, with it), Chromium and its
# ChromeDriver (the browser console's tests). `command -v` keeps a second run from touching apt
# at all.
need=()
command -v ssh >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
command -v redis-server >/dev/null || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v tmux >/dev/null || need+=(tmux)
command -v openssl >/dev/null || need+=(openssl)
command -v setpriv >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
command -v asciinema >/dev/null || need+=(asciinema)
command -v npm >/dev/null || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    log "installing ${need[*]}"
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them with apt-get, or run this script as root)" >&2
    exit 1
  fi
fi

# --- Python clients (AWS CLI, boto3, pytest) in a local venv ---------------------------------
if [ ! -x .venv/bin/pytest ] || [ tests/e2e/requirements.txt -nt .venv/.installed ]; then
  log "setting up .venv (awscli, boto3, pytest)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt
  touch .venv/.installed
fi

# --- Rust ---------------------------------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"
cargo test --workspace --locked

# --- end to end: the built binary driven by real clients ----------------------------------------
log "end-to-end tests (AWS CLI, boto3, OpenSSH)"
cargo build --locked -p serialgate
export SERIALGATE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/serialgate"
export PATH="$PWD/.venv/bin:$PATH"
.venv/bin/pytest -q tests/e2e
