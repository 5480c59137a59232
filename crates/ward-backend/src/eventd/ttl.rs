//! Check TTLs, as Sensu's eventd watches them: a check result whose check has `ttl` > 0
//! expects the next result of that check on that entity within `ttl` seconds. When none
//! arrives, the backend stores a copy of the last event with status 1 and the output
//! `Last check execution was N seconds ago` (`executed` now), handled as any event; the
//! copy arms the watch again, so it repeats every `ttl` until a result comes (which
//! resolves it) or the event, its entity or its `ttl` goes.
//!
//! - Not while the entity's keepalive is failing: the keepalive event says why.
//! - A round-robin check is watched only with `proxy_entity_name` (see
//!   `ward_types::event::EventInput::prepare`).
//! - Across restarts: at start the stored events with a `ttl` are watched again from their
//!   `executed` or the backend's start, whichever is later (agents get a full `ttl` to
//!   reconnect).

use crate::api::AppState;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use ward_types::unix_now;

/// How often deadlines are looked at.
pub const TICK: Duration = Duration::from_secs(1);

type Key = (String, String, String);

/// Deadlines by (namespace, entity, check): when and the `ttl` they came from.
#[derive(Default)]
pub struct Ttls {
    deadlines: Mutex<HashMap<Key, (i64, u64)>>,
    /// How many are watched, read without the lock (every stored event asks).
    watched: std::sync::atomic::AtomicUsize,
}

impl Ttls {
    /// A result of `check` on `entity` arrived: watch it `ttl` seconds from `now` (0: stop).
    pub fn touch(&self, namespace: &str, entity: &str, check: &str, ttl: u64, now: i64) {
        let Ok(mut d) = self.deadlines.lock() else {
            return;
        };
        let key = (namespace.to_string(), entity.to_string(), check.to_string());
        if ttl == 0 {
            d.remove(&key);
        } else {
            d.insert(key, (now.saturating_add(ttl as i64), ttl));
        }
        self.watched.store(d.len(), Ordering::Relaxed);
    }

    /// Watches a stored event (at start), unless a result already arrived.
    fn seed(&self, key: Key, deadline: i64, ttl: u64) {
        if let Ok(mut d) = self.deadlines.lock() {
            d.entry(key).or_insert((deadline, ttl));
            self.watched.store(d.len(), Ordering::Relaxed);
        }
    }

    fn forget(&self, key: &Key, deadline: i64) {
        if let Ok(mut d) = self.deadlines.lock() {
            if d.get(key).is_some_and(|(at, _)| *at == deadline) {
                d.remove(key);
                self.watched.store(d.len(), Ordering::Relaxed);
            }
        }
    }

