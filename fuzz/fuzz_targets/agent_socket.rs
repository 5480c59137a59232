//! The agent socket's input (TCP/UDP 3030): any bytes through JSON, Sensu 1.x's check
//! result translation (`ward_types::agent::sensu1_result`) and the event model, as the
//! agent completes them — a value or a one-line error, never a panic; an event it accepts
//! is always for the agent's own entity.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(mut event) = ward_types::agent::sensu1_result(&v, "agent-1") else {
        return;
    };
    event["entity"] = json!({"metadata": {"name": "agent-1"}, "entity_class": "agent"});
    event["timestamp"] = json!(1_700_000_000);
    if let Ok(input) = ward_types::event::parse_event(&event, "default", 1_700_000_000) {
        let out = input.to_value();
        assert_eq!(out["entity"]["metadata"]["name"], "agent-1", "{out}");
    }
});
