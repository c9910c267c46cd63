//! `serialgate vm-keys-relay SOCKET`: what QEMU runs for each connection a managed guest opens to
//! 169.254.169.254:80, with that connection as stdin and stdout. It carries the bytes to and
//! from the VM's keys socket, where serve listens. Plain threads and blocking copies: one short
//! connection, no runtime worth starting.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// The VM's keys socket (state_dir/vm/ID/keys.sock).
    pub socket: std::path::PathBuf,
}

/// Copies stdin to the socket and the socket to stdout until the socket's side ends. Returning
/// then (the process exits) closes the guest's connection even while the guest still sends.
pub fn run(socket: &Path) -> std::io::Result<()> {
    let stream = UnixStream::connect(socket)?;
    let mut upstream = stream.try_clone()?;
    std::thread::spawn(move || {
        let _ = copy(&mut std::io::stdin().lock(), &mut upstream);
        // The guest is done sending: the server sees the end of the request stream.
        let _ = upstream.shutdown(Shutdown::Write);
    });
    copy(&mut &stream, &mut std::io::stdout().lock())
}

/// `std::io::copy` with a flush after each read, so an answer is not held in stdout's buffer.
fn copy(from: &mut impl Read, to: &mut impl Write) -> std::io::Result<()> {
    let mut buf = [0u8; 8192];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        to.write_all(&buf[..n])?;
        to.flush()?;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn copy_passes_every_byte() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut out = Vec::new();
        copy(&mut data.as_slice(), &mut out).unwrap();
        assert_eq!(out, data);
    }
}
