//! Metrics-only events (no `check`): what Sensu's agent sends for StatsD flushes. Sensu's
//! backend hands them to the pipeline and stores nothing; so does Ward's.

use super::fe;
use crate::FieldError;
use serde_json::{json, Value};

/// Whether a posted event is a metrics-only one: `metrics` and no `check`.
pub fn is_metrics_only(event: &Value) -> bool {
    event.get("check").is_none_or(Value::is_null)
        && event.get("metrics").is_some_and(|m| !m.is_null())
}

/// Checks a metrics-only event and completes it: the entity's (and the event's) namespace
/// set to `namespace`, `timestamp` now when missing. Each point needs a `name` and a
/// numeric (or null) `value`; `handlers` must be names.
pub fn parse_metrics_event(event: &Value, namespace: &str, now: i64) -> Result<Value, FieldError> {
    let mut v = event.clone();
    let o = v
        .as_object_mut()
        .ok_or_else(|| fe("event", "must be a JSON object"))?;
    for k in o.keys() {
        if ![
            "entity",
            "metrics",
            "timestamp",
            "id",
            "metadata",
            "pipelines",
        ]
        .contains(&k.as_str())
        {
            return Err(fe(k, "unknown field in a metrics event; known fields: entity, metrics, timestamp, id, metadata, pipelines"));
        }
    }
    let name = o
        .get("entity")
        .and_then(|e| e.pointer("/metadata/name"))
        .and_then(Value::as_str)
        .ok_or_else(|| fe("entity.metadata.name", "is required"))?;
    crate::check_name("", name).map_err(|e| fe("entity.metadata.name", e.reason))?;
    let metrics = o
        .get("metrics")
        .and_then(Value::as_object)
        .ok_or_else(|| fe("metrics", "must be an object with points"))?;
    let points = metrics
        .get("points")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            fe(
                "metrics.points",
                "is required: a list of {name, value, timestamp, tags}",
            )
        })?;
    for (i, p) in points.iter().enumerate() {
        if p.get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(fe(&format!("metrics.points[{i}].name"), "is required"));
        }
        if !p.get("value").is_some_and(|v| v.is_number() || v.is_null()) {
            return Err(fe(
                &format!("metrics.points[{i}].value"),
                "must be a number",
            ));
        }
    }
    if let Some(h) = metrics.get("handlers").filter(|h| !h.is_null()) {
        let names = h
            .as_array()
            .ok_or_else(|| fe("metrics.handlers", "must be a list of handler names"))?;
        for n in names {
            let n = n
                .as_str()
                .ok_or_else(|| fe("metrics.handlers", "must be a list of handler names"))?;
            crate::check_name("", n)
                .map_err(|e| fe("metrics.handlers", format!("{n:?}: {}", e.reason)))?;
        }
    }
    if let Some(e) = o.get_mut("entity").and_then(Value::as_object_mut) {
        if let Some(md) = e.get_mut("metadata").and_then(Value::as_object_mut) {
            md.insert("namespace".into(), json!(namespace));
        }
    }
    o.insert("metadata".into(), json!({"namespace": namespace}));
    if o.get("timestamp").is_none_or(|t| !t.is_i64()) {
        o.insert("timestamp".into(), json!(now));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statsd_flushes_are_metrics_events() {
        let e = json!({"entity": {"metadata": {"name": "web-1"}, "entity_class": "agent"},
                       "metrics": {"handlers": ["influx"], "points": [{"name": "a.value", "value": 1, "timestamp": 5, "tags": []}]}});
        assert!(is_metrics_only(&e));
        let v = parse_metrics_event(&e, "default", 9).unwrap();
        assert_eq!(v["entity"]["metadata"]["namespace"], "default");
        assert_eq!(v["timestamp"], 9);
        for (bad, field) in [
            (json!({"metrics": {"points": []}}), "entity.metadata.name"),
            (
                json!({"entity": {"metadata": {"name": "w"}}, "metrics": {}}),
                "metrics.points",
            ),
            (
                json!({"entity": {"metadata": {"name": "w"}}, "metrics": {"points": [{"value": 1}]}}),
                "metrics.points[0].name",
            ),
            (
                json!({"entity": {"metadata": {"name": "w"}}, "metrics": {"points": [{"name": "x", "value": "1"}]}}),
                "metrics.points[0].value",
            ),
            (
                json!({"entity": {"metadata": {"name": "w"}}, "metrics": {"points": [], "handlers": [1]}}),
                "metrics.handlers",
            ),
            (
                json!({"entity": {"metadata": {"name": "w"}}, "metrics": {"points": []}, "x": 1}),
                "x",
            ),
        ] {
            let err = parse_metrics_event(&bad, "default", 1).unwrap_err();
            assert_eq!(err.field, field, "{bad}: {err}");
        }
        assert!(!is_metrics_only(&json!({"check": {}, "metrics": {}})));
    }
}
