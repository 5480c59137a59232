//! Who owns an agent's entity, through a real backend and agent, as Sensu Go documents it
//! ("Manage agent entities via the backend / via the agent"): once registered, the entity's
//! configuration is the backend's; a change made through the API reaches the running agent
//! as `entity_config` (its events and tokens carry the new labels, its check requests follow
//! the new subscriptions), survives the agent's restart with another agent.yml, and a
//! deleted entity comes back from agent.yml. An agent started with `agent-managed-entity`
//! owns its entity: the API refuses to change it (409) and each start replaces it.

use serde_json::Value;
use std::time::Duration;
use ward_testkit::agent::{password_backend, Agent, AGENT_PASSWORD};
use ward_testkit::backend::Backend;

/// `wait_logged` for 40 s.
fn wait<T>(b: &Backend, a: &Agent, what: &str, f: impl FnMut() -> Option<T>) -> T {
    ward_testkit::agent::wait_logged(40, b, a, what, f)
}

fn entity(b: &Backend, name: &str) -> Option<Value> {
    let out = b
        .ctl()
        .args(["entity", "info", name, "--format", "json"])
        .run();
    out.success()
        .then(|| serde_json::from_str(&out.stdout).ok())
        .flatten()
}

/// Rewrites the agent's agent.yml (its start lines plus `yaml`) and restarts it.
fn restart_with(a: &mut Agent, b: &Backend, yaml: &str) {
    a.kill9();
    let cfg = a.dir.join("agent.yml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let start: String = text
        .lines()
        .take_while(|l| !l.starts_with("backend-url"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        &cfg,
        format!("{start}{}{yaml}", Agent::password_yaml(b, AGENT_PASSWORD)),
    )
    .unwrap();
    a.spawn();
}

fn label<'a>(e: &'a Value, k: &str) -> &'a Value {
    &e["metadata"]["labels"][k]
}

