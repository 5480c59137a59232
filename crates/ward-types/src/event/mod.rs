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

use crate::raw::{self, NotAnObject, RawObject};
use crate::FieldError;
use serde_json::Value;

/// Entries kept in `history`.
pub const HISTORY: usize = 21;

/// An event as posted, checked. It keeps the posted members' text (`RawObject`): only the
/// fields checked here are parsed, and `prepare` writes the rest out again as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInput {
    pub namespace: String,
    pub entity: String,
    pub check: String,
    pub status: u64,
    pub executed: i64,
    /// The posted event's members, in order (`entity` and `check` as posted).
    raw: RawObject,
    /// The posted `entity`, one level down.
    entity_object: RawObject,
    /// The posted `check`, one level down, with `status` and `executed` set.
    check_object: RawObject,
    /// Their `metadata`, with `namespace` set: what is stored.
    entity_metadata: RawObject,
    check_metadata: RawObject,
    /// The event's own `metadata` (labels, annotations), with `namespace` set.
    metadata: RawObject,
    /// The posted `timestamp`, kept when given (else the time it is stored).
    timestamp: Option<i64>,
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
    let obj = RawObject::from_value(body).ok_or_else(|| fe("event", "must be a JSON object"))?;
    parse_event_object(obj, namespace, now)
}

/// `parse_event` of a JSON text (a request body, an agent's frame).
pub fn parse_event_slice(body: &[u8], namespace: &str, now: i64) -> Result<EventInput, EventError> {
    match RawObject::from_slice(body) {
        Ok(obj) => parse_event_object(obj, namespace, now).map_err(EventError::Field),
        Err(NotAnObject::Kind) => Err(EventError::Field(fe("event", "must be a JSON object"))),
        Err(NotAnObject::Json(e)) => Err(EventError::Json(e)),
    }
}

/// Why a JSON text is not an event.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("{0}")]
    Field(FieldError),
}

/// `parse_event` of an object already read (an agent's event frame).
pub fn parse_event_object(
    obj: RawObject,
    namespace: &str,
    now: i64,
) -> Result<EventInput, FieldError> {
    let raw = match obj.get("type") {
        None => obj,
        Some(t) => {
            if raw::as_string(t).as_deref() != Some("Event") {
                return Err(fe("type", "must be Event"));
            }
            match obj.get("spec").and_then(RawObject::parse) {
                Some(spec) => spec,
                None => return Err(fe("spec", "must hold the event")),
            }
        }
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
            "metadata",
        ]
        .contains(&k)
        {
            return Err(fe(k, "unknown field in an event; known fields: entity, check, timestamp, id, metrics, sequence, pipelines, metadata"));
        }
    }
    // The event's own metadata: labels and annotations; never a name (as Sensu); its
    // namespace is the URL's.
    let mut metadata = match raw.get("metadata") {
        None => RawObject::default(),
        Some(v) if raw::is_null(v) => RawObject::default(),
        Some(v) => RawObject::parse(v).ok_or_else(|| fe("metadata", "must be an object"))?,
    };
    if metadata
        .get("name")
        .and_then(raw::as_string)
        .is_some_and(|n| !n.is_empty())
    {
        return Err(fe(
            "metadata.name",
            "an event has no name of its own (it is ENTITY/CHECK); remove it",
        ));
    }
    if let Some(ns) = metadata.get("namespace").and_then(raw::as_string) {
        if !ns.is_empty() && ns != namespace {
            return Err(fe(
                "metadata.namespace",
                format!("{ns:?} does not match the namespace in the URL ({namespace:?})"),
            ));
        }
    }
    metadata.insert("namespace", &namespace);
    let timestamp = match raw.get("timestamp") {
        Some(v) if !raw::is_null(v) => Some(
            raw::as_i64(v)
                .filter(|t| *t > 0)
                .ok_or_else(|| fe("timestamp", "must be a Unix time in seconds"))?,
        ),
        _ => None,
    };
    let part = |part: &str| -> Result<(String, RawObject, RawObject), FieldError> {
        let o = raw
            .get(part)
            .and_then(RawObject::parse)
            .ok_or_else(|| fe(part, "is required and must be an object"))?;
        let field = || format!("{part}.metadata.name");
        let mut meta = o
            .get("metadata")
            .and_then(RawObject::parse)
            .ok_or_else(|| fe(&field(), "is required"))?;
        let n = meta
            .get("name")
            .and_then(raw::as_string)
            .ok_or_else(|| fe(&field(), "is required"))?;
        crate::check_name("", &n).map_err(|e| fe(&field(), e.reason))?;
        if let Some(ns) = meta.get("namespace").and_then(raw::as_string) {
            if !ns.is_empty() && ns != namespace {
                return Err(fe(
                    &format!("{part}.metadata.namespace"),
                    format!("{ns:?} does not match the namespace in the URL ({namespace:?})"),
                ));
            }
        }
        meta.insert("namespace", &namespace);
        Ok((n, o, meta))
    };
    let (entity, entity_object, entity_metadata) = part("entity")?;
    let (check, mut c, check_metadata) = part("check")?;
    let status = match c.get("status") {
        Some(v) if !raw::is_null(v) => raw::as_u64(v)
            .filter(|s| *s <= 255)
            .ok_or_else(|| fe("check.status", "must be an exit status from 0 to 255"))?,
        _ => 0,
    };
    let executed = match c.get("executed") {
        Some(v) if !raw::is_null(v) => {
            raw::as_i64(v).ok_or_else(|| fe("check.executed", "must be a Unix time in seconds"))?
        }
        _ => now,
    };
    if let Some(o) = c.get("output") {
        if raw::as_string(o).is_none() {
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
            if !raw::is_null(v) && raw::as_u64(v).is_none() {
                return Err(fe(&format!("check.{k}"), "must be a whole number ≥ 0"));
            }
        }
    }
    c.insert("status", &status);
    c.insert("executed", &executed);
    Ok(EventInput {
        namespace: namespace.into(),
        entity,
        check,
        status,
        executed,
        raw,
        entity_object,
        check_object: c,
        entity_metadata,
        check_metadata,
        metadata,
        timestamp,
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

/// One entry of a check's status history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    pub status: u64,
    pub executed: i64,
}

/// The check's state after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum State {
    #[default]
    Passing,
    Failing,
    Flapping,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Passing => "passing",
            State::Failing => "failing",
            State::Flapping => "flapping",
        }
    }
}

