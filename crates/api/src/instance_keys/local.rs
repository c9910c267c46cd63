//! `GET /instance-keys/v1/{os_user}` for a VM serialgate runs, on a unix socket of that VM's.
//!
//! QEMU's user network forwards the guest's connections to 169.254.169.254:80 to this socket
//! (see `vm::QemuSpec`), so a connection here comes from that VM and no other: the socket names
//! the instance and no proof is asked for. The answers are those of the API route, audited the
//! same way; every failure is the same empty `404`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::any;
use console::InstanceId;
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::{check, no_keys, serve};
use crate::connection::{Deadlines, serve_connection};
use crate::server::{ApiState, RequestDeadline};

/// Connections served at once for one VM. The guest is the only client; more than a few at once
/// is a guest flooding its own endpoint, and the rest are closed unanswered.
const MAX_CONNECTIONS: usize = 4;

/// The peer recorded for the connections: a unix socket has no address, and the route does not
/// read it (the audit's source address stays empty).
const NO_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

struct Local {
    state: Arc<ApiState>,
    instance: InstanceId,
}

/// Serves `instance`'s keys on `listener` until `shutdown` resolves; connections still open
/// then are closed.
pub async fn serve_local(
    listener: UnixListener,
    state: Arc<ApiState>,
    instance: InstanceId,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let limits = state.limits;
    let local = Arc::new(Local { state, instance });
    let router = Router::new()
        .route("/instance-keys/v1/", any(handle))
        .route("/instance-keys/v1/{*os_user}", any(handle))
        .fallback(|| async { no_keys() })
        .with_state(Arc::clone(&local));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (_stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let stream = match stream {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(instance = %local.instance, error = %e, "instance keys socket: accept failed");
                // Out of descriptors, typically: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue;
        };
        let router = router.clone();
        let deadlines = Arc::new(Deadlines::new(&limits));
        let stop = stop_rx.clone();
        connections.spawn(async move {
            // Half-close: the relay ends its sending side when the guest does (`nc`, HTTP/1.0
            // clients), and the answer must still reach the guest.
            serve_connection(
                stream, NO_PEER, false, true, router, &limits, deadlines, stop,
            )
            .await;
            drop(slot);
        });
    }
}

async fn handle(State(local): State<Arc<Local>>, req: Request) -> Response {
    let state = &local.state;
    let (Some(keys), true) = (
        &state.instance_keys,
        matches!(*req.method(), Method::GET | Method::HEAD),
    ) else {
        return no_keys();
    };
    let Some(os_user) = check::os_user(req.uri().path()) else {
        return no_keys();
    };
    let deadline = req.extensions().get::<RequestDeadline>().map_or_else(
        || tokio::time::Instant::now() + state.limits.request_timeout,
        |d| d.0,
    );
    let work = serve(state, keys, None, local.instance.clone(), os_user);
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| no_keys())
}
