//! Command consoles (`exec:ipmitool ... sol activate`): argv run without a shell on a fresh pty,
//! with the minimal environment of [`crate::child_env`].
//!
//! Invariant: when the connection ends (console dropped or the child closed the pty) the child's
//! whole process group is killed and the child reaped, so no process or zombie outlives it.

use std::io;
use std::path::Path;

use pty_process::{Pty, Size};
use rustix::process::{Pid, Signal};
use tokio::process::Child;

use crate::child_env;
use crate::console::{Capabilities, Console, ConsoleOptions};
use crate::error::OpenError;
use crate::stream::{self, Line, Raw};
use crate::uri::ConsoleUri;

/// The terminal size the command sees; a serial console has none, and 0x0 confuses programs.
const ROWS: u16 = 24;
const COLS: u16 = 80;

impl Line for Pty {
    fn read_error_is_eof(&self, error: &io::Error) -> bool {
        // Linux answers reads on a pty master with EIO once every slave fd has closed.
        error.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error())
    }
}

fn pty_error(uri: &ConsoleUri, e: pty_process::Error) -> OpenError {
    match e {
        pty_process::Error::Io(cause) => OpenError::io(uri, cause),
        other => OpenError::unusable(uri, other.to_string()),
    }
}

/// Spawns `argv` on a new pty (the child leads its own session, with the pty as its controlling
/// terminal) and starts the connection task.
pub(crate) fn open(
    uri: &ConsoleUri,
    argv: &[String],
    opts: &ConsoleOptions,
) -> Result<Console, OpenError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(OpenError::unusable(uri, "empty command"));
    };
    let (pty, pts) = pty_process::open().map_err(|e| pty_error(uri, e))?;
    pty.resize(Size::new(ROWS, COLS))
        .map_err(|e| pty_error(uri, e))?;
    // `spawn` consumes the slave side, so only the child holds it and its exit reads as EOF.
    // kill_on_drop covers a runtime shutdown that drops the task before `reap` runs. The
    // environment is rebuilt from scratch (see `child_env`): serialgate's may hold secrets.
    let child = pty_process::Command::new(program)
        .args(args)
        .env_clear()
        .envs(child_env::for_terminal())
        .kill_on_drop(true)
        .spawn(pts)
        .map_err(|e| pty_error(uri, e))?;
    let label = uri.to_string();
    tracing::debug!(console = %label, pid = child.id(), "spawned console command");
    let capabilities = Capabilities {
        // An exec'd command has no BREAK line (ipmitool and friends use their own escapes).
        can_break: false,
        kind: "exec",
    };
    Ok(stream::start(
        pty,
        Raw,
        capabilities,
        label.clone(),
        opts,
        reap(child, label),
    ))
}

/// Kills the child's process group and waits for the child, once the pty is closed.
async fn reap(mut child: Child, label: String) {
    // While unreaped the child's pid cannot be reused, so signalling its group is safe. The child
    // called setsid, so its pid is the group id and this also reaches anything it started.
    if let Some(pid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw)
    {
        // ESRCH (already gone) is the common, harmless case.
        let _ = rustix::process::kill_process_group(pid, Signal::KILL);
    }
    let _ = child.start_kill();
    match child.wait().await {
        Ok(status) => tracing::debug!(
            console = %label,
            status = child_env::exit_text(status).as_str(),
            "console command reaped"
        ),
        Err(error) => {
            tracing::warn!(console = %label, %error, "waiting for console command failed")
        }
    }
}

/// Whether `path` is a regular file someone may execute.
async fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    match tokio::fs::metadata(path).await {
        Ok(m) => m.is_file() && m.permissions().mode() & 0o111 != 0,
        Err(_) => false,
    }
}

/// Checks that the program exists and is executable, the way `execvp` would find it, without
/// running anything.
pub(crate) async fn probe(uri: &ConsoleUri, argv: &[String]) -> Result<(), OpenError> {
    let Some(program) = argv.first() else {
        return Err(OpenError::unusable(uri, "empty command"));
    };
    if program.contains('/') {
        return if is_executable(Path::new(program)).await {
            Ok(())
        } else {
            Err(OpenError::unusable(
                uri,
                format!("`{program}` is not an executable file"),
            ))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| child_env::DEFAULT_PATH.into());
    for dir in std::env::split_paths(&path) {
        if is_executable(&dir.join(program)).await {
            return Ok(());
        }
    }
    Err(OpenError::unusable(
        uri,
        format!("`{program}` not found on PATH"),
    ))
}
