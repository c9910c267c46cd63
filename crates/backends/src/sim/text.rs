//! Fixed text the simulated machine prints: kernel boot log, getty banner, SysRq help.

use std::time::Duration;

/// The simulated kernel release, as `uname -r` prints it.
pub(crate) const RELEASE: &str = "6.1.0-sim";
/// The simulated kernel version string, as `uname -v` prints it.
pub(crate) const VERSION: &str = "#1 SMP PREEMPT_DYNAMIC";
/// The simulated machine's hostname.
pub(crate) const HOSTNAME: &str = "sim";
/// The simulated architecture.
pub(crate) const MACHINE: &str = "x86_64";

/// Kernel log lines printed at boot, with the timestamps a small VM shows.
pub(crate) const BOOT_LOG: &[(Duration, &str)] = &[
    (
        Duration::ZERO,
        "Linux version 6.1.0-sim (serialgate@sim) (gcc (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC",
    ),
    (
        Duration::ZERO,
        "Command line: console=ttyS0,115200n8 root=/dev/vda ro",
    ),
    (
        Duration::from_micros(4_211),
        "Memory: 241236K/261624K available (14336K kernel code)",
    ),
    (
        Duration::from_micros(131_072),
        "printk: console [ttyS0] enabled",
    ),
    (
        Duration::from_micros(412_357),
        "Serial: 8250/16550 driver, 4 ports, IRQ sharing enabled",
    ),
    (
        Duration::from_micros(423_962),
        "00:04: ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A",
    ),
    (
        Duration::from_micros(1_203_115),
        "EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.",
    ),
    (
        Duration::from_micros(1_718_842),
        "Run /sbin/init as init process",
    ),
];

/// The uptime when the login prompt appears; later kernel messages are stamped after it.
pub(crate) const BOOTED_AT: Duration = Duration::from_micros(2_000_000);

/// `/etc/issue` as getty shows it; `{}` is the simulator's name.
pub(crate) fn banner(name: &str) -> String {
    format!("Sim Linux 6.1 {name} ttyS0")
}

/// The login prompt, as getty prints it.
pub(crate) const LOGIN_PROMPT: &str = "sim login: ";
/// The password prompt, as login prints it.
pub(crate) const PASSWORD_PROMPT: &str = "Password: ";

/// Linux's reply to SysRq `h` or an unknown key (drivers/tty/sysrq.c, x86 without optional keys).
pub(crate) const SYSRQ_HELP: &str = "sysrq: HELP : loglevel(0-9) reboot(b) crash(c) \
    show-all-locks(d) terminate-all-tasks(e) memory-full-oom-kill(f) kill-all-tasks(i) \
    thaw-filesystems(j) sak(k) show-backtrace-all-active-cpus(l) show-memory-usage(m) \
    nice-all-RT-tasks(n) poweroff(o) show-registers(p) show-all-timers(q) unraw(r) sync(s) \
    show-task-states(t) unmount(u) show-blocked-tasks(w) dump-ftrace-buffer(z)";

/// What the `help` built-in prints.
pub(crate) const HELP: &str = "Built-in commands: echo exit help hostname logout reboot seq \
    sysrq-count uname whoami\r\nSysRq: send a BREAK, then a key (h for help).";

/// Formats a kernel timestamp the way printk does: `[%5lu.%06lu]`.
pub(crate) fn timestamp(uptime: Duration) -> String {
    format!("[{:5}.{:06}]", uptime.as_secs(), uptime.subsec_micros())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_printk() {
        assert_eq!(timestamp(Duration::ZERO), "[    0.000000]");
        assert_eq!(
            timestamp(Duration::from_micros(123_456_789)),
            "[  123.456789]"
        );
    }

    #[test]
    fn help_is_one_line_with_single_spaces() {
        assert!(!SYSRQ_HELP.contains("  "));
        assert!(SYSRQ_HELP.ends_with("dump-ftrace-buffer(z)"));
    }
}
