//! What the agent does with a check request's hooks, and Sensu 1.x check results (the
//! agent socket's input) as events.

use serde_json::{json, Value};

/// Whether a hook of `check_hooks` type `kind` runs after a check that exited `status`,
/// as Sensu's agent decides: the status itself (`"2"`), `ok` (0), `warning` (1),
/// `critical` (2), `unknown` (above 2) or `non-zero`.
pub fn hook_runs(kind: &str, status: u32) -> bool {
    kind == status.to_string()
        || (kind == "non-zero" && status != 0)
        || (kind == "ok" && status == 0)
        || (kind == "warning" && status == 1)
        || (kind == "critical" && status == 2)
        || (kind == "unknown" && status > 2)
}

/// `(type, hook name)` of a check's `check_hooks` (`[{"critical": ["a", "b"]}, …]`), in
/// order.
fn hook_entries(check_hooks: Option<&Value>) -> impl Iterator<Item = (&str, &str)> {
    check_hooks
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flatten()
        .flat_map(|(kind, names)| {
            names
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(move |n| (kind.as_str(), n))
        })
}

/// Names in order, each once.
fn once<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.iter().any(|x| x == n) {
            out.push(n.to_string());
        }
    }
    out
}

/// The hook names a check's `check_hooks` lists for a run that exited `status`, in
/// order, each once.
pub fn hooks_for(check_hooks: Option<&Value>, status: u32) -> Vec<String> {
    once(
        hook_entries(check_hooks)
            .filter(|(kind, _)| hook_runs(kind, status))
            .map(|(_, n)| n),
    )
}

/// Every hook name a check's `check_hooks` lists, whatever the status.
pub fn all_hooks(check_hooks: Option<&Value>) -> Vec<String> {
    once(hook_entries(check_hooks).map(|(_, n)| n))
}

/// A Sensu 1.x check result (the agent socket's input: `name` and `output` required;
/// `status`, `command`, `subscribers`, `interval`, `issued`, `executed`, `duration`,
/// `handler`/`handlers` taken; others ignored, as by Sensu's agent) as the event the local
/// API takes. A `source` (or `client`) other than `agent_name` is a proxy entity: the check's
/// `proxy_entity_name`, as Sensu Go's agent socket makes it (the backend files the event
/// under it, and refuses one that is another agent's).
pub fn sensu1_result(result: &Value, agent_name: &str) -> Result<Value, String> {
    let r = result.as_object().ok_or(
        "a check result is a JSON object: {\"name\": \"…\", \"output\": \"…\", \"status\": 0}",
    )?;
    let text = |k: &str| r.get(k).and_then(Value::as_str);
    let name = text("name")
        .filter(|n| !n.is_empty())
        .ok_or("name is required (the check's name)")?;
    let output = text("output").ok_or("output is required (a string)")?;
    let source = text("source")
        .or(text("client"))
        .filter(|s| !s.is_empty() && *s != agent_name);
    let mut check = serde_json::Map::new();
    check.insert("metadata".into(), json!({"name": name}));
    if let Some(source) = source {
        check.insert("proxy_entity_name".into(), json!(source));
    }
    check.insert("output".into(), json!(output));
    check.insert(
        "status".into(),
        r.get("status").cloned().unwrap_or(json!(0)),
    );
    for (from, to) in [
        ("command", "command"),
        ("subscribers", "subscriptions"),
        ("interval", "interval"),
        ("issued", "issued"),
        ("executed", "executed"),
        ("duration", "duration"),
        ("handlers", "handlers"),
    ] {
        if let Some(v) = r.get(from).filter(|v| !v.is_null()) {
            check.insert(to.into(), v.clone());
        }
    }
    if let Some(h) = text("handler").filter(|_| !check.contains_key("handlers")) {
        check.insert("handlers".into(), json!([h]));
    }
    Ok(json!({"check": check}))
}

#[cfg(test)]
mod sensu1_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensu_1x_results_become_events() {
        let e = sensu1_result(
            &json!({"name": "backup", "output": "done", "status": 1, "handler": "mail",
                    "subscribers": ["db"], "interval": 60, "ttl": 90}),
            "db-1",
        )
        .unwrap();
        assert_eq!(
            e,
            json!({"check": {"metadata": {"name": "backup"}, "output": "done", "status": 1,
                              "subscriptions": ["db"], "interval": 60, "handlers": ["mail"]}})
        );
        let own = sensu1_result(
            &json!({"name": "x", "output": "", "source": "db-1"}),
            "db-1",
        );
        assert!(own.unwrap()["check"].get("proxy_entity_name").is_none());
        let proxy = sensu1_result(
            &json!({"name": "x", "output": "y", "source": "router"}),
            "db-1",
        )
        .unwrap();
        assert_eq!(proxy["check"]["proxy_entity_name"], "router");
        for (bad, why) in [
            (json!({"output": "y"}), "name is required"),
            (json!({"name": "x"}), "output is required"),
            (json!([1]), "JSON object"),
        ] {
            let e = sensu1_result(&bad, "db-1").unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}

#[cfg(test)]
mod hook_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hooks_run_on_the_statuses_sensu_runs_them_on() {
        let hooks = json!([{"critical": ["a"]}, {"non-zero": ["b", "a"]}, {"0": ["c"]}, {"unknown": ["d"]}, {"1": ["e"]}]);
        assert_eq!(hooks_for(Some(&hooks), 2), ["a", "b"]);
        assert_eq!(hooks_for(Some(&hooks), 0), ["c"]);
        assert_eq!(hooks_for(Some(&hooks), 1), ["b", "a", "e"]);
        assert_eq!(hooks_for(Some(&hooks), 127), ["b", "a", "d"]);
        assert_eq!(all_hooks(Some(&hooks)), ["a", "b", "c", "d", "e"]);
        assert!(hooks_for(None, 2).is_empty());
    }
}
