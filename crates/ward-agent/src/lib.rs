//! The Ward agent (`ward agent start`): it keeps one WebSocket session with a backend
//! (`ws://` or `wss://`, a password or a client certificate), sends keepalives, runs the
//! checks the backend asks for, and delivers every event through a durable on-disk queue,
//! so no event is lost to a network break, a backend restart, or a `kill -9` of the agent.
//!
//! - [`config`]: `agent.yml`, `WARD_AGENT_*` and flags, into an [`AgentConfig`].
//! - [`transport`]: connect, TLS ([`tls`]), the upgrade with the agent's headers.
//! - `session`: one session's frames: keepalives, events and acks, heartbeats.
//! - [`queue`]: the SQLite queue under cache-dir.
//! - [`check`]: running a check and the event that reports it.
//! - [`allow_list`]: sensu-agent's `allow-list`, the only commands checks and hooks may run.
//! - `api`: the local agent API (`POST /events`, `/healthz`, `/metrics`).
//!
//! An agent runs in-process until its shutdown future resolves:
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! let flags = vec![
//!     ("backend-url".to_string(), "wss://backend-1.example.com:8081".to_string()),
//!     ("trusted-ca-file".to_string(), "/etc/ward/ca.pem".to_string()),
//!     ("cert-file".to_string(), "/etc/ward/agent.pem".to_string()),
//!     ("key-file".to_string(), "/etc/ward/agent-key.pem".to_string()),
//! ];
//! let cfg = ward_agent::AgentConfig::resolve(None, &|_| None, &flags).map_err(|e| e.to_string())?;
//! ward_agent::run(cfg, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

#![deny(unsafe_code)] // one exception, allowed where it is: system.rs calls getifaddrs(3)

pub mod allow_list;
pub mod check;
pub mod config;
pub mod metrics;
pub mod queue;
mod sensu_keys;
pub mod system;
pub mod tls;
pub mod transport;

mod api;
mod run_check;
mod session;
pub mod socket;
mod statsd;

pub use config::{AgentConfig, BackendUrl};

use metrics::{inc, Metrics};
use queue::{EventQueue, QueueError};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{watch, Notify};
use ward_types::agent::{redacted, subscriptions_with_entity};

/// What the transport, the check runner and the local API share.
pub(crate) struct Agent {
    cfg: AgentConfig,
    queue: Arc<EventQueue>,
    /// Rung after every append, so an idle session sends at once.
    wake: Notify,
    metrics: Metrics,
    /// The latest `entity_config` from the backend.
    entity_config: Mutex<Option<Value>>,
    /// The system facts the last keepalive sent (events carry them in `entity.system`).
    system: Mutex<Option<Value>>,
    /// `namespace/check` of the checks running now: a check still running when it is
    /// requested again is not started twice.
    running: Mutex<HashSet<String>>,
    /// The check tasks, aborted at shutdown (which kills their process groups) so that
    /// nothing outlives `run`, the queue's lock included.
    checks: Mutex<tokio::task::JoinSet<()>>,
    /// Where checks' runtime assets are unpacked (`cache-dir/assets`); None when it could
    /// not be made (checks with assets then fail, saying why).
    assets: Result<Arc<ward_assets::Assets>, String>,
    /// The local API's `POST /events` budget (`events-rate-limit`, `events-burst-limit`).
    events_api: Mutex<ward_io::rate::Bucket>,
}

impl Agent {
    /// Sensu's agent entity, as the agent's events carry it: its configuration is the
    /// backend's `entity_config` once one arrived (the backend owns an entity it has
    /// registered, unless `agent-managed-entity`), else agent.yml's; its state (system,
    /// version, last_seen) is the agent's own.
    fn entity(&self) -> Value {
        let c = &self.cfg;
        let mut e = json!({
            "metadata": {"name": c.name, "namespace": c.namespace, "created_by": c.user,
                         "labels": redacted(&c.labels, &c.redact),
                         "annotations": redacted(&c.annotations, &c.redact)},
            "entity_class": "agent",
            "subscriptions": subscriptions_with_entity(&c.name, &c.subscriptions),
            "last_seen": check::unix_now(),
            "deregister": c.deregister,
            "deregistration": {},
            "user": c.user,
            "redact": c.redact,
            "sensu_agent_version": env!("CARGO_PKG_VERSION"),
        });
        if !c.deregistration_handler.is_empty() {
            e["deregistration"] = json!({"handler": c.deregistration_handler});
        }
        if !c.keepalive_handlers.is_empty() {
            e["keepalive_handlers"] = json!(c.keepalive_handlers);
        }
        if let Some(config) = self.entity_config.lock().ok().and_then(|g| g.clone()) {
            apply_entity_config(&mut e, &config);
        }
        if let Some(s) = self.system.lock().ok().and_then(|s| s.clone()) {
            e["system"] = s;
        }
        e
    }

    /// Appends an event to the queue (on the blocking pool: it fsyncs) and wakes the
    /// session. A full queue is counted.
    async fn enqueue(&self, event: &Value) -> Result<u64, QueueError> {
        let body = serde_json::to_vec(event).unwrap_or_default();
        let queue = self.queue.clone();
        let r = tokio::task::spawn_blocking(move || queue.append(&body))
            .await
            .unwrap_or_else(|e| {
                Err(QueueError::Storage {
                    path: self.queue.path().to_path_buf(),
                    reason: e.to_string(),
                })
            });
        match &r {
            Ok(_) => self.wake.notify_one(),
            Err(e @ QueueError::Full { .. }) => {
                inc(&self.metrics.queue_full);
                tracing::warn!(error = %e, "event refused: the queue is full");
            }
            Err(e) => tracing::error!(error = %e, "cannot queue an event"),
        }
        r
    }

    /// A posted event, completed (entity: this agent; timestamp: now) and checked as the
    /// backend will check it. The error is one line naming the field.
    fn local_event(&self, body: &[u8], now: i64) -> Result<Value, String> {
        let mut v: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        // `{type: Event, spec: {…}}` documents are accepted as the API accepts them.
        if v.get("type").and_then(Value::as_str) == Some("Event") {
            if let Some(spec) = v.get("spec").filter(|s| s.is_object()) {
                v = spec.clone();
            }
        }
        let obj = v
            .as_object_mut()
            .ok_or("the body must be a JSON object: a Sensu event such as {\"check\": {\"metadata\": {\"name\": \"x\"}, \"status\": 1, \"output\": \"…\"}}")?;
        if obj.get("entity").is_none_or(Value::is_null) {
            obj.insert("entity".into(), self.entity());
        }
        if obj.get("timestamp").is_none_or(Value::is_null) {
            obj.insert("timestamp".into(), json!(now));
        }
        let input = ward_types::event::parse_event(&v, &self.cfg.namespace, now)
            .map_err(|e| e.to_string())?;
        let event = input.to_value();
        // The backend takes events on the agent port for this agent's own entity only
        // (docs/agent-transport.md): say so now rather than queue what it will reject.
        let entity = event["entity"]["metadata"]["name"].as_str().unwrap_or("");
        if entity != self.cfg.name {
            return Err(format!(
                "the event is for entity {:?}; this agent sends events for its own entity ({:?}) only. Post events for other (proxy) entities to the backend's API: POST /api/core/v2/namespaces/{}/events",
                ward_io::text::one_line(entity),
                self.cfg.name,
                self.cfg.namespace
            ));
        }
        let size = serde_json::to_vec(&event).map(|b| b.len()).unwrap_or(0);
        if size > check::MAX_EVENT_BYTES {
            return Err(format!(
                "the event is {size} bytes; one event is at most {} (shorten check.output)",
                check::MAX_EVENT_BYTES
            ));
        }
        Ok(event)
    }
}

/// Runs the agent until `shutdown` resolves: opens the queue (replaying what a previous run
/// left), serves the local API, and keeps a session with one of the backends, reconnecting
/// with backoff. On shutdown the session is closed with 1001 "bye"; the queue keeps
/// whatever was not acknowledged. Fails only at start (the queue or the API port).
pub async fn run(cfg: AgentConfig, shutdown: impl Future<Output = ()>) -> Result<(), String> {
    let (dir, max) = (cfg.cache_dir.clone(), cfg.cache_max_events);
    let queue = tokio::task::spawn_blocking(move || EventQueue::open(&dir, max))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cache-dir: {e}"))?;
    if !queue.is_empty() {
        tracing::info!(
            events = queue.len(),
            "events from an earlier run are waiting; they are sent first"
        );
    }
    warn_about_plaintext(&cfg);
    if let Some(l) = &cfg.allow_list {
        tracing::info!(file = %l.path().display(), entries = l.entries().len(), "checks and hooks run only the commands of the allow list");
    }
    let listener = match &cfg.api {
        Some((host, port)) => Some(
            tokio::net::TcpListener::bind((host.as_str(), *port))
                .await
                .map_err(|e| {
                    format!("api-host/api-port: cannot listen on {host}:{port}: {e}; choose a free api-port or set disable-api")
                })?,
        ),
        None => None,
    };
    let sockets = match &cfg.socket {
        Some((host, port)) => {
            let fix = "choose a free socket-port or set disable-sockets";
            let tcp = tokio::net::TcpListener::bind((host.as_str(), *port))
                .await
                .map_err(|e| {
                    format!(
                        "socket-host/socket-port: cannot listen on TCP {host}:{port}: {e}; {fix}"
                    )
                })?;
            let udp = tokio::net::UdpSocket::bind((host.as_str(), *port))
                .await
                .map_err(|e| {
                    format!(
                        "socket-host/socket-port: cannot listen on UDP {host}:{port}: {e}; {fix}"
                    )
                })?;
            Some((tcp, udp))
        }
        None => None,
    };
    let statsd_udp = match &cfg.statsd {
        Some(sd) => Some(
            tokio::net::UdpSocket::bind((sd.host.as_str(), sd.port))
                .await
                .map_err(|e| {
                    format!(
                        "statsd-metrics-host/statsd-metrics-port: cannot listen on UDP {}:{}: {e}; choose a free statsd-metrics-port or set statsd-disable",
                        sd.host, sd.port
                    )
                })?,
        ),
        None => None,
    };
    let trust = match &cfg.trusted_ca_file {
        Some(ca) => ward_tls::Trust::CaFileAndSystemRoots(ca.clone()),
        None => ward_tls::Trust::SystemRoots {
            fix_key: "trusted-ca-file",
        },
    };
    let assets_dir = cfg.cache_dir.join("assets");
    let (rate, burst) = (cfg.assets_rate_limit, cfg.assets_burst_limit);
    let events_api = Mutex::new(ward_io::rate::Bucket::new(
        cfg.events_rate_limit,
        cfg.events_burst_limit,
    ));
    let assets = tokio::task::spawn_blocking(move || {
        ward_assets::Assets::new(&assets_dir, &trust, ward_assets::Limits::default())
            .map(|a| a.with_fetch_limit(rate, burst))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r)
    .map(Arc::new);
    if let Err(e) = &assets {
        tracing::warn!("runtime assets: {e}; checks that name assets will fail");
    }
    let agent = Arc::new(Agent {
        cfg,
        queue: Arc::new(queue),
        wake: Notify::new(),
        metrics: Metrics::default(),
        entity_config: Mutex::new(None),
        system: Mutex::new(None),
        running: Mutex::new(HashSet::new()),
        checks: Mutex::new(tokio::task::JoinSet::new()),
        assets,
        events_api,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let api = listener.map(|l| {
        if let Ok(a) = l.local_addr() {
            tracing::info!(address = %a, "local agent API listening");
        }
        let mut stop = stop_rx.clone();
        let app = api::router(agent.clone());
        tokio::spawn(async move {
            let served = axum::serve(l, app)
                .with_graceful_shutdown(async move { stopped(&mut stop).await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the local agent API stopped");
            }
        })
    });
    let sockets = sockets.map(|(tcp, udp)| {
        if let Ok(a) = tcp.local_addr() {
            tracing::info!(address = %a, "agent socket listening (TCP and UDP)");
        }
        let mut stop = stop_rx.clone();
        tokio::spawn(socket::serve(agent.clone(), tcp, udp, async move {
            stopped(&mut stop).await
        }))
    });
    let statsd = statsd_udp.zip(agent.cfg.statsd.clone()).map(|(udp, sd)| {
        if let Ok(a) = udp.local_addr() {
            tracing::info!(address = %a, "StatsD listening (UDP)");
        }
        let mut stop = stop_rx.clone();
        tokio::spawn(statsd::serve(agent.clone(), udp, sd, async move {
            stopped(&mut stop).await
        }))
    });
    let mut connection = tokio::spawn(connection_loop(agent.clone(), stop_rx));
    tokio::select! {
        _ = shutdown => {}
        r = &mut connection => {
            return Err(format!("the connection loop ended unexpectedly: {r:?}"));
        }
    }
    tracing::info!("stopping");
    let _ = stop_tx.send(true);
    let _ = connection.await;
    if let Some(api) = api {
        let _ = api.await;
    }
    if let Some(sockets) = sockets {
        let _ = sockets.await;
    }
    if let Some(statsd) = statsd {
        let _ = statsd.await;
    }
    let mut checks = std::mem::take(&mut *agent.checks.lock().unwrap_or_else(|p| p.into_inner()));
    // Checks that finished are reaped first: only those still running are reported.
    while checks.try_join_next().is_some() {}
    if !checks.is_empty() {
        tracing::info!(
            checks = checks.len(),
            "stopping the checks still running; their results are not reported"
        );
    }
    checks.abort_all();
    while checks.join_next().await.is_some() {}
    Ok(())
}

/// Resolves once `stop` is true (or its sender is gone). The `Ref` that `wait_for` returns
/// is not `Send`, so it must not outlive this function.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Logged once at start: credentials over ws://, and a skip-verify that does nothing.
fn warn_about_plaintext(cfg: &AgentConfig) {
    let plain: Vec<String> = cfg
        .backend_urls
        .iter()
        .filter(|u| !u.tls)
        .map(|u| u.to_string())
        .collect();
    if !plain.is_empty() && !cfg.uses_client_cert() {
        tracing::warn!(
            urls = %plain.join(", "),
            user = %cfg.user,
            "the agent's password travels in plaintext to ws:// backends; use wss:// (and trusted-ca-file)"
        );
    }
    if cfg.insecure_skip_tls_verify && cfg.backend_urls.iter().all(|u| !u.tls) {
        tracing::warn!("insecure-skip-tls-verify has no effect: every backend-url is ws://");
    }
}

/// Connects, runs a session, and reconnects with backoff, until `stop`.
async fn connection_loop(agent: Arc<Agent>, mut stop: watch::Receiver<bool>) {
    let cfg = &agent.cfg;
    let mut urls = cfg.backend_urls.clone();
    fastrand::shuffle(&mut urls);
    let mut backoff =
        ward_io::backoff::Backoff::new(cfg.retry_min, cfg.retry_max, cfg.retry_multiplier);
    let mut sessions = 0u64;
    for attempt in 0usize.. {
        if *stop.borrow() {
            return;
        }
        let url = &urls[attempt % urls.len()];
        if url.tls && cfg.insecure_skip_tls_verify {
            tracing::warn!(url = %url, "insecure-skip-tls-verify: the backend's certificate is not verified; anyone in the path can read and change this session");
        }
        let connected = tokio::select! {
            r = transport::connect(cfg, url) => r,
            _ = stopped(&mut stop) => return,
        };
        match connected {
            Ok(ws) => {
                sessions += 1;
                if sessions > 1 {
                    inc(&agent.metrics.reconnects);
                }
                tracing::info!(url = %url, auth = if cfg.uses_client_cert() { "client certificate" } else { "password" }, queued = agent.queue.len(), "connected to the backend");
                agent.metrics.connected.store(1, Ordering::Relaxed);
                let started = Instant::now();
                let end = session::run(&agent, ws, &mut stop).await;
                agent.metrics.connected.store(0, Ordering::Relaxed);
                match end {
                    session::SessionEnd::Shutdown => {
                        tracing::info!(url = %url, "session closed (1001 bye)");
                        return;
                    }
                    session::SessionEnd::Lost(reason) => {
                        tracing::warn!(url = %url, reason = %reason, "lost the session with the backend")
                    }
                }
                // A session that outlived a heartbeat was a working one: start backing off
                // from the beginning.
                if started.elapsed() >= cfg.backend_heartbeat_interval {
                    backoff.reset();
                }
            }
            Err(e) => {
                inc(&agent.metrics.connect_failures);
                match &e {
                    transport::ConnectError::Refused { .. } => {
                        tracing::error!(error = %e, "the backend refused the agent")
                    }
                    _ => tracing::warn!(error = %e, "cannot connect to the backend"),
                }
            }
        }
        let delay = backoff.next_delay();
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "reconnecting after a pause"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut stop) => return,
        }
    }
}

/// The backend's configuration of the entity (`entity_config`: `{metadata, spec}`) over
/// `entity`: labels, annotations, subscriptions, deregistration, keepalive handlers,
/// redact and user. Name, namespace and state stay the agent's; label and annotation
/// values the `redact` list in force names are redacted again.
fn apply_entity_config(entity: &mut Value, config: &Value) {
    let spec = &config["spec"];
    for k in [
        "subscriptions",
        "deregister",
        "deregistration",
        "keepalive_handlers",
        "redact",
        "user",
    ] {
        match spec.get(k) {
            Some(v) if !v.is_null() => entity[k] = v.clone(),
            // None configured in the backend: none. The others keep the agent's value
            // (its redact list above all).
            _ if k == "deregistration" => entity[k] = json!({}),
            _ if k == "keepalive_handlers" => {
                if let Some(o) = entity.as_object_mut() {
                    o.remove(k);
                }
            }
            _ => {}
        }
    }
    let redact: Vec<String> = entity["redact"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for k in ["labels", "annotations"] {
        let map: std::collections::BTreeMap<String, String> =
            serde_json::from_value(config["metadata"][k].clone()).unwrap_or_default();
        entity["metadata"][k] = json!(redacted(&map, &redact));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(dir: &std::path::Path) -> Agent {
        let flags = vec![
            ("password".to_string(), "pw".to_string()),
            ("name".to_string(), "web-1".to_string()),
            ("subscriptions".to_string(), "linux".to_string()),
        ];
        let cfg = AgentConfig::resolve(None, &|_| None, &flags).unwrap();
        Agent {
            queue: Arc::new(EventQueue::open(dir, 10).unwrap()),
            cfg,
            wake: Notify::new(),
            metrics: Metrics::default(),
            entity_config: Mutex::new(None),
            system: Mutex::new(None),
            running: Mutex::new(HashSet::new()),
            checks: Mutex::new(tokio::task::JoinSet::new()),
            assets: Err("not in this test".into()),
            events_api: Mutex::new(ward_io::rate::Bucket::new(0.0, 1)),
        }
    }

    #[test]
    fn posted_events_default_to_this_agent_and_are_checked_like_the_backend_does() {
        let d = tempfile::tempdir().unwrap();
        let a = agent(d.path());
        let ev = a
            .local_event(
                br#"{"check": {"metadata": {"name": "x"}, "status": 1, "output": "hi"}}"#,
                7,
            )
            .unwrap();
        assert_eq!(ev["entity"]["metadata"]["name"], "web-1");
        assert_eq!(ev["entity"]["entity_class"], "agent");
        assert_eq!(
            ev["entity"]["subscriptions"],
            json!(["linux", "entity:web-1"])
        );
        assert_eq!(
            (ev["timestamp"].as_i64(), ev["check"]["executed"].as_i64()),
            (Some(7), Some(7))
        );
        let doc = a
            .local_event(
                br#"{"type": "Event", "spec": {"check": {"metadata": {"name": "y"}}}}"#,
                7,
            )
            .unwrap();
        assert_eq!(doc["check"]["metadata"]["name"], "y");
        // The backend would reject a proxy entity's event from an agent: refused here.
        let proxy = a
            .local_event(br#"{"entity": {"metadata": {"name": "switch-1"}}, "check": {"metadata": {"name": "y"}}}"#, 7)
            .unwrap_err();
        assert!(proxy.contains("own entity (\"web-1\") only"), "{proxy}");
        let cases: &[(&[u8], &str)] = &[
            (b"nope", "the body is not JSON"),
            (b"[1]", "must be a JSON object"),
            (br#"{"status": 1}"#, "status: unknown field in an event"),
            (br#"{"entity": null}"#, "check: is required"),
            (
                br#"{"check": {"metadata": {}}}"#,
                "check.metadata.name: is required",
            ),
            (
                br#"{"check": {"metadata": {"name": "bad name"}}}"#,
                "check.metadata.name",
            ),
            (
                br#"{"check": {"metadata": {"name": "x"}, "status": 300}}"#,
                "check.status: must be an exit status from 0 to 255",
            ),
            (
                br#"{"check": {"metadata": {"name": "x"}, "output": 5}}"#,
                "check.output: must be a string",
            ),
            (
                br#"{"check": {"metadata": {"name": "x", "namespace": "other"}}}"#,
                "check.metadata.namespace",
            ),
        ];
        for (body, want) in cases {
            let e = a.local_event(body, 7).unwrap_err();
            assert!(e.contains(want), "{}: {e}", String::from_utf8_lossy(body));
            assert!(!e.contains('\n'));
        }
        let big = format!(
            r#"{{"check": {{"metadata": {{"name": "x"}}, "output": "{}"}}}}"#,
            "a".repeat(ward_types::agent::MAX_FRAME)
        );
        assert!(a
            .local_event(big.as_bytes(), 7)
            .unwrap_err()
            .contains("at most"));
    }

    #[test]
    fn the_backends_entity_config_is_the_configuration_in_force() {
        let mut e = json!({"metadata": {"name": "a1", "labels": {"region": "eu"}},
            "subscriptions": ["linux", "entity:a1"], "deregister": true,
            "deregistration": {"handler": "dereg"}, "keepalive_handlers": ["k"],
            "redact": ["password"], "system": {"hostname": "h"}, "user": "agent"});
        let config = json!({"metadata": {"name": "a1", "labels": {"region": "us", "password": "x"},
            "annotations": {"api_token": "y"}},
            "spec": {"subscriptions": ["web", "entity:a1"], "deregister": false,
                     "redact": ["api_token"]}});
        apply_entity_config(&mut e, &config);
        assert_eq!(
            e["metadata"]["labels"],
            json!({"region": "us", "password": "x"})
        );
        assert_eq!(
            e["metadata"]["annotations"],
            json!({"api_token": "REDACTED"})
        );
        assert_eq!(e["subscriptions"], json!(["web", "entity:a1"]));
        assert_eq!(e["deregister"], false);
        assert_eq!(e["deregistration"], json!({}));
        assert!(e.get("keepalive_handlers").is_none());
        assert_eq!(e["system"]["hostname"], "h", "state stays the agent's");
        assert_eq!(e["user"], "agent");
    }
}
