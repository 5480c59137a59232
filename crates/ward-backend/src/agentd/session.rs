//! One agent's WebSocket session: reads frames in order, stores events (each acknowledged
//! only once committed; up to `MAX_IN_FLIGHT` in flight), registers the entity from
//! keepalives, and passes on check requests.

use super::{AgentInfo, Outgoing, SessionHandle};
use crate::api::AppState;
use crate::eventd::SubmitError;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use ward_types::agent::{self, Ack, Frame, Keepalive};
use ward_types::{Document, Metadata, Resource};

/// A WebSocket ping this often.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// A session that sends nothing (frames, pongs) this long is closed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(45);
/// A session authenticated by a client certificate lasts `agent-auth-session-max` (this by
/// default; plus up to 10% at random, so a fleet does not renew at once), then it is
/// closed with 1001 once its events are answered, and the agent reconnects: the chain and
/// revocation are checked again, so a revoked certificate keeps no session longer.
pub const CERT_SESSION_MAX: Duration = Duration::from_secs(3600);
/// A write to an agent that takes longer than this (it stopped reading) ends the session.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an event waits in its session for room in a full store buffer before it is
/// answered `retry`.
pub const BUSY_WAIT: Duration = Duration::from_secs(5);

use ward_types::unix_now;

/// Frames queued for one agent (check requests, acks, entity configs): a burst of this many
/// check requests at one scheduling tick reaches an agent; more are dropped and counted
/// (`ward_check_requests_dropped_total`). Tokio allocates the queue as it fills.
const OUTGOING: usize = 1024;

fn binary(f: &Frame) -> Message {
    Message::Binary(f.encode().into())
}

/// A write within `WRITE_TIMEOUT`.
async fn timed(
    w: impl std::future::Future<Output = Result<(), axum::Error>>,
) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, w).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write failed: {e}")),
        Err(_) => Err(format!(
            "the agent read nothing for {}s; closed",
            WRITE_TIMEOUT.as_secs()
        )),
    }
}

/// Why a session ended, for the log.
enum End {
    Closed,
    /// A certificate session reached its lifetime.
    Renew,
    /// Its certificate was revoked while it was open.
    Revoked(String),
    Protocol(String),
    Timeout,
    Io(String),
}

pub(crate) async fn run(mut ws: WebSocket, st: Arc<AppState>, info: AgentInfo) {
    let (tx, rx) = mpsc::channel::<Outgoing>(OUTGOING);
    let id = st.agents.register(SessionHandle {
        namespace: info.namespace.clone(),
        name: info.name.clone(),
        subscriptions: info.subscriptions.clone(),
        tx,
        serial: info.serial.clone(),
    });
    st.agents
        .metrics
        .sessions_opened
        .fetch_add(1, Ordering::Relaxed);
    tracing::info!(agent = %info.name, namespace = %info.namespace, user = %info.user, peer = %info.peer, "agent connected");
    let mut session = Session {
        st: &st,
        info: &info,
        id,
        known_entities: HashSet::new(),
        last_keepalive: None,
        effective: None,
        retried: HashSet::new(),
        routes: None,
    };
    let end = session.serve(&mut ws, rx).await;
    let routes = session.routes.take();
    st.agents.unregister(id);
    // An agent that deregisters and left on its own (it closed the session): its entity
    // goes now, unless it is connected again by another session already.
    if let (End::Closed, Some(routes)) = (&end, routes.filter(|r| r.deregister)) {
        if !st.agents.connected(&info.namespace, &info.name) {
            st.agents.keepalived.forget(&info.namespace, &info.name);
            tokio::spawn(super::deregister::deregister(
                st.clone(),
                info.namespace.clone(),
                info.name.clone(),
                routes,
                "the agent closed its session".into(),
            ));
        }
    }
    let (code, text) = match &end {
        End::Closed => (None, "closed by the agent".to_string()),
        End::Renew => (
            Some(1001),
            "session lifetime reached: reconnect (the certificate is checked again)".to_string(),
        ),
        End::Protocol(e) | End::Revoked(e) => (Some(1008), e.clone()),
        End::Timeout => (
            Some(1001),
            format!("nothing read for {}s", READ_TIMEOUT.as_secs()),
        ),
        End::Io(e) => (None, e.clone()),
    };
    if let Some(code) = code {
        let mut reason = String::new();
        for c in text.chars() {
            if reason.len() + c.len_utf8() > 120 {
                break;
            }
            reason.push(c);
        }
        let _ = ws
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
    }
    match end {
        End::Protocol(_) | End::Revoked(_) => {
            tracing::warn!(agent = %info.name, peer = %info.peer, "agent session closed: {text}")
        }
        _ => tracing::info!(agent = %info.name, peer = %info.peer, "agent disconnected: {text}"),
    }
}

