//! Listeners: TLS only once cert-file and key-file are set (a plaintext request on a TLS
//! port gets no data and a clean close, and is counted), plaintext otherwise.

use crate::api::{AppState, Metrics};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::Layer;

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    metrics: Arc<Metrics>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let mut shutdown = shutdown;
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            // The peer's address, for per-source login throttling (api::login).
            let svc = TowerToHyperService::new(
                axum::Extension(axum::extract::ConnectInfo(peer)).layer(app.into_service()),
            );
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match acceptor {
                None => {
                    metrics.requests.fetch_add(1, Ordering::Relaxed);
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
                Some(acc) => {
                    if !starts_with_handshake(&stream, peer, &metrics).await {
                        return;
                    }
                    match acc.accept(stream).await {
                        Ok(tls) => {
                            metrics.requests.fetch_add(1, Ordering::Relaxed);
                            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                        }
                        Err(e) => {
                            let reason = failure_reason(&e);
                            metrics.handshake_failed(&reason);
                            tracing::warn!(peer = %peer, error = %e, reason = %reason, "TLS handshake failed");
                        }
                    }
                }
            }
        });
    }
}

/// A TLS connection starts with a handshake record (0x16); anything else is plaintext sent
/// to a TLS port: false, counted and logged, and the caller closes without a byte.
pub async fn starts_with_handshake(
    stream: &tokio::net::TcpStream,
    peer: SocketAddr,
    metrics: &Metrics,
) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(std::time::Duration::from_secs(10), stream.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == 0x16 => true,
        Ok(Ok(1)) => {
            metrics.plaintext_on_tls.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %peer, "plaintext request on a TLS port; closed");
            false
        }
        _ => false,
    }
}

/// A short label for a failed handshake: the TLS alert or error kind.
pub fn failure_reason(e: &std::io::Error) -> String {
    let label = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::AlertReceived(a)) => format!("alert_{a:?}"),
        Some(rustls::Error::InvalidCertificate(c)) => format!("client_certificate_{c:?}"),
        Some(rustls::Error::NoCertificatesPresented) => "no_client_certificate".into(),
        Some(rustls::Error::PeerIncompatible(_)) => "peer_incompatible".into(),
        Some(rustls::Error::InvalidMessage(_)) => "invalid_message".into(),
        Some(rustls::Error::PeerMisbehaved(_)) => "peer_misbehaved".into(),
        Some(_) => "tls_error".into(),
        None if e.kind() == std::io::ErrorKind::UnexpectedEof => "eof".into(),
        None => "io_error".into(),
    };
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Binds a listener, with the address in the error. The accept backlog is 4096 (the kernel
/// caps it at net.core.somaxconn): when a whole fleet reconnects at once after a restart,
/// a short backlog drops SYNs and those agents wait out TCP's retransmission backoff.
pub async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, String> {
    let fail = |e: std::io::Error| format!("{what} {addr}: cannot listen: {e}");
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(fail)?;
    socket.set_reuseaddr(true).map_err(fail)?;
    socket.bind(addr).map_err(fail)?;
    socket.listen(4096).map_err(fail)
}

/// Keeps the state alive for the listeners.
pub type Shared = Arc<AppState>;
