//! The simulated machine: boot, getty login, a tiny shell, and SysRq on BREAK. A pure state
//! machine fed bytes and BREAKs with the current time; output accumulates for the caller to take
//! in chunks, and long command output is generated only as it is taken.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::time::Instant;

use super::ldisc::{Event, LineDiscipline};
use super::shell::{self, Context, Outcome, SEQ_CAP};
use super::text;

/// How long a BREAK keeps SysRq armed: the next byte within it is a SysRq key (Linux: 5 s).
pub(crate) const SYSRQ_WINDOW: Duration = Duration::from_secs(5);

/// The longest login name kept; longer ones are cut.
const MAX_USER: usize = 32;

const CTRL_C: u8 = 0x03;

/// Who is at the other end of the line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Login,
    Password { user: String },
    Shell { user: String },
}

/// `seq` output still to be printed.
#[derive(Debug, Clone, Copy)]
struct Seq {
    next: i64,
    remaining: i64,
}

/// One simulated machine's whole state.
#[derive(Debug)]
pub(crate) struct Machine {
    name: String,
    stage: Stage,
    ldisc: LineDiscipline,
    out: BytesMut,
    job: Option<Seq>,
    sysrq_armed: Option<Instant>,
    breaks: u64,
    booted: Instant,
}

impl Machine {
    /// A machine that has just booted: its boot log and login prompt are waiting as output.
    pub(crate) fn new(name: &str, now: Instant) -> Self {
        let mut machine = Self {
            name: name.to_owned(),
            stage: Stage::Login,
            ldisc: LineDiscipline::default(),
            out: BytesMut::new(),
            job: None,
            sysrq_armed: None,
            breaks: 0,
            booted: now,
        };
        machine.boot(now);
        machine
    }

    /// BREAKs received so far (kept across reboots, like a counter on the serial port).
    pub(crate) fn breaks(&self) -> u64 {
        self.breaks
    }

    /// Whether output is waiting (text, or command output still to generate).
    pub(crate) fn has_output(&self) -> bool {
        !self.out.is_empty() || self.job.is_some()
    }

    /// Bytes of output already generated and not yet taken.
    pub(crate) fn backlog(&self) -> usize {
        self.out.len()
    }

    /// Takes up to `max` bytes of output.
    pub(crate) fn take_output(&mut self, max: usize) -> Option<Bytes> {
        if self.out.is_empty() {
            self.run_job(max);
        }
        if self.out.is_empty() {
            return None;
        }
        let chunk = self.out.split_to(max.min(self.out.len())).freeze();
        if self.out.is_empty() {
            // Let the chunk own the allocation; an idle machine keeps no output buffer.
            self.out = BytesMut::new();
        }
        Some(chunk)
    }

    /// A BREAK on the line. Like Linux's serial core, it arms SysRq, and a second BREAK while
    /// armed disarms it.
    pub(crate) fn brk(&mut self, now: Instant) {
        self.breaks += 1;
        self.sysrq_armed = match self.sysrq_armed {
            Some(at) if now.saturating_duration_since(at) <= SYSRQ_WINDOW => None,
            _ => Some(now),
        };
    }

    /// One byte typed on the line.
    pub(crate) fn input(&mut self, byte: u8, now: Instant) {
        if let Some(at) = self.sysrq_armed.take()
            && now.saturating_duration_since(at) <= SYSRQ_WINDOW
        {
            // The SysRq key is consumed by the kernel: not echoed, not seen by the shell.
            self.sysrq(byte, now);
            return;
        }
        if self.job.is_some() {
            // A running command reads nothing; only an interrupt matters.
            if byte == CTRL_C {
                self.job = None;
                self.out.put_slice(b"^C\r\n");
                self.prompt();
            }
            return;
        }
        let echo = !matches!(self.stage, Stage::Password { .. });
        match self.ldisc.feed(byte, echo, &mut self.out) {
            Event::None => {}
            Event::Line(line) => self.enter(&line, now),
            Event::Interrupt => {
                if matches!(self.stage, Stage::Password { .. }) {
                    self.stage = Stage::Login;
                }
                self.prompt();
            }
            Event::EndOfFile => {
                if matches!(self.stage, Stage::Shell { .. }) {
                    self.logout();
                }
            }
        }
    }

    fn uptime(&self, now: Instant) -> Duration {
        text::BOOTED_AT + now.saturating_duration_since(self.booted)
    }

    fn boot(&mut self, now: Instant) {
        self.booted = now;
        self.stage = Stage::Login;
        self.ldisc.reset();
        self.job = None;
        self.sysrq_armed = None;
        for (at, message) in text::BOOT_LOG {
            let _ = write!(self.out, "{} {message}\r\n", text::timestamp(*at));
        }
        self.getty();
    }

    /// What getty prints when it starts: the banner, then the login prompt.
    fn getty(&mut self) {
        let _ = write!(
            self.out,
            "\r\n{}\r\n\r\n{}",
            text::banner(&self.name),
            text::LOGIN_PROMPT
        );
    }

