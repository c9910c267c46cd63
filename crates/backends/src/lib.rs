//! Serial console backends behind one handle: raw and telnet sockets, local ttys, commands on a
//! pty, and a built-in simulator.
//!
//! [`open`] parses nothing and knows nothing of SSH: it turns a [`ConsoleUri`] into a
//! [`Console`], whose bytes flow through bounded channels to one task per connection that owns
//! the I/O. Invariants: no unbounded buffering anywhere (a slow reader stops the console, a slow
//! console stops the writer); dropping the [`Console`] ends the task and releases the socket,
//! device or child process; what a console sent before it closed is delivered before `output`
//! reports the end.

mod backoff;
pub mod child_env;
mod console;
mod error;
mod exec;
mod history;
mod hub;
mod net;
#[cfg(test)]
mod prop_tests;
mod sim;
mod spectate;
mod stream;
mod tap;
mod telnet;
mod tty;
mod uri;

pub use backoff::Backoff;
pub use console::{
    BreakError, Capabilities, Closed, Console, ConsoleInput, ConsoleOptions, Input, TaskEnds,
};
pub use error::OpenError;
pub use history::MAX_REPLAY_LINES;
pub use hub::{Hub, HubSnapshot, HubState};
pub use spectate::{MAX_SPECTATOR_LABEL, SpectateError, SpectateRequest};
pub use tap::{HubSetup, OutputTap};
pub use uri::{ConsoleUri, DEFAULT_BAUD, UriError};

use tokio::io::{AsyncRead, AsyncWrite};

/// The name the simulator shows when the URI gives none.
const DEFAULT_SIM_NAME: &str = "sim";

/// Opens a console connection. Connecting is bounded by `opts.connect_timeout`.
pub async fn open(uri: &ConsoleUri, opts: &ConsoleOptions) -> Result<Console, OpenError> {
    match uri {
        ConsoleUri::Unix(_)
        | ConsoleUri::UnixTelnet(_)
        | ConsoleUri::Tcp(_)
        | ConsoleUri::Telnet(_) => net::open(uri, opts).await,
        ConsoleUri::Tty { path, baud } => tty::open(uri, path, *baud, opts),
        ConsoleUri::Exec(argv) => exec::open(uri, argv, opts),
        ConsoleUri::Sim => Ok(sim::open(DEFAULT_SIM_NAME, opts)),
        ConsoleUri::SimNamed(name) => Ok(sim::open(name, opts)),
    }
}

/// Cheap reachability check, used when a key is pushed. Sockets: connect and close at once;
/// tty: the path is a character device; exec: the program resolves to an executable file;
/// sim: always reachable. The whole check is bounded by `opts.connect_timeout`.
pub async fn probe(uri: &ConsoleUri, opts: &ConsoleOptions) -> Result<(), OpenError> {
    let check = async {
        match uri {
            ConsoleUri::Unix(_)
            | ConsoleUri::UnixTelnet(_)
            | ConsoleUri::Tcp(_)
            | ConsoleUri::Telnet(_) => net::probe(uri, opts).await,
            ConsoleUri::Tty { path, .. } => tty::probe(uri, path).await,
            ConsoleUri::Exec(argv) => exec::probe(uri, argv).await,
            ConsoleUri::Sim | ConsoleUri::SimNamed(_) => Ok(()),
        }
    };
    tokio::time::timeout(opts.connect_timeout, check)
        .await
        .unwrap_or_else(|_| Err(OpenError::timeout(uri, opts.connect_timeout)))
}

impl Console {
    /// Wraps any byte stream as a raw console (no BREAK), e.g. one end of `tokio::io::duplex`
    /// in tests. Writes are not flushed, so give it an unbuffered stream. Must be called within
    /// a tokio runtime.
    pub fn from_stream<S>(stream: S, opts: &ConsoleOptions) -> Console
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let capabilities = Capabilities {
            can_break: false,
            kind: "stream",
        };
        stream::start(
            stream::Plain(stream),
            stream::Raw,
            capabilities,
            "stream".to_owned(),
            opts,
            async {},
        )
    }
}
