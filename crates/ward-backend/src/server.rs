//! Listeners: TLS only once cert-file and key-file are set (a plaintext request on a TLS
//! port gets no data and a clean close, and is counted), plaintext otherwise.
//!
//! The API, the dashboard and the agent port share one accept loop, [`accept_loop`], and
//! one [`Limits`]:
//! - at most `max-connections` connections at once across the three ports (a permit per
//!   connection; the loop stops accepting while none is left, so the kernel's backlog holds
//!   the rest instead of the process running out of file descriptors);
//! - a failed accept (EMFILE, ENFILE, ENOBUFS, ENOMEM) is retried after a jittered pause growing
//!   from 10 ms to 1 s (`ward_io::backoff`), never in a tight loop;
//! - the log gets at most one line a second per kind of trouble, with the number of lines
//!   left out since the last one ([`RateLimited`]);
//! - a TLS handshake must finish within `tls-handshake-timeout`, and each HTTP request's
//!   headers (the first byte included, and the next request on a kept-alive connection)
//!   must arrive within `http-header-timeout`; otherwise the connection is closed.

use crate::api::{AppState, Metrics};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::Layer;

/// File descriptors kept back from the default connection cap for the store, the
/// listeners, handlers and outgoing connections (PostgreSQL, CRL and OCSP fetches).
const RESERVED_FILES: u64 = 256;

/// The limits every listener applies.
pub struct Limits {
    pub handshake_timeout: Duration,
    pub header_timeout: Duration,
    /// The connection cap, as configured or derived.
    pub max_connections: usize,
    permits: Arc<Semaphore>,
    accept_errors: RateLimited,
    at_cap: RateLimited,
    timeouts: RateLimited,
}

impl Limits {
    /// `max_connections` 0 derives the cap from the open-file limit in force.
    pub fn new(
        handshake_timeout: Duration,
        header_timeout: Duration,
        max_connections: usize,
        open_files: u64,
    ) -> Arc<Limits> {
        let max = if max_connections > 0 {
            max_connections
        } else {
            default_max_connections(open_files)
        };
        Arc::new(Limits {
            handshake_timeout,
            header_timeout,
            max_connections: max,
            permits: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            accept_errors: RateLimited::new(),
            at_cap: RateLimited::new(),
            timeouts: RateLimited::new(),
        })
    }

    /// Logs (rate-limited) a connection closed for taking too long.
    pub fn timed_out(&self, what: &str, peer: SocketAddr, phase: &str, after: Duration) {
        self.timeouts.warn(|suppressed| {
            format!("{what}: closed {peer}: {phase} did not finish within {after:?}{suppressed}")
        });
    }
}

/// The connection cap for an open-file limit: all of it but [`RESERVED_FILES`], at least 64.
pub fn default_max_connections(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(RESERVED_FILES).max(64)).unwrap_or(usize::MAX)
}