    fn prompt(&mut self) {
        match &self.stage {
            Stage::Login => self.out.put_slice(text::LOGIN_PROMPT.as_bytes()),
            Stage::Password { .. } => self.out.put_slice(text::PASSWORD_PROMPT.as_bytes()),
            Stage::Shell { user } => {
                let sign = if user == "root" { '#' } else { '$' };
                let _ = write!(self.out, "{user}@{}:~{sign} ", text::HOSTNAME);
            }
        }
    }

    fn logout(&mut self) {
        self.out.put_slice(b"logout\r\n");
        self.stage = Stage::Login;
        self.ldisc.reset();
        self.getty();
    }

    /// A completed line, interpreted by whoever reads the line now.
    fn enter(&mut self, line: &str, now: Instant) {
        match &self.stage {
            Stage::Login => {
                let user: String = line.trim().chars().take(MAX_USER).collect();
                if !user.is_empty() {
                    self.stage = Stage::Password { user };
                }
                self.prompt();
            }
            Stage::Password { user } => {
                // Any password is right: this machine exists to be logged into.
                self.stage = Stage::Shell { user: user.clone() };
                self.prompt();
            }
            Stage::Shell { user } => {
                let context = Context {
                    user,
                    breaks: self.breaks,
                };
                match shell::run(line, &context) {
                    Outcome::Print(text) => {
                        self.out.put_slice(text.as_bytes());
                        self.prompt();
                    }
                    Outcome::Seq { first, last } => {
                        let remaining = last.saturating_sub(first).saturating_add(1).min(SEQ_CAP);
                        if remaining > 0 {
                            self.job = Some(Seq {
                                next: first,
                                remaining,
                            });
                        } else {
                            self.prompt();
                        }
                    }
                    Outcome::Logout => self.logout(),
                    Outcome::Reboot => {
                        self.out.put_slice(b"reboot: Restarting system\r\n");
                        self.boot(now);
                    }
                }
            }
        }
    }

    /// Generates `seq` output up to about `max` bytes, then the prompt once it is done.
    fn run_job(&mut self, max: usize) {
        let Some(job) = self.job.as_mut() else {
            return;
        };
        while self.out.len() < max && job.remaining > 0 {
            let _ = write!(self.out, "{}\r\n", job.next);
            job.next = job.next.saturating_add(1);
            job.remaining -= 1;
        }
        if job.remaining == 0 {
            self.job = None;
            self.prompt();
        }
    }

