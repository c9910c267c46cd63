//! Scripting steps: `--expect REGEX`, `--send TEXT` (Enter appended), `--send-raw TEXT` and
//! `--login USER[:PASSWORD]`, in command-line order, plus the shell prompt `--login` recognises
//! (`--prompt REGEX`). Clap keeps each option's values apart, so the steps are put back in
//! order from the argument indices (`ArgMatches::indices_of`).

use std::fmt;

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use regex_lite::Regex;

use crate::send_text;

/// The shell prompt `--login` waits for unless `--prompt` says otherwise: `#` or `$` and a
/// space, as the last thing the console printed.
pub const DEFAULT_PROMPT: &str = "[#$] $";

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Wait until the console output (since the previous match) matches.
    Expect(Expect),
    /// Type these bytes (escapes such as Enter `~B` apply, as if typed).
    Send(Vec<u8>),
    /// Log in unless the console already shows a shell prompt.
    Login(Login),
}

/// A compiled `--expect` pattern and its source text.
#[derive(Debug, Clone)]
pub struct Expect {
    pub pattern: String,
    pub regex: Regex,
}

/// `--login USER[:PASSWORD]`. Without a password the console's password prompt gets
/// `SERIALGATE_LOGIN_PASSWORD` (which stays out of the process list).
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: Option<String>,
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The steps, in command-line order, and the shell prompt.
#[derive(Debug, Clone)]
pub struct Script {
    pub steps: Vec<Step>,
    /// What a shell prompt looks like, for `--login`.
    pub prompt: Expect,
}

const EXPECT: &str = "expect";
const SEND: &str = "send";
const SEND_RAW: &str = "send_raw";
const LOGIN: &str = "login";
const PROMPT: &str = "prompt";

fn parse_expect(text: &str) -> Result<Expect, String> {
    let regex = Regex::new(text).map_err(|e| format!("invalid regular expression: {e}"))?;
    Ok(Expect {
        pattern: text.to_owned(),
        regex,
    })
}

fn parse_send(text: &str) -> Result<Vec<u8>, String> {
    let mut bytes = send_text::decode(text)?;
    bytes.push(b'\r');
    Ok(bytes)
}

fn parse_send_raw(text: &str) -> Result<Vec<u8>, String> {
    send_text::decode(text)
}

fn parse_login(text: &str) -> Result<Login, String> {
    let (user, password) = match text.split_once(':') {
        Some((user, password)) => (user, Some(password.to_owned())),
        None => (text, None),
    };
    if user.is_empty() || user.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("USER must be a login name (no spaces or control characters)".to_owned());
    }
    if password
        .as_deref()
        .is_some_and(|p| p.chars().any(char::is_control))
    {
        return Err("PASSWORD must not contain control characters".to_owned());
    }
    Ok(Login {
        user: user.to_owned(),
        password,
    })
}

impl Args for Script {
    fn augment_args(cmd: Command) -> Command {
        let step = |id: &'static str, long: &'static str, name: &'static str| {
            Arg::new(id)
                .long(long)
                .value_name(name)
                .action(ArgAction::Append)
                .allow_hyphen_values(true)
                .requires("non_interactive")
                .help_heading("Scripting (with --non-interactive)")
        };
        cmd.arg(
            step(EXPECT, "expect", "REGEX")
                .value_parser(parse_expect)
                .help(
                    "Wait until the console output since the last match (as a terminal shows \
                     it: no control sequences) matches REGEX; alternatives with |, e.g. \
                     'login: |# ' (repeatable)",
                ),
        )
        .arg(
            step(SEND, "send", "TEXT").value_parser(parse_send).help(
                "Type TEXT then Enter (\\r); escapes \\r \\n \\t \\e \\\\ \\xHH (repeatable)",
            ),
        )
        .arg(
            step(SEND_RAW, "send-raw", "TEXT")
                .value_parser(parse_send_raw)
                .help("Type TEXT without Enter, e.g. '\\r~B' for a BREAK (repeatable)"),
        )
        .arg(
            step(LOGIN, "login", "USER[:PASSWORD]")
                .value_parser(parse_login)
                .help(
                    "Type Enter; at a login prompt log in as USER (the password from here or \
                     SERIALGATE_LOGIN_PASSWORD), at a shell prompt (--prompt) go on as is. Ends \
                     at the shell prompt; each wait may take --timeout",
                ),
        )
        .arg(
            Arg::new(PROMPT)
                .long("prompt")
                .value_name("REGEX")
                .value_parser(parse_expect)
                .default_value(DEFAULT_PROMPT)
                .help_heading("Scripting (with --non-interactive)")
                .help("The shell prompt --login waits for, matched at the end of the output"),
        )
    }

    fn augment_args_for_update(cmd: Command) -> Command {
        Self::augment_args(cmd)
    }
}

