//! Opening a session: TCP, TLS for `wss://`, and the WebSocket upgrade of `GET /` with the
//! agent's headers (ward_types::agent). What can go wrong is a [`ConnectError`] whose
//! message is one line naming the URL and, for a refusal, the backend's own reason.

use crate::config::{AgentConfig, BackendUrl};
use base64::Engine;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;
use ward_types::agent::{
    subscriptions_with_entity, HEADER_AGENT_NAME, HEADER_NAMESPACE, HEADER_SUBSCRIPTIONS, MAX_FRAME,
};

/// The byte stream under a session: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// An open session's WebSocket.
pub type Socket = WebSocketStream<Box<dyn Io>>;

/// Why a connect failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// The backend answered the upgrade with an HTTP error (401, 403, 404, 400, 503…).
    #[error("{url}: {}", refused_text(*.status, .body))]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    /// TLS failed: the backend's certificate, or ours.
    #[error("{url}: TLS: {reason}")]
    Tls { url: String, reason: String },
    /// TCP, timeouts, and anything else on the way.
    #[error("{url}: {reason}")]
    Network { url: String, reason: String },
}

/// A refusal in one sentence: the backend's own when it already says who refused what (a
/// certificate refused after the TLS handshake), else "the backend refused the agent" and
/// the status.
fn refused_text(status: u16, body: &str) -> String {
    if body.starts_with("the backend refused") {
        format!("{body} (HTTP {status})")
    } else {
        format!("the backend refused the agent: HTTP {status}: {body}")
    }
}

/// The WebSocket limits: a frame is at most MAX_FRAME both ways, and the buffers are small
/// (an agent holds one session; most frames are a few hundred bytes).
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(2 * MAX_FRAME + 64 * 1024)
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
}

/// The upgrade request: the agent's name, namespace and subscriptions, and Basic auth
/// unless a client certificate identifies the agent.
pub fn handshake_request(
    cfg: &AgentConfig,
    url: &BackendUrl,
) -> Result<tungstenite::handshake::client::Request, String> {
    let mut req = url
        .to_string()
        .into_client_request()
        .map_err(|e| format!("{url}: {e}"))?;
    let value = |what: &str, v: &str| {
        HeaderValue::from_str(v).map_err(|_| format!("{what} {v:?} cannot be sent as a header"))
    };
    let h = req.headers_mut();
    h.insert(HEADER_AGENT_NAME, value("name", &cfg.name)?);
    h.insert(HEADER_NAMESPACE, value("namespace", &cfg.namespace)?);
    // Deduplicated; the backend adds `entity:<name>` itself.
    let own = format!("entity:{}", cfg.name);
    let subs: Vec<String> = subscriptions_with_entity(&cfg.name, &cfg.subscriptions)
        .into_iter()
        .filter(|s| *s != own)
        .collect();
    h.insert(
        HEADER_SUBSCRIPTIONS,
        value("subscriptions", &subs.join(","))?,
    );
    h.insert(
        "User-Agent",
        HeaderValue::from_static(concat!("ward-agent/", env!("CARGO_PKG_VERSION"))),
    );
    if !cfg.uses_client_cert() {
        let pw = cfg.password.as_ref().map(|p| p.0.as_str()).unwrap_or("");
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{}:{pw}", cfg.user));
        let mut v = value("user", &format!("Basic {token}"))?;
        v.set_sensitive(true);
        h.insert("Authorization", v);
    }
    Ok(req)
}

/// Connects to one backend URL, within backend-handshake-timeout.
pub async fn connect(cfg: &AgentConfig, url: &BackendUrl) -> Result<Socket, ConnectError> {
    let u = url.to_string();
    let network = |reason: String| ConnectError::Network {
        url: u.clone(),
        reason,
    };
    let work = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| network(format!("cannot connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if url.tls {
            let tls = crate::tls::client_config(cfg).map_err(|reason| ConnectError::Tls {
                url: u.clone(),
                reason,
            })?;
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|_| network(format!("{:?} is not a host name", url.host)))?;
            let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls))
                .connect(name, tcp)
                .await
                .map_err(|e| ConnectError::Tls {
                    url: u.clone(),
                    reason: crate::tls::describe_io_error(&e, cfg),
                })?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let req = handshake_request(cfg, url).map_err(network)?;
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(req, io, Some(websocket_config()))
                .await
                .map_err(|e| handshake_error(e, &u, cfg))?;
        Ok(ws)
    };
    match tokio::time::timeout(cfg.backend_handshake_timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(network(format!(
            "no answer within {:?} (backend-handshake-timeout)",
            cfg.backend_handshake_timeout
        ))),
    }
}

/// The most of a backend's refusal kept, characters (its reasons are one line of a few
/// hundred).
const MAX_REASON: usize = 2000;

fn handshake_error(e: tungstenite::Error, url: &str, cfg: &AgentConfig) -> ConnectError {
    match e {
        tungstenite::Error::Http(resp) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| {
                    // The backend's reason is one line; bounded here, and said when cut.
                    let text = String::from_utf8_lossy(b);
                    let line = text
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or_default();
                    let mut out: String = line.chars().take(MAX_REASON).collect();
                    if out.len() < line.len() {
                        out.push('…');
                    }
                    out
                })
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| {
                    resp.status()
                        .canonical_reason()
                        .unwrap_or("no reason given")
                        .to_string()
                });
            ConnectError::Refused {
                url: url.to_string(),
                status: resp.status().as_u16(),
                body,
            }
        }
        // With TLS 1.3 the backend judges our certificate after the handshake: its refusal
        // arrives as the first read.
        tungstenite::Error::Io(io)
            if io
                .get_ref()
                .is_some_and(|i| i.downcast_ref::<rustls::Error>().is_some()) =>
        {
            ConnectError::Tls {
                url: url.to_string(),
                reason: crate::tls::describe_io_error(&io, cfg),
            }
        }
        other => ConnectError::Network {
            url: url.to_string(),
            reason: format!("WebSocket upgrade failed: {other}"),
        },
    }
}
