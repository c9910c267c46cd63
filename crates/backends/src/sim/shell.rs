//! The simulated shell's built-in commands. Nothing here touches the host: every command is a
//! pure function of its arguments and the machine's state.

use super::text::{HELP, HOSTNAME, MACHINE, RELEASE, VERSION};

/// The most lines `seq` prints, so one command cannot run for ever.
pub(crate) const SEQ_CAP: i64 = 100_000;

/// What a command line does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Print these lines (each already ending in `\r\n`), then the prompt.
    Print(String),
    /// Print numbers `first..=last`, one per line, then the prompt.
    Seq { first: i64, last: i64 },
    /// End the session: back to the login prompt.
    Logout,
    /// Restart the machine.
    Reboot,
}

/// What a command can see of the machine.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    pub user: &'a str,
    pub breaks: u64,
}

fn line(text: impl AsRef<str>) -> Outcome {
    Outcome::Print(format!("{}\r\n", text.as_ref()))
}

/// Runs one command line.
pub(crate) fn run(command_line: &str, cx: &Context<'_>) -> Outcome {
    let words = match shell_words::split(command_line) {
        Ok(words) => words,
        Err(_) => return line("-sh: syntax error: unterminated quoted string"),
    };
    let Some((command, args)) = words.split_first() else {
        return Outcome::Print(String::new());
    };
    match command.as_str() {
        "uname" => uname(args),
        "hostname" => line(HOSTNAME),
        "echo" => line(args.join(" ")),
        "whoami" => line(cx.user),
        "help" => line(HELP),
        "exit" | "logout" => Outcome::Logout,
        "reboot" => Outcome::Reboot,
        "seq" => seq(args),
        "sysrq-count" => line(cx.breaks.to_string()),
        other => line(format!("-sh: {other}: not found")),
    }
}

/// `uname` with GNU's flags, printed in GNU's fixed order whatever order they were given in.
fn uname(args: &[String]) -> Outcome {
    // kernel-name, nodename, kernel-release, kernel-version, machine, operating-system
    let fields = ["Linux", HOSTNAME, RELEASE, VERSION, MACHINE, "GNU/Linux"];
    let mut wanted = [false; 6];
    for arg in args {
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            return line(format!(
                "uname: extra operand '{arg}'\r\nTry 'uname --help' for more information."
            ));
        };
        for flag in flags.chars() {
            let index = match flag {
                'a' => {
                    wanted = [true; 6];
                    continue;
                }
                's' => 0,
                'n' => 1,
                'r' => 2,
                'v' => 3,
                'm' => 4,
                'o' => 5,
                other => {
                    return line(format!(
                        "uname: invalid option -- '{other}'\r\nTry 'uname --help' for more information."
                    ));
                }
            };
            if let Some(slot) = wanted.get_mut(index) {
                *slot = true;
            }
        }
    }
    if !wanted.contains(&true) {
        wanted[0] = true;
    }
    let shown: Vec<&str> = fields
        .iter()
        .zip(wanted)
        .filter_map(|(field, on)| on.then_some(*field))
        .collect();
    line(shown.join(" "))
}

/// `seq LAST` or `seq FIRST LAST`, capped at [`SEQ_CAP`] lines.
fn seq(args: &[String]) -> Outcome {
    let parse = |s: &String| {
        s.parse::<i64>()
            .map_err(|_| line(format!("seq: invalid floating point argument: '{s}'")))
    };
    let (first, last) = match args {
        [] => return line("seq: missing operand\r\nTry 'seq --help' for more information."),
        [last] => (1, last),
        [first, last] => match parse(first) {
            Ok(first) => (first, last),
            Err(e) => return e,
        },
        [_, _, extra, ..] => {
            return line(format!(
                "seq: extra operand '{extra}'\r\nTry 'seq --help' for more information."
            ));
        }
    };
    match parse(last) {
        Ok(last) => Outcome::Seq {
            first,
            last: last.min(first.saturating_add(SEQ_CAP - 1)),
        },
        Err(e) => e,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn run_as_root(command_line: &str) -> Outcome {
        run(
            command_line,
            &Context {
                user: "root",
                breaks: 3,
            },
        )
    }

    fn print(text: &str) -> Outcome {
        Outcome::Print(text.to_owned())
    }

    #[test]
    fn uname_variants() {
        assert_eq!(run_as_root("uname"), print("Linux\r\n"));
        assert_eq!(run_as_root("uname -r"), print("6.1.0-sim\r\n"));
        assert_eq!(
            run_as_root("uname -a"),
            print("Linux sim 6.1.0-sim #1 SMP PREEMPT_DYNAMIC x86_64 GNU/Linux\r\n")
        );
        assert_eq!(run_as_root("uname -rs"), print("Linux 6.1.0-sim\r\n"));
        assert!(
            matches!(run_as_root("uname -x"), Outcome::Print(s) if s.contains("invalid option -- 'x'"))
        );
    }

    #[test]
    fn simple_builtins() {
        assert_eq!(run_as_root("hostname"), print("sim\r\n"));
        assert_eq!(run_as_root("whoami"), print("root\r\n"));
        assert_eq!(run_as_root("echo  a   'b  c'"), print("a b  c\r\n"));
        assert_eq!(run_as_root("echo"), print("\r\n"));
        assert_eq!(run_as_root("sysrq-count"), print("3\r\n"));
        assert_eq!(run_as_root("   "), print(""));
        assert_eq!(run_as_root("exit"), Outcome::Logout);
        assert_eq!(run_as_root("logout"), Outcome::Logout);
        assert_eq!(run_as_root("reboot"), Outcome::Reboot);
        assert_eq!(run_as_root("rm -rf /"), print("-sh: rm: not found\r\n"));
        assert_eq!(
            run_as_root("echo 'oops"),
            print("-sh: syntax error: unterminated quoted string\r\n")
        );
    }

    #[test]
    fn seq_forms_and_cap() {
        assert_eq!(run_as_root("seq 3"), Outcome::Seq { first: 1, last: 3 });
        assert_eq!(run_as_root("seq 5 7"), Outcome::Seq { first: 5, last: 7 });
        assert_eq!(
            run_as_root("seq 99999999999"),
            Outcome::Seq {
                first: 1,
                last: SEQ_CAP
            }
        );
        assert!(
            matches!(run_as_root("seq"), Outcome::Print(s) if s.starts_with("seq: missing operand"))
        );
        assert!(
            matches!(run_as_root("seq x"), Outcome::Print(s) if s.contains("invalid floating point argument: 'x'"))
        );
    }
}
