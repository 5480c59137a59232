//! A stand-in backend for the agent's tests: a tokio-tungstenite WebSocket server on
//! 127.0.0.1, over rustls when given a config, that hands every accepted session (with the
//! upgrade's headers and whether a client certificate came) to the test, and can refuse
//! the next upgrade with an HTTP status and a one-line body.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderMap, StatusCode};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use ward_agent::AgentConfig;
use ward_testkit::fixtures::{Leaf, TestCa};
use ward_types::agent::{Ack, Frame};

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type ServerSocket = WebSocketStream<Box<dyn Io>>;

/// One accepted session.
pub struct Accepted {
    pub headers: HeaderMap,
    /// The CN of the client certificate, if one was presented.
    pub client_cn: Option<String>,
    pub ws: ServerSocket,
}

pub struct Backend {
    pub addr: SocketAddr,
    pub sessions: mpsc::UnboundedReceiver<Accepted>,
    /// Refuse upgrades with this status and body while set.
    pub refuse: Arc<Mutex<Option<(StatusCode, String)>>>,
}

fn cn_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(cn)
}

/// Starts the stand-in backend.
pub async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, sessions) = mpsc::unbounded_channel();
    let refuse: Arc<Mutex<Option<(StatusCode, String)>>> = Arc::new(Mutex::new(None));
    let refusing = refuse.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            let tls = tls.clone();
            let refusing = refusing.clone();
            tokio::spawn(async move {
                let (io, client_cn): (Box<dyn Io>, Option<String>) = match tls {
                    Some(cfg) => {
                        let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await else {
                            return;
                        };
                        let cn = s
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .and_then(|c| cn_of(c));
                        (Box::new(s), cn)
                    }
                    None => (Box::new(tcp), None),
                };
                let headers = Arc::new(Mutex::new(HeaderMap::new()));
                let seen = headers.clone();
                // The signature is tungstenite's Callback; its error type is its own.
                #[allow(clippy::result_large_err)]
                let callback =
                    move |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                        *seen.lock().unwrap() = req.headers().clone();
                        if let Some((status, body)) = refusing.lock().unwrap().clone() {
                            let mut r = ErrorResponse::new(Some(body));
                            *r.status_mut() = status;
                            return Err(r);
                        }
                        Ok(resp)
                    };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(io, callback).await else {
                    return;
                };
                let headers = headers.lock().unwrap().clone();
                let _ = tx.send(Accepted {
                    headers,
                    client_cn,
                    ws,
                });
            });
        }
    });
    Backend {
        addr,
        sessions,
        refuse,
    }
}

impl Backend {
    /// The next session, within 10 s.
    pub async fn accept(&mut self) -> Accepted {
        tokio::time::timeout(Duration::from_secs(10), self.sessions.recv())
            .await
            .expect("the agent connects within 10 s")
            .expect("server running")
    }
}

/// The next frame on a session (pings and pongs skipped), within 10 s; `None` when the
/// agent closed.
pub async fn next_message(ws: &mut ServerSocket) -> Option<Message> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")?;
        match m {
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(m) => return Some(m),
            Err(_) => return None,
        }
    }
}

pub async fn next_frame(ws: &mut ServerSocket) -> Frame {
    match next_message(ws).await {
        Some(Message::Binary(b)) => Frame::decode(&b).expect("a well-formed frame"),
        other => panic!("expected a binary frame, got {other:?}"),
    }
}

pub async fn send(ws: &mut ServerSocket, f: Frame) {
    ws.send(Message::Binary(f.encode().into())).await.unwrap();
}

pub async fn ack(ws: &mut ServerSocket, id: u64, ack: Ack) {
    send(ws, Frame::Ack { id, ack }).await;
}

/// A CA, a server certificate for localhost / 127.0.0.1 and a client certificate.
pub struct Pki {
    pub ca: TestCa,
    pub server: Leaf,
    pub client: Leaf,
}

pub fn pki(dir: &Path) -> Pki {
    let ca = TestCa::create(dir, "Agent Test CA");
    let server = ca.issue("localhost", "server", "localhost,127.0.0.1");
    let client = ca.issue("agent-1", "client", "");
    Pki { ca, server, client }
}

/// A server config that asks for (but does not require) a client certificate from the CA.
pub fn server_tls(p: &Pki) -> Arc<rustls::ServerConfig> {
    server_tls_with(p, false)
}

/// A server config that asks for a client certificate from the CA, and requires one when
/// `required`.
pub fn server_tls_with(p: &Pki, required: bool) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = Arc::new(ward_tls::load_roots(&p.ca.cert_path()).unwrap());
    let builder =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider.clone());
    let verifier = if required {
        builder.build()
    } else {
        builder.allow_unauthenticated().build()
    }
    .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(
            ward_tls::ReloadingCert::new(&p.server.cert, &p.server.key, false).unwrap(),
        ));
    Arc::new(cfg)
}

/// An agent configuration from flags (fast retries, no local API, agent socket or StatsD
/// listener unless asked).
pub fn config(flags: &[(&str, &str)]) -> AgentConfig {
    let mut all: Vec<(String, String)> = vec![
        ("retry-min".into(), "20ms".into()),
        ("retry-max".into(), "100ms".into()),
        ("disable-api".into(), "true".into()),
        ("disable-sockets".into(), "true".into()),
        ("statsd-disable".into(), "true".into()),
        ("backend-handshake-timeout".into(), "5s".into()),
    ];
    all.retain(|(k, _)| !flags.iter().any(|(f, _)| f == k));
    all.extend(flags.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    AgentConfig::resolve(None, &|_| None, &all).unwrap()
}

/// A test event with a number in its output.
pub fn numbered_event(n: usize) -> serde_json::Value {
    serde_json::json!({
        "entity": {"metadata": {"name": "agent-1", "namespace": "default"}, "entity_class": "agent"},
        "check": {"metadata": {"name": "numbered", "namespace": "default"}, "status": 0, "output": n.to_string()},
    })
}

pub fn number_of(event: &ward_types::raw::RawObject) -> usize {
    event.to_value()["check"]["output"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Runs an agent in-process; dropping the sender (or sending) stops it.
pub fn spawn_agent(
    cfg: AgentConfig,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let h = tokio::spawn(ward_agent::run(cfg, async move {
        let _ = rx.await;
    }));
    (tx, h)
}

/// One HTTP/1.1 request; returns (status, body).
pub async fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    http_with(port, method, path, body, "").await
}

/// As [`http`], with extra header lines (each ending in \r\n) after Host and Content-Type;
/// a header given here is sent in place of the default one.
pub async fn http_with(
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    headers: &str,
) -> (u16, String) {
    let lower = headers.to_ascii_lowercase();
    let host = if lower.contains("host:") {
        String::new()
    } else {
        format!("Host: 127.0.0.1:{port}\r\n")
    };
    let ct = if lower.contains("content-type:") {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\n{host}{ct}{headers}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

pub async fn wait_for_api(port: u16) {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the local API did not come up");
}

pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}
