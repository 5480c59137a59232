//! agentd: the agent port. A WebSocket session per agent (frames in
//! `ward_types::agent`), authenticated by Basic credentials or, with agent mTLS, by the
//! client certificate's CN; events acknowledged only once stored; keepalives register the
//! entity and feed keepalived; check requests pushed by schedulerd.

mod deregister;
pub mod entity;
pub mod keepalived;
mod proxy;
pub mod schedulerd;
mod session;

use crate::api::{AppState, Metrics};
use crate::auth::{self, LoginError};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use ward_store::User;
use ward_types::agent::{self, Frame};
use ward_types::Kind;

/// How the agent port authenticates TLS clients.
pub enum AgentTls {
    /// No TLS (ws://): Basic credentials only.
    Plain,
    /// TLS with the backend's certificate; Basic credentials.
    Tls(Arc<rustls::ServerConfig>),
    /// TLS with a client certificate required and checked (chain, clientAuth, revocation);
    /// its CN is the user. Password login is refused.
    Mtls(Arc<ward_tls::agent_auth::AgentAuth>),
}

/// The identity a client certificate proved, for the upgrade handler.
#[derive(Clone, Default)]
struct CertIdentity(Option<ward_tls::agent_auth::AgentIdentity>);

/// Counters of the agent port, for /metrics.
#[derive(Default)]
pub struct AgentMetrics {
    pub sessions_opened: AtomicU64,
    pub sessions_refused: AtomicU64,
    pub frames_received: AtomicU64,
    pub frames_malformed: AtomicU64,
    pub events_acked: AtomicU64,
    pub events_rejected: AtomicU64,
    pub events_retried: AtomicU64,
    /// Events for another entity and foreign `entity:` subscriptions, refused.
    pub identity_refused: AtomicU64,
    pub keepalives: AtomicU64,
    pub check_requests_sent: AtomicU64,
    pub check_requests_dropped: AtomicU64,
    /// Refused client certificates by reason.
    pub cert_refusals: Mutex<BTreeMap<&'static str, u64>>,
}

/// One connected agent, as the scheduler sees it.
pub struct SessionHandle {
    pub namespace: String,
    pub name: String,
    pub subscriptions: Vec<String>,
    pub tx: mpsc::Sender<Outgoing>,
    /// The serial of the client certificate the session opened with, if any.
    pub serial: Option<String>,
}

/// What reaches a session from the rest of the backend.
pub enum Outgoing {
    /// A frame for the agent (a check request).
    Frame(Frame),
    /// The agent's entity was written or deleted through the API: the session reads it
    /// again (so that two quick writes cannot arrive in the wrong order).
    EntityChanged,
    /// End the session now (its certificate was revoked), telling the agent why.
    Close(String),
}

/// The connected agents.
#[derive(Default)]
pub struct Agents {
    sessions: Mutex<HashMap<u64, Arc<SessionHandle>>>,
    next_id: AtomicU64,
    pub metrics: AgentMetrics,
    pub keepalived: keepalived::Keepalived,
    /// `agent-auth-session-max`, in seconds (0: Ward's default).
    pub cert_session_max: std::sync::atomic::AtomicU64,
    /// The agent port serves plain `ws://`: checks' secrets are not sent on it.
    pub plaintext: std::sync::atomic::AtomicBool,
}

