//! `serialgate connect`: configuration → ephemeral key → credentials (while the SSH handshake
//! and host key check run alongside) → push (with `--wait`, again once a busy port frees) →
//! authenticate → console, interactive or scripted.

use std::time::Duration;

use russh::Disconnect;
use russh::keys::{Algorithm, PrivateKey};

use crate::args::ConnectArgs;
use crate::console::Console;
use crate::errors::{Failure, report};
use crate::push::PushError;
use crate::signals::Signals;
use crate::wait::Wait;
use crate::{aws, escape, interactive, push, scripted, ssh, target, terminal};

/// Runs `connect` and returns the process exit code (messages already printed).
pub async fn run(args: ConnectArgs) -> i32 {
    report(connect(args).await)
}

/// The model's rule for instance ids: `i-` and hex digits, 10 to 32 characters.
fn check_instance_id(id: &str) -> Result<(), Failure> {
    let ok = (10..=32).contains(&id.len())
        && id.strip_prefix("i-").is_some_and(|hex| {
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "`{id}` is not an instance id (i- followed by 8 to 30 lowercase hex digits)"
        )))
    }
}

/// Scripted steps read the console's output as it comes; a replay's history (an old `login:`
/// prompt, say) would be taken for the console's answer.
fn check_replay(args: &ConnectArgs) -> Result<(), Failure> {
    if args.replay.is_some() && !args.script.steps.is_empty() {
        return Err(Failure::usage(
            "--replay cannot be combined with scripted steps (--login, --send, --send-raw, \
             --expect): they would read the replayed history as the console's answers",
        ));
    }
    if args.spectate && !args.script.steps.is_empty() {
        return Err(Failure::usage(
            "--spectate cannot be combined with scripted steps (--login, --send, --send-raw, \
             --expect): a spectator cannot type, and sees the history first",
        ));
    }
    Ok(())
}

async fn connect(args: ConnectArgs) -> Result<i32, Failure> {
    check_instance_id(&args.instance_id)?;
    if args.browser {
        return crate::console_url::open_in_browser(&args).await;
    }
    check_replay(&args)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err(Failure::usage(
            "--timeout must be a positive number of seconds",
        ));
    }
    let loaded = aws::load(&args.aws).await?;
    let home = std::env::var_os("HOME").map(Into::into);
    let target = target::resolve(
        &args,
        &loaded.region,
        loaded.custom_endpoint.as_deref(),
        home,
    )?;
    let user = ssh_user(&args);
    let deadline = Duration::from_secs(args.connect_timeout.max(1));

    // The key lives in memory only, for this one session.
    let key = PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519)
        .map_err(|e| Failure::other(format!("cannot generate a key: {e}")))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Failure::other(format!("cannot encode the key: {e}")))?;

    // Credentials (SSO, roles: maybe network calls) and the SSH handshake with its host key
    // check run side by side. The key is pushed only once the server is verified, so a host
    // key failure leaves no pending key (and no held session slot) behind.
    let (api, connected) = tokio::join!(
        loaded.clone().client(),
        ssh::connect(&target.ssh, target.trust.clone(), deadline),
    );
    let api = api?;
    let mut handle = connected?;
    let what = format!("{} port {}", args.instance_id, args.port);
    let mut wait = args.wait.map(|secs| Wait::new(secs, what));
    loop {
        let attempt = async {
            if args.spectate {
                push::spectator_key(&loaded, &args.instance_id, args.port, &public)
                    .await
                    .map_err(PushError::Other)
            } else {
                push::serial_key(&api, &args.instance_id, args.port, &public).await
            }
        };
        let pushed = match wait.as_mut() {
            // Once a wait has begun, a signal ends the attempt too.
            Some(w) => w.guard(async { Ok(attempt.await) }).await?,
            None => attempt.await,
        };
        let (w, retry_in, failure) = match (pushed, wait.as_mut()) {
            (Ok(request_id), _) => {
                tracing::debug!(request_id, ssh = %target.ssh, "key pushed");
                break;
            }
            (Err(PushError::Busy { retry_in, failure }), Some(w)) => (w, retry_in, failure),
            (Err(error), _) => return Err(error.into()),
        };
        // The server drops a connection that has not authenticated within its login grace
        // (30 s), so each attempt after a wait makes a new one.
        let _ = handle
            .disconnect(Disconnect::ByApplication, "waiting for the port", "en")
            .await;
        w.pause(retry_in, failure).await?;
        handle = w
            .guard(ssh::connect(&target.ssh, target.trust.clone(), deadline))
            .await?;
    }
    ssh::authenticate(&mut handle, &user, key, deadline).await?;

    let size = terminal::window_size().unwrap_or((80, 24));
    let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".to_owned());
    let (channel, early) = ssh::open_console(&handle, &term, size, deadline).await?;
    // Without a client escape every byte goes as typed, so the server's own escape (if any)
    // applies directly, as with `ssh -e none`.
    let remote_escape = args.escape.0.and(target.remote_escape);
    let mut console = Console::new(channel, early, args.escape.0, target.server, remote_escape);
    let mut signals = match wait.and_then(Wait::into_signals) {
        Some(signals) => signals,
        None => {
            Signals::new().map_err(|e| Failure::other(format!("cannot handle signals: {e}")))?
        }
    };

    let outcome = if args.non_interactive {
        let timeout = Duration::from_secs_f64(args.timeout);
        let result = scripted::run(&mut console, &args.script, timeout, &mut signals).await;
        console.close().await;
        result
    } else {
        let hint = match args.escape.0 {
            Some(e) => format!(
                "Escape character is '{e}': Enter {e}. disconnects, Enter {e}? lists the rest.",
                e = escape::show(e)
            ),
            None => "No escape character.".to_owned(),
        };
        eprintln!("Connected to {user} on {}. {hint}", target.ssh);
        interactive::run(&mut console, &mut signals, &user).await
    };
    let _ = handle
        .disconnect(Disconnect::ByApplication, "session ended", "en")
        .await;
    outcome
}

