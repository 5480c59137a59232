//! pipeline/v1 TCPStreamHandler: events written, one per line, over a pool of persistent
//! connections (TLS when a CA or a client certificate is configured), as Sensu's
//! commercial handler of that name.
//!
//! - At most `max_connections` connections; an idle one is reused for the next event.
//!   `0` turns pooling off: a connection per event, closed after it.
//! - A connection the peer closed is noticed before reuse (a task per connection reads
//!   and discards what the peer sends, and marks it closed at EOF or an error); a write
//!   that fails is retried once on a new connection.
//! - After a failed connect the next waits `min_reconnect_delay`, doubling up to
//!   `max_reconnect_delay`; a success resets it.
//! - A send gives up after [`SEND_TIMEOUT`] (logged and counted, as other handlers).
//!
//! Pools live as long as their handler's spec is unchanged: [`carry_over`] hands the
//! pools of a reloaded snapshot's unchanged handlers to the new one.

use super::Reason;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, WriteHalf};
use tokio::sync::Semaphore;
use ward_types::Resource;

/// How long one event may take to be written, reconnects included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections open at once when pooling is off (`max_connections: 0`).
const UNPOOLED: usize = 32;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A connection: its write half, and a flag its reader task sets when the peer is gone.
struct Conn {
    writer: WriteHalf<Box<dyn Io>>,
    closed: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

struct Tls {
    config: Arc<rustls::ClientConfig>,
    name: rustls::pki_types::ServerName<'static>,
}

struct Backoff {
    /// No connect before this.
    not_before: Option<Instant>,
    delay: Duration,
}

/// One TCPStreamHandler's connections.
pub(super) struct StreamPool {
    /// The spec it was built from: a changed spec gets a new pool.
    spec: Value,
    host: String,
    port: u16,
    tls: Option<Tls>,
    pooled: bool,
    slots: Semaphore,
    idle: Mutex<Vec<Conn>>,
    min_delay: Duration,
    max_delay: Duration,
    backoff: Mutex<Backoff>,
}

/// `host:port` or `[v6]:port`.
fn split_address(a: &str) -> Option<(String, u16)> {
    let (host, port) = a.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then(|| (host.to_string(), port))
}

fn text<'a>(spec: &'a serde_json::Map<String, Value>, k: &str) -> Option<&'a str> {
    spec.get(k)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl StreamPool {
    /// The pool of a TCPStreamHandler: its address, delays and TLS files read and checked
    /// (blocking: the files are read here). An error is one line naming what is wrong.
    pub(super) fn new(h: &Resource) -> Result<StreamPool, String> {
        let spec = &h.spec;
        let address = text(spec, "address").unwrap_or("");
        let (host, port) = split_address(address)
            .ok_or_else(|| format!("address {address:?} is not HOST:PORT"))?;
        let delay = |k: &str| {
            ward_io::duration::parse_duration(k, text(spec, k).unwrap_or(""))
                .map_err(|e| e.to_string())
        };
        let (min_delay, max_delay) = (delay("min_reconnect_delay")?, delay("max_reconnect_delay")?);
        let max = spec
            .get("max_connections")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let ca = text(spec, "tls_ca_cert_file");
        let cert = text(spec, "tls_cert_file");
        let tls = if ca.is_some() || cert.is_some() {
            let trust = match ca {
                Some(p) => ward_tls::Trust::CaFile(p.into()),
                None => ward_tls::Trust::SystemRoots {
                    fix_key: "tls_ca_cert_file",
                },
            };
            let mut config = ward_tls::client_config(&trust)?;
            if let Some(cert) = cert {
                let key = text(spec, "tls_key_file")
                    .ok_or("tls_cert_file is set without tls_key_file")?;
                let pair = ward_tls::load_pair(cert.as_ref(), key.as_ref())?;
                config = ward_tls::with_client_cert(config, pair);
            }
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("address {address:?}: {host:?} is not a server name: {e}"))?;
            Some(Tls {
                config: Arc::new(config),
                name,
            })
        } else {
            None
        };
        let slots = if max == 0 {
            UNPOOLED
        } else {
            usize::try_from(max).unwrap_or(UNPOOLED).min(4096)
        };
        Ok(StreamPool {
            spec: Value::Object(spec.clone()),
            host,
            port,
            tls,
            pooled: max > 0,
            slots: Semaphore::new(slots),
            idle: Mutex::new(Vec::new()),
            min_delay,
            max_delay,
            backoff: Mutex::new(Backoff {
                not_before: None,
                delay: Duration::ZERO,
            }),
        })
    }

    fn target(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Writes `payload` and a newline. Errors: (reason, one line).
    pub(super) async fn send(&self, payload: &[u8]) -> Result<(), (Reason, String)> {
        let target = self.target();
        match tokio::time::timeout(SEND_TIMEOUT, self.send_inner(payload)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err((Reason::Socket, format!("{target}: {e}"))),
            Err(_) => Err((
                Reason::Timeout,
                format!(
                    "{target}: not written within {}s (reconnecting every {} at most)",
                    SEND_TIMEOUT.as_secs(),
                    ward_io::format_duration(self.max_delay)
                ),
            )),
        }
    }

    async fn send_inner(&self, payload: &[u8]) -> Result<(), String> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| "the pool is closed".to_string())?;
        // One write: a payload and its newline never go to different connections.
        let mut line = Vec::with_capacity(payload.len() + 1);
        line.extend_from_slice(payload);
        line.push(b'\n');
        let mut last = String::new();
        for _ in 0..2 {
            let mut conn = match self.take_idle() {
                Some(c) => c,
                None => self.connect().await?,
            };
            let written = async {
                conn.writer.write_all(&line).await?;
                conn.writer.flush().await
            }
            .await;
            match written {
                Ok(()) => {
                    if self.pooled {
                        self.lock_idle().push(conn);
                    } else {
                        let _ = conn.writer.shutdown().await;
                    }
                    return Ok(());
                }
                // Dropped: a new connection is tried once.
                Err(e) => last = format!("write failed: {e}"),
            }
        }
        Err(last)
    }

    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection whose peer has not closed it.
    fn take_idle(&self) -> Option<Conn> {
        let mut idle = self.lock_idle();
        while let Some(c) = idle.pop() {
            if !c.closed.load(Ordering::Acquire) {
                return Some(c);
            }
        }
        None
    }

    /// A new connection, after the reconnect delay when the last connect failed.
    async fn connect(&self) -> Result<Conn, String> {
        let wait = {
            let b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
            b.not_before
                .map(|t| t.saturating_duration_since(Instant::now()))
        };
        if let Some(w) = wait.filter(|w| !w.is_zero()) {
            tokio::time::sleep(w).await;
        }
        match self.open().await {
            Ok(c) => {
                let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                b.not_before = None;
                b.delay = Duration::ZERO;
                Ok(c)
            }
            Err(e) => {
                let mut b = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                b.delay = (b.delay * 2).clamp(self.min_delay, self.max_delay);
                b.not_before = Some(Instant::now() + b.delay);
                Err(e)
            }
        }
    }

    async fn open(&self) -> Result<Conn, String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some(t) => Box::new(
                tokio_rustls::TlsConnector::from(t.config.clone())
                    .connect(t.name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS handshake failed: {e}"))?,
            ),
        };
        let (mut reader, writer) = tokio::io::split(io);
        let closed = Arc::new(AtomicBool::new(false));
        let flag = closed.clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            while matches!(reader.read(&mut buf).await, Ok(n) if n > 0) {}
            flag.store(true, Ordering::Release);
        });
        Ok(Conn {
            writer,
            closed,
            reader,
        })
    }
}

