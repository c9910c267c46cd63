//! What a managed instance runs: `[instances.qemu]`, turned into a QEMU command line.

use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

/// CPU acceleration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Software emulation: works everywhere.
    Tcg,
    /// Hardware virtualisation.
    Kvm,
}

impl Accel {
    /// KVM when `/dev/kvm` can be opened and the CPU advertises virtualisation (`vmx`/`svm`);
    /// TCG otherwise. A `/dev/kvm` without those flags (nested setups) hangs guests, so the
    /// device alone is not enough.
    pub fn detect() -> Accel {
        let dev_ok = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok();
        let flags_ok = std::fs::read_to_string("/proc/cpuinfo")
            .map(|c| {
                c.lines()
                    .filter(|l| l.starts_with("flags"))
                    .any(|l| l.split_whitespace().any(|f| f == "vmx" || f == "svm"))
            })
            .unwrap_or(false);
        if dev_ok && flags_ok {
            Accel::Kvm
        } else {
            Accel::Tcg
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// A VM definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuSpec {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// A disk image attached as a virtio drive.
    pub disk: Option<PathBuf>,
    pub memory_mib: u32,
    pub cpus: u32,
    /// Kernel command line; `console=ttyS0` is what makes the serial console useful.
    pub append: String,
    pub accel: Accel,
    /// How long a clean stop (ACPI power button) may take before the VM is killed.
    pub stop_timeout_secs: u64,
    /// The `qemu-system-x86_64` to run.
    pub binary: PathBuf,
    /// The serialgate binary, which QEMU runs once per guest connection to 169.254.169.254:80
    /// as `serialgate vm-keys-relay SOCKET` to carry it to the VM's keys socket. None: the VM
    /// has no network at all.
    pub keys_relay: Option<PathBuf>,
    /// A host address QEMU forwards to the guest's port 22 (its sshd), on the VM's network.
    pub ssh_forward: Option<SocketAddrV4>,
}

/// The guest's link: QEMU's user network, moved from 10.0.2.0/24 to the link-local range
/// because a forwarded address must lie inside it and guests look for metadata at
/// 169.254.169.254. The guest takes 169.254.169.15/24.
const GUEST_NET: &str = "net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3";

/// Where the guest reaches its instance keys, as EC2 guests reach instance metadata.
pub const KEYS_ADDRESS: &str = "169.254.169.254:80";

/// Kernel command line words that tell a guest which instance it is and which signer its
/// instance keys carry: `serialgate.instance=ID serialgate.signer=BASE64` (the Ed25519 key's
/// OpenSSH base64). The guest's init reads them from `/proc/cmdline` to configure
/// `serialgate authorized-keys`, as EC2 guests learn their identity from instance metadata.
/// Both are public.
pub fn guest_identity(instance: &str, signer_base64: &str) -> String {
    format!("serialgate.instance={instance} serialgate.signer={signer_base64}")
}

/// Where a VM's sockets live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmPaths {
    pub dir: PathBuf,
    pub serial: PathBuf,
    pub qmp: PathBuf,
    pub log: PathBuf,
    /// Where serialgate serves this VM's instance keys: a connection here is the VM.
    pub keys: PathBuf,
}

impl VmPaths {
    pub fn new(state_dir: &Path, instance: &str) -> Self {
        let dir = state_dir.join("vm").join(instance);
        Self {
            serial: dir.join("ttyS0.sock"),
            qmp: dir.join("qmp.sock"),
            log: dir.join("qemu.log"),
            keys: dir.join("keys.sock"),
            dir,
        }
    }

