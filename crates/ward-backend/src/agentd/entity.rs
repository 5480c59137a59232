//! Who owns an agent's entity, as in Sensu: the backend, once the entity exists. A
//! keepalive creates the entity from the agent's own configuration when there is none;
//! after that keepalives bring only its state (system facts, agent version, `last_seen`),
//! and its configuration (labels, annotations, subscriptions, deregistration, keepalive
//! handlers, redact) is what the API stored. The session sends that configuration to the
//! agent as `entity_config` and routes check requests by its subscriptions.
//!
//! An agent started with `agent-managed-entity` labels its entity
//! `sensu.io/managed_by: sensu-agent`: its keepalives replace the entity whole, and the API
//! refuses to change it (409, as Sensu). An agent that stops managing its entity hands the
//! stored configuration, label removed, to the backend.

use serde_json::{json, Value};
use ward_store::Registration;
use ward_types::agent::{MANAGED_BY_AGENT as AGENT, MANAGED_BY_LABEL as MANAGED_BY};
use ward_types::{agent, Resource};

/// The spec fields that are the agent's state, never the API's. `user` is the user the
/// agent authenticates as: the agent port lets only that user open this entity's sessions,
/// so it is never the API's to change or drop.
const STATE: [&str; 4] = ["system", "sensu_agent_version", "last_seen", "user"];

pub fn agent_managed(r: &Resource) -> bool {
    r.metadata.labels.get(MANAGED_BY).map(String::as_str) == Some(AGENT)
}

/// An agent entity's spec with the state fields of `from` and the class `agent`.
fn agent_state(spec: &mut serde_json::Map<String, Value>, from: &Value) {
    for k in STATE {
        match from.get(k) {
            Some(v) => spec.insert(k.to_string(), v.clone()),
            None => spec.remove(k),
        };
    }
    spec.insert("entity_class".into(), json!("agent"));
}

/// What a keepalive that (re)registers an entity does.
#[derive(Debug)]
pub struct Owned {
    pub registration: Registration,
    /// The entity in force: its configuration decides subscriptions and routes.
    pub effective: Resource,
    /// Whether the agent is sent `effective` as its `entity_config` (not when it manages
    /// its entity itself).
    pub send: bool,
}

/// `own`: the entity as the keepalive describes it; `stored`: the entity in the store.
pub fn decide(own: Resource, stored: Option<Resource>) -> Result<Owned, String> {
    if agent_managed(&own) {
        return Ok(Owned {
            registration: Registration::Replace(own.clone()),
            effective: own,
            send: false,
        });
    }
    let Some(stored) = stored else {
        return Ok(Owned {
            registration: Registration::State(own.clone()),
            effective: own,
            send: true,
        });
    };
    let released = agent_managed(&stored);
    let mut doc = stored.to_document();
    if released {
        doc.metadata.labels.remove(MANAGED_BY);
    }
    if let Value::Object(spec) = &mut doc.spec {
        agent_state(spec, &own.to_document().spec);
    }
    let effective = Resource::from_document(doc)
        .map_err(|e| format!("the stored entity {:?}: {e}", own.metadata.name))?;
    Ok(Owned {
        registration: if released {
            Registration::Replace(effective.clone())
        } else {
            Registration::State(own)
        },
        effective,
        send: true,
    })
}

/// The subscriptions of an entity, its `entity:NAME` included.
pub fn subscriptions(r: &Resource) -> Vec<String> {
    agent::subscriptions_with_entity(
        &r.metadata.name,
        &strings(&r.to_document().spec["subscriptions"]),
    )
}

