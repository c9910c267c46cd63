#!/usr/bin/env bash
# A real Linux VM behind serialgate in one command: installs QEMU and OpenSSH's server if needed
# (as root), prepares a small guest from Debian packages (scripts/vm-guest.sh, cached, with sshd
# and `serialgate authorized-keys`), and runs serialgate with it as managed instance
# i-0123456789abcdef0 (access key test/test, API :4580, SSH :2222, the guest's sshd on :2201).
# Once the VM is up it prints the commands that connect to its serial console and to its sshd
# with a pushed key, with this state directory's host key.
#
#   VM_ACCEL=tcg|kvm|auto   CPU acceleration (default auto: KVM when usable, else TCG)
#   SERIALGATE_STATE        state directory (default ~/.local/state/serialgate-vm)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v cpio >/dev/null || need+=(cpio)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
if ((${#need[@]})); then
  if [ "$(id -u)" = 0 ]; then
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

instance=i-0123456789abcdef0
api=127.0.0.1:4580
ssh_port=2222
guest_ssh_port=2201
cargo build --release -p serialgate
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/serialgate")
# The guest runs this build's `serialgate authorized-keys` for its sshd.
guest=$(scripts/vm-guest.sh --sshd "$bin")
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
id = "$instance"
account = "000000000000"
instance_type = "t3.micro"
tags = { Name = "serialgate-vm" }

[instances.qemu]
kernel = "$guest/vmlinuz"
initrd = "$guest/initramfs-sshd.cpio.gz"
memory_mib = 256
accel = "${VM_ACCEL:-auto}"
stop_timeout_seconds = 10
ssh_forward = "127.0.0.1:$guest_ssh_port"   # the guest's sshd
TOML
echo "config: $config" >&2

# The log also goes to a file, where the line saying the VM is up is looked for.
log="$state/serve.log"
: > "$log"
"$bin" serve --config "$config" --api-listen "$api" --ssh-listen "127.0.0.1:$ssh_port" \
  2> >(tee -a "$log" >&2) &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid"; exit; }
trap stop INT TERM

until grep -q 'instance running' "$log"; do
  kill -0 "$pid" 2>/dev/null || { wait "$pid"; exit; }
  sleep 0.5
done

# This state directory's host key (`serialgate host-key --config FILE` prints it and its
# fingerprint), pinned in each command below.
mapfile -t host_key < <("$bin" host-key --config "$config")
cat >&2 <<HELP

The VM $instance is up (console login: root / root). To connect:

  # Pin serialgate's SSH host key (from $state):
  echo '[127.0.0.1]:$ssh_port ${host_key[0]}' >> ~/.ssh/known_hosts

  # Push a key (valid 60 s), then connect with OpenSSH:
  ssh-keygen -t ed25519 -N '' -f /tmp/sg_key    # once
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test aws ec2-instance-connect \\
      send-serial-console-ssh-public-key --region us-east-1 --endpoint-url http://$api \\
      --instance-id $instance --serial-port 0 --ssh-public-key file:///tmp/sg_key.pub
  ssh -i /tmp/sg_key -p $ssh_port $instance.port0@127.0.0.1

  # Or in one step (an in-memory key, the host key pinned by its fingerprint):
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test $bin connect $instance \\
      --region us-east-1 --endpoint-url http://$api --ssh-endpoint 127.0.0.1:$ssh_port \\
      --host-key-fingerprint ${host_key[1]}

  # The guest's own sshd, which takes keys pushed with SendSSHPublicKey (valid 60 s), in one
  # step (add -o StrictHostKeyChecking=accept-new after -- the first time):
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test $bin ssh root@$instance \\
      --region us-east-1 --endpoint-url http://$api --address 127.0.0.1 --port $guest_ssh_port

HELP
wait "$pid"
