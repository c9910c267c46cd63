//! The local terminal: raw mode behind a guard that restores it on every exit path (return,
//! error, panic unwinding, and signals, which the session turns into returns), the window size,
//! and a stdin reader that stops when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, poll};
use rustix::termios::{self, OptionalActions, Termios};
use tokio::sync::mpsc;

/// Whether stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    termios::isatty(rustix::stdio::stdin())
}

/// Whether stderr is a terminal (a countdown may then rewrite its line).
pub fn stderr_is_tty() -> bool {
    termios::isatty(rustix::stdio::stderr())
}

/// The terminal size (columns, rows) from stdin or stdout, if either is a terminal.
pub fn window_size() -> Option<(u32, u32)> {
    [rustix::stdio::stdin(), rustix::stdio::stdout()]
        .into_iter()
        .find_map(|fd| termios::tcgetwinsize(fd).ok())
        .filter(|w| w.ws_col > 0 && w.ws_row > 0)
        .map(|w| (u32::from(w.ws_col), u32::from(w.ws_row)))
}

/// Raw mode on stdin while this lives; the saved settings are put back on drop.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Switches stdin to raw mode (no echo, no line editing, no signals from keys, no output
    /// processing), as `ssh` does for an interactive session.
    pub fn enable() -> std::io::Result<Self> {
        let fd = rustix::stdio::stdin();
        let saved = termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        // Drain, as OpenSSH does: keys typed ahead (an Enter right after the command) are kept
        // for the console, not discarded.
        termios::tcsetattr(fd, OptionalActions::Drain, &raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing more can be done if this fails; the terminal was ours only to borrow.
        let _ = termios::tcsetattr(rustix::stdio::stdin(), OptionalActions::Now, &self.saved);
    }
}

/// How often the reader thread looks at its stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Bytes from stdin, read on a thread of their own (a blocking read on a terminal cannot be
/// cancelled, and must not hold the async runtime at exit). `recv` gives `None` at end of input.
#[derive(Debug)]
pub struct StdinReader {
    rx: mpsc::Receiver<Vec<u8>>,
    stop: Arc<AtomicBool>,
}

impl StdinReader {
    pub fn spawn() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(8);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || read_loop(&tx, &flag))?;
        Ok(Self { rx, stop })
    }

    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }
}

impl Drop for StdinReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_loop(tx: &mpsc::Sender<Vec<u8>>, stop: &AtomicBool) {
    let fd = rustix::stdio::stdin();
    let timeout = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: POLL_INTERVAL.subsec_nanos().into(),
    };
    let mut buf = vec![0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return,
        }
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => return, // end of input: dropping `tx` tells the session
            Ok(n) => {
                if tx.blocking_send(buf[..n].to_vec()).is_err() {
                    return;
                }
            }
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => {}
            Err(_) => return,
        }
    }
}