impl FromArgMatches for Script {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut indexed: Vec<(usize, Step)> = Vec::new();
        if let (Some(values), Some(indices)) = (
            matches.get_many::<Expect>(EXPECT),
            matches.indices_of(EXPECT),
        ) {
            indexed.extend(indices.zip(values.cloned().map(Step::Expect)));
        }
        if let (Some(values), Some(indices)) =
            (matches.get_many::<Login>(LOGIN), matches.indices_of(LOGIN))
        {
            indexed.extend(indices.zip(values.cloned().map(Step::Login)));
        }
        for id in [SEND, SEND_RAW] {
            if let (Some(values), Some(indices)) =
                (matches.get_many::<Vec<u8>>(id), matches.indices_of(id))
            {
                indexed.extend(indices.zip(values.cloned().map(Step::Send)));
            }
        }
        indexed.sort_by_key(|(i, _)| *i);
        // `--prompt` has a default value, so it is always there.
        let prompt = matches.get_one::<Expect>(PROMPT).cloned().ok_or_else(|| {
            clap::Error::raw(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--prompt has no value",
            )
        })?;
        Ok(Script {
            steps: indexed.into_iter().map(|(_, s)| s).collect(),
            prompt,
        })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[arg(long)]
        non_interactive: bool,
        #[command(flatten)]
        script: Script,
    }

    fn parse(args: &[&str]) -> Result<Vec<String>, clap::Error> {
        use clap::Parser as _;
        let cli = Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()))?;
        Ok(cli
            .script
            .steps
            .iter()
            .map(|s| match s {
                Step::Expect(e) => format!("expect {}", e.pattern),
                Step::Send(b) => format!("send {}", String::from_utf8_lossy(b).escape_debug()),
                Step::Login(l) => format!("login {} {:?}", l.user, l.password),
            })
            .collect())
    }

    #[test]
    fn steps_keep_command_line_order() {
        let steps = parse(&[
            "--non-interactive",
            "--send",
            "",
            "--expect",
            "login:",
            "--send",
            "root",
            "--expect",
            "Password:",
            "--send-raw",
            r"\r~B",
            "--send",
            "-n",
            "--expect",
            r"6\.1",
        ])
        .unwrap();
        assert_eq!(
            steps,
            [
                "send \\r",
                "expect login:",
                "send root\\r",
                "expect Password:",
                "send \\r~B",
                "send -n\\r",
                r"expect 6\.1",
            ]
        );
    }

    #[test]
    fn bad_values_and_missing_mode_are_usage_errors() {
        assert!(parse(&["--non-interactive", "--expect", "("]).is_err());
        assert!(parse(&["--non-interactive", "--send", r"\q"]).is_err());
        assert!(
            parse(&["--send", "x"]).is_err(),
            "requires --non-interactive"
        );
        assert_eq!(parse(&["--non-interactive"]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn login_steps_and_the_prompt() {
        let steps = parse(&[
            "--non-interactive",
            "--login",
            "root:pa:ss",
            "--send",
            "id",
            "--login",
            "alice",
        ])
        .unwrap();
        assert_eq!(
            steps,
            [
                r#"login root Some("pa:ss")"#,
                "send id\\r",
                "login alice None"
            ]
        );
        for bad in ["", ":pw", "a b", "root:a\nb"] {
            assert!(
                parse(&["--non-interactive", "--login", bad]).is_err(),
                "{bad:?}"
            );
        }

        use clap::Parser as _;
        let cli = Cli::try_parse_from(["t", "--non-interactive"]).unwrap();
        assert_eq!(cli.script.prompt.pattern, DEFAULT_PROMPT);
        let prompt = &cli.script.prompt.regex;
        assert!(prompt.is_match("\r\nroot@sim:~# "));
        assert!(prompt.is_match("\r\nalice@sim:~$ "));
        assert!(
            !prompt.is_match("root@sim:~# ls\r\n"),
            "not the last thing printed"
        );
        let cli = Cli::try_parse_from(["t", "--non-interactive", "--prompt", "> $"]).unwrap();
        assert!(cli.script.prompt.regex.is_match("PS > "));
        assert!(Cli::try_parse_from(["t", "--prompt", "("]).is_err());
    }

    #[test]
    fn login_debug_hides_the_password() {
        let login = parse_login("root:hunter2").unwrap();
        let shown = format!("{login:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("redacted"),
            "{shown}"
        );
    }
}