/// What the backend carries from one event of a check to the next: the fields of the
/// stored event's `check` that an event folds. Small and typed, so that a writer can keep
/// it, read it from a stored event's text without building the rest (output, command,
/// entity…), or from PostgreSQL's columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fold {
    /// None when the stored event has no status (not written by Ward).
    pub status: Option<u64>,
    pub history: Vec<HistoryEntry>,
    pub occurrences: u64,
    pub occurrences_watermark: u64,
    pub last_ok: i64,
    pub total_state_change: u64,
    pub state: State,
}

impl Fold {
    /// The fold of a stored event's JSON text. None when the text is not a stored event.
    pub fn from_stored(stored: &str) -> Option<Fold> {
        #[derive(serde::Deserialize)]
        struct Stored {
            check: Check,
        }
        #[derive(serde::Deserialize)]
        struct Check {
            status: Option<u64>,
            history: Option<Vec<HistoryEntry>>,
            occurrences: Option<u64>,
            occurrences_watermark: Option<u64>,
            last_ok: Option<i64>,
            total_state_change: Option<u64>,
            state: Option<String>,
        }
        let c = serde_json::from_str::<Stored>(stored).ok()?.check;
        Some(Fold {
            status: c.status,
            history: c.history.unwrap_or_default(),
            occurrences: c.occurrences.unwrap_or(0),
            occurrences_watermark: c.occurrences_watermark.unwrap_or(0),
            last_ok: c.last_ok.unwrap_or(0),
            total_state_change: c.total_state_change.unwrap_or(0),
            state: State::parse(c.state.as_deref()),
        })
    }

