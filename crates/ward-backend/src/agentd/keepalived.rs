//! keepalived: watches every agent's keepalives. An agent silent for longer than its
//! `keepalive-warning-timeout` gets a `keepalive` event with status 1, longer than its
//! `keepalive-critical-timeout` (when set) status 2; its next keepalive is status 0 again,
//! which resolves the incident. Entity writes from keepalives (registration and
//! `last_seen`) are batched into one transaction a second.

use crate::api::AppState;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ward_store::{Registration, Store};
use ward_types::event::EventInput;
use ward_types::Kind;

/// How often silences are looked for, and entity writes committed.
pub const TICK: Duration = Duration::from_secs(1);

#[derive(Clone)]
struct Track {
    last_seen: i64,
    warning: u32,
    critical: u32,
    /// The keepalive status last stored: 0 ok, 1 warning, 2 critical.
    status: u64,
    routes: Arc<Routes>,
}

/// Where an agent's keepalive events go, and whether it deregisters: what its last
/// keepalive said (or, after a backend restart, its stored entity and keepalive event).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// `keepalive-handlers`; empty: Sensu's `keepalive`.
    pub handlers: Vec<String>,
    /// `keepalive-pipelines`: Pipeline names.
    pub pipelines: Vec<String>,
    pub deregister: bool,
    pub deregistration_handler: String,
}

#[derive(Default)]
struct Writes {
    /// The latest registration of each entity.
    register: HashMap<(String, String), Registration>,
    seen: HashMap<(String, String), i64>,
}

/// The keepalive tracker.
#[derive(Default)]
pub struct Keepalived {
    tracks: Mutex<HashMap<(String, String), Track>>,
    writes: Mutex<Writes>,
    /// Agents being deregistered now (each once, whoever noticed first).
    deregistering: Mutex<std::collections::HashSet<(String, String)>>,
}

impl Keepalived {
    /// Queues an entity's registration.
    pub fn register(&self, r: Registration) {
        if let Ok(mut w) = self.writes.lock() {
            let key = (
                r.resource().metadata.namespace.clone().unwrap_or_default(),
                r.resource().metadata.name.clone(),
            );
            w.seen.remove(&key);
            w.register.insert(key, r);
        }
    }

    /// Queues a `last_seen` update.
    pub fn seen(&self, namespace: &str, name: &str, at: i64) {
        if let Ok(mut w) = self.writes.lock() {
            w.seen.insert((namespace.to_string(), name.to_string()), at);
        }
    }

    /// Records a keepalive; returns the status the agent had (non-zero: it was silent).
    pub fn touch(
        &self,
        namespace: &str,
        name: &str,
        now: i64,
        (warning, critical): (u32, u32),
        routes: Arc<Routes>,
    ) -> u64 {
        let Ok(mut t) = self.tracks.lock() else {
            return 0;
        };
        let track = Track {
            last_seen: now,
            warning,
            critical,
            status: 0,
            routes,
        };
        t.insert((namespace.to_string(), name.to_string()), track)
            .map(|old| old.status)
            .unwrap_or(0)
    }

    /// Puts back the status an unstored keepalive event had claimed, unless the agent has
    /// been heard from since: the next tick tries again.
    fn revert(&self, namespace: &str, name: &str, last_seen: i64, status: u64) {
        if let Ok(mut t) = self.tracks.lock() {
            if let Some(tr) = t.get_mut(&(namespace.to_string(), name.to_string())) {
                if tr.last_seen == last_seen && tr.status >= status {
                    tr.status = status.saturating_sub(1).min(tr.status);
                }
            }
        }
    }

    /// Tracks an agent known from the store (after a backend restart) as last seen at
    /// `last_seen`, unless a keepalive already arrived.
    fn seed(&self, namespace: &str, name: &str, track: Track) {
        if let Ok(mut t) = self.tracks.lock() {
            t.entry((namespace.to_string(), name.to_string()))
                .or_insert(track);
        }
    }

    /// Whether the agent's last keepalive event is a warning or critical one.
    pub fn failing(&self, namespace: &str, name: &str) -> bool {
        self.tracks.lock().is_ok_and(|t| {
            t.get(&(namespace.to_string(), name.to_string()))
                .is_some_and(|tr| tr.status > 0)
        })
    }