    /// The key after a BREAK, handled by the simulated kernel.
    fn sysrq(&mut self, key: u8, now: Instant) {
        let stamp = text::timestamp(self.uptime(now));
        match key {
            b'b' => {
                let _ = write!(self.out, "\r\n{stamp} sysrq: Resetting\r\n");
                self.boot(now);
            }
            b's' => {
                let _ = write!(
                    self.out,
                    "\r\n{stamp} sysrq: Emergency Sync\r\n{stamp} Emergency Sync complete\r\n"
                );
            }
            b'0'..=b'9' => {
                let level = char::from(key);
                let _ = write!(
                    self.out,
                    "\r\n{stamp} sysrq: Changing Loglevel\r\n{stamp} sysrq: Loglevel set to {level}\r\n"
                );
            }
            _ => {
                let _ = write!(self.out, "\r\n{stamp} {}\r\n", text::SYSRQ_HELP);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn drain(machine: &mut Machine) -> String {
        let mut all = Vec::new();
        while let Some(chunk) = machine.take_output(4096) {
            all.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&all).into_owned()
    }

    fn type_str(machine: &mut Machine, s: &str, now: Instant) -> String {
        for &b in s.as_bytes() {
            machine.input(b, now);
        }
        drain(machine)
    }

    fn logged_in(user: &str) -> (Machine, Instant) {
        let now = Instant::now();
        let mut m = Machine::new("sim", now);
        drain(&mut m);
        type_str(&mut m, &format!("{user}\r"), now);
        type_str(&mut m, "pw\r", now);
        (m, now)
    }

    #[test]
    fn boots_to_a_login_prompt() {
        let mut m = Machine::new("box1", Instant::now());
        let out = drain(&mut m);
        assert!(
            out.starts_with("[    0.000000] Linux version 6.1.0-sim"),
            "{out}"
        );
        assert!(out.contains("Sim Linux 6.1 box1 ttyS0"), "{out}");
        assert!(out.ends_with("\r\nsim login: "), "{out}");
    }

    #[test]
    fn login_then_password_without_echo_then_prompt() {
        let now = Instant::now();
        let mut m = Machine::new("sim", now);
        drain(&mut m);
        assert_eq!(type_str(&mut m, "\r", now), "\r\nsim login: ");
        assert_eq!(type_str(&mut m, "alice\r", now), "alice\r\nPassword: ");
        assert_eq!(type_str(&mut m, "hunter2\r", now), "\r\nalice@sim:~$ ");
        assert_eq!(
            type_str(&mut m, "whoami\r", now),
            "whoami\r\nalice\r\nalice@sim:~$ "
        );
    }

    #[test]
    fn root_gets_a_hash_prompt_and_exit_returns_to_login() {
        let (mut m, now) = logged_in("root");
        assert_eq!(type_str(&mut m, "\r", now), "\r\nroot@sim:~# ");
        let out = type_str(&mut m, "exit\r", now);
        assert!(out.starts_with("exit\r\nlogout\r\n"), "{out}");
        assert!(out.ends_with("\r\nsim login: "), "{out}");
    }

    #[test]
    fn seq_output_is_generated_in_bounded_chunks() {
        let (mut m, now) = logged_in("root");
        for &b in b"seq 100000\r" {
            m.input(b, now);
        }
        let mut total = 0;
        let mut last = Bytes::new();
        while let Some(chunk) = m.take_output(512) {
            assert!(chunk.len() <= 512 + 16, "chunk of {}", chunk.len());
            assert!(m.backlog() <= 512 + 16);
            total += chunk.len();
            last = chunk;
        }
        let expected: usize = (1..=100_000).map(|n: u32| n.to_string().len() + 2).sum();
        // The echo of the command line, the numbers, then the prompt.
        assert_eq!(
            total,
            "seq 100000\r\n".len() + expected + "root@sim:~# ".len()
        );
        assert!(last.ends_with(b"100000\r\nroot@sim:~# "));
    }

    #[test]
    fn ctrl_c_stops_a_running_command() {
        let (mut m, now) = logged_in("root");
        for &b in b"seq 100000\r" {
            m.input(b, now);
        }
        m.take_output(64);
        m.take_output(64);
        // Typing while the command runs is ignored; Ctrl-C interrupts it.
        m.input(b'x', now);
        m.input(CTRL_C, now);
        let out = drain(&mut m);
        assert!(out.ends_with("^C\r\nroot@sim:~# "), "{out}");
        assert!(!out.contains("100000\r\n"), "{out}");
    }

    #[test]
    fn break_then_h_prints_sysrq_help_without_echo() {
        let (mut m, now) = logged_in("root");
        m.brk(now);
        let out = type_str(&mut m, "h", now + Duration::from_millis(1500));
        assert!(
            out.starts_with("\r\n[    3.500000] sysrq: HELP : loglevel(0-9) reboot(b)"),
            "{out}"
        );
        assert!(out.ends_with("dump-ftrace-buffer(z)\r\n"), "{out}");
        // The SysRq key was not typed into the shell's line.
        assert_eq!(type_str(&mut m, "\r", now), "\r\nroot@sim:~# ");
    }

    #[test]
    fn plain_h_is_just_a_character() {
        let (mut m, now) = logged_in("root");
        assert_eq!(type_str(&mut m, "h", now), "h");
    }

    #[test]
    fn sysrq_window_expires() {
        let (mut m, now) = logged_in("root");
        m.brk(now);
        assert_eq!(
            type_str(&mut m, "h", now + SYSRQ_WINDOW + Duration::from_millis(1)),
            "h"
        );
    }

    #[test]
    fn second_break_disarms() {
        let (mut m, now) = logged_in("root");
        m.brk(now);
        m.brk(now);
        assert_eq!(type_str(&mut m, "h", now), "h");
        assert_eq!(m.breaks(), 2);
    }

    #[test]
    fn sysrq_b_reboots_and_s_syncs() {
        let (mut m, now) = logged_in("root");
        m.brk(now);
        let out = type_str(&mut m, "s", now);
        assert!(out.contains("sysrq: Emergency Sync\r\n"), "{out}");
        m.brk(now);
        let out = type_str(&mut m, "b", now);
        assert!(
            out.contains("sysrq: Resetting\r\n[    0.000000] Linux version"),
            "{out}"
        );
        assert!(out.ends_with("sim login: "), "{out}");
        // The count survives the reboot.
        type_str(&mut m, "root\rpw\r", now);
        assert_eq!(
            type_str(&mut m, "sysrq-count\r", now),
            "sysrq-count\r\n2\r\nroot@sim:~# "
        );
    }

    #[test]
    fn reboot_command_boots_again() {
        let (mut m, now) = logged_in("root");
        let out = type_str(&mut m, "reboot\r", now);
        assert!(
            out.contains("reboot: Restarting system\r\n[    0.000000] Linux version"),
            "{out}"
        );
        assert!(out.ends_with("sim login: "));
    }

    #[test]
    fn ctrl_c_at_password_returns_to_login() {
        let now = Instant::now();
        let mut m = Machine::new("sim", now);
        drain(&mut m);
        type_str(&mut m, "bob\r", now);
        assert_eq!(type_str(&mut m, "\x03", now), "^C\r\nsim login: ");
    }
}
