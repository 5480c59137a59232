//! A check's hooks, as Sensu's `PUT …/checks/{check}/hooks/{type}` and
//! `DELETE …/checks/{check}/hooks/{type}/hook/{hook}` change them.

use super::access::authorize;
use super::error::{bad, ApiResult};
use super::resources::find;
use super::Shared;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};
use ward_types::{Kind, Resource};

/// `check_hooks` with `change` applied to the hook list of `kind` (created when missing;
/// removed when left empty).
fn with_hooks(check: &Resource, kind: &str, change: impl FnOnce(&mut Vec<Value>)) -> Value {
    let mut lists: Vec<Value> = check
        .spec
        .get("check_hooks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let at = lists.iter().position(|l| l.get(kind).is_some());
    let mut hooks: Vec<Value> = at
        .and_then(|i| lists[i][kind].as_array().cloned())
        .unwrap_or_default();
    change(&mut hooks);
    let entry = Value::Object(Map::from_iter([(
        kind.to_string(),
        Value::Array(hooks.clone()),
    )]));
    match (at, hooks.is_empty()) {
        (Some(i), true) => {
            lists.remove(i);
        }
        (Some(i), false) => lists[i] = entry,
        (None, false) => lists.push(entry),
        (None, true) => {}
    }
    Value::Array(lists)
}

/// Stores `check` with `check_hooks` replaced, validated as any check is.
async fn store_hooks(st: &super::AppState, check: Resource, hooks: Value) -> ApiResult<()> {
    let mut flat = check.to_flat();
    flat["check_hooks"] = hooks;
    let r = Resource::from_flat(Kind::CheckConfig, flat).map_err(|e| bad(e.to_string()))?;
    st.db(move |s| s.put(&r, false)).await?;
    Ok(())
}

/// `PUT …/checks/{check}/hooks/{type}` with `{"<type>": ["hook", …]}`: adds the hooks to
/// that type's list (each once). 201.
pub(super) async fn add_check_hooks(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, name, kind)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Update, "checks", Some(&ns), Some(&name)),
    )
    .await?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    let add: Vec<Value> = match v.get(&kind).and_then(Value::as_array) {
        Some(a) if a.iter().all(Value::is_string) => a.clone(),
        _ => {
            return Err(bad(format!(
                "body: send {{\"{kind}\": [\"hook\", …]}}: the hook names for type {kind:?}"
            )))
        }
    };
    let check = find(&st, Kind::CheckConfig, Some(&ns), &name).await?;
    let hooks = with_hooks(&check, &kind, |list| {
        for h in add {
            if !list.contains(&h) {
                list.push(h);
            }
        }
    });
    store_hooks(&st, check, hooks).await?;
    Ok(StatusCode::CREATED)
}

/// `DELETE …/checks/{check}/hooks/{type}/hook/{hook}`: removes one hook. 204.
pub(super) async fn remove_check_hook(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, name, kind, hook)): Path<(String, String, String, String)>,
) -> ApiResult<StatusCode> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Update, "checks", Some(&ns), Some(&name)),
    )
    .await?;
    let check = find(&st, Kind::CheckConfig, Some(&ns), &name).await?;
    let hooks = with_hooks(&check, &kind, |list| list.retain(|h| h != hook.as_str()));
    store_hooks(&st, check, hooks).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hook_lists_are_added_to_and_emptied() {
        let check = Resource::from_flat(
            Kind::CheckConfig,
            json!({"metadata": {"name": "c", "namespace": "default"}, "command": "true",
                   "check_hooks": [{"non-zero": ["a"]}]}),
        )
        .unwrap();
        let added = with_hooks(&check, "critical", |l| l.push(json!("b")));
        assert_eq!(added, json!([{"non-zero": ["a"]}, {"critical": ["b"]}]));
        let removed = with_hooks(&check, "non-zero", |l| l.retain(|h| h != "a"));
        assert_eq!(removed, json!([]));
    }
}