    /// The fold after `event`, `prev` being the check's fold before it (None: its first).
    pub fn next(prev: Option<&Fold>, event: &Prepared) -> Fold {
        let prev_status = prev.and_then(|p| p.status);
        let mut history = Vec::with_capacity(HISTORY);
        if let Some(p) = prev {
            let skip = (p.history.len() + 1).saturating_sub(HISTORY);
            history.extend_from_slice(&p.history[skip.min(p.history.len())..]);
        }
        history.push(HistoryEntry {
            status: event.status,
            executed: event.executed,
        });
        let occurrences = match (prev_status, prev) {
            (Some(s), Some(p)) if s == event.status => p.occurrences + 1,
            _ => 1,
        };
        let prev_wm = prev.map_or(0, |p| p.occurrences_watermark);
        let occurrences_watermark = if event.status == 0 {
            // Back to OK (or still OK): keep the last failing run's count; 1 for a first event.
            if prev.is_some() {
                prev_wm.max(1)
            } else {
                1
            }
        } else if prev_status == Some(event.status) {
            prev_wm.max(occurrences)
        } else {
            occurrences
        };
        let last_ok = if event.status == 0 {
            event.executed
        } else {
            prev.map_or(0, |p| p.last_ok)
        };
        let statuses: Vec<u64> = history.iter().map(|h| h.status).collect();
        let tsc = total_state_change(&statuses);
        let was_flapping = prev.is_some_and(|p| p.state == State::Flapping);
        let (high, low) = (event.high_flap_threshold, event.low_flap_threshold);
        let state = if high > 0 && (tsc >= high || (was_flapping && tsc > low)) {
            State::Flapping
        } else if event.status == 0 {
            State::Passing
        } else {
            State::Failing
        };
        Fold {
            status: Some(event.status),
            history,
            occurrences,
            occurrences_watermark,
            last_ok,
            total_state_change: tsc,
            state,
        }
    }

    /// `history` as JSON text: `[{"status":0,"executed":…},…]`.
    pub fn history_json(&self) -> String {
        let mut s = String::with_capacity(2 + 40 * self.history.len());
        self.write_history(&mut s);
        s
    }

    fn write_history(&self, s: &mut String) {
        // itoa rather than `write!`: this runs 21 times per stored event, and core::fmt
        // was a measurable share of the writers' time.
        let mut n = itoa::Buffer::new();
        s.push('[');
        for (i, h) in self.history.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push_str("{\"status\":");
            s.push_str(n.format(h.status));
            s.push_str(",\"executed\":");
            s.push_str(n.format(h.executed));
            s.push('}');
        }
        s.push(']');
    }
}

impl State {
    /// A stored `state`; anything but `flapping` and `failing` is passing.
    pub fn parse(s: Option<&str>) -> State {
        match s {
            Some("flapping") => State::Flapping,
            Some("failing") => State::Failing,
            _ => State::Passing,
        }
    }
}

/// The `check` fields the fold writes; an event's own values for them are replaced.
const FOLDED: [&str; 6] = [
    "history",
    "occurrences",
    "occurrences_watermark",
    "last_ok",
    "total_state_change",
    "state",
];

/// An event ready to be folded and stored: what the fold reads, and the event's JSON text
/// up to the end of its check's own fields, so that the writer — one thread for a whole
/// fleet — only appends the fold and the timestamp (`render`) instead of building and
/// serialising the event. Serializable, so that an event waiting to be replayed into
/// PostgreSQL is kept exactly as it was received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Prepared {
    pub namespace: String,
    pub entity: String,
    pub check: String,
    pub status: u64,
    pub executed: i64,
    pub high_flap_threshold: u64,
    pub low_flap_threshold: u64,
    /// The check's `ttl` when the backend watches it (see [`EventInput::prepare`]), else 0.
    pub ttl: u64,
    /// `{…,"check":{…` — the event (namespaces set) with `check` last and left open,
    /// without the fold's fields and `timestamp`.
    pub head: String,
    /// The posted timestamp; None: the time it is stored.
    pub timestamp: Option<i64>,
}

impl EventInput {
    /// Whether the event was posted with an `id`.
    pub fn has_id(&self) -> bool {
        self.raw
            .get("id")
            .and_then(raw::as_string)
            .is_some_and(|s| !s.is_empty())
    }

    /// Sets the event's `id` (a UUID, as Sensu gives events posted without one).
    pub fn set_id(&mut self, id: &str) {
        self.raw.insert("id", &id);
    }

