//! What SSH users see. Short, fixed texts: causes go to the operator's log, not here.

/// Shown when the slot is held or tearing down (AWS's SessionLimitExceeded text).
pub const SESSION_LIMIT: &str = "The instance currently has 1 active serial console session. Only 1 session is supported at a time.";
/// Shown when the session store fails (AWS's SerialConsoleSessionUnavailable text).
pub const SESSION_UNAVAILABLE: &str = "Unable to start a serial console session. Please try again.";
pub const EXEC_REFUSED: &str = "serialgate: this is a serial console; commands (exec) are not supported. Connect without a command.\r\n";
pub const SUBSYSTEM_REFUSED: &str =
    "serialgate: subsystems (sftp, scp, ...) are not supported on a serial console.\r\n";
pub const CONSOLE_LOST: &str =
    "\r\n[serialgate] Lost the connection to the console; reconnecting...\r\n";
pub const INSTANCE_STOPPED: &str =
    "\r\n[serialgate] The instance is stopped; this session waits for it to start again...\r\n";
pub const CONSOLE_BACK: &str = "\r\n[serialgate] Console connection restored.\r\n";
pub const NO_BREAK: &str = "\r\n[serialgate] This console cannot carry a BREAK (raw socket or command); nothing was sent.\r\n";
pub const SHUTDOWN: &str =
    "\r\n[serialgate] The gateway is shutting down; this session is closed.\r\n";
pub const MAX_DURATION: &str =
    "\r\n[serialgate] The session reached its maximum duration and is closed.\r\n";
pub const LEASE_LOST: &str =
    "\r\n[serialgate] This session lost its slot (session store); it is closed.\r\n";

/// Shown once to a spectator who types: nothing it sends reaches the console.
pub const READ_ONLY: &str = "\r\n[serialgate] You are watching read-only: what you type is not sent to the console. ~. leaves.\r\n";
/// Shown when a spectator's console goes away (the owner stopped holding it, say).
pub const SPECTATE_ENDED: &str =
    "\r\n[serialgate] The console connection ended; this view is closed.\r\n";
/// Shown when a console cannot be watched because it is opened per session (`exec:`).
pub const SPECTATE_PER_SESSION: &str = "This console is opened per session and cannot be watched.";

/// Shown when a console has all the spectators it allows (none, when the server allows none).
pub fn spectators_full(max: u32) -> String {
    if max == 0 {
        return "This server does not allow spectators ([sessions] max_spectators = 0).".to_owned();
    }
    format!("This console already has the most spectators allowed ({max}). Try again later.")
}

/// The warning before the maximum duration.
pub fn ending_soon(secs: u64) -> String {
    format!(
        "\r\n[serialgate] This session will be closed in {secs} seconds (maximum duration).\r\n"
    )
}

/// Shown when an `exec:` console's command exits and is started again after `delay`.
pub fn command_restarting(delay: std::time::Duration) -> String {
    format!(
        "\r\n[serialgate: the console command exited; restarting in {} s]\r\n",
        seconds(delay)
    )
}

/// Seconds to one decimal, without a trailing `.0`: `0.1`, `3.2`, `5`.
fn seconds(d: std::time::Duration) -> String {
    let tenths = d.as_millis().saturating_add(50) / 100;
    match tenths % 10 {
        0 => format!("{}", tenths / 10),
        t => format!("{}.{t}", tenths / 10),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::time::Duration;

    #[test]
    fn restart_delays_read_naturally() {
        for (ms, shown) in [
            (0, "0"),
            (100, "0.1"),
            (3200, "3.2"),
            (5000, "5"),
            (50, "0.1"),
        ] {
            assert_eq!(super::seconds(Duration::from_millis(ms)), shown);
        }
        assert_eq!(
            super::command_restarting(Duration::from_millis(400)),
            "\r\n[serialgate: the console command exited; restarting in 0.4 s]\r\n"
        );
    }
}
