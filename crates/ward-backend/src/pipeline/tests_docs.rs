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