struct Session<'a> {
    st: &'a AppState,
    info: &'a AgentInfo,
    /// Its handle's id in `Agents`.
    id: u64,
    /// Entities this session has made sure exist.
    known_entities: HashSet<String>,
    /// The entity as the last keepalive described it (its spec minus last_seen).
    last_keepalive: Option<Value>,
    /// The agent's entity in force (the stored configuration, or the agent's own when it
    /// manages its entity), once a keepalive registered it.
    effective: Option<Resource>,
    /// Checks with an event answered `retry` in this session: their later events are
    /// answered `retry` too, so that the agent's resend keeps their order.
    retried: HashSet<(String, String)>,
    /// What the last keepalive said about keepalive handlers and deregistration.
    routes: Option<Arc<super::keepalived::Routes>>,
}

impl Session<'_> {
    async fn serve(&mut self, ws: &mut WebSocket, mut rx: mpsc::Receiver<Outgoing>) -> End {
        let mut pending: FuturesUnordered<InFlight> = FuturesUnordered::new();
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
        let mut last_read = Instant::now();
        // Rate: at most MAX_RATE frames per one-second window; beyond it, stop reading.
        let mut window = Instant::now();
        let mut in_window: u32 = 0;
        let mut paused_until: Option<tokio::time::Instant> = None;
        let max = match self.st.agents.cert_session_max.load(Ordering::Relaxed) {
            0 => CERT_SESSION_MAX,
            s => Duration::from_secs(s),
        };
        let renew_at = self
            .info
            .by_certificate
            .then(|| tokio::time::Instant::now() + max.mul_f64(1.0 + fastrand::f64() / 10.0));
        let mut renewing = false;
        loop {
            if renewing && pending.is_empty() {
                return End::Renew;
            }
            let reading =
                !renewing && pending.len() < agent::MAX_IN_FLIGHT && paused_until.is_none();
            if !reading {
                // Not reading by the backend's own choice: the agent is not silent.
                last_read = Instant::now();
            }
            tokio::select! {
                msg = ws.recv(), if reading => {
                    let Some(msg) = msg else { return End::Closed };
                    let msg = match msg {
                        Ok(m) => m,
                        Err(e) => return End::Io(format!("read failed: {e}")),
                    };
                    last_read = Instant::now();
                    let bytes = match msg {
                        Message::Binary(b) => b,
                        Message::Text(t) => axum::body::Bytes::copy_from_slice(t.as_str().as_bytes()),
                        Message::Ping(_) | Message::Pong(_) => continue,
                        Message::Close(_) => return End::Closed,
                    };
                    self.st.agents.metrics.frames_received.fetch_add(1, Ordering::Relaxed);
                    in_window += 1;
                    if in_window >= agent::MAX_RATE {
                        let next = window + Duration::from_secs(1);
                        if next > Instant::now() {
                            paused_until = Some(tokio::time::Instant::from_std(next));
                        }
                        window = next.max(Instant::now());
                        in_window = 0;
                    } else if window.elapsed() >= Duration::from_secs(1) {
                        window = Instant::now();
                        in_window = 0;
                    }
                    let frame = match Frame::decode(&bytes) {
                        Ok(f) => f,
                        Err(e) => {
                            self.st.agents.metrics.frames_malformed.fetch_add(1, Ordering::Relaxed);
                            return End::Protocol(e.to_string());
                        }
                    };
                    match frame {
                        Frame::Keepalive(k) => match self.keepalive(*k, &mut pending).await {
                            Err(e) => return End::Protocol(e),
                            Ok(Some(config)) => {
                                if let Err(e) = timed(ws.send(binary(&config))).await {
                                    return End::Io(e);
                                }
                            }
                            Ok(None) => {}
                        },
                        Frame::Event { id, event } => {
                            if let Some(ack) = self.event(id, event, &mut pending).await {
                                if let Err(e) = timed(ws.send(binary(&ack))).await {
                                    return End::Io(e);
                                }
                            }
                        }
                        other => {
                            return End::Protocol(format!("agent frame: {} is sent by the backend, not by agents", other.type_name()));
                        }
                    }
                }
                Some(done) = pending.next(), if !pending.is_empty() => {
                    let mut acks: Vec<Frame> = self.settle(done).into_iter().collect();
                    while let Some(Some(done)) = pending.next().now_or_never() {
                        acks.extend(self.settle(done));
                    }
                    for a in &acks {
                        if let Err(e) = timed(ws.feed(binary(a))).await {
                            return End::Io(e);
                        }
                    }
                    if let Err(e) = timed(ws.flush()).await {
                        return End::Io(e);
                    }
                }
                Some(out) = rx.recv() => {
                    let f = match out {
                        Outgoing::Frame(f) => f,
                        Outgoing::EntityChanged => match self.entity_changed().await {
                            Some(f) => f,
                            None => continue,
                        },
                        Outgoing::Close(why) => return End::Revoked(why),
                    };
                    if let Err(e) = timed(ws.send(binary(&f))).await {
                        return End::Io(e);
                    }
                    if matches!(f, Frame::CheckRequest(_)) {
                        self.st.agents.metrics.check_requests_sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ = async { if let Some(t) = paused_until { tokio::time::sleep_until(t).await } }, if paused_until.is_some() => {
                    paused_until = None;
                }
                _ = async { if let Some(t) = renew_at { tokio::time::sleep_until(t).await } }, if renew_at.is_some() && !renewing => {
                    // Stop reading; close once every event read is answered.
                    renewing = true;
                }
                _ = ping.tick() => {
                    if last_read.elapsed() > READ_TIMEOUT {
                        return End::Timeout;
                    }
                    if let Err(e) = timed(ws.send(Message::Ping(axum::body::Bytes::new()))).await {
                        return End::Io(e);
                    }
                }
            }
        }
    }

    /// The answer to a stored (or not) event: an ack for agent events, a log line for
    /// keepalives.
    fn settle(&mut self, (id, key, result): Settled) -> Option<Frame> {
        let m = &self.st.agents.metrics;
        match result {
            Ok(stored) => {
                self.st
                    .metrics
                    .events_stored
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(stored) = stored {
                    self.st.after_store(&self.info.namespace, &stored);
                }
                let id = id?;
                m.events_acked.fetch_add(1, Ordering::Relaxed);
                Some(Frame::Ack {
                    id,
                    ack: Ack::Stored,
                })
            }
            Err(e) => {
                let Some(id) = id else {
                    tracing::warn!(agent = %self.info.name, error = %e, "keepalive event not stored");
                    return None;
                };
                self.retry(id, key, e.to_string())
            }
        }
    }

    /// `retry` for event `id`, counted; later events of its check in this session are
    /// answered `retry` too, so that the agent sends them again after it, in order.
    fn retry(&mut self, id: u64, key: (String, String), error: String) -> Option<Frame> {
        self.retried.insert(key);
        self.st
            .agents
            .metrics
            .events_retried
            .fetch_add(1, Ordering::Relaxed);
        Some(Frame::Ack {
            id,
            ack: Ack::Retry { error },
        })
    }

    /// `rejected` for event `id` (it is wrong and never will be stored), counted and logged.
    fn rejected(&self, id: u64, error: String) -> Option<Frame> {
        self.st
            .agents
            .metrics
            .events_rejected
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(agent = %self.info.name, error = %error, "agent event rejected");
        Some(Frame::Ack {
            id,
            ack: Ack::Rejected { error },
        })
    }

    async fn submit(
        &mut self,
        id: Option<u64>,
        key: (String, String),
        input: ward_types::event::EventInput,
        pending: &mut FuturesUnordered<InFlight>,
    ) -> Option<Frame> {
        self.st
            .metrics
            .events_received
            .fetch_add(1, Ordering::Relaxed);
        let mut input = input;
        self.st.silences.apply(&mut input, unix_now());
        // The stored event is needed back only for handlers and silences.
        let keep = input.needs_after_store();
        // A full store buffer or a store switch: wait here (the session stops reading, so
        // TCP pushes back on the agent) rather than send the event back out of order.
        let mut waited = Duration::ZERO;
        let mut input = Some(input.prepare());
        loop {
            let i = input.take()?;
            match self.st.events.enqueue_or_return(i, keep).await {
                Ok(p) => {
                    // PostgreSQL's writers answer the stored event anyway: dropped here unless kept.
                    pending.push(Box::pin(async move {
                        (id, key, p.wait().await.map(|s| s.filter(|_| keep)))
                    }));
                    return None;
                }
                Err((SubmitError::Busy(_), back)) if waited < BUSY_WAIT => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    waited += Duration::from_millis(100);
                    input = Some(back);
                }
                Err((e, _)) => return self.settle((id, key, Err(e))),
            }
        }
    }

    async fn event(
        &mut self,
        id: u64,
        event: ward_types::raw::RawObject,
        pending: &mut FuturesUnordered<InFlight>,
    ) -> Option<Frame> {
        let now = unix_now();
        if event.get("check").is_none() && event.get("metrics").is_some() {
            return self.metrics_event(id, &event.to_value(), now);
        }
        let mut input =
            match ward_types::event::parse_event_object(event, &self.info.namespace, now) {
                Ok(i) => i,
                Err(e) => return self.rejected(id, e.to_string()),
            };
        if !input.has_id() {
            // Without randomness the event is stored without an id rather than lost.
            match crate::auth::new_uuid() {
                Ok(u) => input.set_id(&u),
                Err(e) => tracing::error!(error = %e, "an agent's event is stored without an id"),
            }
        }
        // The session speaks for its own entity only: its certificate (or its user and the
        // name in the handshake) proves nothing about another agent's.
        if input.entity != self.info.name {
            self.st
                .agents
                .metrics
                .identity_refused
                .fetch_add(1, Ordering::Relaxed);
            return self.rejected(
                id,
                format!(
                    "entity {:?} is not this agent ({:?}): an agent sends events for its own entity only (a check names another entity with proxy_entity_name)",
                    input.entity, self.info.name
                ),
            );
        }
        // The session's order key: this agent's check (before a proxy swap).
        let key = (input.entity.clone(), input.check.clone());
        if input.proxy_entity_name().is_some() {
            let ns = self.info.namespace.clone();
            let filed = self
                .st
                .db(move |s| {
                    let r = crate::api::file_under_proxy(s, &ns, &mut input, now, true);
                    Ok((r, input))
                })
                .await;
            match filed {
                Ok((Ok(()), back)) => input = back,
                Ok((Err(e), _)) if e.0.is_client_error() => return self.rejected(id, e.1),
                Ok((Err(e), _)) => return self.retry(id, key, e.1),
                Err(e) => return self.retry(id, key, e.to_string()),
            }
        }
        if !self.retried.is_empty() && self.retried.contains(&key) {
            return self.retry(
                id,
                key,
                "an earlier event of this check was not stored; both are sent again, in order"
                    .into(),
            );
        }
        if !self.known_entities.contains(&input.entity) {
            if let Err(e) = crate::api::ensure_entity(self.st, &self.info.namespace, &input, now) {
                if e.0.is_client_error() {
                    return self.rejected(id, e.1);
                }
                return self.retry(id, key, e.1);
            }
            if self.known_entities.len() < 10_000 {
                self.known_entities.insert(input.entity.clone());
            }
        }
        self.submit(Some(id), key, input, pending).await
    }

    /// A metrics-only event (a StatsD flush): checked, for this agent's entity, handed to
    /// the pipeline and not stored, as Sensu does; answered at once.
    fn metrics_event(&mut self, id: u64, event: &serde_json::Value, now: i64) -> Option<Frame> {
        let mut v = match ward_types::event::parse_metrics_event(event, &self.info.namespace, now) {
            Ok(v) => v,
            Err(e) => return self.rejected(id, e.to_string()),
        };
        let entity = v.pointer("/entity/metadata/name").and_then(|n| n.as_str());
        if entity != Some(self.info.name.as_str()) {
            return self.rejected(
                id,
                format!(
                    "entity {:?} is not this agent ({:?}): an agent sends metrics for its own entity only",
                    entity.unwrap_or_default(),
                    self.info.name
                ),
            );
        }
        if v.get("id").is_none() {
            if let Ok(u) = crate::auth::new_uuid() {
                v["id"] = serde_json::json!(u);
            }
        }
        self.st
            .metrics
            .events_received
            .fetch_add(1, Ordering::Relaxed);
        self.st.pipeline.handle(&self.info.namespace, &v);
        self.st
            .agents
            .metrics
            .events_acked
            .fetch_add(1, Ordering::Relaxed);
        Some(Frame::Ack {
            id,
            ack: Ack::Stored,
        })
    }

    async fn keepalive(
        &mut self,
        k: Keepalive,
        pending: &mut FuturesUnordered<InFlight>,
    ) -> Result<Option<Frame>, String> {
        let info = self.info;
        if k.entity.name != info.name
            || (!k.entity.namespace.is_empty() && k.entity.namespace != info.namespace)
        {
            return Err(format!(
                "keepalive: entity {}/{} does not match the session's {}/{} (the handshake headers)",
                k.entity.namespace, k.entity.name, info.namespace, info.name
            ));
        }
        self.st
            .agents
            .metrics
            .keepalives
            .fetch_add(1, Ordering::Relaxed);
        let now = unix_now();
        let interval = k.interval.clamp(1, 86_400);
        let warning = k.warning_timeout.clamp(5, 7 * 86_400);
        let critical = if k.critical_timeout == 0 {
            0
        } else {
            k.critical_timeout.clamp(warning, 7 * 86_400)
        };
        // The entity: registered on a session's first keepalive and whenever its facts
        // change; otherwise only last_seen moves (batched by keepalived's writer).
        if k.entity.subscriptions.len() > agent::MAX_SUBSCRIPTIONS
            || k.entity
                .subscriptions
                .iter()
                .any(|s| s.len() > agent::MAX_SUBSCRIPTION_LEN)
            || k.entity.labels.len() + k.entity.annotations.len() > 1000
        {
            return Err(format!(
                "keepalive: at most {} subscriptions of at most {} bytes, and 1000 labels and annotations",
                agent::MAX_SUBSCRIPTIONS,
                agent::MAX_SUBSCRIPTION_LEN
            ));
        }
        if let Some(other) = agent::foreign_entity_subscription(&info.name, &k.entity.subscriptions)
        {
            self.st
                .agents
                .metrics
                .identity_refused
                .fetch_add(1, Ordering::Relaxed);
            return Err(format!(
                "keepalive: subscription {other:?} is another agent's; an agent may subscribe to entity:{} only",
                info.name
            ));
        }
        let mut subs = k.entity.subscriptions.clone();
        subs.extend(info.subscriptions.iter().cloned());
        let subscriptions = agent::subscriptions_with_entity(&info.name, &subs);
        let mut spec = json!({
            "entity_class": "agent",
            "subscriptions": subscriptions,
            "system": k.entity.system,
            "user": info.user,
            "sensu_agent_version": k.entity.agent_version,
            "deregister": k.entity.deregister,
        });
        if !k.entity.deregistration_handler.is_empty() {
            spec["deregistration"] = json!({"handler": k.entity.deregistration_handler});
        }
        if !k.entity.keepalive_handlers.is_empty() {
            spec["keepalive_handlers"] = json!(k.entity.keepalive_handlers);
        }
        let facts = json!([spec, k.entity.labels, k.entity.annotations]);
        let mut config = None;
        if self.last_keepalive.as_ref() != Some(&facts) {
            let mut spec = spec;
            spec["last_seen"] = json!(now);
            let own = Resource::from_document(Document {
                type_name: "Entity".into(),
                api_version: "core/v2".into(),
                metadata: Metadata {
                    name: info.name.clone(),
                    namespace: Some(info.namespace.clone()),
                    labels: k.entity.labels.clone(),
                    annotations: k.entity.annotations.clone(),
                    created_by: Some(info.user.clone()),
                },
                spec,
            })
            .map_err(|e| format!("keepalive: entity: {e}"))?;
            if let Some(frame) = self.register(own).await {
                self.last_keepalive = Some(facts);
                self.known_entities.insert(info.name.clone());
                config = frame;
            }
        } else {
            self.st
                .agents
                .keepalived
                .seen(&info.namespace, &info.name, now);
        }
        let routes = match &self.effective {
            Some(e) => super::entity::routes(e, k.pipelines.clone()),
            // Not registered (the store could not be read): the agent's own word.
            None => super::keepalived::Routes {
                handlers: k.entity.keepalive_handlers.clone(),
                pipelines: k.pipelines.clone(),
                deregister: k.entity.deregister,
                deregistration_handler: k.entity.deregistration_handler.clone(),
            },
        };
        let routes = match &self.routes {
            Some(r) if **r == routes => r.clone(),
            _ => {
                let r = Arc::new(routes);
                self.routes = Some(r.clone());
                r
            }
        };
        let previous = self.st.agents.keepalived.touch(
            &info.namespace,
            &info.name,
            now,
            (warning, critical),
            routes.clone(),
        );
        let output = if previous > 0 {
            format!("Keepalive received from {} again at {now}", info.name)
        } else {
            format!("Keepalive last sent from {} at {now}", info.name)
        };
        let input = super::keepalived::keepalive_event(
            &info.namespace,
            &info.name,
            0,
            output,
            now,
            interval,
            (warning, critical),
            &routes,
        )
        .map_err(|e| format!("keepalive: {e}"))?;
        let key = (input.entity.clone(), input.check.clone());
        self.submit(None, key, input, pending).await;
        Ok(config)
    }

    /// Registers the agent's entity as `own` (what its keepalive says) against the stored
    /// one (see `entity`): queues the write, follows the subscriptions in force, and
    /// answers the `entity_config` to send, if any. None when the store could not be read
    /// (the next keepalive tries again).
    async fn register(&mut self, own: Resource) -> Option<Option<Frame>> {
        let stored = if super::entity::agent_managed(&own) {
            None
        } else {
            let (ns, name) = (self.info.namespace.clone(), self.info.name.clone());
            match self
                .st
                .db(move |s| s.get(ward_types::Kind::Entity, &ns, &name))
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(agent = %self.info.name, error = %e, "cannot read the agent's entity; it is registered at its next keepalive");
                    return None;
                }
            }
        };
        let owned = match super::entity::decide(own, stored) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(agent = %self.info.name, error = %e, "the agent's entity is not registered");
                return None;
            }
        };
        self.st.agents.keepalived.register(owned.registration);
        Some(self.follow(owned.effective, owned.send))
    }

    /// Makes `effective` the entity in force: the session's subscriptions become its, and
    /// the `entity_config` to send (when `send` and it changed) is answered.
    fn follow(&mut self, effective: Resource, send: bool) -> Option<Frame> {
        use super::entity::{config_frame, subscriptions};
        let sorted = |r: &Resource| {
            let mut s = subscriptions(r);
            s.sort();
            s
        };
        if self.effective.as_ref().map(sorted) != Some(sorted(&effective)) {
            self.st
                .agents
                .resubscribe(self.id, subscriptions(&effective));
        }
        let frame = config_frame(&effective);
        let changed =
            self.effective.as_ref().map(|e| config_frame(e).encode()) != Some(frame.encode());
        self.effective = Some(effective);
        (send && changed).then_some(frame)
    }

    /// The API wrote or deleted the agent's entity: it is read again, and followed unless
    /// the agent manages it.
    async fn entity_changed(&mut self) -> Option<Frame> {
        if self
            .effective
            .as_ref()
            .is_some_and(super::entity::agent_managed)
        {
            return None;
        }
        let (ns, name) = (self.info.namespace.clone(), self.info.name.clone());
        let stored = match self
            .st
            .db(move |s| s.get(ward_types::Kind::Entity, &ns, &name))
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(agent = %self.info.name, error = %e, "cannot read the agent's entity after an API change; its next keepalive registers it again");
                self.last_keepalive = None;
                return None;
            }
        };
        match stored {
            // The routes of its keepalive events follow at its next keepalive.
            Some(r) if !super::entity::agent_managed(&r) => self.follow(r, true),
            Some(_) => None,
            None => {
                // Registered again, from the agent's own configuration, at its next
                // keepalive (as Sensu: a deleted agent entity reverts to agent.yml). Its
                // events meanwhile do not create a bare entity that would then stand
                // for the backend's configuration: it stays "known".
                self.last_keepalive = None;
                None
            }
        }
    }
}

/// An event queued for storage, with the agent's id (None for keepalives).
type InFlight = std::pin::Pin<Box<dyn std::future::Future<Output = Settled> + Send>>;

/// A stored (or not) event: the agent's id (None for keepalives), its (entity, check), and
/// the outcome.
type Settled = (
    Option<u64>,
    (String, String),
    Result<Option<String>, SubmitError>,
);
