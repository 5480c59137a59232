//! The event model: what the backend keeps per (namespace, entity, check) — the latest
//! event with its 21-entry status history, occurrences, the occurrences watermark, last_ok,
//! the flap-detection percentage and the state (passing / failing / flapping).
//!
//! - `history`: the last 21 `{status, executed}` pairs, oldest first.
//! - `occurrences`: how many events in a row had this status (1 when it changed).
//! - `occurrences_watermark`: the highest `occurrences` of the current non-OK run; on the
//!   return to OK it keeps the failing run's count, so a resolution says how long it was
//!   failing; the next failure starts again from 1.
//! - `last_ok`: when the check last returned 0.
//! - `total_state_change`: Sensu's flap-detection percentage: the state changes in the
//!   history, weighted from 0.8 (oldest) to 1.2 (newest); 0 until the history holds 21.
//! - `state`: `flapping` when `total_state_change` ≥ `high_flap_threshold` (or was flapping
//!   and is still above `low_flap_threshold`), otherwise `passing` for status 0 and
//!   `failing` for anything else.

use crate::FieldError;
use serde_json::{json, Map, Value};

/// Entries kept in `history`.
pub const HISTORY: usize = 21;

/// An event as posted, checked. Serializable so that an event waiting to be replayed into
/// PostgreSQL can be kept exactly as it was received.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventInput {
    pub namespace: String,
    pub entity: String,
    pub check: String,
    pub status: u64,
    pub executed: i64,
    /// The posted event, as given (entity and check objects included).
    pub raw: Map<String, Value>,
}

fn fe(field: &str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Parses a posted event: Sensu's bare `{entity, check, …}` or a `{type: Event, spec}`
/// document. `namespace` is the URL's; the event's own, if any, must match.
pub fn parse_event(body: &Value, namespace: &str, now: i64) -> Result<EventInput, FieldError> {
    parse_event_owned(body.clone(), namespace, now)
}

/// `parse_event` of an event the caller no longer needs: nothing is copied.
pub fn parse_event_owned(body: Value, namespace: &str, now: i64) -> Result<EventInput, FieldError> {
    let Value::Object(mut obj) = body else {
        return Err(fe("event", "must be a JSON object"));
    };
    let mut raw = if obj.get("type").is_some() {
        if obj.get("type").and_then(Value::as_str) != Some("Event") {
            return Err(fe("type", "must be Event"));
        }
        match obj.remove("spec") {
            Some(Value::Object(spec)) => spec,
            _ => return Err(fe("spec", "must hold the event")),
        }
    } else {
        obj
    };
    for k in raw.keys() {
        if ![
            "entity",
            "check",
            "timestamp",
            "id",
            "metrics",
            "sequence",
            "pipelines",
        ]
        .contains(&k.as_str())
        {
            return Err(fe(k, "unknown field in an event; known fields: entity, check, timestamp, id, metrics, sequence, pipelines"));
        }
    }
    let name_of = |part: &str| -> Result<String, FieldError> {
        let o = raw
            .get(part)
            .and_then(Value::as_object)
            .ok_or_else(|| fe(part, "is required and must be an object"))?;
        let n = o
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .ok_or_else(|| fe(&format!("{part}.metadata.name"), "is required"))?;
        crate::check_name(&format!("{part}.metadata.name"), n)?;
        if let Some(ns) = o
            .get("metadata")
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
        {
            if !ns.is_empty() && ns != namespace {
                return Err(fe(
                    &format!("{part}.metadata.namespace"),
                    format!("{ns:?} does not match the namespace in the URL ({namespace:?})"),
                ));
            }
        }
        Ok(n.to_string())
    };
    let entity = name_of("entity")?;
    let check = name_of("check")?;
    let c = raw
        .get_mut("check")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| fe("check", "must be an object"))?;
    let status = match c.get("status") {
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_u64()
            .filter(|s| *s <= 255)
            .ok_or_else(|| fe("check.status", "must be an exit status from 0 to 255"))?,
    };
    let executed = match c.get("executed") {
        None | Some(Value::Null) => now,
        Some(v) => v
            .as_i64()
            .ok_or_else(|| fe("check.executed", "must be a Unix time in seconds"))?,
    };
    if let Some(o) = c.get("output") {
        if !o.is_string() {
            return Err(fe("check.output", "must be a string"));
        }
    }
    for k in [
        "interval",
        "timeout",
        "ttl",
        "issued",
        "low_flap_threshold",
        "high_flap_threshold",
    ] {
        if let Some(v) = c.get(k) {
            if !v.is_null() && v.as_u64().is_none() {
                return Err(fe(&format!("check.{k}"), "must be a whole number ≥ 0"));
            }
        }
    }
    c.insert("status".into(), json!(status));
    c.insert("executed".into(), json!(executed));
    Ok(EventInput {
        namespace: namespace.into(),
        entity,
        check,
        status,
        executed,
        raw,
    })
}