/// The pools of a snapshot's TCPStreamHandlers, by (namespace, name); a handler whose
/// files or address are wrong has its error instead.
pub(super) type Pools = HashMap<(String, String), Result<Arc<StreamPool>, String>>;

/// Pools for `handlers`, reusing those of `old` whose spec is the same. Blocking (reads
/// TLS files).
pub(super) fn carry_over<'a>(old: &Pools, handlers: impl Iterator<Item = &'a Resource>) -> Pools {
    handlers
        .map(|h| {
            let key = (
                h.metadata.namespace.clone().unwrap_or_default(),
                h.metadata.name.clone(),
            );
            let same = match old.get(&key) {
                Some(Ok(p)) if p.spec == Value::Object(h.spec.clone()) => Some(Ok(p.clone())),
                _ => None,
            };
            let pool = same.unwrap_or_else(|| StreamPool::new(h).map(Arc::new));
            (key, pool)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            split_address("127.0.0.1:4242"),
            Some(("127.0.0.1".into(), 4242))
        );
        assert_eq!(split_address("[::1]:4242"), Some(("::1".into(), 4242)));
        assert_eq!(
            split_address("logs.example.com:5000"),
            Some(("logs.example.com".into(), 5000))
        );
        for bad in ["logstash", ":4242", "h:0", "h:70000", "h:"] {
            assert_eq!(split_address(bad), None, "{bad}");
        }
    }
}
