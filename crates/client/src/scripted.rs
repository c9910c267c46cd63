//! Scripting mode: run the `--expect`/`--send`/`--login` steps against the console, copying its
//! output to stdout; every wait has a deadline, and the session is closed after the last step.

use std::time::Duration;

use regex_lite::Regex;
use tokio::io::AsyncWriteExt as _;

use crate::console::{Console, Output, Typed};
use crate::errors::{Failure, exit};
use crate::script::{Expect, Login, Script, Step};
use crate::signals::{Event, Signals};
use crate::transcript::Transcript;

/// Where `--login` takes the password from when `--login USER` gives none.
pub const PASSWORD_ENV: &str = "SERIALGATE_LOGIN_PASSWORD";

/// Runs `script`; `Ok` carries the exit code (0, or 128+N after a signal).
pub async fn run(
    console: &mut Console,
    script: &Script,
    timeout: Duration,
    signals: &mut Signals,
) -> Result<i32, Failure> {
    let mut run = Run {
        console,
        signals,
        seen: Transcript::default(),
        timeout,
    };
    let count = script.steps.len();
    for (n, step) in script.steps.iter().enumerate() {
        let number = n + 1;
        let result = match step {
            Step::Send(bytes) => {
                if run.console.type_keys(bytes).await == Typed::Disconnect {
                    if number == count {
                        return Ok(exit::OK);
                    }
                    return Err(Failure::new(
                        exit::SCRIPT_CUT,
                        format!(
                            "step {number} disconnected (escape then .); steps {}..{count} did \
                             not run",
                            number + 1
                        ),
                    ));
                }
                Ok(())
            }
            Step::Expect(expect) => run
                .wait_for(&[&expect.regex])
                .await
                .map(drop)
                .map_err(|stop| stop.into_failure(&run, number, &format!("/{}/", expect.pattern))),
            Step::Login(login) => run.login(login, &script.prompt, number).await,
        };
        match result {
            Ok(()) => {}
            Err(Ended::Signal(code)) => return Ok(code),
            Err(Ended::Failed(failure)) => return Err(failure),
        }
    }
    Ok(exit::OK)
}

/// Why a wait ended without a match.
enum Stop {
    Timeout,
    Closed(Option<u32>),
    Signal(i32),
}

/// How a step that did not finish ends the script.
enum Ended {
    /// Exit with this code (128 + the signal), no message.
    Signal(i32),
    Failed(Failure),
}

impl Stop {
    /// The failure for a step (`number`) that waited for `what`.
    fn into_failure(self, run: &Run<'_>, number: usize, what: &str) -> Ended {
        match self {
            Stop::Signal(sig) => Ended::Signal(exit::SIGNAL_BASE + sig),
            Stop::Closed(status) => Ended::Failed(ended_early(status, number, what)),
            Stop::Timeout => Ended::Failed(Failure::new(
                exit::TIMEOUT,
                format!(
                    "step {number}: {what} did not match within {} s; the last output was {:?}",
                    run.timeout.as_secs_f64(),
                    run.seen.tail(200)
                ),
            )),
        }
    }
}

struct Run<'a> {
    console: &'a mut Console,
    signals: &'a mut Signals,
    seen: Transcript,
    /// How long each wait may take.
    timeout: Duration,
}

