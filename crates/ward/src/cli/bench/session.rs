//! One simulated agent: its WebSocket session, keepalives and check results.

use super::stats::*;
use super::AgentsArgs;
use futures_util::{SinkExt, StreamExt};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use ward_types::agent::{self, Ack, AgentEntity, Frame, Keepalive};

pub(super) struct Target {
    pub(super) url: String,
    pub(super) addr: SocketAddr,
    pub(super) host: String,
    pub(super) tls: Option<tokio_rustls::TlsConnector>,
}

pub(super) struct Shared {
    pub(super) args: AgentsArgs,
    pub(super) target: Target,
    pub(super) stats: Stats,
    /// Seconds between one agent's check results.
    pub(super) event_every: Option<Duration>,
    pub(super) sending: std::sync::atomic::AtomicBool,
    pub(super) stop: std::sync::atomic::AtomicBool,
}

use ward_types::unix_now;

pub(super) async fn sim_agent(
    index: usize,
    name: String,
    tls: Option<tokio_rustls::TlsConnector>,
    sh: Arc<Shared>,
) {
    // The agent's backoff (ward_io::backoff), as `ward agent` runs it: jittered, so that
    // reconnect storms spread out.
    let mut backoff =
        ward_io::backoff::Backoff::new(Duration::from_millis(50), Duration::from_secs(8), 2.0);
    while !sh.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match session(index, &name, tls.as_ref(), &sh).await {
            Ok(()) => return,
            Err(e) => {
                sh.stats.connect_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(agent = %name, error = %e, "session ended");
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff.reset();
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

/// Longest TLS or WebSocket handshake before the simulated agent tries again.
pub(super) const HANDSHAKE: Duration = Duration::from_secs(15);

pub(super) struct SessionGuard<'a>(&'a AtomicI64);
impl Drop for SessionGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn session(
    index: usize,
    name: &str,
    tls: Option<&tokio_rustls::TlsConnector>,
    sh: &Shared,
) -> Result<(), String> {
    let a = &sh.args;
    let source = IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        1 + (index % a.sources.max(1) as usize) as u8,
    ));
    let sock = if sh.target.addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if sh.target.addr.is_ipv4() && sh.target.addr.ip().is_loopback() {
        sock.bind(SocketAddr::new(source, 0))
            .map_err(|e| format!("bind {source}: {e}"))?;
    }
    let tcp = sock
        .connect(sh.target.addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let mut req = sh
        .target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let h = req.headers_mut();
    h.insert(
        agent::HEADER_AGENT_NAME,
        name.parse().map_err(|_| "agent name")?,
    );
    h.insert(
        agent::HEADER_NAMESPACE,
        a.namespace.parse().map_err(|_| "namespace")?,
    );
    h.insert(
        agent::HEADER_SUBSCRIPTIONS,
        "bench".parse().expect("static"),
    );
    if a.certs.is_none() {
        use base64::Engine;
        let cred = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            a.user,
            a.password.as_deref().unwrap_or("")
        ));
        h.insert(
            "Authorization",
            format!("Basic {cred}").parse().map_err(|_| "credentials")?,
        );
    }
    let cfg = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(agent::MAX_FRAME))
        .max_frame_size(Some(agent::MAX_FRAME));
    match tls {
        Some(tls) => {
            let server = rustls::pki_types::ServerName::try_from(sh.target.host.clone())
                .map_err(|e| format!("server name: {e}"))?;
            let stream = tls
                .connect(server, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(cfg))
                .await
                .map_err(|e| format!("WebSocket: {e}"))?;
            drive(ws, name, sh).await
        }
        None => {
            let (ws, _) = tokio::time::timeout(
                HANDSHAKE,
                tokio_tungstenite::client_async_with_config(req, tcp, Some(cfg)),
            )
            .await
            .map_err(|_| "WebSocket: timed out".to_string())?
            .map_err(|e| format!("WebSocket: {e}"))?;
            drive(ws, name, sh).await
        }
    }
}

/// One simulated check result's JSON, up to `executed`: this agent's entity and the
/// `bench` check, with `status` and naming `handlers`.
pub(super) fn event_head(
    name: &str,
    namespace: &str,
    interval: u64,
    status: u32,
    handlers: &[String],
) -> String {
    format!(
        "{{\"entity\":{{\"metadata\":{{\"name\":{n},\"namespace\":{ns}}},\"entity_class\":\"agent\"}},\"check\":{{\"metadata\":{{\"name\":\"bench\",\"namespace\":{ns}}},\"status\":{status},\"handlers\":{h},\"output\":\"ok\",\"interval\":{interval},\"executed\":",
        n = serde_json::Value::from(name),
        ns = serde_json::Value::from(namespace),
        h = serde_json::Value::from(handlers.to_vec()),
    )
}