    /// Marks an agent as being deregistered; false when it already is.
    pub(super) fn begin_deregistration(&self, namespace: &str, name: &str) -> bool {
        self.deregistering
            .lock()
            .is_ok_and(|mut d| d.insert((namespace.to_string(), name.to_string())))
    }

    pub(super) fn end_deregistration(&self, namespace: &str, name: &str) {
        if let Ok(mut d) = self.deregistering.lock() {
            d.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// Stops watching an agent and drops its queued entity writes (it is deregistered).
    pub(super) fn forget(&self, namespace: &str, name: &str) {
        let key = (namespace.to_string(), name.to_string());
        if let Ok(mut t) = self.tracks.lock() {
            t.remove(&key);
        }
        if let Ok(mut w) = self.writes.lock() {
            w.register.remove(&key);
            w.seen.remove(&key);
        }
    }

    /// The agents whose silence crossed a timeout since the last call, with the new status
    /// (marked as stored).
    fn due(&self, now: i64) -> Vec<(String, String, u64, Track)> {
        let Ok(mut t) = self.tracks.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ((ns, name), tr) in t.iter_mut() {
            let silent = now - tr.last_seen;
            let status = if tr.critical > 0 && silent > tr.critical as i64 {
                2
            } else if silent > tr.warning as i64 {
                1
            } else {
                0
            };
            if status > tr.status {
                tr.status = status;
                out.push((ns.clone(), name.clone(), status, tr.clone()));
            }
        }
        out
    }

    fn flush(&self, store: &Store) {
        let w = match self.writes.lock() {
            Ok(mut w) => std::mem::take(&mut *w),
            Err(_) => return,
        };
        if w.register.is_empty() && w.seen.is_empty() {
            return;
        }
        let seen: Vec<(String, String, i64)> =
            w.seen.into_iter().map(|((ns, n), t)| (ns, n, t)).collect();
        let register: Vec<Registration> = w.register.into_values().collect();
        if let Err(e) = store.write_entities(&register, &seen) {
            tracing::error!(error = %e, entities = register.len() + seen.len(), "could not write agent entities; trying again in a second");
            // Back into the next batch, behind anything newer.
            if let Ok(mut next) = self.writes.lock() {
                for r in register {
                    let key = (
                        r.resource().metadata.namespace.clone().unwrap_or_default(),
                        r.resource().metadata.name.clone(),
                    );
                    next.register.entry(key).or_insert(r);
                }
                for (ns, n, t) in seen {
                    next.seen.entry((ns, n)).or_insert(t);
                }
            }
        }
    }
}

/// A keepalive event for `name`: status 0 from a keepalive, 1 or 2 from a silence. Its
/// handlers are the agent's `keepalive-handlers` (Sensu's `keepalive` when it has none),
/// its `pipelines` the agent's `keepalive-pipelines`.
#[allow(clippy::too_many_arguments)]
pub fn keepalive_event(
    namespace: &str,
    name: &str,
    status: u64,
    output: String,
    now: i64,
    interval: u32,
    (warning, critical): (u32, u32),
    routes: &Routes,
) -> Result<EventInput, ward_types::FieldError> {
    let handlers = if routes.handlers.is_empty() {
        vec![KEEPALIVE_HANDLER.to_string()]
    } else {
        routes.handlers.clone()
    };
    let pipelines: Vec<serde_json::Value> = routes
        .pipelines
        .iter()
        .map(|p| json!({"name": p, "type": "Pipeline", "api_version": "core/v2"}))
        .collect();
    let mut v = json!({
        "entity": {"metadata": {"name": name, "namespace": namespace}, "entity_class": "agent"},
        "check": {
            "metadata": {"name": ward_types::agent::KEEPALIVE_CHECK, "namespace": namespace},
            "status": status,
            "output": output,
            "executed": now,
            "issued": now,
            "interval": interval,
            "timeout": warning,
            "ttl": critical,
            "handlers": handlers,
        },
        "timestamp": now,
    });
    if !pipelines.is_empty() {
        v["pipelines"] = json!(pipelines);
    }
    ward_types::event::parse_event(&v, namespace, now)
}

use ward_types::unix_now;

/// Sensu's default handler of keepalive events.
pub const KEEPALIVE_HANDLER: &str = "keepalive";

/// Seeds the tracker from the agents the store knows (so an agent that never comes back
/// after a backend restart still raises its keepalive event), then watches.
pub async fn run(st: Arc<AppState>) {
    let seed_state = st.clone();
    let started = unix_now();
    let seeded = tokio::task::spawn_blocking(move || seed(&seed_state, started)).await;
    match seeded {
        Ok(Ok(n)) if n > 0 => tracing::info!(
            agents = n,
            "keepalived: watching the agents the store knows"
        ),
        Ok(Err(e)) => tracing::warn!(error = %e, "keepalived: could not read the known agents"),
        _ => {}
    }
    let writer = st.clone();
    std::thread::Builder::new()
        .name("ward-entities".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            writer.agents.keepalived.flush(&writer.store);
        })
        .ok();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let now = unix_now();
        for (ns, name, status, tr) in st.agents.keepalived.due(now) {
            let silent = now - tr.last_seen;
            if tr.routes.deregister {
                // Sensu deregisters at the first missed keepalive, instead of an event.
                st.agents.keepalived.forget(&ns, &name);
                tokio::spawn(super::deregister::deregister(
                    st.clone(),
                    ns,
                    name,
                    tr.routes.clone(),
                    format!("no keepalive for {silent} seconds"),
                ));
                continue;
            }
            let limit = if status == 2 { tr.critical } else { tr.warning };
            let output = format!(
                "No keepalive sent from {name} for {silent} seconds (>= {limit}: the {} timeout)",
                if status == 2 { "critical" } else { "warning" }
            );
            tracing::warn!(agent = %name, namespace = %ns, silent, status, "keepalive timeout");
            let input = match keepalive_event(
                &ns,
                &name,
                status,
                output,
                now,
                0,
                (tr.warning, tr.critical),
                &tr.routes,
            ) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(agent = %name, error = %e, "keepalive event not built");
                    continue;
                }
            };
            let st = st.clone();
            tokio::spawn(async move {
                if let Err(e) = st.store_event(input).await {
                    tracing::error!(agent = %name, error = %e, "keepalive event not stored; trying again");
                    st.agents
                        .keepalived
                        .revert(&ns, &name, tr.last_seen, status);
                }
            });
        }
    }
}