    /// The console URI sessions and the hub use: a telnet-mode unix socket, so a BREAK reaches
    /// the guest as `IAC BREAK`.
    pub fn console_uri(&self) -> String {
        format!("unix+telnet:{}", self.serial.display())
    }
}

impl QemuSpec {
    /// The QEMU process to start: the binary under `setpriv --pdeathsig KILL` (so it dies with
    /// serialgate even when serialgate is killed outright), no shell, and the minimal
    /// environment of [`backends::child_env`] rather than serialgate's, which may hold secrets.
    /// The caller sets up stdio.
    pub fn command(&self, paths: &VmPaths) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("setpriv");
        cmd.arg("--pdeathsig")
            .arg("KILL")
            .arg("--")
            .arg(&self.binary)
            .args(self.args(paths))
            .env_clear()
            .envs(backends::child_env::minimal());
        cmd
    }

    /// The argument vector (without the binary). No shell is involved anywhere.
    pub fn args(&self, paths: &VmPaths) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "-accel".into(),
            self.accel.as_str().into(),
            "-machine".into(),
            "pc".into(),
            "-m".into(),
            self.memory_mib.to_string(),
            "-smp".into(),
            self.cpus.to_string(),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-monitor".into(),
            "none".into(),
            "-kernel".into(),
            self.kernel.display().to_string(),
            "-append".into(),
            self.append.clone(),
            // ttyS0 on a telnet-mode unix socket: BREAK travels as IAC BREAK.
            "-chardev".into(),
            // wait=on: the VM does not run until serialgate's console hub is connected, so
            // not a byte of the boot is lost (QEMU drops output nobody reads).
            format!(
                "socket,id=s0,path={},server=on,wait=on,telnet=on",
                paths.serial.display()
            ),
            "-serial".into(),
            "chardev:s0".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", paths.qmp.display()),
        ];
        if self.accel == Accel::Kvm {
            a.extend(["-cpu".into(), "host".into()]);
        }
        if let Some(initrd) = &self.initrd {
            a.extend(["-initrd".into(), initrd.display().to_string()]);
        }
        if let Some(disk) = &self.disk {
            a.extend([
                "-drive".into(),
                format!("file={},if=virtio,format=raw", disk.display()),
            ]);
        }
        if let Some(relay) = &self.keys_relay {
            a.extend([
                "-netdev".into(),
                user_network(relay, &paths.keys, self.ssh_forward),
                "-device".into(),
                "virtio-net-pci,netdev=n0".into(),
            ]);
        }
        a
    }
}

/// `-netdev user`: `restrict=on` keeps the guest off the host and every other network, except
/// the one forwarded address. `guestfwd=…-cmd:` starts the relay once per guest connection with
/// the connection as its stdin and stdout (libslirp runs it without a shell, splitting the
/// command line by shell quoting rules); a `chardev:` target would be one byte stream shared by
/// all the guest's connections, with no end to each, which HTTP cannot run over. `hostfwd`
/// (not affected by `restrict`) opens the guest's sshd on a host address when asked.
fn user_network(relay: &Path, keys: &Path, ssh_forward: Option<SocketAddrV4>) -> String {
    let cmd = format!(
        "{} vm-keys-relay {}",
        shell_quote(&relay.display().to_string()),
        shell_quote(&keys.display().to_string())
    );
    let forward = ssh_forward.map_or(String::new(), |a| {
        format!("hostfwd=tcp:{}:{}-:22,", a.ip(), a.port())
    });
    // QEMU's option syntax: a comma inside a value is written twice.
    format!(
        "user,id=n0,restrict=on,{GUEST_NET},{forward}guestfwd=tcp:{KEYS_ADDRESS}-cmd:{}",
        cmd.replace(',', ",,")
    )
}