impl Agents {
    fn register(&self, s: SessionHandle) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.sessions.lock() {
            m.insert(id, Arc::new(s));
        }
        id
    }

    fn unregister(&self, id: u64) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(&id);
        }
    }

    /// A session's subscriptions from now on (its entity's, which the API may change).
    fn resubscribe(&self, id: u64, subscriptions: Vec<String>) {
        if let Ok(mut m) = self.sessions.lock() {
            if let Some(s) = m.get_mut(&id) {
                *s = Arc::new(SessionHandle {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    subscriptions,
                    tx: s.tx.clone(),
                    serial: s.serial.clone(),
                });
            }
        }
    }

    /// Tells the agent's open sessions that the API wrote or deleted its entity: they read
    /// it again, send the agent the new `entity_config` and follow its subscriptions.
    pub fn entity_changed(&self, namespace: &str, name: &str) {
        let Ok(m) = self.sessions.lock() else { return };
        for s in m
            .values()
            .filter(|s| s.namespace == namespace && s.name == name)
        {
            let tx = s.tx.clone();
            // Waits for room rather than drop it: a change must reach the session.
            tokio::spawn(async move { tx.send(Outgoing::EntityChanged).await });
        }
    }

    /// Ends every session opened with the certificate `serial`, telling each agent `why`;
    /// returns how many. The close waits behind the frames already queued for the session
    /// (at most its queue of check requests), then the session ends.
    pub fn close_certificate(&self, serial: &str, why: &str) -> usize {
        let Ok(m) = self.sessions.lock() else {
            return 0;
        };
        let mut n = 0;
        for s in m.values().filter(|s| s.serial.as_deref() == Some(serial)) {
            let (tx, why) = (s.tx.clone(), why.to_string());
            tokio::spawn(async move { tx.send(Outgoing::Close(why)).await });
            n += 1;
        }
        n
    }

    /// The serials of the certificates agent `name`'s open sessions use.
    pub fn serials_of(&self, name: &str) -> Vec<String> {
        let Ok(m) = self.sessions.lock() else {
            return Vec::new();
        };
        let mut v: Vec<String> = m
            .values()
            .filter(|s| s.name == name)
            .filter_map(|s| s.serial.clone())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Whether a session of this agent is open.
    pub fn connected(&self, namespace: &str, name: &str) -> bool {
        self.sessions.lock().is_ok_and(|m| {
            m.values()
                .any(|s| s.namespace == namespace && s.name == name)
        })
    }

    /// Sessions open now.
    pub fn count(&self) -> usize {
        self.sessions.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// The sessions in `namespace` subscribed to any of `subscriptions`, ordered by id so
    /// that round-robin picks are stable.
    pub fn subscribed(&self, namespace: &str, subscriptions: &[String]) -> Vec<Arc<SessionHandle>> {
        let Ok(m) = self.sessions.lock() else {
            return Vec::new();
        };
        let mut v: Vec<(u64, Arc<SessionHandle>)> = m
            .iter()
            .filter(|(_, s)| {
                s.namespace == namespace
                    && s.subscriptions.iter().any(|x| subscriptions.contains(x))
            })
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        v.sort_by_key(|(id, _)| *id);
        v.into_iter().map(|(_, s)| s).collect()
    }

    /// Counts a refused client certificate.
    pub fn cert_refused(&self, label: &'static str) {
        self.metrics
            .sessions_refused
            .fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.metrics.cert_refusals.lock() {
            *m.entry(label).or_insert(0) += 1;
        }
    }

    /// Prometheus lines.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let m = &self.metrics;
        let _ = writeln!(out, "# HELP ward_agent_sessions Agent sessions open now.\n# TYPE ward_agent_sessions gauge\nward_agent_sessions {}", self.count());
        let counters: [(&str, &str, &AtomicU64); 11] = [
            (
                "ward_agent_sessions_opened_total",
                "Agent sessions opened.",
                &m.sessions_opened,
            ),
            (
                "ward_agent_sessions_refused_total",
                "Agent connections refused (credentials, certificate, namespace).",
                &m.sessions_refused,
            ),
            (
                "ward_agent_frames_received_total",
                "Frames read from agents.",
                &m.frames_received,
            ),
            (
                "ward_agent_frames_malformed_total",
                "Malformed frames (the session is closed).",
                &m.frames_malformed,
            ),
            (
                "ward_agent_events_acked_total",
                "Agent events stored and acknowledged.",
                &m.events_acked,
            ),
            (
                "ward_agent_events_rejected_total",
                "Agent events refused as malformed (acknowledged as rejected).",
                &m.events_rejected,
            ),
            (
                "ward_agent_events_retried_total",
                "Agent events not stored this time (the agent sends them again).",
                &m.events_retried,
            ),
            (
                "ward_agent_identity_refused_total",
                "Agent events for another entity, and entity: subscriptions of another agent, refused.",
                &m.identity_refused,
            ),
            (
                "ward_agent_keepalives_total",
                "Keepalives received.",
                &m.keepalives,
            ),
            (
                "ward_check_requests_sent_total",
                "Check requests sent to agents.",
                &m.check_requests_sent,
            ),
            (
                "ward_check_requests_dropped_total",
                "Check requests not sent because the agent's queue was full.",
                &m.check_requests_dropped,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(out, "# HELP ward_agent_cert_refusals_total Agent client certificates refused, by reason.\n# TYPE ward_agent_cert_refusals_total counter");
        if let Ok(r) = m.cert_refusals.lock() {
            for (label, n) in r.iter() {
                let _ = writeln!(
                    out,
                    "ward_agent_cert_refusals_total{{reason=\"{label}\"}} {n}"
                );
            }
        }
    }
}

/// The agent port's routes: the session upgrade on `/`, and /health.
fn router(st: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(upgrade))
        .route("/health", get(crate::api::health))
        .with_state(st)
}

/// Serves the agent port until `shutdown` changes, through the shared accept loop and its
/// limits (`server::accept_loop`).
pub async fn serve(
    listener: TcpListener,
    st: Arc<AppState>,
    tls: AgentTls,
    limits: Arc<crate::server::Limits>,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    const WHAT: &str = "agent port";
    st.agents
        .plaintext
        .store(matches!(tls, AgentTls::Plain), Ordering::Relaxed);
    let tls = Arc::new(tls);
    let app = router(st.clone());
    let l = limits.clone();
    crate::server::accept_loop(listener, WHAT, limits, shutdown, move |stream, peer| {
        let app = app.clone();
        let tls = tls.clone();
        let st = st.clone();
        let limits = l.clone();
        async move {
            let _ = stream.set_nodelay(true);
            let metrics: &Metrics = &st.metrics;
            match &*tls {
                AgentTls::Plain => {
                    serve_http(stream, app, peer, CertIdentity(None), &limits).await
                }
                AgentTls::Tls(cfg) => {
                    let acc = tokio_rustls::TlsAcceptor::from(cfg.clone());
                    if let Some(s) =
                        crate::server::tls_handshake(&acc, stream, WHAT, peer, metrics, &limits)
                            .await
                    {
                        serve_http(s, app, peer, CertIdentity(None), &limits).await
                    }
                }
                AgentTls::Mtls(auth) => {
                    if !crate::server::starts_with_handshake(
                        &stream,
                        peer,
                        metrics,
                        limits.handshake_timeout,
                    )
                    .await
                    {
                        return;
                    }
                    match auth.accept_within(stream, peer, limits.handshake_timeout).await {
                        Ok((s, id)) => {
                            serve_http(s, app, peer, CertIdentity(Some(id)), &limits).await
                        }
                        Err(refused) => {
                            let refusal = &refused.refusal;
                            st.agents.cert_refused(refusal.label);
                            metrics.handshake_failed(refusal.label);
                            tracing::warn!(peer = %peer, reason = refusal.label, "agent refused: {}", refusal.message);
                            // Refused after the handshake (revocation, no CN): no TLS alert
                            // says that, so the agent is told over HTTP.
                            if let Some(s) = refused.stream {
                                tell_refused(s, &refusal.for_agent, &limits).await;
                            }
                        }
                    }
                }
            }
        }
    })
    .await
}

/// Answers the agent's upgrade request on a connection refused after its TLS handshake
/// with 403 and the reason, then closes. The request head is read first (bounded in size
/// and by `http-header-timeout`), so that closing does not reset the connection under
/// the answer.
async fn tell_refused<S>(mut s: S, reason: &str, limits: &crate::server::Limits)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let read_head = async {
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    if !matches!(
        tokio::time::timeout(limits.header_timeout, read_head).await,
        Ok(true)
    ) {
        return;
    }
    let body = format!("{reason}\n");
    let answer = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        let _ = s.write_all(answer.as_bytes()).await;
        let _ = s.shutdown().await;
    };
    let _ = tokio::time::timeout(limits.header_timeout, write).await;
}

