//! One session with a backend, from the first keepalive to the close: the protocol's story.
//!
//! - A keepalive goes first (it registers the entity), then one every keepalive-interval.
//! - Queued events go out as `event <seq>` frames in queue order, at most
//!   [`MAX_IN_FLIGHT`] unanswered at once. The cursor starts at 0 every session, so what a
//!   lost session left unanswered is sent again first.
//! - `ack` stored or rejected removes the event from the queue (a rejection is logged with
//!   its reason); `retry` moves it to the queue's tail with a new number (ids stay
//!   increasing within the session) and pauses sending for retry-min, since the backend's
//!   store is busy.
//! - A WebSocket ping every backend-heartbeat-interval; if nothing at all arrives for
//!   backend-heartbeat-timeout, the session is dropped (a half-open TCP connection must not
//!   hold the agent, sensu-go#3106).
//! - `check_request` starts a check in its own task; `entity_config` is kept.
//! - Shutdown sends a close frame, 1001 "bye".
//!
//! Reading happens here; writing in a task of its own fed by a channel, so a slow socket
//! never stops the session from reading acks.

use crate::metrics::inc;
use crate::transport::Socket;
use crate::Agent;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use ward_types::agent::{Ack, AgentEntity, Frame, Keepalive, MAX_IN_FLIGHT};

/// Bytes of queued events read in one batch (a batch is at most the window, too).
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Incoming messages handled before the acks they carried are applied in one transaction.
const DRAIN: usize = 256;

/// How a session ended.
#[derive(Debug)]
pub(crate) enum SessionEnd {
    /// The agent is stopping; the close frame was sent.
    Shutdown,
    /// The connection is gone or useless; reconnect.
    Lost(String),
}

struct Session<'a> {
    agent: &'a Arc<Agent>,
    out: mpsc::Sender<Message>,
    /// Sent and not yet answered.
    in_flight: BTreeSet<u64>,
    /// The last sequence number sent in this session.
    cursor: u64,
    /// Set by a `retry`: nothing new is sent before then.
    paused_until: Option<Instant>,
}

/// Runs a session on an open socket until it is lost or `stop` turns true.
pub(crate) async fn run(
    agent: &Arc<Agent>,
    ws: Socket,
    stop: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let (sink, mut stream) = ws.split();
    let (out, rx) = mpsc::channel::<Message>(MAX_IN_FLIGHT + 64);
    let mut writer = tokio::spawn(write_loop(sink, rx));
    let mut session = Session {
        agent,
        out,
        in_flight: BTreeSet::new(),
        cursor: 0,
        paused_until: None,
    };
    let end = match session.drive(&mut stream, &mut writer, stop).await {
        Ok(()) => SessionEnd::Shutdown,
        Err(e) => SessionEnd::Lost(e),
    };
    match end {
        SessionEnd::Shutdown => {
            let _ = session.out.try_send(Message::Close(Some(CloseFrame {
                code: CloseCode::Away,
                reason: "bye".into(),
            })));
            drop(session);
            if tokio::time::timeout(Duration::from_secs(2), &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        }
        SessionEnd::Lost(_) => writer.abort(),
    }
    end
}

async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    mut rx: mpsc::Receiver<Message>,
) -> Result<(), String> {
    while let Some(m) = rx.recv().await {
        let mut closing = matches!(m, Message::Close(_));
        sink.feed(m).await.map_err(|e| e.to_string())?;
        // Everything already waiting goes out with one flush.
        while !closing {
            let Ok(m) = rx.try_recv() else { break };
            closing = matches!(m, Message::Close(_));
            sink.feed(m).await.map_err(|e| e.to_string())?;
        }
        sink.flush().await.map_err(|e| e.to_string())?;
        if closing {
            break;
        }
    }
    Ok(())
}

