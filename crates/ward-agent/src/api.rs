//! The local agent API (127.0.0.1:3031 by default), as Sensu's:
//!
//! - `POST /events`: a Sensu event (`{"check": {"metadata": {"name": "x"}, "status": 1,
//!   "output": "…"}}`; the entity defaults to this agent). 202 once it is durably queued;
//!   400 with a one-line reason naming the field; 503 when the queue is full.
//! - `GET /healthz`: 200 `ok` while connected to a backend, else 503 `sensu backend
//!   unavailable` (Sensu's bodies, without a newline; events are queued meanwhile).
//! - `GET /brew`: 418 `I'm a teapot!`, as Sensu's.
//! - `GET /metrics`: Prometheus text (queue depth, queue_full_total, events sent / acked /
//!   rejected / retried, reconnects, connected).
//!
//! There is no authentication, as in Sensu: anyone who can reach the port can add events.
//! It listens on loopback unless api-host says otherwise. So that a web page the host's
//! browser opens cannot (a cross-origin POST, or DNS rebinding), every request is refused
//! with 403 and a one-line reason when its `Host` is not this listener (127.0.0.1,
//! localhost, [::1] or api-host, with api-port if a port is given) or when it carries an
//! `Origin` other than `http://<one of those>:<api-port>`; and a POST whose Content-Type
//! is not `application/json` gets 415. (With a wildcard api-host, 0.0.0.0 or ::, any Host
//! is accepted: the operator exposed the port.)

use crate::queue::QueueError;
use crate::Agent;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The API's routes.
pub(crate) fn router(agent: Arc<Agent>) -> Router {
    let origin = Arc::new(Listener::of(agent.cfg.api.as_ref()));
    Router::new()
        .route("/events", post(post_event))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/brew", get(brew))
        .layer(DefaultBodyLimit::max(ward_types::agent::MAX_FRAME))
        .layer(axum::middleware::from_fn_with_state(origin, guard))
        .with_state(agent)
}

/// The names and port requests must be addressed to.
struct Listener {
    /// Host names (lowercase; IPv6 in brackets) a request's Host and Origin may name.
    names: Vec<String>,
    port: u16,
    /// api-host is a wildcard: any Host is accepted.
    any_host: bool,
}

impl Listener {
    fn of(api: Option<&(String, u16)>) -> Listener {
        let (host, port) = api.cloned().unwrap_or_else(|| ("127.0.0.1".into(), 3031));
        let mut names: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let host = host.to_ascii_lowercase();
        let any_host = matches!(host.as_str(), "0.0.0.0" | "::" | "[::]" | "");
        if !any_host {
            names.push(if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host
            });
        }
        Listener {
            names,
            port,
            any_host,
        }
    }

    /// Whether `authority` (`host[:port]`) names this listener.
    fn is_self(&self, authority: &str, port_required: bool) -> bool {
        let a = authority.to_ascii_lowercase();
        let (name, port) = match a.rsplit_once(':') {
            Some((n, p)) if !p.contains(']') => (n, Some(p)),
            _ => (a.as_str(), None),
        };
        let port_ok = match port {
            Some(p) => self.port == 0 || p == self.port.to_string(),
            None => !port_required,
        };
        port_ok && self.names.iter().any(|n| n == name)
    }
}

/// Refuses foreign `Host` and `Origin` headers (403) and non-JSON POSTs (415).
async fn guard(
    State(me): State<Arc<Listener>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match refusal(&me, req.method(), req.headers()) {
        Some(r) => r,
        None => next.run(req).await,
    }
}

/// Why `guard` refuses a request, as the response; None when it may go on.
fn refusal(
    me: &Listener,
    method: &axum::http::Method,
    headers: &axum::http::HeaderMap,
) -> Option<Response> {
    let text = |h: header::HeaderName| headers.get(h).map(|v| v.to_str().unwrap_or("(not text)"));
    let shown = |v: &str| ward_io::text::one_line(v).into_owned();
    if let Some(origin) = text(header::ORIGIN) {
        let own = origin
            .strip_prefix("http://")
            .is_some_and(|a| me.is_self(a, me.port != 80));
        if !own {
            return Some(line(
                StatusCode::FORBIDDEN,
                format!(
                    "Origin {:?} is not this agent's API: the local API takes requests from this host's programs, not from web pages",
                    shown(origin)
                ),
            ));
        }
    }
    if !me.any_host {
        match text(header::HOST) {
            Some(h) if me.is_self(h, false) => {}
            Some(h) => {
                return Some(line(
                    StatusCode::FORBIDDEN,
                    format!(
                        "Host {:?} is not this agent's API (use 127.0.0.1:{} or localhost:{})",
                        shown(h),
                        me.port,
                        me.port
                    ),
                ))
            }
            None => {
                return Some(line(
                    StatusCode::FORBIDDEN,
                    "no Host header: send Host: 127.0.0.1 (HTTP/1.1)",
                ))
            }
        }
    }
    if method == axum::http::Method::POST {
        let ct = text(header::CONTENT_TYPE).unwrap_or("");
        let media = ct.split(';').next().unwrap_or("").trim();
        if !media.eq_ignore_ascii_case("application/json") {
            return Some(line(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {:?}: events are JSON; send Content-Type: application/json",
                    shown(ct)
                ),
            ));
        }
    }
    None
}

fn line(status: StatusCode, text: impl Into<String>) -> Response {
    let mut t = text.into();
    t.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        t,
    )
        .into_response()
}

async fn post_event(State(agent): State<Arc<Agent>>, body: Bytes) -> Response {
    let budget = agent
        .events_api
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take(std::time::Instant::now());
    if let Err(wait) = budget {
        let secs = wait.as_secs().max(1);
        let mut r = line(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "more than {} events a second (events-rate-limit, bursts of events-burst-limit {}); retry in {secs} s",
                agent.cfg.events_rate_limit, agent.cfg.events_burst_limit
            ),
        );
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let event = match agent.local_event(&body, crate::check::unix_now()) {
        Ok(e) => e,
        Err(reason) => return line(StatusCode::BAD_REQUEST, reason),
    };
    match agent.enqueue(&event).await {
        Ok(_) => StatusCode::ACCEPTED.into_response(),
        Err(e @ QueueError::Full { .. }) => line(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => line(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Sensu's agent API has it too.
async fn brew() -> Response {
    line(StatusCode::IM_A_TEAPOT, "I'm a teapot!")
}

/// Sensu's bodies, byte for byte (`ok`, `sensu backend unavailable`, no newline): health
/// scripts written for sensu-agent compare them.
async fn healthz(State(agent): State<Arc<Agent>>) -> Response {
    let (status, text) = if agent.metrics.connected.load(Ordering::Relaxed) == 1 {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "sensu backend unavailable")
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        agent.metrics.render(agent.queue.len()),
    )
        .into_response()
}
