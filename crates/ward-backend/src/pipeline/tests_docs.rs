//! Sensu's documented EventFilter examples (the corpus in conformance/sensu-docs, taken
//! from sensu/sensu-docs): every expression compiles in Ward's sandbox, and each one whose
//! page states what it lets through makes that decision over Sensu's view of an event.

use super::filter::{filter_view, LIMITS};
use serde_json::{json, Value};
use std::collections::BTreeSet;

fn corpus_expressions() -> BTreeSet<String> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/sensu-docs/resources/EventFilter"
    );
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let Ok(docs) = ward_types::parse_stream(&path.display().to_string(), &text) else {
            continue;
        };
        for r in docs {
            for x in r
                .spec
                .get("expressions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                out.insert(x.as_str().unwrap().to_string());
            }
        }
    }
    out
}

/// An event as the backend stores it, with `edit` applied to its JSON.
fn event(edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = json!({
        "timestamp": 1_700_042_400, // Wednesday 2023-11-15 10:00:00 UTC
        "entity": {"metadata": {"name": "server01", "namespace": "default",
            "labels": {"environment": "production", "region": "us-west-1"}, "annotations": {}},
            "entity_class": "agent", "subscriptions": ["linux", "entity:server01"]},
        "check": {"metadata": {"name": "cpu_metrics", "namespace": "default"}, "status": 2,
            "interval": 60, "occurrences": 1, "history": [{"status": 2, "executed": 1}]},
    });
    edit(&mut v);
    v
}

fn decide(expr: &str, ev: &Value) -> bool {
    let view = filter_view(ev);
    let r = ward_js::with_sandbox(LIMITS, |s| {
        s.predicates("event", &[expr.to_string()], &view)
    })
    .unwrap();
    match &r[0] {
        Ok(b) => *b,
        Err(e) => panic!("{expr}: {e}"),
    }
}

#[test]
fn every_documented_expression_compiles() {
    let all = corpus_expressions();
    assert!(all.len() >= 20, "{all:?}");
    for x in &all {
        assert_eq!(ward_js::check_expression(x), Ok(()), "{x}");
    }
}

#[test]
fn documented_expressions_make_the_documented_decisions() {
    let all = corpus_expressions();
    let now = ward_types::unix_now();
    // (expression as documented, event, what the page says it lets through)
    let cases: Vec<(&str, Value, bool)> = vec![
        // filters.md: "only the first occurrence"
        ("event.check.occurrences == 1", event(|_| {}), true),
        ("event.check.occurrences == 1", event(|e| e["check"]["occurrences"] = json!(2)), false),
        // reduce-alert-fatigue.md: first occurrence and every 60th
        ("event.check.occurrences == 1 || event.check.occurrences % 60 == 0", event(|e| e["check"]["occurrences"] = json!(120)), true),
        ("event.check.occurrences == 1 || event.check.occurrences % 60 == 0", event(|e| e["check"]["occurrences"] = json!(61)), false),
        // once an hour at the check's interval (60 s: every 60th)
        ("event.check.occurrences == 1 || event.check.occurrences % (3600 / event.check.interval) == 0", event(|e| e["check"]["occurrences"] = json!(60)), true),
        ("event.check.occurrences == 1 || event.check.occurrences % (3600 / event.check.interval) == 0", event(|e| e["check"]["occurrences"] = json!(59)), false),
        // production events only (labels, bracket and dot forms)
        ("event.entity.labels['environment'] == 'production'", event(|_| {}), true),
        ("event.entity.labels['environment'] == 'production'", event(|e| e["entity"]["metadata"]["labels"]["environment"] = json!("staging")), false),
        ("event.entity.labels['region'] == 'us-west-1'", event(|_| {}), true),
        // metadata is hoisted: event.check.name
        ("event.check.name.match(/metrics$/)", event(|_| {}), true),
        ("event.check.name.match(/metrics$/)", event(|e| e["check"]["metadata"]["name"] = json!("disk")), false),
        ("event.entity.labels.region.match(/us-west-\\b[1-3]\\b/)", event(|_| {}), true),
        ("event.entity.labels.region.match(/us-west-\\b[1-3]\\b/)", event(|e| e["entity"]["metadata"]["labels"]["region"] = json!("us-west-4")), false),
        // office hours and weekdays, in UTC
        ("hour(event.timestamp) >= 9 && hour(event.timestamp) <= 17", event(|_| {}), true),
        ("hour(event.timestamp) >= 9 && hour(event.timestamp) <= 17", event(|e| e["timestamp"] = json!(1_700_042_400 + 10 * 3600)), false),
        ("weekday(event.timestamp) >= 1 && weekday(event.timestamp) <= 5", event(|_| {}), true),
        ("weekday(event.timestamp) >= 1 && weekday(event.timestamp) <= 5", event(|e| e["timestamp"] = json!(1_700_042_400 + 4 * 86_400)), false),
        // seconds_since: old events only
        ("seconds_since(event.timestamp) > 30", event(|_| {}), true),
        ("seconds_since(event.timestamp) > 30", event(|e| e["timestamp"] = json!(now)), false),
        ("event.check.interval == 60", event(|_| {}), true),
        ("event.check.interval == 30", event(|_| {}), false),
        // the extras
        ("event.has_check", event(|_| {}), true),
    ];
    for (expr, ev, want) in &cases {
        assert!(
            all.contains(*expr),
            "not in the documentation corpus: {expr}"
        );
        assert_eq!(decide(expr, ev), *want, "{expr}");
    }
}

