#!/usr/bin/env bash
# Prepares a small bootable Linux guest from Debian packages and prints the directory holding
# it: `vmlinuz` (the Debian cloud kernel, fetched with apt-get download and unpacked with
# dpkg-deb) and `initramfs.cpio.gz` (busybox-static, a getty on ttyS0, kernel.sysrq=1,
# root password "root", and busybox acpid with the kernel's ACPI button and evdev modules, so
# the guest powers off when asked to, as `stop-instances` does; and the virtio-net modules with a
# static address, 169.254.169.15/24, on the link serialgate's QEMU user network gives each VM, so
# the guest reaches http://169.254.169.254/instance-keys/v1/USER). Cached: a second run only
# prints the directory.
#
# With `--sshd SERIALGATE_BINARY` it also writes `initramfs-sshd.cpio.gz`: the same guest plus
# this host's OpenSSH sshd and the given serialgate binary (stripped), with their shared
# libraries, appended as a second cpio archive (the kernel unpacks both). At boot the guest
# writes /etc/serialgate/authorized-keys.toml from the instance id and signer key serialgate
# puts on its kernel command line, makes an ed25519 host key and starts syslogd and sshd with
# `AuthorizedKeysCommand serialgate authorized-keys %u %f`: keys pushed with SendSSHPublicKey
# for the instance log in, and nothing else does (no password logins over SSH).
#
#   SERIALGATE_VM_CACHE   cache directory (default ~/.cache/serialgate/vm)
#   VM_KERNEL_PKG         linux-image-cloud-amd64 (default) or linux-image-amd64
set -euo pipefail

sshd_helper=
if [ "${1:-}" = --sshd ]; then
  sshd_helper=${2:?--sshd needs the serialgate binary to put in the guest}
  [ -x "$sshd_helper" ] || { echo "[vm-guest] $sshd_helper is not an executable" >&2; exit 1; }
  [ -x /usr/sbin/sshd ] || { echo "[vm-guest] /usr/sbin/sshd is missing (apt-get install openssh-server)" >&2; exit 1; }
fi

cache=${SERIALGATE_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/serialgate/vm}
kpkg=${VM_KERNEL_PKG:-linux-image-cloud-amd64}
apt_opts=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3 -o APT::Sandbox::User=root)
log() { printf '[vm-guest] %s\n' "$*" >&2; }
mkdir -p "$cache/debs"

updated=0
apt_update() {
  if [ $updated = 0 ]; then
    apt-get "${apt_opts[@]}" update -qq >&2 || log "apt-get update failed (continuing with the lists we have)"
    updated=1
  fi
}

# Downloads a package's .deb once and prints its path.
fetch() {
  local f
  f=$(ls "$cache/debs/$1"_*.deb 2>/dev/null | head -1 || true)
  if [ -z "$f" ]; then
    apt-cache show "$1" >/dev/null 2>&1 || apt_update
    (cd "$cache/debs" && apt-get "${apt_opts[@]}" -qq download "$1" >&2)
    f=$(ls "$cache/debs/$1"_*.deb | head -1)
  fi
  echo "$f"
}

# The modules the guest loads, from the same package as the kernel (they must match it).
# Listed in load order: each after the ones it depends on.
modules=(kernel/drivers/acpi/button.ko kernel/drivers/input/evdev.ko
  kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko
  kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio_pci_legacy_dev.ko
  kernel/drivers/virtio/virtio_pci.ko kernel/net/core/failover.ko
  kernel/drivers/net/net_failover.ko kernel/drivers/net/virtio_net.ko)
