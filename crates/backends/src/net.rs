//! Socket consoles: raw byte streams and telnet over unix sockets and TCP.
//!
//! Raw sockets cannot carry a BREAK (there is no out-of-band channel), so they say so in their
//! capabilities; the telnet forms send `IAC BRK`.

use std::future::Future;
use std::path::Path;

use tokio::net::{TcpStream, UnixStream};

use crate::console::{Capabilities, Console, ConsoleOptions};
use crate::error::OpenError;
use crate::stream::{self, Raw};
use crate::telnet::Telnet;
use crate::uri::ConsoleUri;

/// Which socket and which protocol on it.
enum Target<'a> {
    Unix(&'a Path),
    Tcp(&'a str),
}

fn target(uri: &ConsoleUri) -> Option<(Target<'_>, bool)> {
    match uri {
        ConsoleUri::Unix(path) => Some((Target::Unix(path), false)),
        ConsoleUri::UnixTelnet(path) => Some((Target::Unix(path), true)),
        ConsoleUri::Tcp(addr) => Some((Target::Tcp(addr), false)),
        ConsoleUri::Telnet(addr) => Some((Target::Tcp(addr), true)),
        _ => None,
    }
}

/// Bounds a connect by `connect_timeout`, mapping failures to errors that name the console.
async fn bounded<T>(
    uri: &ConsoleUri,
    opts: &ConsoleOptions,
    connect: impl Future<Output = std::io::Result<T>>,
) -> Result<T, OpenError> {
    match tokio::time::timeout(opts.connect_timeout, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(OpenError::io(uri, e)),
        Err(_) => Err(OpenError::timeout(uri, opts.connect_timeout)),
    }
}

async fn connect_tcp(
    uri: &ConsoleUri,
    addr: &str,
    opts: &ConsoleOptions,
) -> Result<TcpStream, OpenError> {
    let stream = bounded(uri, opts, TcpStream::connect(addr)).await?;
    // Keystrokes are tiny and latency is what the user feels.
    stream
        .set_nodelay(true)
        .map_err(|e| OpenError::io(uri, e))?;
    Ok(stream)
}

/// Opens a socket console. `uri` must be one of the socket schemes.
pub(crate) async fn open(uri: &ConsoleUri, opts: &ConsoleOptions) -> Result<Console, OpenError> {
    let Some((target, telnet)) = target(uri) else {
        return Err(OpenError::unusable(uri, "not a socket console"));
    };
    let capabilities = Capabilities {
        can_break: telnet,
        kind: uri.scheme(),
    };
    let label = uri.to_string();
    let done = async {};
    Ok(match (target, telnet) {
        (Target::Unix(path), false) => {
            let line = bounded(uri, opts, UnixStream::connect(path)).await?;
            stream::start(line, Raw, capabilities, label, opts, done)
        }
        (Target::Unix(path), true) => {
            let line = bounded(uri, opts, UnixStream::connect(path)).await?;
            stream::start(line, Telnet::default(), capabilities, label, opts, done)
        }
        (Target::Tcp(addr), false) => {
            let line = connect_tcp(uri, addr, opts).await?;
            stream::start(line, Raw, capabilities, label, opts, done)
        }
        (Target::Tcp(addr), true) => {
            let line = connect_tcp(uri, addr, opts).await?;
            stream::start(line, Telnet::default(), capabilities, label, opts, done)
        }
    })
}

/// Connects and closes at once: proves something is listening without touching the console.
pub(crate) async fn probe(uri: &ConsoleUri, opts: &ConsoleOptions) -> Result<(), OpenError> {
    match target(uri) {
        Some((Target::Unix(path), _)) => bounded(uri, opts, UnixStream::connect(path))
            .await
            .map(drop),
        Some((Target::Tcp(addr), _)) => {
            bounded(uri, opts, TcpStream::connect(addr)).await.map(drop)
        }
        None => Err(OpenError::unusable(uri, "not a socket console")),
    }
}
