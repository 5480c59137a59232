//! Deregistration (an agent with `deregister: true`): when the agent leaves — it closes its
//! session itself, or misses its keepalive (as Sensu: the first timeout, before any
//! keepalive event) — its entity and every event of the entity are deleted.
//!
//! What handlers get, as Sensu: each deleted event once more, resolved (status 0, output
//! "Resolving due to entity deregistering", empty history), and, when the agent names a
//! `deregistration-handler`, a `deregistration` event (status 1) for that handler. Unlike
//! Sensu these go straight to the pipeline and are not stored: stored, they would bring
//! back events of an entity that no longer exists.
//!
//! An agent that is connected again (a restart) before its entity is deleted keeps it: the
//! connection is looked at before anything is deleted and again before the entity is.
//! Events it stored in between are kept. Each agent is deregistered once at a time.

use super::keepalived::Routes;
use crate::api::AppState;
use serde_json::{json, Value};
use std::sync::Arc;
use ward_types::Kind;

/// Removes the agent's entity and events and tells the handlers, unless the agent is
/// connected again (a restart) or another deregistration of it is under way.
pub async fn deregister(
    st: Arc<AppState>,
    namespace: String,
    name: String,
    routes: Arc<Routes>,
    why: String,
) {
    let k = &st.agents.keepalived;
    if !k.begin_deregistration(&namespace, &name) {
        return;
    }
    run(&st, &namespace, &name, &routes, &why).await;
    k.end_deregistration(&namespace, &name);
}

async fn run(st: &Arc<AppState>, namespace: &str, name: &str, routes: &Routes, why: &str) {
    let back = |when: &str| {
        let connected = st.agents.connected(namespace, name);
        if connected {
            tracing::info!(agent = %name, namespace = %namespace, "not deregistered: the agent is connected again ({when})");
        }
        connected
    };
    if back("before anything was deleted") {
        return;
    }
    let (namespace, name) = (namespace.to_string(), name.to_string());
    let entity = {
        let (ns, n) = (namespace.clone(), name.clone());
        st.db(move |s| s.get(Kind::Entity, &ns, &n)).await
    };
    let entity = match entity {
        Ok(Some(r)) => r.to_flat(),
        Ok(None) => json!({"metadata": {"name": name, "namespace": namespace}}),
        Err(e) => {
            tracing::error!(agent = %name, error = %e, "deregistration: cannot read the entity; it is kept");
            return;
        }
    };
    // Its events, a page at a time, each deleted and passed on resolved.
    let mut resolved: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = st
            .events
            .events_raw(Some(&namespace), Some(&name), 500, after.as_deref())
            .await;
        let (texts, next) = match page {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(agent = %name, error = ?e, "deregistration: cannot read the entity's events; it is kept");
                return;
            }
        };
        for t in texts {
            let Ok(mut ev) = serde_json::from_str::<Value>(&t) else {
                continue;
            };
            let check = ev
                .pointer("/check/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Err(e) = st.events.delete_event(&namespace, &name, &check).await {
                tracing::warn!(agent = %name, check = %check, error = ?e, "deregistration: an event was not deleted");
            }
            if let Some(c) = ev.get_mut("check").and_then(Value::as_object_mut) {
                c.insert("status".into(), json!(0));
                c.insert(
                    "output".into(),
                    json!("Resolving due to entity deregistering"),
                );
                c.insert("history".into(), json!([]));
            }
            resolved.push(ev);
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if back("its events were deleted; its entity is kept") {
        return;
    }
    let (ns, n) = (namespace.clone(), name.clone());
    if let Err(e) = st.db(move |s| s.delete(Kind::Entity, &ns, &n)).await {
        tracing::warn!(agent = %name, error = %e, "deregistration: the entity was not deleted");
    }
    tracing::info!(agent = %name, namespace = %namespace, events = resolved.len(), "entity deregistered: {why}");
    for ev in &resolved {
        st.pipeline.handle(&namespace, ev);
    }
    // The agent's own handler, else the backend's default (Sensu's precedence).
    let handler = if routes.deregistration_handler.is_empty() {
        st.deregistration_handler.as_str()
    } else {
        routes.deregistration_handler.as_str()
    };
    if !handler.is_empty() {
        let now = ward_types::unix_now();
        let ev = json!({
            "id": crate::auth::new_uuid().unwrap_or_default(),
            "timestamp": now,
            "entity": entity,
            "check": {
                "metadata": {"name": "deregistration", "namespace": namespace},
                "interval": 1,
                "subscriptions": [],
                "command": "",
                "handlers": [handler],
                "status": 1,
                "executed": now,
                "issued": now,
                "output": format!("{name} deregistered: {why}"),
            },
        });
        st.pipeline.handle(&namespace, &ev);
    }
}