/// A documented Pipeline from the corpus, stored in `store`.
fn put_documented_pipeline(store: &ward_store::Store, file: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../conformance/sensu-docs/resources/Pipeline/"
    )
    .to_string()
        + file;
    let text = std::fs::read_to_string(&path).unwrap();
    let mut r = ward_types::parse_stream(&path, &text).unwrap().remove(0);
    r.metadata.namespace = Some("default".into());
    store.put(&r, false).unwrap();
    r.metadata.name
}

/// A pipe handler `name` that appends each payload's check status to `out`.
fn status_recorder(store: &ward_store::Store, name: &str, out: &std::path::Path) {
    let doc = serde_json::from_value(json!({
        "type": "Handler", "api_version": "core/v2",
        "metadata": {"name": name, "namespace": "default"},
        // One write of one short line (O_APPEND): handlers running at once do not interleave.
        "spec": {"type": "pipe", "command": format!("s=$(sed -n 's/.*\"status\":\\([0-9]*\\).*/\\1/p' | head -c 3); printf '%s\\n' \"$s\" >> '{}'", out.display())},
    }))
    .unwrap();
    store
        .put(&ward_types::Resource::from_stored(doc).unwrap(), false)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_pipelines_route_as_their_pages_say() {
    use super::Pipeline;
    use std::sync::Arc;
    let dir = ward_testkit::TempDir::new();
    let store = Arc::new(ward_store::Store::open(dir.path()).unwrap());
    // filters.md: incident_alerts (is_incident, not_silenced → slack) and
    // metrics_pipeline (has_metrics → influxdb).
    let incidents = put_documented_pipeline(&store, "003.yml");
    let metrics = put_documented_pipeline(&store, "005.yml");
    let (slack, influx) = (dir.join("slack"), dir.join("influx"));
    status_recorder(&store, "slack", &slack);
    status_recorder(&store, "influxdb", &influx);
    let p = Pipeline::new(store);
    let refs = json!([{"name": incidents, "type": "Pipeline", "api_version": "core/v2"},
                      {"name": metrics, "type": "Pipeline", "api_version": "core/v2"}]);
    let send = |status: u64, prev: u64, silenced: bool, with_metrics: bool| {
        let mut ev = event(|e| {
            e["check"]["status"] = json!(status);
            e["check"]["history"] =
                json!([{"status": prev, "executed": 1}, {"status": status, "executed": 2}]);
            e["pipelines"] = refs.clone();
        });
        if silenced {
            ev["check"]["silenced"] = json!(["entity:server01:*"]);
        }
        if with_metrics {
            ev["metrics"] =
                json!({"points": [{"name": "cpu", "value": 1, "timestamp": 1, "tags": []}]});
        }
        p.handle("default", &ev);
    };
    send(2, 0, false, false); // an incident: slack
    send(0, 0, false, true); // OK with metrics: influxdb only
    send(2, 2, true, false); // silenced: nothing
    send(0, 2, false, false); // a resolution: slack
    let lines = |f: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(lines(&slack).len() == 2 && lines(&influx).len() == 1) {
        assert!(
            std::time::Instant::now() < until,
            "slack {:?} influx {:?}",
            lines(&slack),
            lines(&influx)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut got = lines(&slack);
    got.sort();
    assert_eq!(got, vec!["0", "2"]);
    assert_eq!(lines(&influx), vec!["0"]);
}