/// A warning logged at most once a second; the lines left out are counted into the next.
pub struct RateLimited {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl Default for RateLimited {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimited {
    pub fn new() -> Self {
        RateLimited {
            last: Mutex::new(None),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Logs `line` (given the "(N more since the last)" suffix) unless a line was logged
    /// less than a second ago, in which case it is only counted.
    pub fn warn(&self, line: impl FnOnce(String) -> String) {
        let Ok(mut last) = self.last.try_lock() else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        let n = self.suppressed.swap(0, Ordering::Relaxed);
        let suffix = if n > 0 {
            format!(" ({n} more like it in the last second, not logged)")
        } else {
            String::new()
        };
        tracing::warn!("{}", line(suffix));
    }
}

/// Whether an accept error means the process or the system is out of a resource (wait
/// before trying again) rather than one connection failing (try the next at once).
fn out_of_resources(e: &std::io::Error) -> bool {
    use rustix::io::Errno;
    let Some(code) = e.raw_os_error() else {
        return false;
    };
    [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
        .iter()
        .any(|x| x.raw_os_error() == code)
}

/// Accepts connections on `listener` until `shutdown` changes, running `handle` for each
/// on its own task while holding one of `limits`' permits. `what` names the port in logs.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    what: &'static str,
    limits: Arc<Limits>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // The one backoff (ward_io::backoff): 10 ms, growing to 1 s, jittered.
    let mut pause =
        ward_io::backoff::Backoff::new(Duration::from_millis(10), Duration::from_secs(1), 2.0);
    loop {
        let permit: OwnedSemaphorePermit = match limits.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                limits.at_cap.warn(|s| {
                    format!(
                        "{what}: {} connections open, the cap (max-connections); new ones wait in the listen backlog{s}",
                        limits.max_connections
                    )
                });
                tokio::select! {
                    p = limits.permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => return,
                    },
                    _ = shutdown.changed() => return,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => {
                    pause.reset();
                    v
                }
                Err(e) => {
                    let exhausted = out_of_resources(&e);
                    let wait = if exhausted { pause.next_delay() } else { Duration::ZERO };
                    limits.accept_errors.warn(|s| {
                        if exhausted {
                            format!("{what}: accept failed: {e}; retrying in {wait:?} (raise the open-file limit, or lower max-connections){s}")
                        } else {
                            format!("{what}: accept failed: {e}{s}")
                        }
                    });
                    if exhausted {
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = shutdown.changed() => return,
                        }
                    }
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let work = handle(stream, peer);
        tokio::spawn(async move {
            work.await;
            drop(permit);
        });
    }
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    what: &'static str,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    metrics: Arc<Metrics>,
    limits: Arc<Limits>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let l = limits.clone();
    accept_loop(listener, what, limits, shutdown, move |stream, peer| {
        let app = app.clone();
        let acceptor = acceptor.clone();
        let metrics = metrics.clone();
        let limits = l.clone();
        async move {
            let _ = stream.set_nodelay(true);
            match acceptor {
                None => {
                    metrics.requests.fetch_add(1, Ordering::Relaxed);
                    serve_http(stream, app, what, peer, &limits, false).await;
                }
                Some(acc) => {
                    let Some(tls) =
                        tls_handshake(&acc, stream, what, peer, &metrics, &limits).await
                    else {
                        return;
                    };
                    metrics.requests.fetch_add(1, Ordering::Relaxed);
                    serve_http(tls, app, what, peer, &limits, false).await;
                }
            }
        }
    })
    .await
}

/// The TLS handshake within `tls-handshake-timeout` (plaintext refused first); `None` when
/// it failed, which is counted and logged.
pub async fn tls_handshake(
    acc: &TlsAcceptor,
    stream: TcpStream,
    what: &str,
    peer: SocketAddr,
    metrics: &Metrics,
    limits: &Limits,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let t = limits.handshake_timeout;
    let start = Instant::now();
    if !starts_with_handshake(&stream, peer, metrics, t).await {
        return None;
    }
    let left = t.saturating_sub(start.elapsed());
    match tokio::time::timeout(left, acc.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            let reason = failure_reason(&e);
            metrics.handshake_failed(&reason);
            limits
                .timeouts
                .warn(|s| format!("{what}: TLS handshake with {peer} failed: {e} ({reason}){s}"));
            None
        }
        Err(_) => {
            metrics.handshake_failed("timeout");
            limits.timed_out(what, peer, "the TLS handshake", t);
            None
        }
    }
}

/// Serves HTTP/1.1 or HTTP/2 on one connection. The first byte must arrive within
/// `http-header-timeout` (the protocol is decided by it); HTTP/1.1 then has hyper's header
/// read timeout (also the limit for a kept-alive connection's next request).
pub async fn serve_http<I>(
    io: I,
    app: Router,
    what: &str,
    peer: SocketAddr,
    limits: &Limits,
    upgrades: bool,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A one-byte buffer: enough to wait for the first byte without consuming it, and every
    // later read (bigger than the empty buffer) goes straight to `io`, so a connection
    // costs no extra copy and no buffer memory (20,000 agent sessions × 8 KiB otherwise).
    let mut io = BufReader::with_capacity(1, io);
    match tokio::time::timeout(limits.header_timeout, io.fill_buf()).await {
        Ok(Ok(b)) if !b.is_empty() => {}
        Ok(_) => return,
        Err(_) => {
            limits.timed_out(what, peer, "the first request", limits.header_timeout);
            return;
        }
    }
    // The peer's address, for per-source login throttling (api::login).
    let svc = TowerToHyperService::new(
        axum::Extension(axum::extract::ConnectInfo(peer)).layer(app.into_service()),
    );
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_timeout)
        .keep_alive_timeout(limits.header_timeout);
    let io = TokioIo::new(io);
    if upgrades {
        let _ = builder.serve_connection_with_upgrades(io, svc).await;
    } else {
        let _ = builder.serve_connection(io, svc).await;
    }
}

/// A TLS connection starts with a handshake record (0x16); anything else is plaintext sent
/// to a TLS port: false, counted and logged, and the caller closes without a byte. Silence
/// for `within` is false too.
pub async fn starts_with_handshake(
    stream: &TcpStream,
    peer: SocketAddr,
    metrics: &Metrics,
    within: Duration,
) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(within, stream.peek(&mut first)).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_files_for_the_rest() {
        assert_eq!(default_max_connections(20_000), 19_744);
        assert_eq!(default_max_connections(100), 64);
    }

    #[test]
    fn resource_errors_are_told_apart() {
        assert!(out_of_resources(&std::io::Error::from_raw_os_error(
            rustix::io::Errno::MFILE.raw_os_error()
        )));
        assert!(!out_of_resources(&std::io::Error::from(
            std::io::ErrorKind::ConnectionAborted
        )));
    }
}