if [ ! -s "$cache/vmlinuz" ] || [ ! -s "$cache/modules/virtio_net.ko" ]; then
  apt-cache depends "$kpkg" >/dev/null 2>&1 || apt_update
  # The meta package depends on the versioned one, e.g. linux-image-6.1.0-56-cloud-amd64.
  real=$(apt-cache depends "$kpkg" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$real" ] || { log "cannot resolve $kpkg to a kernel package"; exit 1; }
  deb=$(fetch "$real")
  tmp=$(mktemp -d "$cache/kernel.XXXXXX")
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' \
    "${modules[@]/#/./lib/modules/*/}"
  rm -rf "$cache/modules" && mkdir -p "$cache/modules"
  for m in "${modules[@]}"; do mv "$tmp"/lib/modules/*/"$m" "$cache/modules/"; done
  touch "$cache"/modules/*.ko   # newer than the initramfs, which takes them in again
  mv "$tmp"/boot/vmlinuz-* "$cache/vmlinuz.tmp" && mv "$cache/vmlinuz.tmp" "$cache/vmlinuz"
  rm -rf "$tmp"
  log "kernel from $real"
fi

if [ ! -x "$cache/busybox" ]; then
  deb=$(fetch busybox-static)
  dpkg-deb --fsys-tarfile "$deb" | tar -xO ./bin/busybox > "$cache/busybox.tmp"
  chmod 755 "$cache/busybox.tmp" && mv "$cache/busybox.tmp" "$cache/busybox"
fi

# Rebuilt when this script or the kernel changes, so the guest follows them.
initramfs=$cache/initramfs.cpio.gz
if [ ! -s "$initramfs" ] || [ "$0" -nt "$initramfs" ] || [ "$cache/modules/virtio_net.ko" -nt "$initramfs" ]; then
  command -v cpio >/dev/null || { log "cpio is missing (apt-get install cpio)"; exit 1; }
  root=$(mktemp -d "$cache/root.XXXXXX") && chmod 755 "$root"   # it is the guest's /
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/acpi/PWRF,proc,sys,dev,tmp,root,lib/modules,var/log,var/run}
  chmod 1777 "$root/tmp"
  cp "$cache/busybox" "$root/bin/busybox"
  cp "$cache"/modules/*.ko "$root/lib/modules/"
  for applet in $("$cache/busybox" --list-full); do
    [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
  done
  cat > "$root/init" <<'INIT'
#!/bin/busybox sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
echo 1 > /proc/sys/kernel/sysrq
hostname serialgate-vm
# The ACPI power button (QEMU's system_powerdown) as an input event, which acpid turns into
# /etc/acpi/PWRF/00000080: a clean poweroff instead of a kill when the stop timeout runs out.
insmod /lib/modules/evdev.ko
insmod /lib/modules/button.ko
acpid
# The NIC of serialgate's user network, where 169.254.169.254:80 is serialgate's instance keys.
for m in virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci failover \
    net_failover virtio_net; do
  insmod /lib/modules/$m.ko
done
ip link set lo up
if ip link set eth0 up 2>/dev/null; then
  ip addr add 169.254.169.15/24 dev eth0
fi
# What an image adds on top of this one (the sshd variant) starts here.
[ -x /etc/rc.local ] && /etc/rc.local
exec /sbin/init
INIT
  chmod 755 "$root/init"
  printf '#!/bin/sh\npoweroff\n' > "$root/etc/acpi/PWRF/00000080"
  chmod 755 "$root/etc/acpi/PWRF/00000080"
  cat > "$root/etc/inittab" <<'TAB'
ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
TAB
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  echo "root:$("$cache/busybox" mkpasswd -m sha512 root serialgate):19000:0:99999:7:::" > "$root/etc/shadow"
  chmod 600 "$root/etc/shadow"
  echo 'root:x:0:' > "$root/etc/group"
  printf 'serialgate test VM (login: root, password: root)\n\n' > "$root/etc/issue"
  echo 'export PS1="\\h# "' > "$root/etc/profile"
  (cd "$root" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9 > "$cache/initramfs.tmp"
  mv "$cache/initramfs.tmp" "$cache/initramfs.cpio.gz"
  rm -rf "$root"
  log "initramfs built"
fi

# The sshd variant: a second archive appended to the first, rebuilt when either input changes.
if [ -n "$sshd_helper" ]; then
  sshd_initramfs=$cache/initramfs-sshd.cpio.gz
  if [ ! -s "$sshd_initramfs" ] || [ "$initramfs" -nt "$sshd_initramfs" ] \
      || [ "$sshd_helper" -nt "$sshd_initramfs" ] || [ /usr/sbin/sshd -nt "$sshd_initramfs" ]; then
    root=$(mktemp -d "$cache/root.XXXXXX") && chmod 755 "$root"   # it is the guest's /
    mkdir -p "$root"/{usr/sbin,usr/bin,usr/local/bin,etc/ssh,etc/serialgate,run/sshd}
    cp /usr/sbin/sshd "$root/usr/sbin/sshd"
    cp "$(command -v ssh-keygen)" "$root/usr/bin/ssh-keygen"
    strip -o "$root/usr/local/bin/serialgate" "$sshd_helper" 2>/dev/null \
      || cp "$sshd_helper" "$root/usr/local/bin/serialgate"
    # Their shared libraries and the loader, at the paths the binaries look for them.
    for lib in $(ldd /usr/sbin/sshd "$(command -v ssh-keygen)" "$sshd_helper" \
        | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $2 ~ /^\(/ {print $1}' | sort -u); do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
    cat > "$root/etc/ssh/sshd_config" <<'SSHD'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile none
AuthorizedKeysCommand /usr/local/bin/serialgate authorized-keys %u %f
AuthorizedKeysCommandUser nobody
SyslogFacility AUTHPRIV
LogLevel VERBOSE
SSHD
    cat > "$root/etc/rc.local" <<'RC'
#!/bin/sh
# The helper's configuration from what serialgate put on the kernel command line.
for word in $(cat /proc/cmdline); do
  case $word in
    serialgate.instance=*) instance=${word#*=} ;;
    serialgate.signer=*) signer=${word#*=} ;;
  esac
done
cat > /etc/serialgate/authorized-keys.toml <<TOML
endpoint = "http://169.254.169.254"
instance_id = "$instance"
signer_public_key = "ssh-ed25519 $signer serialgate-signer"
TOML
syslogd
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
/usr/sbin/sshd
RC
    chmod 755 "$root/etc/rc.local"
    cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
sshd:x:100:65534:sshd:/run/sshd:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    (cd "$root" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -1 > "$cache/overlay.tmp"
    cat "$initramfs" "$cache/overlay.tmp" > "$cache/initramfs-sshd.tmp"
    rm -f "$cache/overlay.tmp"
    mv "$cache/initramfs-sshd.tmp" "$sshd_initramfs"
    rm -rf "$root"
    log "initramfs with sshd built"
  fi
fi

echo "$cache"