async fn serve_http<I>(
    io: I,
    app: Router,
    peer: SocketAddr,
    id: CertIdentity,
    limits: &crate::server::Limits,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let app = app.layer(Extension(id)).layer(Extension(ConnectInfo(peer)));
    crate::server::serve_http(io, app, "agent port", peer, limits, true).await;
}

fn refuse(st: &AppState, code: StatusCode, peer: SocketAddr, msg: String) -> Response {
    let retry = (code == StatusCode::SERVICE_UNAVAILABLE).then_some(5);
    refuse_retry(st, code, peer, msg, retry)
}

/// `refuse`, with Retry-After `retry` seconds when given.
fn refuse_retry(
    st: &AppState,
    code: StatusCode,
    peer: SocketAddr,
    msg: String,
    retry: Option<u64>,
) -> Response {
    st.agents
        .metrics
        .sessions_refused
        .fetch_add(1, Ordering::Relaxed);
    if code == StatusCode::UNAUTHORIZED {
        st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
    }
    tracing::warn!(peer = %peer, status = code.as_u16(), "agent refused: {msg}");
    let mut r = (code, format!("{msg}\n")).into_response();
    if let Some(secs) = retry {
        r.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    r
}

/// Who an agent session runs as: the user behind the certificate or the Basic
/// credentials, and whether it is one the store knows (false: a certificate's CN standing
/// for the default agent identity). Passwords go through `Logins`, as API logins do: off
/// the workers, capped, throttled, and as slow for unknown users as for known ones.
async fn identify(
    st: &Arc<AppState>,
    headers: &HeaderMap,
    cert: &CertIdentity,
    peer: SocketAddr,
) -> Result<(User, bool), Refusal> {
    let store_failed = |e: ward_store::StoreError| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the user store failed: {e}"),
            Some(5),
        )
    };
    if let Some(id) = &cert.0 {
        // With agent mTLS the certificate is the credential: its CN is the user. An existing
        // user's groups apply; any other CN is the default agent identity.
        let (store, cn) = (st.store.clone(), id.cn.clone());
        let found = tokio::task::spawn_blocking(move || store.user(&cn))
            .await
            .map_err(|_| unfinished())?
            .map_err(store_failed)?;
        return match found {
            Some(u) if u.disabled => Err((
                StatusCode::UNAUTHORIZED,
                format!("user {:?} (the client certificate's CN) is disabled", id.cn),
                None,
            )),
            Some(u) => Ok((u, true)),
            None => Ok((
                User {
                    name: id.cn.clone(),
                    password_hash: None,
                    groups: vec![auth::AGENT_GROUP.into()],
                    disabled: false,
                },
                false,
            )),
        };
    }
    let Some((u, p)) = auth::basic(headers) else {
        return Err((StatusCode::UNAUTHORIZED, "no credentials: send Basic credentials (agent user and password) or configure agent mTLS".into(), None));
    };
    match st
        .logins
        .check(st.store.clone(), Some(peer.ip()), &u, p)
        .await
    {
        Ok(user) => Ok((user, true)),
        Err(LoginError::Wrong) => Err((
            StatusCode::UNAUTHORIZED,
            format!("wrong username or password for user {u:?}"),
            None,
        )),
        Err(e @ LoginError::Throttled(secs)) => {
            Err((StatusCode::TOO_MANY_REQUESTS, e.to_string(), Some(secs)))
        }
        Err(LoginError::Store(e)) => Err(store_failed(e)),
        Err(LoginError::Task(m)) => {
            tracing::error!(error = %m, "an agent's password check failed");
            Err(unfinished())
        }
    }
}