#[test]
fn the_backend_owns_a_registered_agent_entity_and_tells_the_agent() {
    let b = password_backend(&[]);
    b.ctl_login();
    let own = "subscriptions: [linux]\nlabels:\n  region: eu\nkeepalive-interval: 1\n";
    let mut a = Agent::start(
        "a1",
        &format!("{}{own}", Agent::password_yaml(&b, AGENT_PASSWORD)),
    );
    let e = wait(&b, &a, "the entity", || entity(&b, "a1"));
    assert_eq!(label(&e, "region"), "eu", "{e}");
    // A check for a subscription the agent.yml does not name.
    let (ok, out) = b.create(
        "type: CheckConfig\napi_version: core/v2\nmetadata: {name: where}\nspec:\n  command: 'echo region={{ .labels.region }}'\n  subscriptions: [web]\n  interval: 1\n  publish: true\n",
    );
    assert!(ok, "{out}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        b.event("a1", "where").is_none(),
        "a1 is not subscribed to web yet"
    );
    // The API changes the entity's labels and subscriptions, and tries to make it a proxy.
    let (ok, out) = b.create(
        "type: Entity\napi_version: core/v2\nmetadata:\n  name: a1\n  labels: {region: us}\nspec:\n  entity_class: proxy\n  subscriptions: [linux, web]\n",
    );
    assert!(ok, "{out}");
    let ev = wait(&b, &a, "the check on the new subscription", || {
        b.event("a1", "where")
    });
    assert_eq!(
        ev["check"]["output"].as_str().unwrap().trim(),
        "region=us",
        "{ev}"
    );
    assert_eq!(label(&ev["entity"], "region"), "us", "{ev}");
    let e = entity(&b, "a1").unwrap();
    assert_eq!(
        e["entity_class"], "agent",
        "an agent's class stays agent: {e}"
    );
    assert!(
        e["system"]["hostname"]
            .as_str()
            .is_some_and(|h| !h.is_empty()),
        "{e}"
    );
    let subs = e["subscriptions"].to_string();
    assert!(subs.contains("web") && subs.contains("entity:a1"), "{e}");
    // Restarted with another agent.yml, it keeps the backend's configuration.
    restart_with(
        &mut a,
        &b,
        "subscriptions: [linux]\nlabels:\n  region: fr\nkeepalive-interval: 1\n",
    );
    let restarted = ward_types::unix_now();
    let ev = wait(&b, &a, "the check after the restart", || {
        b.event("a1", "where")
            .filter(|ev| ev["check"]["executed"].as_i64() > Some(restarted))
    });
    assert_eq!(
        ev["check"]["output"].as_str().unwrap().trim(),
        "region=us",
        "{ev}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(label(&entity(&b, "a1").unwrap(), "region"), "us");
    // Deleted, it comes back from agent.yml at the next keepalive.
    let out = b
        .ctl()
        .args(["entity", "delete", "a1", "--skip-confirm"])
        .run();
    assert!(out.success(), "{}{}", out.stdout, out.stderr);
    let e = wait(&b, &a, "the entity from agent.yml", || {
        entity(&b, "a1").filter(|e| label(e, "region") == "fr")
    });
    assert!(!e["subscriptions"].to_string().contains("web"), "{e}");
    let log = a.log();
    assert!(
        log.contains("the backend's configuration of this entity is in force"),
        "{log}"
    );
}

#[test]
fn an_agent_managed_entity_is_the_agents_and_the_api_may_not_change_it() {
    let b = password_backend(&[]);
    b.ctl_login();
    let yaml = |region: &str, managed: bool| {
        format!("labels:\n  region: {region}\nkeepalive-interval: 1\nagent-managed-entity: {managed}\ndetect-cloud-provider: true\n")
    };
    let mut a = Agent::start(
        "a2",
        &format!(
            "{}{}",
            Agent::password_yaml(&b, AGENT_PASSWORD),
            yaml("eu", true)
        ),
    );
    let e = wait(&b, &a, "the entity", || entity(&b, "a2"));
    assert_eq!(label(&e, "sensu.io/managed_by"), "sensu-agent", "{e}");
    assert_eq!(label(&e, "region"), "eu", "{e}");
    assert_eq!(
        e["system"]["cloud_provider"],
        ward_io::host::cloud_provider(),
        "{e}"
    );
    // The API may not change it (Sensu answers 409 too).
    let (ok, out) = b.create(
        "type: Entity\napi_version: core/v2\nmetadata:\n  name: a2\n  labels: {region: us}\nspec:\n  entity_class: agent\n",
    );
    assert!(
        !ok && out.contains("managed by its agent"),
        "{out}\n{}",
        b.log()
    );
    // Each start replaces it with agent.yml's.
    restart_with(&mut a, &b, &yaml("fr", true));
    wait(&b, &a, "the restarted agent's labels", || {
        entity(&b, "a2").filter(|e| label(e, "region") == "fr")
    });
    // Started without agent-managed-entity, it hands the entity to the backend: the label
    // goes, the stored configuration stays, and the API may change it again.
    restart_with(&mut a, &b, &yaml("de", false));
    let e = wait(&b, &a, "the released entity", || {
        entity(&b, "a2").filter(|e| label(e, "sensu.io/managed_by").is_null())
    });
    assert_eq!(label(&e, "region"), "fr", "{e}");
    let (ok, out) = b.create(
        "type: Entity\napi_version: core/v2\nmetadata:\n  name: a2\n  labels: {region: us}\nspec:\n  entity_class: agent\n",
    );
    assert!(ok, "{out}\n{}", b.log());
    // Claiming the label through the API is refused.
    let (ok, out) = b.create(
        "type: Entity\napi_version: core/v2\nmetadata:\n  name: a2\n  labels: {sensu.io/managed_by: sensu-agent}\nspec:\n  entity_class: agent\n",
    );
    assert!(!ok && out.contains("only the agent sets it"), "{out}");
}
