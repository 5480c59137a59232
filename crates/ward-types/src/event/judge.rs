//! What the backend judges of an event besides its fold: Sensu's `IsIncident` and
//! `IsResolution`, what silencing reads from a posted event and writes into it, and whether
//! the stored event is needed back.

use super::{raw, EventInput, RawObject};
use serde_json::Value;

impl EventInput {
    /// Whether the stored event is needed back: it names handlers or pipelines, or it is
    /// OK and silenced (a resolution may end silences that expire on resolution).
    pub fn needs_after_store(&self) -> bool {
        self.has_handlers() || (self.status == 0 && self.check_object.get("silenced").is_some())
    }

    /// What silencing reads from the event (`crate::silence`).
    pub fn silence_target(&self) -> crate::silence::Target {
        let list = |o: &RawObject| -> Vec<String> {
            o.get("subscriptions")
                .and_then(|h| serde_json::from_str::<Vec<Value>>(h.get()).ok())
                .map(|a| {
                    a.into_iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        crate::silence::Target {
            check: self.check.clone(),
            entity: self.entity.clone(),
            entity_subscriptions: list(&self.entity_object),
            check_subscriptions: list(&self.check_object),
            proxy: self
                .check_object
                .get("proxy_entity_name")
                .and_then(raw::as_string)
                .is_some_and(|s| !s.is_empty()),
        }
    }

    /// Sets `check.silenced` (the entries that silence it) and `check.is_silenced`, as
    /// eventd does: what a sender posted in them is replaced.
    pub fn set_silenced(&mut self, names: &[String]) {
        if names.is_empty() {
            self.check_object.remove("silenced");
        } else {
            self.check_object.insert("silenced", &names);
        }
        self.check_object.insert("is_silenced", &!names.is_empty());
    }
}

/// The status of an event's check (0 when absent).
fn status_of(event: &Value) -> u64 {
    event
        .pointer("/check/status")
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Sensu's `Event.IsIncident`: the event has a check and its status is not 0.
pub fn is_incident(event: &Value) -> bool {
    event.get("check").is_some_and(|c| !c.is_null()) && status_of(event) != 0
}

/// Sensu's `Event.IsResolution`: status 0 now, and the history's entry before this one
/// (the history includes the current event) was not 0.
pub fn is_resolution(event: &Value) -> bool {
    let history = event
        .pointer("/check/history")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    event.get("check").is_some_and(|c| !c.is_null())
        && status_of(event) == 0
        && history.len() >= 2
        && history[history.len() - 2]
            .get("status")
            .and_then(Value::as_u64)
            .is_some_and(|s| s != 0)
}