    /// Whether the event names handlers or pipelines (in `check.handlers`,
    /// `check.pipelines`, the event's `pipelines` or `metrics.handlers`): only then does the
    /// pipeline need it once stored.
    pub fn has_handlers(&self) -> bool {
        let named = |o: Option<&serde_json::value::RawValue>| {
            o.and_then(|h| serde_json::from_str::<Vec<Value>>(h.get()).ok())
                .is_some_and(|h| !h.is_empty())
        };
        named(self.check_object.get("handlers"))
            || named(self.check_object.get("pipelines"))
            || named(self.raw.get("pipelines"))
            || self
                .raw
                .get("metrics")
                .and_then(RawObject::parse)
                .is_some_and(|m| named(m.get("handlers")))
    }

    /// The check's `proxy_entity_name`, when it names an entity other than the event's.
    pub fn proxy_entity_name(&self) -> Option<String> {
        self.check_object
            .get("proxy_entity_name")
            .and_then(raw::as_string)
            .filter(|p| !p.is_empty() && *p != self.entity)
    }

    /// Files the event under `entity` (a stored Entity, flat: `{metadata, entity_class, …}`),
    /// as Sensu's eventd does for a check with `proxy_entity_name`.
    pub fn set_entity(&mut self, entity: &Value) -> Result<(), FieldError> {
        let o = RawObject::from_value(entity).ok_or_else(|| fe("entity", "must be an object"))?;
        let mut meta = o
            .get("metadata")
            .and_then(RawObject::parse)
            .ok_or_else(|| fe("entity.metadata", "is required"))?;
        let name = meta
            .get("name")
            .and_then(raw::as_string)
            .ok_or_else(|| fe("entity.metadata.name", "is required"))?;
        meta.insert("namespace", &self.namespace);
        self.entity = name;
        self.entity_object = o;
        self.entity_metadata = meta;
        Ok(())
    }

    /// The posted entity's `entity_class`, if it says one.
    pub fn entity_class(&self) -> Option<String> {
        self.entity_object
            .get("entity_class")
            .and_then(raw::as_string)
    }

    /// The event as checked (its check's `status` and `executed` set), as a `Value`.
    pub fn to_value(&self) -> Value {
        let mut s = String::with_capacity(256);
        s.push('{');
        self.raw.write_members(&mut s, |k, v, out| match k {
            "entity" => self.entity_object.write_json(out),
            "check" => self.check_object.write_json(out),
            _ => out.push_str(v.get()),
        });
        s.push('}');
        serde_json::from_str(&s).unwrap_or(Value::Null)
    }

    /// The event, serialised once, ready for a writer (see `Prepared`): the posted text,
    /// copied, with `timestamp` and the posted fold fields left out, namespaces set, and
    /// `check` moved last (the posted members keep their order).
    pub fn prepare(self) -> Prepared {
        let threshold = |k: &str| self.check_object.get(k).and_then(raw::as_u64).unwrap_or(0);
        let (high, low) = (
            threshold("high_flap_threshold"),
            threshold("low_flap_threshold"),
        );
        // A round-robin check's results land on a different agent's entity each time, so
        // none is missing one: as in Sensu, its TTL is watched only with a proxy entity.
        let round_robin = self.check_object.get("round_robin").map(|v| v.get()) == Some("true");
        let proxied = self
            .check_object
            .get("proxy_entity_name")
            .and_then(raw::as_string)
            .is_some_and(|p| !p.is_empty());
        let ttl = if round_robin && !proxied {
            0
        } else {
            threshold("ttl")
        };
        let mut head = String::with_capacity(
            self.raw
                .iter()
                .map(|(_, v)| v.get().len() + 16)
                .sum::<usize>()
                + 64,
        );
        head.push('{');
        let n = self.raw.write_members(&mut head, |k, v, out| match k {
            "timestamp" | "check" => {}
            "entity" => {
                out.push('{');
                write_stored(&self.entity_object, &self.entity_metadata, &[], out);
                out.push('}');
            }
            "metadata" => self.metadata.write_json(out),
            _ => out.push_str(v.get()),
        });
        if n > 0 {
            head.push(',');
        }
        if self.raw.get("metadata").is_none() {
            raw::write_key(&mut head, "metadata");
            self.metadata.write_json(&mut head);
            head.push(',');
        }
        raw::write_key(&mut head, "check");
        head.push('{');
        // parse_event set status and executed: the check is never empty, so the fold's
        // fields follow a comma.
        write_stored(&self.check_object, &self.check_metadata, &FOLDED, &mut head);
        Prepared {
            namespace: self.namespace,
            entity: self.entity,
            check: self.check,
            status: self.status,
            executed: self.executed,
            high_flap_threshold: high,
            low_flap_threshold: low,
            ttl,
            head,
            timestamp: self.timestamp,
        }
    }
}

