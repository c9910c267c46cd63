//! Listening sockets with an accept queue deep enough for bursts.
//!
//! `TcpListener::bind` asks the kernel for a backlog of 128. A burst of connections larger than
//! that (a flood being refused by the per-address caps, or many clients reconnecting after a
//! restart) fills the queue faster than the accept loop drains it, and the kernel drops the
//! SYNs of everyone else, honest clients included: each waits a full SYN retransmission (1 s,
//! then 3 s) before it is even seen. A deeper queue lets the accept loop, which admits or
//! refuses a connection in microseconds, absorb the burst. The kernel caps the value at
//! `net.core.somaxconn` (4096 on current kernels).

use std::io;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The accept queue asked of the kernel.
const BACKLOG: u32 = 4096;

/// Binds `addr` with `SO_REUSEADDR` (as `TcpListener::bind` does, so a restart does not wait
/// out `TIME_WAIT`) and listens with [`BACKLOG`].
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// More connections than the old default backlog complete their handshake while nobody
    /// accepts: the kernel queued them all instead of dropping SYNs.
    #[tokio::test]
    async fn queues_more_than_the_default_backlog() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut clients = Vec::new();
        for _ in 0..300 {
            let connect = tokio::net::TcpStream::connect(addr);
            // With a shorter queue the kernel drops this SYN and, as nobody accepts, every
            // retransmission too: the connect would hang, not merely be slow.
            let stream = tokio::time::timeout(std::time::Duration::from_secs(10), connect)
                .await
                .expect("the handshake completed while nobody accepted")
                .unwrap();
            clients.push(stream);
        }
        for _ in 0..300 {
            listener.accept().await.unwrap();
        }
    }
}