/// `started`: the backend's start. An agent is watched from its `last_seen` or from then,
/// whichever is later, so that a backend that was down does not raise a warning for every
/// agent before they could reconnect.
fn seed(st: &AppState, started: i64) -> Result<usize, String> {
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let (page, next) = st
            .store
            .list(Kind::Entity, None, 1000, after.as_deref())
            .map_err(|e| e.to_string())?;
        for r in &page {
            if r.spec.get("entity_class").and_then(|v| v.as_str()) != Some("agent") {
                continue;
            }
            let Some(last_seen) = r.spec.get("last_seen").and_then(|v| v.as_i64()) else {
                continue;
            };
            let ns = r.metadata.namespace.clone().unwrap_or_default();
            let ka = st
                .store
                .event(&ns, &r.metadata.name, ward_types::agent::KEEPALIVE_CHECK)
                .ok()
                .flatten();
            let check = ka.as_ref().and_then(|e| e.get("check"));
            let num = |k: &str, d: u64| {
                check
                    .and_then(|c| c.get(k))
                    .and_then(|v| v.as_u64())
                    .unwrap_or(d)
            };
            let strings = |v: Option<&serde_json::Value>| -> Vec<String> {
                v.and_then(|v| v.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let routes = Routes {
                handlers: strings(r.spec.get("keepalive_handlers")),
                pipelines: ka
                    .as_ref()
                    .and_then(|e| e.get("pipelines"))
                    .and_then(|p| p.as_array())
                    .map(|a| {
                        a.iter()
                            .filter_map(|p| p.get("name").and_then(|n| n.as_str()))
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
                deregister: r.spec.get("deregister").and_then(|v| v.as_bool()) == Some(true),
                deregistration_handler: r
                    .spec
                    .get("deregistration")
                    .and_then(|d| d.get("handler"))
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string(),
            };
            st.agents.keepalived.seed(
                &ns,
                &r.metadata.name,
                Track {
                    last_seen: last_seen.max(started),
                    warning: num("timeout", 120) as u32,
                    critical: num("ttl", 0) as u32,
                    status: num("status", 0),
                    routes: Arc::new(routes),
                },
            );
            n += 1;
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(n),
        }
    }
}
