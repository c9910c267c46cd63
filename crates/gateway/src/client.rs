//! The client end of a session or a spectator's view, whatever carries it.
//!
//! Session tasks write to a [`ClientPort`] and know nothing else about their transport: an SSH
//! channel ([`SshChannel`]) is one kind of port.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use russh::ChannelId;
use russh::server::Handle;

pub(crate) type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Where a session's output goes.
pub(crate) trait ClientPort: Send + Sync + 'static {
    /// Sends bytes to the client. Resolves once the transport has taken them, so a slow client
    /// holds back the session's one chunk in flight instead of growing a buffer; `Err` when the
    /// client is gone.
    fn send(&self, data: Bytes) -> BoxFut<Result<(), ()>>;

    /// Ends the stream: the exit status when there is one (none after a task crashed), then
    /// end of output and close. Callers bound it in time.
    fn close(&self, exit_status: Option<u32>) -> BoxFut<()>;
}

/// A shared port, as session tasks hold it.
pub(crate) type Client = Arc<dyn ClientPort>;

/// One session channel of an SSH connection.
pub(crate) struct SshChannel {
    pub handle: Handle,
    pub channel: ChannelId,
}

impl ClientPort for SshChannel {
    fn send(&self, data: Bytes) -> BoxFut<Result<(), ()>> {
        let (handle, channel) = (self.handle.clone(), self.channel);
        Box::pin(async move { handle.data(channel, data).await.map_err(|_| ()) })
    }

    fn close(&self, exit_status: Option<u32>) -> BoxFut<()> {
        let (handle, channel) = (self.handle.clone(), self.channel);
        Box::pin(async move {
            if let Some(status) = exit_status {
                let _ = handle.exit_status_request(channel, status).await;
            }
            let _ = handle.eof(channel).await;
            let _ = handle.close(channel).await;
        })
    }
}
