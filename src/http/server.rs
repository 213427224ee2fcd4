//! The accept loop: hyper with the limits a device on a home network needs. A client that opens
//! connections and never finishes its headers (slowloris), or dribbles a body, must not hold a
//! socket, a task or a connection slot for long; and the number of connections is capped so a
//! flood cannot exhaust file descriptors.

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
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

/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What the port speaks.
pub enum Transport {
    Plain,
    /// HTTPS with the current certificate; a new value (a reload) applies to new connections.
    Tls(watch::Receiver<Arc<ServerConfig>>),
}

/// A liveness question for the accept loop, answered from inside it. The watchdog asks this way
/// rather than over TCP: a probe connection would be refused while a flood fills
/// `max_connections`, turning a flood into restarts.
pub type AliveCheck = tokio::sync::oneshot::Sender<()>;

/// Serves `router` on `listener` until `shutdown` is cancelled, answering `alive` checks.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    transport: Transport,
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
        let tls = match &transport {
            Transport::Plain => None,
            Transport::Tls(current) => Some(current.borrow().clone()),
        };
        let (router, watcher) = (router.clone(), graceful.watcher());
        tokio::spawn(async move {
            match tls {
                None => serve_connection(stream, peer, router, limits, watcher).await,
                Some(tls) => serve_tls(stream, peer, tls, router, limits, watcher).await,
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

/// One HTTP/1.1 connection over `io`, with the header and request limits.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    router: Router,
    limits: ServerLimits,
    watcher: Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.request_timeout)
        .max_buf_size(MAX_HEADER_BYTES)
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(error) = watcher.watch(connection).await {
        tracing::debug!(%peer, %error, "HTTP connection ended with an error");
    }
}

/// A connection to the HTTPS port: the TLS handshake (bounded by the request timeout, so a
/// silent client cannot hold the slot), then HTTP. A client speaking plain HTTP is answered in
/// plain HTTP with a redirect to the https:// address, because a person typed the URL.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Arc<ServerConfig>,
    router: Router,
    limits: ServerLimits,
    watcher: Watcher,
) {
    let mut first = [0u8; 1];
    match tokio::time::timeout(limits.request_timeout, stream.peek(&mut first)).await {
        Ok(Ok(1)) => {}
        _ => return,
    }
    if first[0] != TLS_HANDSHAKE_RECORD {
        let redirect = Router::new().fallback(redirect_to_https);
        return serve_connection(stream, peer, redirect, limits, watcher).await;
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    match tokio::time::timeout(limits.request_timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => serve_connection(stream, peer, router, limits, watcher).await,
        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
    }
}

/// Sends a plain-HTTP request to the same host and path over https://. Temporary (307), so a
/// browser does not remember it if HTTPS is later turned off, and the method is kept.
async fn redirect_to_https(request: axum::extract::Request) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    let target =
        host.filter(|host| !host.is_empty() && !host.contains(['/', '\\', '@'])).map(|host| {
            let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
            format!("https://{host}{path}")
        });
    match target.and_then(|t| axum::http::HeaderValue::from_str(&t).ok()) {
        Some(location) => {
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)], "use https://\n")
                .into_response()
        }
        None => (StatusCode::BAD_REQUEST, "this port speaks HTTPS: use https://\n").into_response(),
    }
}