/// `s` as one word for a shell (here: libslirp's `g_shell_parse_argv`).
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line() {
        let spec = QemuSpec {
            kernel: "/k".into(),
            initrd: Some("/i".into()),
            disk: None,
            memory_mib: 256,
            cpus: 1,
            append: "console=ttyS0".into(),
            accel: Accel::Tcg,
            stop_timeout_secs: 10,
            binary: "qemu-system-x86_64".into(),
            keys_relay: None,
            ssh_forward: None,
        };
        let paths = VmPaths::new(Path::new("/s"), "i-1");
        let args = spec.args(&paths);
        let joined = args.join(" ");
        assert!(joined.contains("-accel tcg"));
        assert!(
            joined.contains("socket,id=s0,path=/s/vm/i-1/ttyS0.sock,server=on,wait=on,telnet=on")
        );
        assert!(joined.contains("-initrd /i"));
        assert!(!joined.contains("-cpu host"));
        assert!(!joined.contains("-netdev"), "no relay, no network");
        assert_eq!(paths.console_uri(), "unix+telnet:/s/vm/i-1/ttyS0.sock");
    }

    /// A TCG guest with a kernel and nothing else; `keys_relay` as given.
    fn small_spec(keys_relay: Option<PathBuf>) -> QemuSpec {
        QemuSpec {
            kernel: "/k".into(),
            initrd: None,
            disk: None,
            memory_mib: 256,
            cpus: 1,
            append: "console=ttyS0".into(),
            accel: Accel::Tcg,
            stop_timeout_secs: 10,
            binary: "qemu-system-x86_64".into(),
            keys_relay,
            ssh_forward: None,
        }
    }

    #[test]
    fn the_keys_address_is_forwarded_to_the_relay_with_quoting() {
        let spec = small_spec(Some("/usr/bin/serialgate".into()));
        let args = spec.args(&VmPaths::new(Path::new("/s"), "i-1"));
        let netdev = args.iter().position(|a| a == "-netdev").unwrap();
        assert_eq!(
            args[netdev + 1],
            "user,id=n0,restrict=on,net=169.254.169.0/24,host=169.254.169.2,dns=169.254.169.3,\
             guestfwd=tcp:169.254.169.254:80-cmd:'/usr/bin/serialgate' vm-keys-relay \
             '/s/vm/i-1/keys.sock'"
        );
        assert_eq!(
            args[netdev + 2..netdev + 4],
            ["-device", "virtio-net-pci,netdev=n0"]
        );
        // A state directory with a comma and a quote stays one argument of the relay.
        let args = spec.args(&VmPaths::new(Path::new("/it's,here"), "i-1"));
        let netdev = args.iter().position(|a| a == "-netdev").unwrap();
        assert!(
            args[netdev + 1].ends_with(r"vm-keys-relay '/it'\''s,,here/vm/i-1/keys.sock'"),
            "{}",
            args[netdev + 1]
        );
    }

    #[test]
    fn the_guests_sshd_is_forwarded_when_asked() {
        let mut spec = small_spec(Some("/usr/bin/serialgate".into()));
        spec.ssh_forward = Some("127.0.0.1:2201".parse().unwrap());
        let args = spec.args(&VmPaths::new(Path::new("/s"), "i-1"));
        let netdev = args.iter().position(|a| a == "-netdev").unwrap();
        assert!(
            args[netdev + 1].contains(",hostfwd=tcp:127.0.0.1:2201-:22,guestfwd="),
            "{}",
            args[netdev + 1]
        );
        assert_eq!(
            guest_identity("i-1", "AAAAC3"),
            "serialgate.instance=i-1 serialgate.signer=AAAAC3"
        );
    }

    /// QEMU must not inherit serialgate's environment: cargo sets `CARGO_PKG_NAME` and friends
    /// for this test process, and none of them may be passed on.
    #[test]
    fn the_command_has_a_minimal_environment() {
        let spec = small_spec(None);
        let cmd = spec.command(&VmPaths::new(Path::new("/s"), "i-1"));
        let std = cmd.as_std();
        let names: Vec<String> = std
            .get_envs()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for name in &names {
            assert!(["PATH", "LANG", "TERM"].contains(&name.as_str()), "{name}");
        }
        assert!(names.iter().any(|n| n == "PATH"));
        // `get_envs` lists only what was set; whether the rest is inherited shows in the
        // command's rendering, which starts with `env -i` when the environment is cleared.
        let shown = format!("{std:?}");
        assert!(shown.starts_with("env -i "), "{shown}");
        assert!(!shown.contains("CARGO"), "{shown}");
        assert_eq!(std.get_program(), "setpriv");
    }
}