impl Session<'_> {
    /// Hands a message to the writer. Never waits: events are at most the window, so a
    /// full channel means keepalives and pings have piled up behind a socket the backend
    /// stopped reading, and the session is no use.
    fn send(&self, m: Message) -> Result<(), String> {
        self.out.try_send(m).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                "the backend stopped reading (the write queue is full); dropping the session"
                    .to_string()
            }
            mpsc::error::TrySendError::Closed(_) => {
                "the connection closed while writing".to_string()
            }
        })
    }

    async fn send_keepalive(&self) -> Result<(), String> {
        let cfg = &self.agent.cfg;
        let secs = |d: Duration| d.as_secs().min(u32::MAX as u64) as u32;
        let cloud = cfg.detect_cloud_provider;
        let mut system = tokio::task::spawn_blocking(move || crate::system::facts(cloud))
            .await
            .unwrap_or_default();
        if cfg.strip_networks {
            system.network.interfaces.clear();
        }
        if let (Ok(v), Ok(mut kept)) = (serde_json::to_value(&system), self.agent.system.lock()) {
            *kept = Some(v);
        }
        let frame = Frame::Keepalive(Box::new(Keepalive {
            entity: AgentEntity {
                name: cfg.name.clone(),
                namespace: cfg.namespace.clone(),
                subscriptions: cfg.subscriptions.clone(),
                // Redacted before anything leaves the agent, as Sensu's.
                labels: ward_types::agent::redacted(&cfg.labels, &cfg.redact),
                annotations: ward_types::agent::redacted(&cfg.annotations, &cfg.redact),
                system,
                agent_version: env!("CARGO_PKG_VERSION").to_string(),
                deregister: cfg.deregister,
                deregistration_handler: cfg.deregistration_handler.clone(),
                keepalive_handlers: cfg.keepalive_handlers.clone(),
            },
            interval: secs(cfg.keepalive_interval).max(1),
            warning_timeout: secs(cfg.keepalive_warning_timeout).max(1),
            critical_timeout: secs(cfg.keepalive_critical_timeout),
            timestamp: crate::check::unix_now(),
            pipelines: cfg.keepalive_pipelines.clone(),
        }));
        self.send(Message::Binary(frame.encode().into()))
    }

    /// Sends queued events until the window is full or the queue has nothing newer.
    async fn fill(&mut self) -> Result<(), String> {
        while self.paused_until.is_none() && self.in_flight.len() < MAX_IN_FLIGHT {
            let want = MAX_IN_FLIGHT - self.in_flight.len();
            let (queue, after) = (self.agent.queue.clone(), self.cursor);
            let batch = tokio::task::spawn_blocking(move || queue.after(after, want, BATCH_BYTES))
                .await
                .map_err(|e| e.to_string())?;
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the event queue; events wait until it can be read");
                    return Ok(());
                }
            };
            if batch.is_empty() {
                return Ok(());
            }
            for (seq, body) in batch {
                self.cursor = seq;
                let event = match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => {
                        // Only the agent writes the queue; a body that does not parse is
                        // damage, and it would never be accepted.
                        tracing::error!(seq, error = %e, "dropping a damaged event from the queue");
                        self.forget(vec![seq]).await;
                        continue;
                    }
                };
                let frame = Frame::Event { id: seq, event };
                let bytes = match frame.encode_checked() {
                    Ok(b) => b,
                    Err(e) => {
                        // The backend would close the session on it, and it would be sent
                        // first again after every reconnect: it can never be delivered.
                        tracing::error!(seq, error = %e, "dropping an event that does not fit in one frame");
                        self.forget(vec![seq]).await;
                        continue;
                    }
                };
                self.send(Message::Binary(bytes.into()))?;
                self.in_flight.insert(seq);
                inc(&self.agent.metrics.sent);
            }
        }
        Ok(())
    }

    async fn forget(&self, seqs: Vec<u64>) {
        let queue = self.agent.queue.clone();
        match tokio::task::spawn_blocking(move || queue.remove(&seqs)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot remove answered events from the queue; they will be sent again")
            }
            Err(e) => tracing::error!(error = %e, "queue task failed"),
        }
    }

    async fn drive(
        &mut self,
        stream: &mut SplitStream<Socket>,
        writer: &mut tokio::task::JoinHandle<Result<(), String>>,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<(), String> {
        let cfg = &self.agent.cfg;
        let heartbeat_timeout = cfg.backend_heartbeat_timeout;
        self.send_keepalive().await?;
        let now = Instant::now();
        let mut keepalive =
            tokio::time::interval_at(now + cfg.keepalive_interval, cfg.keepalive_interval);
        keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ping = tokio::time::interval_at(
            now + cfg.backend_heartbeat_interval,
            cfg.backend_heartbeat_interval,
        );
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_read = now;
        // max-session-length, jittered down by up to a tenth so agents do not all leave at once.
        let session_end = cfg
            .max_session_length
            .map(|m| now + m.mul_f64(1.0 - fastrand::f64() / 10.0));
        loop {
            self.fill().await?;
            let can_send = self.paused_until.is_none() && self.in_flight.len() < MAX_IN_FLIGHT;
            let resume = self.paused_until.unwrap_or(now);
            tokio::select! {
                _ = crate::stopped(stop) => return Ok(()),
                msg = stream.next() => {
                    last_read = Instant::now();
                    let mut answered = Vec::new();
                    let mut retry = Vec::new();
                    // Acknowledgements read before a close or an error still count.
                    let mut ended = self.handle(msg, &mut answered, &mut retry);
                    if ended.is_ok() {
                        for _ in 0..DRAIN {
                            match stream.next().now_or_never() {
                                Some(msg) => {
                                    ended = self.handle(msg, &mut answered, &mut retry);
                                    if ended.is_err() {
                                        break;
                                    }
                                }
                                None => break,
                            }
                        }
                    }
                    self.apply(answered, retry).await;
                    ended?;
                }
                _ = self.agent.wake.notified(), if can_send => {}
                _ = keepalive.tick() => self.send_keepalive().await?,
                _ = ping.tick() => self.send(Message::Ping(Vec::new().into()))?,
                _ = tokio::time::sleep_until(last_read + heartbeat_timeout) => {
                    return Err(format!(
                        "nothing from the backend for {heartbeat_timeout:?} (backend-heartbeat-timeout); dropping the session"
                    ));
                }
                _ = tokio::time::sleep_until(session_end.unwrap_or(now)), if session_end.is_some() => {
                    return Err(format!(
                        "the session reached max-session-length ({:?}); reconnecting",
                        cfg.max_session_length.unwrap_or_default()
                    ));
                }
                _ = tokio::time::sleep_until(resume), if self.paused_until.is_some() => {
                    self.paused_until = None;
                }
                r = &mut *writer => {
                    return Err(match r {
                        Ok(Ok(())) => "the writer stopped".to_string(),
                        Ok(Err(e)) => format!("cannot write to the backend: {e}"),
                        Err(e) => format!("the writer failed: {e}"),
                    });
                }
            }
        }
    }

    /// One message from the backend; acks are collected for [`Session::apply`].
    fn handle(
        &mut self,
        msg: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        answered: &mut Vec<u64>,
        retry: &mut Vec<u64>,
    ) -> Result<(), String> {
        let msg = match msg {
            None => return Err("the backend closed the connection".into()),
            Some(Err(e)) => return Err(format!("reading from the backend: {e}")),
            Some(Ok(m)) => m,
        };
        let bytes = match msg {
            Message::Binary(b) => b,
            Message::Close(c) => {
                return Err(match c {
                    Some(c) => format!(
                        "the backend closed the session: {} {}",
                        u16::from(c.code),
                        c.reason
                    ),
                    None => "the backend closed the session".into(),
                })
            }
            Message::Text(_) => {
                tracing::warn!("ignoring a text message from the backend (frames are binary)");
                return Ok(());
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(()),
        };
        match Frame::decode(&bytes) {
            Ok(Frame::Ack { id, ack }) => {
                if !self.in_flight.remove(&id) {
                    tracing::debug!(
                        id,
                        "ack for an event not in flight in this session; ignored"
                    );
                    return Ok(());
                }
                match ack {
                    Ack::Stored => {
                        inc(&self.agent.metrics.acked);
                        answered.push(id);
                    }
                    Ack::Rejected { error } => {
                        inc(&self.agent.metrics.rejected);
                        tracing::warn!(seq = id, reason = %error, "the backend rejected an event; it is dropped from the queue");
                        answered.push(id);
                    }
                    Ack::Retry { error } => {
                        inc(&self.agent.metrics.retried);
                        tracing::info!(seq = id, reason = %error, "the backend asked for an event again; it is resent shortly");
                        retry.push(id);
                    }
                }
            }
            Ok(Frame::CheckRequest(req)) => self.agent.start_check(*req),
            Ok(Frame::EntityConfig(v)) if self.agent.cfg.agent_managed_entity => {
                tracing::debug!(entity = %v, "entity_config ignored: this agent manages its entity");
            }
            Ok(Frame::EntityConfig(v)) => {
                tracing::info!("the backend's configuration of this entity is in force");
                tracing::debug!(entity = %v, "entity_config from the backend");
                *self
                    .agent
                    .entity_config
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(v);
            }
            Ok(other) => {
                tracing::warn!(
                    frame = other.type_name(),
                    "ignoring a frame the backend does not send"
                );
            }
            Err(e) => tracing::warn!(error = %e, "ignoring a malformed frame from the backend"),
        }
        Ok(())
    }

    /// Removes answered events; moves retried ones to the tail and pauses.
    async fn apply(&mut self, answered: Vec<u64>, retry: Vec<u64>) {
        if !answered.is_empty() {
            self.forget(answered).await;
        }
        if retry.is_empty() {
            return;
        }
        let queue = self.agent.queue.clone();
        let moved = tokio::task::spawn_blocking(move || {
            retry
                .iter()
                .map(|s| queue.requeue(*s))
                .collect::<Result<Vec<_>, _>>()
        })
        .await;
        match moved {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot requeue events the backend asked for again; they are sent after reconnecting")
            }
            Err(e) => tracing::error!(error = %e, "queue task failed"),
        }
        self.paused_until = Some(Instant::now() + self.agent.cfg.retry_min);
    }
}