/// Sensu's weighted state-change percentage over a status history.
pub fn total_state_change(history: &[u64]) -> u64 {
    // As in Sensu: no verdict until the history is full.
    if history.len() < HISTORY {
        return 0;
    }
    let n = history.len();
    let mut changes = 0.0;
    let mut weight_sum = 0.0;
    for i in 1..n {
        let w = 0.8 + 0.4 * (i as f64) / ((n - 1) as f64);
        weight_sum += w;
        if history[i] != history[i - 1] {
            changes += w;
        }
    }
    ((changes / weight_sum) * 100.0).round() as u64
}

/// What `apply` reads of a stored event, read from its JSON text without building the
/// rest (output, command, entity…): `{"check": {status, history, occurrences,
/// occurrences_watermark, last_ok, state}}`. None when the text is not a stored event.
pub fn fold_state(stored: &str) -> Option<Value> {
    #[derive(serde::Deserialize)]
    struct Stored {
        check: Check,
    }
    #[derive(serde::Deserialize)]
    struct Check {
        status: Option<u64>,
        history: Option<Vec<Value>>,
        occurrences: Option<u64>,
        occurrences_watermark: Option<u64>,
        last_ok: Option<i64>,
        state: Option<String>,
    }
    let s: Stored = serde_json::from_str(stored).ok()?;
    let c = s.check;
    Some(json!({"check": {
        "status": c.status,
        "history": c.history,
        "occurrences": c.occurrences,
        "occurrences_watermark": c.occurrences_watermark,
        "last_ok": c.last_ok,
        "state": c.state,
    }}))
}

/// Folds a new event into the previous one (None for the first), returning the event to store.
pub fn apply(prev: Option<&Value>, input: &EventInput, now: i64) -> Value {
    apply_owned(prev, input.clone(), now)
}

