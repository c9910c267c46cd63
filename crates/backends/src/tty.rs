//! Local serial devices (`tty:/dev/ttyS1?baud=115200`) through `tokio-serial`, raw 8N1 without
//! flow control; BREAK is the line held in the break condition for [`BREAK_LENGTH`].

use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

use tokio_serial::{SerialPort, SerialStream};

use crate::console::{Capabilities, Console, ConsoleOptions};
use crate::error::OpenError;
use crate::stream::{self, Line, Raw};
use crate::uri::ConsoleUri;

/// How long the line is held in the break condition: what `tcsendbreak(fd, 0)` does on Linux,
/// and well over the 1-2 character times a UART needs to see a break at any common baud rate.
pub(crate) const BREAK_LENGTH: Duration = Duration::from_millis(250);

impl Line for SerialStream {
    async fn hard_break(&mut self) -> io::Result<()> {
        // Linux waits for queued output to drain before asserting the break (TIOCSBRK), so
        // bytes written before the BREAK are not cut off. Sleeping on the timer rather than
        // in tcsendbreak keeps the runtime thread free.
        self.set_break().map_err(io::Error::from)?;
        tokio::time::sleep(BREAK_LENGTH).await;
        self.clear_break().map_err(io::Error::from)
    }
}

/// Opens the device at `baud`. The port is opened exclusively (TIOCEXCL and flock), so a second
/// opener — another gateway session, a stray `screen` — fails instead of stealing bytes.
pub(crate) fn open(
    uri: &ConsoleUri,
    path: &Path,
    baud: u32,
    opts: &ConsoleOptions,
) -> Result<Console, OpenError> {
    let builder = tokio_serial::new(path.to_string_lossy(), baud);
    let line = SerialStream::open(&builder).map_err(|e| OpenError::io(uri, e.into()))?;
    let capabilities = Capabilities {
        can_break: true,
        kind: "tty",
    };
    Ok(stream::start(
        line,
        Raw,
        capabilities,
        uri.to_string(),
        opts,
        async {},
    ))
}

/// Checks that the path is a character device, without opening it (opening can toggle modem
/// lines, which some boards treat as a reset).
pub(crate) async fn probe(uri: &ConsoleUri, path: &Path) -> Result<(), OpenError> {
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(|e| OpenError::io(uri, e))?;
    if metadata.file_type().is_char_device() {
        Ok(())
    } else {
        Err(OpenError::unusable(uri, "not a character device"))
    }
}