/// Why a session is refused: the status, the reason, and Retry-After seconds if any.
type Refusal = (StatusCode, String, Option<u64>);

fn unfinished() -> Refusal {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "authentication did not finish; retry".into(),
        Some(5),
    )
}

/// What the handshake established about the agent.
pub(crate) struct AgentInfo {
    pub name: String,
    pub namespace: String,
    pub subscriptions: Vec<String>,
    pub user: String,
    pub peer: SocketAddr,
    /// Authenticated by a client certificate: the session is renewed after
    /// `session::CERT_SESSION_MAX`, so that revocation is checked again.
    pub by_certificate: bool,
    /// That certificate's serial, as `ward pki info` prints it.
    pub serial: Option<String>,
}

async fn upgrade(
    State(st): State<Arc<AppState>>,
    Extension(cert): Extension<CertIdentity>,
    Extension(ConnectInfo(peer)): Extension<ConnectInfo<SocketAddr>>,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if !st.ready.load(Ordering::Acquire) {
        return refuse(
            &st,
            StatusCode::SERVICE_UNAVAILABLE,
            peer,
            "the backend is starting; retry".into(),
        );
    }
    let Ok(ws) = ws else {
        return refuse(
            &st,
            StatusCode::BAD_REQUEST,
            peer,
            "the agent port speaks WebSocket: send an Upgrade request (ward agent does)".into(),
        );
    };
    let header = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::trim);
    let Some(name) = header(agent::HEADER_AGENT_NAME).filter(|n| !n.is_empty()) else {
        return refuse(
            &st,
            StatusCode::BAD_REQUEST,
            peer,
            format!(
                "no {} header: the agent must say its name",
                agent::HEADER_AGENT_NAME
            ),
        );
    };
    if let Err(e) = ward_types::check_name(agent::HEADER_AGENT_NAME, name) {
        return refuse(&st, StatusCode::BAD_REQUEST, peer, e.to_string());
    }
    let namespace = header(agent::HEADER_NAMESPACE)
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    if let Err(e) = ward_types::check_name(agent::HEADER_NAMESPACE, namespace) {
        return refuse(&st, StatusCode::BAD_REQUEST, peer, e.to_string());
    }
    let subs: Vec<String> = header(agent::HEADER_SUBSCRIPTIONS)
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if subs.len() > agent::MAX_SUBSCRIPTIONS
        || subs.iter().any(|s| s.len() > agent::MAX_SUBSCRIPTION_LEN)
    {
        return refuse(
            &st,
            StatusCode::BAD_REQUEST,
            peer,
            format!(
                "{}: at most 1000 subscriptions of at most 256 bytes",
                agent::HEADER_SUBSCRIPTIONS
            ),
        );
    }
    if let Some(other) = agent::foreign_entity_subscription(name, &subs) {
        st.agents
            .metrics
            .identity_refused
            .fetch_add(1, Ordering::Relaxed);
        return refuse(
            &st,
            StatusCode::FORBIDDEN,
            peer,
            format!("agent {name:?}: subscription {other:?} is another agent's; an agent may subscribe to entity:{name} only (remove it from its subscriptions)"),
        );
    }
    let (user, known_user) = match identify(&st, &headers, &cert, peer).await {
        Ok(u) => u,
        Err((code, msg, retry)) => {
            return refuse_retry(&st, code, peer, format!("agent {name:?}: {msg}"), retry)
        }
    };
    // A certificate that maps to no user is the default agent identity for that one
    // entity: its CN must be the agent's name (another user's certificate decides by its
    // user's rights).
    if let Some(id) = &cert.0 {
        if !known_user && name != id.cn {
            return refuse(&st, StatusCode::FORBIDDEN, peer, format!("agent {name:?}: the client certificate is for {:?}; an agent certificate's CN must be the agent's name (or a user's name, whose rights then apply)", id.cn));
        }
    }
    let may = st.policy.get().authorize(
        &user.name,
        &user.groups,
        &crate::rbac::Request::new(crate::rbac::Verb::Create, "events", Some(namespace), None),
    );
    if let Err(why) = may {
        return refuse(
            &st,
            StatusCode::FORBIDDEN,
            peer,
            format!(
                "agent {name:?}: {why}; bind it to the ClusterRole system:agent (group {})",
                auth::AGENT_GROUP
            ),
        );
    }
    // The namespace must exist; and an entity registered by one user is not taken over
    // by another (the entity's `user`, set at registration).
    let (store, ns, entity) = (st.store.clone(), namespace.to_string(), name.to_string());
    let Ok(found) = tokio::task::spawn_blocking(move || {
        Ok::<_, ward_store::StoreError>((
            store.get(Kind::Namespace, "", &ns)?,
            store.get(Kind::Entity, &ns, &entity)?,
        ))
    })
    .await
    else {
        let (code, msg, retry) = unfinished();
        return refuse_retry(&st, code, peer, msg, retry);
    };
    match found {
        Ok((Some(_), existing)) => {
            let owner = existing
                .as_ref()
                .and_then(|e| e.spec.get("user"))
                .and_then(serde_json::Value::as_str)
                .filter(|o| !o.is_empty());
            if let Some(owner) = owner.filter(|o| *o != user.name) {
                return refuse(&st, StatusCode::FORBIDDEN, peer, format!("agent {name:?}: the entity {name:?} belongs to user {owner:?}, not {:?}; an agent may act only as an entity of its own user (give each agent its own user, or a client certificate)", user.name));
            }
        }
        Ok((None, _)) => return refuse(&st, StatusCode::NOT_FOUND, peer, format!("agent {name:?}: no namespace {namespace:?}; create it (ward ctl namespace create {namespace})")),
        Err(e) => return refuse(&st, StatusCode::SERVICE_UNAVAILABLE, peer, format!("the store failed: {e}")),
    }
    let info = AgentInfo {
        name: name.to_string(),
        namespace: namespace.to_string(),
        subscriptions: agent::subscriptions_with_entity(name, &subs),
        user: user.name,
        peer,
        by_certificate: cert.0.is_some(),
        serial: cert.0.as_ref().map(|c| c.serial.clone()),
    };
    // Acks answered together (`feed`, then one `flush`) leave in one TLS record and one
    // write: with no write buffer each ack was its own record and syscall, a fifth of the
    // backend's CPU at 30,000 events/s. Frames bigger than this still go out at once.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(ACK_WRITE_BUFFER)
        .max_write_buffer_size(agent::MAX_FRAME * 2)
        .max_message_size(agent::MAX_FRAME)
        .max_frame_size(agent::MAX_FRAME)
        .on_upgrade(move |socket| session::run(socket, st, info))
}

/// Bytes of frames a session gathers before writing them (the upgrade in `upgrade` above).
const ACK_WRITE_BUFFER: usize = 8 * 1024;

/// Sends a frame to a session without waiting; false when its queue is full or it closed.
pub fn offer(s: &SessionHandle, f: Frame) -> bool {
    s.tx.try_send(Outgoing::Frame(f)).is_ok()
}
