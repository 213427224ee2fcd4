//! The accept loop: hyper with the limits a device on a home network needs. A client that opens
//! connections and never finishes its headers (slowloris), or dribbles a body, must not hold a
//! socket, a task or a connection slot for long; and the number of connections is capped so a
//! flood cannot exhaust file descriptors.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// Connections still open at shutdown get this long to finish their current request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Accept failures (out of descriptors, say) are retried after this pause instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Request headers larger than this are refused (hyper's minimum is 8 KiB); real ones are well
/// under 4 KiB.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Limits applied to every client connection.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections served at once; more are closed right after accepting.
    pub max_connections: usize,
    /// A client must send each request's headers within this time (also bounds keep-alive idle),
    /// and each request must be answered within it.
    pub request_timeout: Duration,
}

/// A liveness question for the accept loop, answered from inside it. The watchdog asks this way
/// rather than over TCP: a probe connection would be refused while a flood fills
/// `max_connections`, turning a flood into restarts.
pub type AliveCheck = tokio::sync::oneshot::Sender<()>;

/// Serves `router` on `listener` until `shutdown` is cancelled, answering `alive` checks.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    mut alive: tokio::sync::mpsc::Receiver<AliveCheck>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(check) = alive.recv() => {
                let _ = check.send(());
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            // Once, then every thousandth: a flood must not flood the log too.
            if refused % 1000 == 1 {
                tracing::warn!(
                    refused,
                    limit = limits.max_connections,
                    "too many HTTP connections; closing new ones"
                );
            }
            drop(stream);
            continue;
        };
        let service = router.clone().map_request(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.request_timeout)
            .max_buf_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "HTTP connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::debug!("some HTTP connections were still open at shutdown");
    }
    Ok(())
}