/// Appends the members of a posted entity or check as they are stored: `metadata` replaced
/// by `metadata` (its namespace set), the members named in `skip` left out.
fn write_stored(object: &RawObject, metadata: &RawObject, skip: &[&str], out: &mut String) {
    object.write_members(out, |k, v, out| {
        if k == "metadata" {
            metadata.write_json(out);
        } else if !skip.contains(&k) {
            out.push_str(v.get());
        }
    });
}

impl Prepared {
    /// The stored event's JSON text: the head, the fold's fields, and `timestamp` (`now`).
    pub fn render(&self, fold: &Fold, now: i64) -> String {
        let mut history = String::with_capacity(2 + 40 * fold.history.len());
        fold.write_history(&mut history);
        self.render_with(fold, &history, now)
    }

    /// `render`, with the fold's history already as JSON text (`Fold::history_json`), for
    /// writers that store it in a column of its own too.
    pub fn render_with(&self, fold: &Fold, history: &str, now: i64) -> String {
        use std::fmt::Write;
        let mut s = String::with_capacity(self.head.len() + 160 + history.len());
        s.push_str(&self.head);
        s.push_str(",\"history\":");
        s.push_str(history);
        let _ = write!(
            s,
            ",\"occurrences\":{},\"occurrences_watermark\":{},\"last_ok\":{},\"total_state_change\":{},\"state\":\"{}\"}},\"timestamp\":{}}}",
            fold.occurrences,
            fold.occurrences_watermark,
            fold.last_ok,
            fold.total_state_change,
            fold.state.as_str(),
            self.timestamp.unwrap_or(now)
        );
        s
    }
}

