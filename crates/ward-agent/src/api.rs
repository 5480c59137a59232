//! The local agent API (127.0.0.1:3031 by default), as Sensu's:
//!
//! - `POST /events`: a Sensu event (`{"check": {"metadata": {"name": "x"}, "status": 1,
//!   "output": "…"}}`; the entity defaults to this agent). 202 once it is durably queued;
//!   400 with a one-line reason naming the field; 503 when the queue is full.
//! - `GET /healthz`: 200 `ok` while connected to a backend, 503 otherwise.
//! - `GET /metrics`: Prometheus text (queue depth, queue_full_total, events sent / acked /
//!   rejected / retried, reconnects, connected).
//!
//! There is no authentication, as in Sensu: anyone who can reach the port can add events.
//! It listens on loopback unless api-host says otherwise.

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
    Router::new()
        .route("/events", post(post_event))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(ward_types::agent::MAX_FRAME))
        .with_state(agent)
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

async fn healthz(State(agent): State<Arc<Agent>>) -> Response {
    if agent.metrics.connected.load(Ordering::Relaxed) == 1 {
        line(StatusCode::OK, "ok")
    } else {
        line(
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to a backend; events are queued",
        )
    }
}

async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        agent.metrics.render(agent.queue.len()),
    )
        .into_response()
}
