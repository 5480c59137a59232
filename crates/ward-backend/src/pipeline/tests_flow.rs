//! Filters with expressions, mutators and Pipelines, through a real store and real
//! processes.

use super::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ward_store::Store;
use ward_testkit::TempDir;

fn put(store: &Store, type_name: &str, name: &str, spec: Value) {
    put_as(store, type_name, "core/v2", name, spec);
}

/// Stores a resource of `type_name` and `api` in the default namespace.
pub(super) fn put_as(store: &Store, type_name: &str, api: &str, name: &str, spec: Value) {
    let doc = serde_json::from_value(json!({
        "type": type_name, "api_version": api,
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .unwrap();
    store
        .put(&ward_types::Resource::from_stored(doc).unwrap(), false)
        .unwrap();
}

fn q(p: &std::path::Path) -> String {
    format!("'{}'", p.display())
}

/// A pipe handler appending its stdin and a newline to `out`, in one write (handlers run
/// at once do not interleave).
fn appender(store: &Store, name: &str, out: &std::path::Path, more: Value) {
    let mut spec = json!({"type": "pipe", "command": format!("s=$(cat); printf '%s\\n' \"$s\" >> {}", q(out))});
    for (k, v) in more.as_object().unwrap() {
        spec[k] = v.clone();
    }
    put(store, "Handler", name, spec);
}

fn lines(p: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// An event with `statuses` folded as the backend stores them, the check naming
/// `handlers`, with `labels` on the entity.
fn event(statuses: &[u64], handlers: &[&str], region: &str) -> Value {
    let mut prev: Option<Value> = None;
    for (i, s) in statuses.iter().enumerate() {
        let body = json!({
            "entity": {"metadata": {"name": "web-1", "labels": {"region": region}}, "subscriptions": ["linux"]},
            "check": {"metadata": {"name": "http"}, "status": s, "output": "out", "handlers": handlers},
        });
        let t = 1_000 + i as i64;
        let input = ward_types::event::parse_event(&body, "default", t).unwrap();
        prev = Some(ward_types::event::apply(prev.as_ref(), &input, t));
    }
    prev.unwrap()
}

pub(super) async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_and_deny_filters_judge_expressions_over_sensus_view() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    put(
        &store,
        "EventFilter",
        "first",
        json!({"action": "allow",
        "expressions": ["event.check.occurrences == 1", "event.entity.labels.region == 'us-west-1'", "event.check.name == 'http'"]}),
    );
    put(
        &store,
        "EventFilter",
        "not_eu",
        json!({"action": "deny", "expressions": ["event.entity.labels.region.indexOf('eu') == 0"]}),
    );
    let out = dir.join("paged");
    appender(
        &store,
        "pager",
        &out,
        json!({"filters": ["is_incident", "first", "not_eu"], "mutator": "only_check_output"}),
    );
    let p = Pipeline::new(store);
    p.handle("default", &event(&[2], &["pager"], "us-west-1")); // paged
    p.handle("default", &event(&[2, 2], &["pager"], "us-west-1")); // occurrences 2
    p.handle("default", &event(&[2], &["pager"], "eu-central-1")); // allow fails (region)
    p.handle("default", &event(&[0], &["pager"], "us-west-1")); // not an incident
    wait_for("the page", || lines(&out).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(lines(&out), vec!["out"]);
    assert_eq!(p.counters.filtered.load(Ordering::Relaxed), 3);
    assert!(p.counters.evaluations.load(Ordering::Relaxed) >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expression_that_loops_is_cut_off_and_the_next_event_is_handled() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    put(
        &store,
        "EventFilter",
        "spin",
        json!({"action": "allow",
        "expressions": ["(function () { while (true) {} })()", "event.check.status == 2"]}),
    );
    put(
        &store,
        "EventFilter",
        "throws",
        json!({"action": "deny", "expressions": ["event.nothing.here == 1"]}),
    );
    let out = dir.join("got");
    appender(
        &store,
        "h",
        &out,
        json!({"filters": ["spin", "throws"], "mutator": "only_check_output"}),
    );
    let p = Pipeline::new(store);
    let started = Instant::now();
    p.handle("default", &event(&[2], &["h"], "x"));
    p.handle("default", &event(&[2], &["h"], "x"));
    // Both pass: the looping and the throwing expressions are skipped, as in Sensu.
    wait_for("both events", || lines(&out).len() == 2).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(p.counters.failures(Reason::Filter), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_and_pipe_mutators_make_the_payload() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    put(
        &store,
        "Mutator",
        "js",
        json!({"type": "javascript", "env_vars": ["TEAM=ops"],
        "eval": "data = JSON.parse(JSON.stringify(event)); return TEAM + ':' + data.check.metadata.name + ':' + data.entity.metadata.labels.region"}),
    );
    put(
        &store,
        "Mutator",
        "js_edit",
        json!({"type": "javascript", "eval": "event.check.output = 'edited'"}),
    );
    put(
        &store,
        "Mutator",
        "upper",
        json!({"command": "tr a-z A-Z | head -c 40"}),
    );
    put(&store, "Mutator", "broken", json!({"command": "exit 3"}));
    let (a, b, c, d) = (dir.join("a"), dir.join("b"), dir.join("c"), dir.join("d"));
    appender(&store, "ha", &a, json!({"mutator": "js"}));
    appender(&store, "hb", &b, json!({"mutator": "js_edit"}));
    appender(&store, "hc", &c, json!({"mutator": "upper"}));
    appender(&store, "hd", &d, json!({"mutator": "broken"}));
    let p = Pipeline::new(store);
    p.handle(
        "default",
        &event(&[2], &["ha", "hb", "hc", "hd"], "us-west-1"),
    );
    wait_for("three payloads", || {
        [&a, &b, &c].iter().all(|f| lines(f).len() == 1)
    })
    .await;
    assert_eq!(lines(&a), vec!["ops:http:us-west-1"]);
    let edited: Value = serde_json::from_str(&lines(&b)[0]).unwrap();
    assert_eq!(edited["check"]["output"], "edited");
    assert!(lines(&c)[0].starts_with("{\"ENTITY\""), "{:?}", lines(&c));
    wait_for("the broken mutator", || {
        p.counters.failures(Reason::Mutator) == 1
    })
    .await;
    assert!(!d.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_run_their_workflows_beside_the_legacy_pipeline() {
    let dir = TempDir::new();
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let (m, i) = (dir.join("metrics"), dir.join("incidents"));
    appender(&store, "metrics_sink", &m, json!({}));
    appender(&store, "incident_sink", &i, json!({}));
    put(
        &store,
        "Pipeline",
        "main",
        json!({"workflows": [
            {"name": "metrics", "filters": [{"name": "has_metrics", "type": "EventFilter", "api_version": "core/v2"}],
             "mutator": {"name": "only_check_output", "type": "Mutator", "api_version": "core/v2"},
             "handler": {"name": "metrics_sink", "type": "Handler", "api_version": "core/v2"}},
            {"name": "incidents", "filters": [{"name": "is_incident", "type": "EventFilter", "api_version": "core/v2"}],
             "handler": {"name": "incident_sink", "type": "Handler", "api_version": "core/v2"}}
        ]}),
    );
    let p = Pipeline::new(store);
    let mut ev = event(&[0], &[], "x");
    ev["check"]["pipelines"] =
        json!([{"name": "main", "type": "Pipeline", "api_version": "core/v2"}]);
    ev["metrics"] = json!({"points": [{"name": "x", "value": 1, "timestamp": 1, "tags": []}]});
    p.handle("default", &ev);
    wait_for("the metrics", || lines(&m).len() == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // An OK event with metrics: the metrics workflow runs, the incident one does not.
    assert_eq!(lines(&m), vec!["out"]);
    assert!(lines(&i).is_empty());
    assert_eq!(p.counters.filtered.load(Ordering::Relaxed), 1);
}