/// `apply` of an event the caller no longer needs: its fields become the stored event's
/// without a copy.
pub fn apply_owned(prev: Option<&Value>, input: EventInput, now: i64) -> Value {
    let prev_check = prev.and_then(|p| p.get("check"));
    let prev_status = prev_check
        .and_then(|c| c.get("status"))
        .and_then(Value::as_u64);
    let mut history: Vec<Value> = prev_check
        .and_then(|c| c.get("history"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    history.push(json!({"status": input.status, "executed": input.executed}));
    if history.len() > HISTORY {
        history.drain(..history.len() - HISTORY);
    }
    let occurrences = match (
        prev_status,
        prev_check
            .and_then(|c| c.get("occurrences"))
            .and_then(Value::as_u64),
    ) {
        (Some(s), Some(o)) if s == input.status => o + 1,
        _ => 1,
    };
    let prev_wm = prev_check
        .and_then(|c| c.get("occurrences_watermark"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let watermark = if input.status == 0 {
        // Back to OK (or still OK): keep the last failing run's count; 1 for a first event.
        if prev.is_some() {
            prev_wm.max(1)
        } else {
            1
        }
    } else if prev_status == Some(input.status) {
        prev_wm.max(occurrences)
    } else {
        occurrences
    };
    let last_ok = if input.status == 0 {
        input.executed
    } else {
        prev_check
            .and_then(|c| c.get("last_ok"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let statuses: Vec<u64> = history
        .iter()
        .filter_map(|h| h.get("status").and_then(Value::as_u64))
        .collect();
    let tsc = total_state_change(&statuses);
    let c = input.raw.get("check").and_then(Value::as_object);
    let high = c
        .and_then(|c| c.get("high_flap_threshold"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let low = c
        .and_then(|c| c.get("low_flap_threshold"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let was_flapping = prev_check
        .and_then(|c| c.get("state"))
        .and_then(Value::as_str)
        == Some("flapping");
    let state = if high > 0 && (tsc >= high || (was_flapping && tsc > low)) {
        "flapping"
    } else if input.status == 0 {
        "passing"
    } else {
        "failing"
    };
    let mut event = input.raw;
    if let Some(Value::Object(check)) = event.get_mut("check") {
        check.insert("history".into(), Value::Array(history));
        check.insert("occurrences".into(), json!(occurrences));
        check.insert("occurrences_watermark".into(), json!(watermark));
        check.insert("last_ok".into(), json!(last_ok));
        check.insert("total_state_change".into(), json!(tsc));
        check.insert("state".into(), json!(state));
        let meta = check.entry("metadata").or_insert_with(|| json!({}));
        if let Value::Object(m) = meta {
            m.insert("namespace".into(), json!(input.namespace));
        }
    }
    if let Some(Value::Object(entity)) = event.get_mut("entity") {
        if let Some(Value::Object(m)) = entity.get_mut("metadata") {
            m.insert("namespace".into(), json!(input.namespace));
        }
    }
    event.insert("timestamp".into(), json!(now));
    Value::Object(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(prev: Option<&Value>, status: u64, t: i64) -> Value {
        let body = json!({"entity": {"metadata": {"name": "web-1"}}, "check": {"metadata": {"name": "http"}, "status": status, "executed": t, "output": "x", "high_flap_threshold": 60, "low_flap_threshold": 20}});
        apply(prev, &parse_event(&body, "default", t).unwrap(), t)
    }

    #[test]
    fn folding_from_the_stored_text_equals_folding_from_the_whole_event() {
        // A long run of statuses (flapping, failing, resolving) folded two ways: from the
        // whole previous event, and from `fold_state` of its stored text.
        let statuses = [
            0u64, 2, 2, 0, 1, 1, 1, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 2, 2, 0, 0, 1,
        ];
        let (mut whole, mut compact) = (post(None, 0, 0), post(None, 0, 0));
        for (t, s) in statuses.iter().enumerate() {
            let t = t as i64 + 1;
            whole = post(Some(&whole), *s, t);
            let prev = fold_state(&compact.to_string()).expect("a stored event");
            compact = post(Some(&prev), *s, t);
            assert_eq!(whole, compact, "status {s} at {t}");
        }
        assert!(fold_state("{\"entity\":{}}").is_none());
        assert!(fold_state("not json").is_none());
    }

    #[test]
    fn occurrences_watermark_and_last_ok_follow_the_status() {
        let mut e = post(None, 0, 100);
        assert_eq!(e["check"]["occurrences"], 1);
        assert_eq!(e["check"]["last_ok"], 100);
        assert_eq!(e["check"]["state"], "passing");
        for (i, t) in (101..104).enumerate() {
            e = post(Some(&e), 2, t);
            assert_eq!(e["check"]["occurrences"], i as u64 + 1);
            assert_eq!(e["check"]["occurrences_watermark"], i as u64 + 1);
            assert_eq!(e["check"]["state"], "failing");
            assert_eq!(e["check"]["last_ok"], 100);
        }
        e = post(Some(&e), 0, 110);
        assert_eq!(e["check"]["occurrences"], 1);
        assert_eq!(
            e["check"]["occurrences_watermark"], 3,
            "the resolution carries how long it failed"
        );
        assert_eq!(e["check"]["last_ok"], 110);
        e = post(Some(&e), 2, 111);
        assert_eq!(e["check"]["occurrences_watermark"], 1);
    }

    #[test]
    fn history_keeps_21_and_flapping_is_detected() {
        let mut e = post(None, 0, 0);
        for t in 1..40 {
            e = post(Some(&e), (t % 2) as u64 * 2, t);
        }
        assert_eq!(e["check"]["history"].as_array().unwrap().len(), HISTORY);
        assert_eq!(e["check"]["total_state_change"], 100);
        assert_eq!(e["check"]["state"], "flapping");
        for t in 40..70 {
            e = post(Some(&e), 0, t);
        }
        assert_eq!(e["check"]["total_state_change"], 0);
        assert_eq!(e["check"]["state"], "passing");
    }

    #[test]
    fn bad_events_name_the_field() {
        let cases = [
            (json!({"check": {"metadata": {"name": "c"}}}), "entity"),
            (
                json!({"entity": {"metadata": {"name": "e"}}, "check": {"metadata": {"name": "c"}, "status": "2"}}),
                "check.status",
            ),
            (
                json!({"entity": {"metadata": {"name": "e", "namespace": "other"}}, "check": {"metadata": {"name": "c"}}}),
                "entity.metadata.namespace",
            ),
            (
                json!({"entity": {"metadata": {"name": "e"}}, "check": {"metadata": {"name": "c"}}, "bogus": 1}),
                "bogus",
            ),
        ];
        for (body, field) in cases {
            let e = parse_event(&body, "default", 0).unwrap_err();
            assert!(e.field.starts_with(field), "{body}: {e}");
        }
    }
}
