//! The agent socket (Sensu's, deprecated there in favour of the local API but still
//! documented): check results in Sensu 1.x's JSON on TCP and UDP, `127.0.0.1:3030` by
//! default (`socket-host`, `socket-port`; `disable-sockets`).
//!
//! - A result: `{"name": "backup", "output": "…", "status": 1}` (`name` and `output`
//!   required), with `command`, `subscribers`, `interval`, `issued`, `executed`,
//!   `duration`, `handler`/`handlers`; other fields are ignored, as by Sensu's agent.
//!   A `source` (or `client`) naming another entity makes it the check's
//!   `proxy_entity_name`, as Sensu does: the backend files the event under that proxy
//!   entity (and refuses it when that entity is another agent's).
//! - TCP: one result per connection, read until the client half-closes or 5 s pass (at most
//!   [`MAX_RESULT`] bytes); the answer is `ok` once it is durably queued, else `invalid`
//!   (the reason in the agent's log). ` ping ` is answered `pong`. At most
//!   [`MAX_CONNECTIONS`] at once.
//! - UDP: one result per datagram, no answer. Unlike Sensu 6.12, a malformed datagram is
//!   counted and logged and the socket keeps reading.
//!
//! Results are completed and checked exactly as `POST /events` on the local API does.

use crate::metrics::inc;
use crate::Agent;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// The largest result accepted, bytes (an event must fit one frame).
pub const MAX_RESULT: usize = crate::check::MAX_EVENT_BYTES;
/// TCP connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// How long a TCP client may take to send its result.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One result: translated, completed, checked and queued. The error is one line.
async fn accept(agent: &Agent, bytes: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let event = ward_types::agent::sensu1_result(&v, &agent.cfg.name)?;
    let body = serde_json::to_vec(&event).map_err(|e| e.to_string())?;
    let event = agent.local_event(&body, crate::check::unix_now())?;
    agent
        .enqueue(&event)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn refused(agent: &Agent, from: &str, why: &str) {
    inc(&agent.metrics.socket_invalid);
    tracing::warn!(from = %from, "agent socket: a check result was refused: {why}");
}

/// Serves TCP and UDP until `stop` resolves.
pub(crate) async fn serve(
    agent: Arc<Agent>,
    tcp: TcpListener,
    udp: UdpSocket,
    stop: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let tcp_loop = {
        let agent = agent.clone();
        async move {
            loop {
                let Ok((stream, peer)) = tcp.accept().await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    refused(&agent, &peer.to_string(), "too many connections at once");
                    continue;
                };
                let agent = agent.clone();
                tokio::spawn(async move {
                    serve_one(&agent, stream, &peer.to_string()).await;
                    drop(slot);
                });
            }
        }
    };
    let udp_loop = async move {
        let mut buf = vec![0u8; 65_536];
        loop {
            let Ok((n, peer)) = udp.recv_from(&mut buf).await else {
                // ICMP errors surface here on some systems; never a busy loop.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            match accept(&agent, &buf[..n]).await {
                Ok(()) => inc(&agent.metrics.socket_results),
                Err(why) => refused(&agent, &peer.to_string(), &why),
            }
        }
    };
    tokio::select! {
        _ = tcp_loop => {}
        _ = udp_loop => {}
        _ = stop => {}
    }
}

async fn serve_one(agent: &Agent, mut stream: TcpStream, peer: &str) {
    let mut buf = Vec::new();
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 8192];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.len() > MAX_RESULT {
                return Ok(());
            }
            // A whole JSON object or a ping may arrive without a half-close.
            if buf.trim_ascii() == b"ping" || serde_json::from_slice::<Value>(&buf).is_ok() {
                return Ok(());
            }
        }
    })
    .await;
    let answer: &[u8] = if buf.trim_ascii() == b"ping" {
        b"pong"
    } else if buf.len() > MAX_RESULT {
        refused(agent, peer, &format!("larger than {MAX_RESULT} bytes"));
        b"invalid"
    } else if matches!(read, Ok(Err(_))) && buf.is_empty() {
        return;
    } else {
        match accept(agent, &buf).await {
            Ok(()) => {
                inc(&agent.metrics.socket_results);
                b"ok"
            }
            Err(why) => {
                refused(agent, peer, &why);
                b"invalid"
            }
        }
    };
    let _ = stream.write_all(answer).await;
    let _ = stream.shutdown().await;
}