/// The SSH username: `INSTANCE.portN`, then `.spectate` for a spectator, then
/// `.replay-lines=N` when a replay is asked for.
fn ssh_user(args: &ConnectArgs) -> String {
    let mut user = format!("{}.port{}", args.instance_id, args.port);
    if args.spectate {
        user.push_str(".spectate");
    }
    if let Some(lines) = args.replay {
        user.push_str(&format!(".replay-lines={lines}"));
    }
    user
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::errors::exit;

    #[test]
    fn instance_ids() {
        assert!(check_instance_id("i-0123456789abcdef0").is_ok());
        assert!(check_instance_id("i-01234567").is_ok());
        for bad in [
            "",
            "i-",
            "i-0123456",
            "i-0123456789ABCDEF0",
            "x-0123456789",
            "i-0123456789abcdefg",
        ] {
            assert_eq!(
                check_instance_id(bad).unwrap_err().code,
                exit::USAGE,
                "{bad}"
            );
        }
    }

    #[derive(Debug, Parser)]
    struct Connect {
        #[command(flatten)]
        connect: ConnectArgs,
    }

    #[test]
    fn a_replay_is_refused_with_scripted_steps() {
        let check = |argv: &[&str]| check_replay(&Connect::try_parse_from(argv).unwrap().connect);
        let base = ["connect", "i-0123456789abcdef0", "--non-interactive"];
        assert!(check(&[&base[..], &["--replay", "5"]].concat()).is_ok());
        assert!(check(&[&base[..], &["--login", "root:x"]].concat()).is_ok());
        let err =
            check(&[&base[..], &["--replay", "5", "--login", "root:x"]].concat()).unwrap_err();
        assert!(
            err.to_string().contains("--replay cannot be combined"),
            "{err}"
        );
        assert!(check(&[&base[..], &["--expect", "x", "--replay", "5"]].concat()).is_err());
    }

    #[test]
    fn the_username_carries_the_replay() {
        let user = |argv: &[&str]| ssh_user(&Connect::try_parse_from(argv).unwrap().connect);
        assert_eq!(
            user(&["connect", "i-0123456789abcdef0"]),
            "i-0123456789abcdef0.port0"
        );
        assert_eq!(
            user(&["connect", "i-0123456789abcdef0", "--replay", "50"]),
            "i-0123456789abcdef0.port0.replay-lines=50"
        );
        assert_eq!(
            user(&[
                "connect",
                "i-0123456789abcdef0",
                "--spectate",
                "--replay",
                "5"
            ]),
            "i-0123456789abcdef0.port0.spectate.replay-lines=5"
        );
    }
}