/// Where its keepalive events go and whether it deregisters, from an entity's
/// configuration (`keepalive-pipelines` are the agent's own: they are not entity fields).
pub fn routes(r: &Resource, pipelines: Vec<String>) -> super::keepalived::Routes {
    let spec = r.to_document().spec;
    super::keepalived::Routes {
        handlers: strings(&spec["keepalive_handlers"]),
        pipelines,
        deregister: spec["deregister"].as_bool().unwrap_or(false),
        deregistration_handler: spec["deregistration"]["handler"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// The `entity_config` payload: the entity as stored.
pub fn config_frame(r: &Resource) -> agent::Frame {
    let d = r.to_document();
    agent::Frame::EntityConfig(json!({"metadata": d.metadata, "spec": d.spec}))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Why an API write of an entity is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// 409: the entity is its agent's.
    Conflict(String),
    /// 400: the body asks for what no API write may do.
    Bad(String),
}

/// An API write of entity `new` where `stored` is: refused for an agent-managed entity (or
/// a body claiming to be one); for an agent's entity, the class stays `agent`, the state
/// fields stay the agent's, `entity:NAME` stays subscribed, and another agent's
/// `entity:OTHER` may not be added (its check requests, secrets included, would reach this
/// agent: the rule the agent port applies to keepalives).
pub fn api_write(new: &mut Resource, stored: Option<&Resource>) -> Result<(), Refused> {
    let name = new.metadata.name.clone();
    if stored.is_some_and(agent_managed) {
        return Err(Refused::Conflict(format!(
            "entity {name:?} is managed by its agent (started with agent-managed-entity): change the agent's configuration and restart it, or delete the entity to let the backend manage it"
        )));
    }
    if agent_managed(new) {
        return Err(Refused::Bad(format!(
            "metadata.labels: {MANAGED_BY}: {AGENT} marks an entity its agent manages (agent-managed-entity); only the agent sets it: remove the label"
        )));
    }
    let Some(stored) = stored else { return Ok(()) };
    let was = stored.to_document();
    if was.spec["entity_class"] != "agent" {
        return Ok(());
    }
    let mut doc = new.to_document();
    if let Value::Object(spec) = &mut doc.spec {
        agent_state(spec, &was.spec);
        let subs = agent::subscriptions_with_entity(
            &name,
            &strings(spec.get("subscriptions").unwrap_or(&Value::Null)),
        );
        if let Some(other) = agent::foreign_entity_subscription(&name, &subs) {
            return Err(Refused::Bad(format!(
                "subscriptions: {other:?} is another agent's; an agent's entity may subscribe to entity:{name} only"
            )));
        }
        spec.insert("subscriptions".into(), json!(subs));
    }
    *new = Resource::from_document(doc).map_err(|e| Refused::Bad(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(labels: Value, spec: Value) -> Resource {
        Resource::from_document(
            serde_json::from_value(json!({"type": "Entity", "api_version": "core/v2",
                "metadata": {"name": "a1", "namespace": "default", "labels": labels}, "spec": spec}))
            .unwrap(),
        )
        .unwrap()
    }

    fn keepalive(labels: Value) -> Resource {
        entity(
            labels,
            json!({"entity_class": "agent", "subscriptions": ["linux", "entity:a1"],
                   "system": {"hostname": "h2"}, "last_seen": 9, "deregister": true}),
        )
    }

    #[test]
    fn the_stored_configuration_wins_and_the_state_is_the_agents() {
        let stored = entity(
            json!({"region": "us"}),
            json!({"entity_class": "proxy", "subscriptions": ["web"], "system": {"hostname": "h1"},
                   "last_seen": 1, "keepalive_handlers": ["pager"]}),
        );
        let o = decide(keepalive(json!({"region": "eu"})), Some(stored)).unwrap();
        assert!(o.send);
        assert!(matches!(o.registration, Registration::State(_)));
        let d = o.effective.to_document();
        assert_eq!(d.metadata.labels["region"], "us");
        assert_eq!(
            d.spec["entity_class"], "agent",
            "a class set to proxy goes back"
        );
        assert_eq!(d.spec["system"]["hostname"], "h2");
        assert_eq!(d.spec["last_seen"], 9);
        assert_eq!(subscriptions(&o.effective), ["web", "entity:a1"]);
        let r = routes(&o.effective, vec![]);
        assert_eq!(r.handlers, ["pager"]);
        assert!(
            !r.deregister,
            "deregister is configuration: the stored entity's"
        );
    }

    #[test]
    fn an_agent_managed_entity_is_the_agents_and_released_it_is_the_backends() {
        let own = keepalive(json!({MANAGED_BY: AGENT, "region": "eu"}));
        let stored = entity(json!({"region": "us"}), json!({"entity_class": "agent"}));
        let o = decide(own.clone(), Some(stored)).unwrap();
        assert!(!o.send && matches!(o.registration, Registration::Replace(_)));
        assert_eq!(o.effective, own);
        let managed = entity(
            json!({MANAGED_BY: AGENT, "region": "fr"}),
            json!({"entity_class": "agent"}),
        );
        let o = decide(keepalive(json!({"region": "eu"})), Some(managed.clone())).unwrap();
        assert!(o.send && matches!(o.registration, Registration::Replace(_)));
        let d = o.effective.to_document();
        assert_eq!(d.metadata.labels.get(MANAGED_BY), None);
        assert_eq!(d.metadata.labels["region"], "fr");
        // The API may not change it, nor claim the label.
        let mut new = entity(json!({"region": "de"}), json!({"entity_class": "agent"}));
        let Refused::Conflict(e) = api_write(&mut new, Some(&managed)).unwrap_err() else {
            panic!("a conflict")
        };
        assert!(e.contains("managed by its agent"), "{e}");
        let Refused::Bad(e) = api_write(&mut managed.clone(), None).unwrap_err() else {
            panic!("a bad request")
        };
        assert!(e.starts_with("metadata.labels: sensu.io/managed_by"), "{e}");
    }

    #[test]
    fn an_api_write_keeps_an_agents_class_state_and_own_subscription() {
        let stored = keepalive(json!({}));
        let mut with_user = stored.to_document();
        with_user.spec["user"] = json!("agent-1");
        let with_user = Resource::from_document(with_user).unwrap();
        let mut new = entity(
            json!({"region": "us"}),
            json!({"entity_class": "proxy", "subscriptions": ["web"], "system": {"hostname": "forged"}}),
        );
        api_write(&mut new, Some(&stored)).unwrap();
        let d = new.to_document();
        assert_eq!(d.spec["entity_class"], "agent");
        assert_eq!(d.spec["system"]["hostname"], "h2");
        assert_eq!(d.spec["subscriptions"], json!(["web", "entity:a1"]));
        // A body without subscriptions (a Sensu example) keeps the agent's own.
        let mut bare = entity(json!({}), json!({"entity_class": "agent"}));
        api_write(&mut bare, Some(&stored)).unwrap();
        assert_eq!(
            bare.to_document().spec["subscriptions"],
            json!(["entity:a1"])
        );
        // Another agent's entity subscription is not the API's to give, nor is the user
        // the agent authenticates as (kept).
        let mut foreign = entity(
            json!({}),
            json!({"entity_class": "agent", "subscriptions": ["entity:a2"], "user": "mallory"}),
        );
        let Refused::Bad(e) = api_write(&mut foreign, Some(&stored)).unwrap_err() else {
            panic!("a bad request")
        };
        assert!(e.contains("\"entity:a2\" is another agent's"), "{e}");
        let mut relabel = entity(
            json!({}),
            json!({"entity_class": "agent", "user": "mallory"}),
        );
        api_write(&mut relabel, Some(&with_user)).unwrap();
        assert_eq!(relabel.to_document().spec["user"], "agent-1");
        // A proxy entity is the API's alone.
        let mut proxy = entity(
            json!({}),
            json!({"entity_class": "proxy", "subscriptions": []}),
        );
        let stored = proxy.clone();
        api_write(&mut proxy, Some(&stored)).unwrap();
        assert_eq!(proxy.to_document().spec["subscriptions"], json!([]));
    }
}