    /// The watches past their deadline, each moved a `ttl` on (so that a failed store
    /// tries again then, and nothing fires twice meanwhile).
    fn due(&self, now: i64) -> Vec<(Key, i64)> {
        let Ok(mut d) = self.deadlines.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (key, (at, ttl)) in d.iter_mut() {
            if *at <= now {
                *at = now.saturating_add(*ttl as i64);
                out.push((key.clone(), *at));
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.watched.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Sensu's stale-result event: the last event, status 1, `executed` now, and the output
/// saying how long ago the check last ran. None when the event no longer has a `ttl`.
pub fn stale_event(last: &Value, now: i64) -> Option<Value> {
    let check = last.get("check")?;
    if check.get("ttl").and_then(Value::as_u64).unwrap_or(0) == 0 {
        return None;
    }
    let executed = check.get("executed").and_then(Value::as_i64).unwrap_or(now);
    let mut e = last.clone();
    let obj = e.as_object_mut()?;
    // A new event: its own id and timestamp.
    obj.remove("id");
    obj.remove("timestamp");
    let c = obj.get_mut("check")?.as_object_mut()?;
    c.insert("status".into(), 1.into());
    c.insert(
        "output".into(),
        format!("Last check execution was {} seconds ago", now - executed).into(),
    );
    c.insert("executed".into(), now.into());
    Some(e)
}

/// Watches the stored events with a `ttl`, then raises stale-result events as they fall due.
pub async fn run(st: Arc<AppState>) {
    let started = unix_now();
    match seed(&st, started).await {
        Ok(n) if n > 0 => tracing::info!(events = n, "eventd: watching the TTLs of stored events"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "eventd: could not read the stored events' TTLs"),
    }
    let mut tick = tokio::time::interval(TICK);
    loop {
        tick.tick().await;
        let now = unix_now();
        for (key, deadline) in st.events.ttls.due(now) {
            let (ns, entity, check) = &key;
            if st.agents.keepalived.failing(ns, entity) {
                continue;
            }
            let last = match st.events.event(ns, entity, check).await {
                Ok(Some(e)) => e,
                Ok(None) => {
                    st.events.ttls.forget(&key, deadline);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(namespace = %ns, entity = %entity, check = %check, error = %e, "TTL: the last event could not be read; trying again in a TTL");
                    continue;
                }
            };
            let Some(stale) = stale_event(&last, now) else {
                st.events.ttls.forget(&key, deadline);
                continue;
            };
            let input = match ward_types::event::parse_event(&stale, ns, now) {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(namespace = %ns, entity = %entity, check = %check, error = %e, "TTL: the stale-result event is not valid; not watched any more");
                    st.events.ttls.forget(&key, deadline);
                    continue;
                }
            };
            tracing::warn!(namespace = %ns, entity = %entity, check = %check, "check TTL expired: no result in time");
            let st = st.clone();
            tokio::spawn(async move {
                if let Err(e) = st.store_event(input).await {
                    tracing::error!(namespace = %key.0, entity = %key.1, check = %key.2, error = %e, "TTL: the stale-result event was not stored; trying again in a TTL");
                }
            });
        }
    }
}

/// Watches every stored event whose check has a `ttl`; returns how many.
async fn seed(st: &AppState, started: i64) -> Result<usize, String> {
    let mut after: Option<String> = None;
    let mut n = 0;
    loop {
        let (page, next) = st
            .events
            .events_raw(None, None, 1000, after.as_deref())
            .await
            .map_err(|e| e.to_string())?;
        for text in &page {
            // Most events have no TTL: only those that say so are parsed.
            if !text.contains("\"ttl\":") {
                continue;
            }
            let Ok(e) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            let ttl = e.pointer("/check/ttl").and_then(Value::as_u64).unwrap_or(0);
            let name = |p: &str| e.pointer(p).and_then(Value::as_str).map(str::to_string);
            let (Some(ns), Some(entity), Some(check)) = (
                name("/check/metadata/namespace"),
                name("/entity/metadata/name"),
                name("/check/metadata/name"),
            ) else {
                continue;
            };
            if ttl == 0 || check == ward_types::agent::KEEPALIVE_CHECK {
                continue;
            }
            let executed = e
                .pointer("/check/executed")
                .and_then(Value::as_i64)
                .unwrap_or(started);
            st.events.ttls.seed(
                (ns, entity, check),
                executed.max(started).saturating_add(ttl as i64),
                ttl,
            );
            n += 1;
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_watch_falls_due_once_per_ttl_and_a_result_or_zero_resets_it() {
        let t = Ttls::default();
        t.touch("default", "web-1", "http", 5, 100);
        assert!(t.due(104).is_empty());
        let due = t.due(105);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1, 110);
        assert!(t.due(109).is_empty(), "moved a ttl on");
        t.touch("default", "web-1", "http", 5, 108); // a result
        assert!(t.due(112).is_empty());
        assert_eq!(t.due(113).len(), 1);
        t.touch("default", "web-1", "http", 0, 114); // ttl removed
        assert!(t.is_empty());
        // forget only drops the watch it was about.
        t.touch("default", "web-1", "http", 5, 200);
        t.forget(&("default".into(), "web-1".into(), "http".into()), 1);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_stale_event_is_sensus() {
        let last = json!({"id": "x", "timestamp": 90, "entity": {"metadata": {"name": "web-1"}},
            "check": {"metadata": {"name": "http"}, "status": 0, "output": "ok", "executed": 90, "ttl": 30}});
        let e = stale_event(&last, 130).unwrap();
        assert_eq!(e["check"]["status"], 1);
        assert_eq!(
            e["check"]["output"],
            "Last check execution was 40 seconds ago"
        );
        assert_eq!(e["check"]["executed"], 130);
        assert!(e.get("id").is_none() && e.get("timestamp").is_none());
        let mut no_ttl = last.clone();
        no_ttl["check"]["ttl"] = json!(0);
        assert!(stale_event(&no_ttl, 130).is_none());
    }
}
