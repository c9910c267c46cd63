//! Scripting steps: `--expect REGEX`, `--send TEXT` (Enter appended) and `--send-raw TEXT`, in
//! command-line order. Clap keeps each option's values apart, so the steps are put back in
//! order from the argument indices (`ArgMatches::indices_of`).

use clap::{Arg, ArgAction, ArgMatches, Args, Command, FromArgMatches};
use regex_lite::Regex;

use crate::send_text;

/// One step of a script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Wait until the console output (since the previous match) matches.
    Expect(Expect),
    /// Type these bytes (escapes such as Enter `~B` apply, as if typed).
    Send(Vec<u8>),
}

/// A compiled `--expect` pattern and its source text.
#[derive(Debug, Clone)]
pub struct Expect {
    pub pattern: String,
    pub regex: Regex,
}

/// The steps, in command-line order.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub steps: Vec<Step>,
}

const EXPECT: &str = "expect";
const SEND: &str = "send";
const SEND_RAW: &str = "send_raw";

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
                    "Wait until the console output since the last match matches REGEX (repeatable)",
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
        for id in [SEND, SEND_RAW] {
            if let (Some(values), Some(indices)) =
                (matches.get_many::<Vec<u8>>(id), matches.indices_of(id))
            {
                indexed.extend(indices.zip(values.cloned().map(Step::Send)));
            }
        }
        indexed.sort_by_key(|(i, _)| *i);
        Ok(Script {
            steps: indexed.into_iter().map(|(_, s)| s).collect(),
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
}