impl Run<'_> {
    /// Waits until one of `patterns` matches the output not yet matched, copying the output to
    /// stdout; consumes it through the match and returns the pattern's index.
    async fn wait_for(&mut self, patterns: &[&Regex]) -> Result<usize, Stop> {
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            if let Some(index) = self.seen.take_first(patterns) {
                return Ok(index);
            }
            tokio::select! {
                out = self.console.next() => match out {
                    Output::Data(d) => {
                        let _ = stdout.write_all(&d).await;
                        let _ = stdout.flush().await;
                        self.seen.push(&d);
                    }
                    Output::Stderr(d) => {
                        let _ = stderr.write_all(&d).await;
                    }
                    Output::Closed(status) => return Err(Stop::Closed(status)),
                },
                () = tokio::time::sleep_until(deadline) => return Err(Stop::Timeout),
                event = self.signals.recv() => {
                    if let Event::Terminate(sig) = event {
                        return Err(Stop::Signal(sig));
                    }
                }
            }
        }
    }

    /// `--login`: Enter, then a login if the console answers with a login prompt; done at the
    /// shell prompt. Only output after the Enter counts, so an old prompt cannot pass for one.
    async fn login(&mut self, login: &Login, prompt: &Expect, number: usize) -> Result<(), Ended> {
        let (login_prompt, password_prompt) = login_prompts().map_err(Ended::Failed)?;
        let user = &login.user;
        let shell = format!("/{}/", prompt.pattern);
        let fail = |run: &Run<'_>, stop: Stop, what: &str| stop.into_failure(run, number, what);
        self.seen.skip_seen();
        self.console.type_keys(b"\r").await;
        let first = format!("a login prompt or the shell prompt {shell}");
        match self.wait_for(&[&prompt.regex, &login_prompt]).await {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(stop) => return Err(fail(self, stop, &first)),
        }
        self.console.type_text(format!("{user}\r").as_bytes()).await;
        let next = format!("a password prompt or the shell prompt {shell} after the login {user}");
        match self
            .wait_for(&[&prompt.regex, &password_prompt, &login_prompt])
            .await
        {
            Ok(0) => return Ok(()),
            Ok(1) => {}
            Ok(_) => return Err(refused(number, user)),
            Err(stop) => return Err(fail(self, stop, &next)),
        }
        let password = match &login.password {
            Some(p) => p.clone(),
            None => std::env::var(PASSWORD_ENV).map_err(|_| {
                Ended::Failed(Failure::usage(format!(
                    "step {number}: the console asks for {user}'s password: pass --login \
                     {user}:PASSWORD, or set {PASSWORD_ENV}"
                )))
            })?,
        };
        self.console
            .type_text(format!("{password}\r").as_bytes())
            .await;
        let last = format!("the shell prompt {shell} after the login {user}");
        match self.wait_for(&[&prompt.regex, &login_prompt]).await {
            Ok(0) => Ok(()),
            Ok(_) => Err(refused(number, user)),
            Err(stop) => Err(fail(self, stop, &last)),
        }
    }
}

/// A getty's prompts, as the last thing printed (so "Last login: …" in a banner is none).
fn login_prompts() -> Result<(Regex, Regex), Failure> {
    let compile = |p: &str| {
        Regex::new(p).map_err(|e| Failure::other(format!("the pattern {p} is invalid: {e}")))
    };
    Ok((compile(r"(?i)login: *$")?, compile(r"(?i)password: *$")?))
}

fn refused(number: usize, user: &str) -> Ended {
    Ended::Failed(Failure::new(
        exit::TIMEOUT,
        format!(
            "step {number}: the console refused the login {user} (it asked for the login again)"
        ),
    ))
}

fn ended_early(status: Option<u32>, step: usize, what: &str) -> Failure {
    match status {
        Some(s) if s != 0 => Failure::new(
            exit::SESSION,
            format!(
                "the server ended the session with status {s} before {what} matched (step {step})"
            ),
        ),
        _ => Failure::new(
            exit::SCRIPT_CUT,
            format!("the session ended before {what} matched (step {step})"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getty_prompts_only_as_the_last_thing_printed() {
        let (login, password) = login_prompts().unwrap();
        assert!(login.is_match("\r\nsim login: "));
        assert!(login.is_match("serialgate-vm Login:"));
        assert!(!login.is_match("Last login: Mon Nov 23 on ttyS0\r\n# "));
        assert!(password.is_match("root\r\nPassword: "));
        assert!(!password.is_match("Password: \r\nLogin incorrect\r\n"));
    }
}
