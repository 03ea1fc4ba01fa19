//! The accept loop: axum's router on hyper, with the limits `axum::serve` leaves out.
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never fires: a client that opens
//! a connection and sends a header byte now and then holds it for ever, and enough of them
//! exhaust the file descriptors. Here every connection takes a permit of a fixed pool, a TLS
//! handshake takes one of a smaller pool and must finish within a few seconds, and a request's
//! headers (also the next request's, on an idle keep-alive connection) must arrive within a
//! timeout ([`Limits`]). Handlers see the peer address as `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::Limits;

/// How long a stop waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Logs "at the limit" at most this often, so a flood cannot flood the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown` fires, then lets
/// requests in flight finish.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: Limits,
    shutdown: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(Semaphore::new(limits.max_handshakes));
    let header_timeout = limits.header_read_timeout;
    let handshake_timeout = limits.handshake_timeout;
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut last_warning: Option<Instant> = None;
    let mut warn_limited = |what: &str| {
        if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
            tracing::warn!(limit = what, "refusing connections: the server is at its limit");
            last_warning = Some(Instant::now());
        }
    };
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            warn_limited("connections");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let watcher = graceful.watcher();
        match &acceptor {
            None => {
                tokio::spawn(async move {
                    connection(TokioIo::new(tcp), peer, app, watcher, header_timeout).await;
                    drop(permit);
                });
            }
            Some(acceptor) => {
                let Ok(handshake) = Arc::clone(&handshakes).try_acquire_owned() else {
                    warn_limited("TLS handshakes");
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let handshake_done = handshake_finish(&acceptor, tcp, peer, handshake_timeout);
                    let Some(stream) = handshake_done.await else {
                        return;
                    };
                    drop(handshake);
                    connection(TokioIo::new(stream), peer, app, watcher, header_timeout).await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("stopped with requests still in flight after {DRAIN_TIMEOUT:?}");
    }
    Ok(())
}

async fn handshake_finish(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        // Anyone can cause these: not worth more than a debug line each.
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            None
        }
    }
}

/// Serves one connection: HTTP/1.1 only (WebSocket needs it, and TLS offers only it), with
/// upgrades, the header timeout, and the peer address in every request.
async fn connection<I>(
    io: TokioIo<I>,
    peer: SocketAddr,
    app: Router,
    watcher: Watcher,
    header_timeout: Duration,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(request).await.unwrap_or_else(|e| match e {})) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder.http1().timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let served = builder.serve_connection_with_upgrades(io, service).into_owned();
    if let Err(error) = watcher.watch(served).await {
        tracing::debug!(%peer, %error, "a connection ended with an error");
    }
}