/// Folds a new event into the previous stored event (None for the first), returning the
/// event to store. The writers fold `Prepared` events with `Fold`; this is the same fold
/// over whole events, for callers that hold them.
pub fn apply(prev: Option<&Value>, input: &EventInput, now: i64) -> Value {
    let p = input.clone().prepare();
    let prev = prev.and_then(|v| Fold::from_stored(&v.to_string()));
    let text = p.render(&Fold::next(prev.as_ref(), &p), now);
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

mod judge;
mod metrics_only;
pub use judge::{is_incident, is_resolution};
pub use metrics_only::{is_metrics_only, parse_metrics_event};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn post(prev: Option<&Value>, status: u64, t: i64) -> Value {
        let body = json!({"entity": {"metadata": {"name": "web-1"}}, "check": {"metadata": {"name": "http"}, "status": status, "executed": t, "output": "x", "high_flap_threshold": 60, "low_flap_threshold": 20}});
        apply(prev, &parse_event(&body, "default", t).unwrap(), t)
    }

    #[test]
    fn the_fold_read_back_from_the_stored_text_is_the_fold_kept() {
        // A long run of statuses (flapping, failing, resolving): what a writer keeps in
        // memory and what it would read back from the text it stored are the same.
        let statuses = [
            0u64, 2, 2, 0, 1, 1, 1, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 0, 2, 2, 2, 0, 0, 1,
        ];
        let mut kept: Option<Fold> = None;
        for (t, s) in statuses.iter().enumerate() {
            let t = t as i64 + 1;
            let body = json!({"entity": {"metadata": {"name": "web-1"}}, "check": {"metadata": {"name": "http"}, "status": s, "executed": t, "high_flap_threshold": 60, "low_flap_threshold": 20}});
            let p = parse_event(&body, "default", t).unwrap().prepare();
            let f = Fold::next(kept.as_ref(), &p);
            let text = p.render(&f, t + 1);
            let v: Value = serde_json::from_str(&text).expect("the stored text is JSON");
            assert_eq!(v["check"]["occurrences"], f.occurrences);
            assert_eq!(v["check"]["state"], f.state.as_str());
            assert_eq!(v["check"]["history"].to_string(), f.history_json());
            assert_eq!(
                Fold::from_stored(&text).as_ref(),
                Some(&f),
                "status {s} at {t}"
            );
            kept = Some(f);
        }
        assert_eq!(kept.unwrap().state, State::Flapping);
        assert!(Fold::from_stored("{\"entity\":{}}").is_none());
        assert!(Fold::from_stored("not json").is_none());
    }

    #[test]
    fn the_stored_event_keeps_what_was_posted_and_sets_what_ward_owns() {
        let body = json!({"type": "Event", "spec": {
            "entity": {"metadata": {"name": "web-1", "labels": {"a": "b"}}, "entity_class": "agent"},
            "check": {"metadata": {"name": "http"}, "status": 2, "output": "quote \" é \\ \n",
                      "occurrences": 99, "history": "bogus", "state": "x", "handlers": ["slack"]},
            "timestamp": 5, "id": "abc"}});
        let p = parse_event(&body, "ops", 100).unwrap().prepare();
        let text = p.render(&Fold::next(None, &p), 123);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["check"]["output"], "quote \" é \\ \n");
        assert_eq!(v["check"]["handlers"], json!(["slack"]));
        assert_eq!(v["check"]["occurrences"], 1);
        assert_eq!(v["check"]["state"], "failing");
        assert_eq!(
            v["check"]["history"],
            json!([{"status": 2, "executed": 100}])
        );
        assert_eq!(v["check"]["metadata"]["namespace"], "ops");
        assert_eq!(v["entity"]["metadata"]["namespace"], "ops");
        assert_eq!(v["entity"]["metadata"]["labels"]["a"], "b");
        assert_eq!(v["timestamp"], 5, "a posted timestamp is kept");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["metadata"], json!({"namespace": "ops"}));
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["entity", "id", "metadata", "check", "timestamp"],
            "{text}"
        );
        let check: Vec<&String> = v["check"].as_object().unwrap().keys().collect();
        assert_eq!(
            check[..5],
            ["metadata", "status", "output", "handlers", "executed"],
            "posted order kept: {text}"
        );
        // Without one, the time it is stored.
        let body = json!({"entity": {"metadata": {"name": "web-1"}}, "check": {"metadata": {"name": "http"}}});
        let p = parse_event(&body, "ops", 100).unwrap().prepare();
        let v: Value = serde_json::from_str(&p.render(&Fold::next(None, &p), 123)).unwrap();
        assert_eq!(v["timestamp"], 123);
    }

    #[test]
    fn what_a_get_returned_can_be_posted_again() {
        let body = json!({"entity": {"metadata": {"name": "web-1"}}, "check": {"metadata": {"name": "http"}, "status": 1},
                          "metadata": {"labels": {"team": "ops"}}});
        let p = parse_event(&body, "ops", 100).unwrap().prepare();
        let first = p.render(&Fold::next(None, &p), 123);
        let again = parse_event(&serde_json::from_str(&first).unwrap(), "ops", 200)
            .unwrap()
            .prepare();
        let second: Value =
            serde_json::from_str(&again.render(&Fold::next(None, &again), 300)).unwrap();
        assert_eq!(
            second["metadata"],
            json!({"labels": {"team": "ops"}, "namespace": "ops"})
        );
        assert_eq!(second["check"]["status"], 1);
        assert_eq!(second["timestamp"], 123);
        for (bad, field) in [
            (
                json!({"entity": {"metadata": {"name": "e"}}, "check": {"metadata": {"name": "c"}}, "metadata": {"name": "x"}}),
                "metadata.name",
            ),
            (
                json!({"entity": {"metadata": {"name": "e"}}, "check": {"metadata": {"name": "c"}}, "metadata": {"namespace": "dev"}}),
                "metadata.namespace",
            ),
            (
                json!({"entity": {"metadata": {"name": "e"}}, "check": {"metadata": {"name": "c"}}, "metadata": 3}),
                "metadata",
            ),
            (
                json!({"entity": {"metadata": {"name": "e"}}, "check": {"metadata": {"name": "c"}}, "timestamp": "now"}),
                "timestamp",
            ),
        ] {
            match parse_event(&bad, "ops", 1) {
                Err(e) => assert_eq!(e.field, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
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
