//! Scripting mode: run the `--expect`/`--send` steps against the console, copying its output
//! to stdout; every expect has a deadline, and the session is closed after the last step.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;

use crate::console::{Console, Output, Typed};
use crate::errors::{Failure, exit};
use crate::script::{Script, Step};
use crate::signals::{Event, Signals};
use crate::transcript::Transcript;

/// Runs `script`; `Ok` carries the exit code (0, or 128+N after a signal).
pub async fn run(
    console: &mut Console,
    script: &Script,
    timeout: Duration,
    signals: &mut Signals,
) -> Result<i32, Failure> {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut seen = Transcript::default();
    let count = script.steps.len();
    for (n, step) in script.steps.iter().enumerate() {
        let number = n + 1;
        match step {
            Step::Send(bytes) => {
                if console.type_keys(bytes).await == Typed::Disconnect {
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
            }
            Step::Expect(expect) => {
                let deadline = tokio::time::Instant::now() + timeout;
                while !seen.take_match(&expect.regex) {
                    tokio::select! {
                        out = console.next() => match out {
                            Output::Data(d) => {
                                let _ = stdout.write_all(&d).await;
                                let _ = stdout.flush().await;
                                seen.push(&d);
                            }
                            Output::Stderr(d) => {
                                let _ = stderr.write_all(&d).await;
                            }
                            Output::Closed(status) => {
                                return Err(ended_early(status, number, &expect.pattern));
                            }
                        },
                        () = tokio::time::sleep_until(deadline) => {
                            return Err(Failure::new(
                                exit::TIMEOUT,
                                format!(
                                    "step {number}: /{}/ did not match within {} s; the last \
                                     output was {:?}",
                                    expect.pattern,
                                    timeout.as_secs_f64(),
                                    seen.tail(200)
                                ),
                            ));
                        }
                        event = signals.recv() => {
                            if let Event::Terminate(sig) = event {
                                return Ok(exit::SIGNAL_BASE + sig);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(exit::OK)
}

fn ended_early(status: Option<u32>, step: usize, pattern: &str) -> Failure {
    match status {
        Some(s) if s != 0 => Failure::new(
            exit::SESSION,
            format!(
                "the server ended the session with status {s} before /{pattern}/ matched (step {step})"
            ),
        ),
        _ => Failure::new(
            exit::SCRIPT_CUT,
            format!("the session ended before /{pattern}/ matched (step {step})"),
        ),
    }
}
