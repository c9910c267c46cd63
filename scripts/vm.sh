#!/usr/bin/env bash
# A real Linux VM behind serialgate in one command: installs QEMU if needed (as root), prepares
# a small guest from Debian packages (scripts/vm-guest.sh, cached), and runs serialgate with it
# as managed instance i-0123456789abcdef0 (access key test/test, API :4580, SSH :2222).
#
#   VM_ACCEL=tcg|kvm|auto   CPU acceleration (default auto: KVM when usable, else TCG)
#   SERIALGATE_STATE        state directory (default ~/.local/state/serialgate-vm)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

guest=$(scripts/vm-guest.sh)
state=${SERIALGATE_STATE:-${XDG_STATE_HOME:-$HOME/.local/state}/serialgate-vm}
mkdir -p "$state"
config="$state/serialgate.toml"
cat > "$config" <<TOML
# Written by scripts/vm.sh.
region = "us-east-1"
state_dir = "$state"

[[accounts]]
id = "000000000000"
serial_console_access = true

[[accounts.credentials]]
access_key_id = "test"
secret_access_key = "test"
actions = ["*"]   # the EC2 calls too (start, stop, reboot, console output), not only pushes

[[instances]]
id = "i-0123456789abcdef0"
account = "000000000000"
instance_type = "t3.micro"
tags = { Name = "serialgate-vm" }

[instances.qemu]
kernel = "$guest/vmlinuz"
initrd = "$guest/initramfs.cpio.gz"
memory_mib = 256
accel = "${VM_ACCEL:-auto}"
stop_timeout_seconds = 10
TOML
echo "config: $config" >&2
exec cargo run --release -p serialgate -- serve --config "$config"