/// The frame `Frame::Event` would encode for that check result, written straight from
/// `event_head`: the load tool shares the backend's cores, so its own cost is kept low.
pub(super) fn event_frame(head: &str, seq: u64, now: i64) -> String {
    format!("event {seq}\n{head}{now},\"issued\":{now}}},\"timestamp\":{now}}}")
}

pub(super) async fn drive<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    name: &str,
    sh: &Shared,
) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    sh.stats.handshakes.fetch_add(1, Ordering::Relaxed);
    sh.stats.sessions.fetch_add(1, Ordering::Relaxed);
    let _guard = SessionGuard(&sh.stats.sessions);
    let a = &sh.args;
    let keepalive = |now: i64| {
        Frame::Keepalive(Box::new(Keepalive {
            entity: AgentEntity {
                name: name.to_string(),
                namespace: a.namespace.clone(),
                subscriptions: vec!["bench".into()],
                agent_version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
            interval: a.keepalive_interval,
            warning_timeout: a.keepalive_interval.saturating_mul(6).max(5),
            critical_timeout: 0,
            timestamp: now,
            pipelines: Vec::new(),
        }))
    };
    let send = |f: &Frame| Message::Binary(f.encode().into());
    ws.send(send(&keepalive(unix_now())))
        .await
        .map_err(|e| e.to_string())?;
    let ka_every = Duration::from_secs(a.keepalive_interval.max(1) as u64);
    let mut ka = tokio::time::interval_at(tokio::time::Instant::now() + ka_every, ka_every);
    let every = sh.event_every.unwrap_or(Duration::from_secs(3600));
    let first = tokio::time::Instant::now() + every.mul_f64(fastrand::f64());
    let mut ev = tokio::time::interval_at(first, every);
    ev.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    let event_head = event_head(
        name,
        &a.namespace,
        every.as_secs().max(1),
        a.status,
        &a.handlers,
    );
    let mut inflight: std::collections::VecDeque<(u64, Instant)> = Default::default();
    loop {
        if sh.stop.load(Ordering::Relaxed) {
            let _ = ws.close(None).await;
            return Ok(());
        }
        tokio::select! {
            _ = ka.tick() => {
                ws.send(send(&keepalive(unix_now()))).await.map_err(|e| e.to_string())?;
            }
            _ = ev.tick(), if sh.event_every.is_some() => {
                if !sh.sending.load(Ordering::Relaxed) || inflight.len() >= agent::MAX_IN_FLIGHT {
                    continue;
                }
                seq += 1;
                let now = unix_now();
                let frame = event_frame(&event_head, seq, now);
                inflight.push_back((seq, Instant::now()));
                sh.stats.sent.fetch_add(1, Ordering::Relaxed);
                ws.send(Message::Binary(frame.into_bytes().into())).await.map_err(|e| e.to_string())?;
            }
            msg = ws.next() => {
                let msg = match msg {
                    None => return Err("closed by the backend".into()),
                    Some(Err(e)) => return Err(e.to_string()),
                    Some(Ok(m)) => m,
                };
                let bytes = match msg {
                    Message::Binary(b) => b,
                    Message::Close(c) => return Err(format!("closed by the backend: {c:?}")),
                    _ => continue,
                };
                if let Ok(Frame::Ack { id, ack }) = Frame::decode(&bytes) {
                    let sent_at = match inflight.iter().position(|(s, _)| *s == id) {
                        Some(i) => inflight.remove(i).map(|(_, t)| t),
                        None => None,
                    };
                    match ack {
                        Ack::Stored => {
                            sh.stats.stored.fetch_add(1, Ordering::Relaxed);
                            if let Some(t) = sent_at {
                                sh.stats.hist[bucket(t.elapsed().as_micros() as u64)].fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ack::Retry { .. } => {
                            sh.stats.retried.fetch_add(1, Ordering::Relaxed);
                        }
                        Ack::Rejected { error } => {
                            sh.stats.rejected.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(agent = %name, error = %error, "event rejected");
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_template_is_the_frame_an_agent_sends() {
        let frame = event_frame(
            &event_head("web \"1\"", "default", 5, 2, &["pager".to_string()]),
            7,
            1_700_000_000,
        );
        let expected = serde_json::json!({
            "entity": {"metadata": {"name": "web \"1\"", "namespace": "default"}, "entity_class": "agent"},
            "check": {"metadata": {"name": "bench", "namespace": "default"}, "status": 2, "handlers": ["pager"], "output": "ok", "interval": 5, "executed": 1_700_000_000, "issued": 1_700_000_000},
            "timestamp": 1_700_000_000,
        });
        let Frame::Event { id, event } = Frame::decode(frame.as_bytes()).unwrap() else {
            panic!("not an event frame: {frame}");
        };
        assert_eq!((id, event.to_value()), (7, expected));
    }
}
