//! Events: `/api/core/v2/namespaces/{ns}/events…` and on-demand check execution.

use super::access::authorize;
use super::error::{bad, unavailable, ApiError, ApiResult};
use super::listing::{json_array, ListQuery};
use super::resources::*;
use super::state::AppState;
use super::Shared;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use ward_store::StoreError;
use ward_types::selector::Selection;
use ward_types::{Document, Kind, Metadata, Resource};

use ward_types::unix_now;

/// Registers an event's entity when it has none yet (a proxy entity, unless the event says
/// its class).
/// Blocking (the store): agentd calls it from its session; the API uses
/// `ensure_entity_off_workers`.
pub(crate) fn ensure_entity(
    st: &AppState,
    ns: &str,
    input: &ward_types::event::EventInput,
    now: i64,
) -> ApiResult<()> {
    let entity = new_entity(ns, input, now)?;
    Ok(ensure_entity_in(&st.store, &entity)?)
}

/// As `ensure_entity`, on the blocking pool.
async fn ensure_entity_off_workers(
    st: &AppState,
    ns: &str,
    input: &ward_types::event::EventInput,
    now: i64,
) -> ApiResult<()> {
    let entity = new_entity(ns, input, now)?;
    Ok(st.db(move |s| ensure_entity_in(s, &entity)).await?)
}

/// Stores `entity` unless one of its name exists.
fn ensure_entity_in(store: &ward_store::Store, entity: &Resource) -> Result<(), StoreError> {
    let ns = entity.metadata.namespace.as_deref().unwrap_or_default();
    if store
        .get(Kind::Entity, ns, &entity.metadata.name)?
        .is_none()
    {
        match store.put(entity, true) {
            Ok(()) | Err(StoreError::Exists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sensu's proxy entity swap (SG eventd): an event whose check names `proxy_entity_name` is
/// filed under that entity (its stored config, so filters see its labels), created with
/// `entity_class: proxy` when missing. From an agent (`from_agent`), the entity may not be
/// another agent's: an agent speaks for itself and for proxies, never for another agent.
/// Blocking (the store): call through `AppState::db`.
pub(crate) fn file_under_proxy(
    store: &ward_store::Store,
    ns: &str,
    input: &mut ward_types::event::EventInput,
    now: i64,
    from_agent: bool,
) -> ApiResult<()> {
    let Some(name) = input.proxy_entity_name() else {
        return Ok(());
    };
    ward_types::check_name("", &name).map_err(|e| {
        bad(format!(
            "check.proxy_entity_name {name:?}: {} (it names the entity the event is for)",
            e.reason
        ))
    })?;
    let entity = match store.get(Kind::Entity, ns, &name)? {
        Some(r) => r,
        None => {
            let r = Resource::from_document(Document {
                type_name: "Entity".into(),
                api_version: "core/v2".into(),
                metadata: Metadata {
                    name: name.clone(),
                    namespace: Some(ns.into()),
                    ..Default::default()
                },
                spec: json!({"entity_class": "proxy", "last_seen": now}),
            })
            .map_err(|e| bad(e.to_string()))?;
            match store.put(&r, true) {
                Ok(()) | Err(StoreError::Exists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            store.get(Kind::Entity, ns, &name)?.unwrap_or(r)
        }
    };
    if from_agent && entity.spec.get("entity_class").and_then(Value::as_str) == Some("agent") {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "check {:?} names proxy_entity_name {name:?}, which is an agent's entity: an agent files results for itself and for proxy entities only",
                input.check
            ),
        ));
    }
    input
        .set_entity(&entity.into_flat())
        .map_err(|e| bad(format!("entity {name:?}: {e}")))
}

/// The entity an event registers when its entity is unknown.
fn new_entity(ns: &str, input: &ward_types::event::EventInput, now: i64) -> ApiResult<Resource> {
    {
        let class = input.entity_class().unwrap_or_else(|| "proxy".into());
        Resource::from_document(Document {
            type_name: "Entity".into(),
            api_version: "core/v2".into(),
            metadata: Metadata {
                name: input.entity.clone(),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: json!({"entity_class": class, "last_seen": now}),
        })
        .map_err(|e| bad(e.to_string()))
    }
}

/// Stores an event (acknowledged only once it is committed) and registers its entity;
/// returns the stored event's JSON text.
pub(super) async fn store_event(
    st: &AppState,
    ns: &str,
    body: &[u8],
    expect: Option<(&str, &str)>,
) -> ApiResult<String> {
    let now = unix_now();
    st.metrics.events_received.fetch_add(1, Ordering::Relaxed);
    let mut input = ward_types::event::parse_event_slice(body, ns, now).map_err(|e| match e {
        ward_types::event::EventError::Json(e) => bad(format!("body is not valid JSON: {e}")),
        ward_types::event::EventError::Field(e) => bad(e.to_string()),
    })?;
    if !input.has_id() {
        input.set_id(&crate::auth::new_uuid()?);
    }
    if let Some((entity, check)) = expect {
        if input.entity != entity || input.check != check {
            return Err(bad(format!(
                "entity/check: {}/{} does not match the URL ({entity}/{check})",
                input.entity, input.check
            )));
        }
    }
    ensure_entity_off_workers(st, ns, &input, now).await?;
    if input.proxy_entity_name().is_some() {
        let ns_owned = ns.to_string();
        let (filed, back) = st
            .db(move |s| {
                Ok((
                    file_under_proxy(s, &ns_owned, &mut input, now, false),
                    input,
                ))
            })
            .await?;
        filed?;
        input = back;
    }
    let started = std::time::Instant::now();
    st.silences.apply(&mut input, now);
    let handlers = input.needs_after_store();
    let stored = st
        .events
        .submit(input.prepare())
        .await
        .map_err(|e| match e {
            crate::eventd::SubmitError::Busy(m) => {
                unavailable(format!("the event was not stored: {m}; retry"))
            }
            crate::eventd::SubmitError::Failed(m) => {
                tracing::error!(error = %m, "event not stored");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the event was not stored; see the backend's log".into(),
                )
            }
        })?;
    st.metrics
        .store_write_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    st.metrics.store_writes.fetch_add(1, Ordering::Relaxed);
    st.metrics.events_stored.fetch_add(1, Ordering::Relaxed);
    if handlers {
        st.after_store(ns, &stored);
    }
    Ok(stored)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ExecuteRequest {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    subscriptions: Option<Vec<String>>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST …/checks/:check/execute`: publishes the check now (to `subscriptions` if given,
/// else its own), whether or not it is scheduled. 202 with how many agents it was sent to
/// (and, for a check with `proxy_requests`, `proxy_entities`: how many entities it is sent
/// for; splayed requests go later and are not in `agents`).
pub(super) async fn execute_check(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = authorize(
        &st,
        &headers,
        Request::new(Verb::Create, "checks", Some(&ns), Some(&name)),
    )
    .await?;
    require_namespace(&st, &ns).await?;
    let req: ExecuteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ExecuteRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "body: {e}; send {{\"check\": \"{name}\", \"subscriptions\": [...]}}"
            ))
        })?
    };
    if let Some(c) = &req.check {
        if c != &name {
            return Err(bad(format!(
                "check: {c:?} does not match the URL ({name:?})"
            )));
        }
    }
    let (n, c) = (ns.clone(), name.clone());
    let Some(r) = st.db(move |s| s.get(Kind::CheckConfig, &n, &c)).await? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no check {name:?} in namespace {ns:?}"),
        ));
    };
    // As Sensu's ad hoc requests: no subscriptions, or an empty list, means the check's.
    let subscriptions = req.subscriptions.filter(|s| !s.is_empty());
    let sent = crate::agentd::schedulerd::execute(st.clone(), r, subscriptions).await;
    tracing::info!(check = %name, namespace = %ns, user = %user.name, agents = sent.agents, proxy_entities = sent.proxy_entities, reason = req.reason.as_deref().unwrap_or(""), "check executed on demand");
    let mut body = json!({"issued": unix_now(), "agents": sent.agents});
    if let Some(n) = sent.proxy_entities {
        body["proxy_entities"] = n.into();
    }
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// 201 with a stored event's JSON text as the body.
pub(super) fn created_json(stored: String) -> Response {
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        stored,
    )
        .into_response()
}

pub(super) async fn post_event(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Create, "events", Some(&ns), None),
    )
    .await?;
    require_namespace(&st, &ns).await?;
    let ev = store_event(&st, &ns, &body, None).await?;
    Ok(created_json(ev))
}

/// `PUT` or `POST …/events/{entity}/{check}` (Sensu takes both): RBAC's update or create.
pub(super) async fn put_event(
    State(st): Shared,
    method: axum::http::Method,
    headers: HeaderMap,
    Path((ns, entity, check)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let id = format!("{entity}/{check}");
    let verb = if method == axum::http::Method::POST {
        Verb::Create
    } else {
        Verb::Update
    };
    authorize(
        &st,
        &headers,
        Request::new(verb, "events", Some(&ns), Some(&id)),
    )
    .await?;
    require_namespace(&st, &ns).await?;
    let ev = store_event(&st, &ns, &body, Some((&entity, &check))).await?;
    Ok(created_json(ev))
}

pub(super) async fn list_events(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list(&st, &headers, Some(&ns), None, q.as_deref()).await
}

/// `GET /api/core/v2/events`: every namespace's events (RBAC judges it cluster-wide).
pub(super) async fn list_all_events(
    State(st): Shared,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list(&st, &headers, None, None, q.as_deref()).await
}

pub(super) async fn list_entity_events(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, entity)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list(&st, &headers, Some(&ns), Some(&entity), q.as_deref()).await
}

/// A page of events: `ns`'s (every namespace's when None), of `entity` only when given,
/// selected by `labelSelector` / `fieldSelector`. Without selectors the stored texts are
/// joined as they are; with them, each batch is parsed and selected on the blocking pool.
async fn list(
    st: &AppState,
    headers: &HeaderMap,
    ns: Option<&str>,
    entity: Option<&str>,
    query: Option<&str>,
) -> ApiResult<Response> {
    authorize(st, headers, Request::new(Verb::List, "events", ns, None)).await?;
    let q = ListQuery::parse(query)?;
    if q.selection.is_empty() {
        let (events, next) = st
            .events
            .events_raw(ns, entity, q.limit, q.after.as_deref())
            .await?;
        return Ok(json_array(&events, next));
    }
    let selection = std::sync::Arc::new(q.selection);
    let batch = q.limit.clamp(100, 1000);
    let (mut out, mut after) = (Vec::new(), q.after);
    loop {
        let (events, next) = st
            .events
            .events_raw(ns, entity, batch, after.as_deref())
            .await?;
        let (sel, want) = (selection.clone(), q.limit - out.len());
        let (picked, last) = tokio::task::spawn_blocking(move || select_events(&sel, events, want))
            .await
            .map_err(|e| {
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("a list task failed: {e}"),
                )
            })?;
        let full = picked.len() == want;
        out.extend(picked);
        if full {
            return Ok(json_array(&out, last));
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(json_array(&out, None)),
        }
    }
}

/// Up to `want` of `events` (stored texts) that `selection` admits, and the key of the
/// last one taken when `want` were found.
fn select_events(
    selection: &Selection,
    events: Vec<String>,
    want: usize,
) -> (Vec<String>, Option<String>) {
    let mut picked = Vec::new();
    for text in events {
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if !selection.admits("Event", &v) {
            continue;
        }
        picked.push(text);
        if picked.len() == want {
            let name = |part: &str| {
                v[part]["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string()
            };
            let ns = v["entity"]["metadata"]["namespace"].as_str().unwrap_or("");
            return (
                picked,
                Some(format!("{ns}\u{0}{}\u{0}{}", name("entity"), name("check"))),
            );
        }
    }
    (picked, None)
}

pub(super) async fn get_event(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, entity, check)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let id = format!("{entity}/{check}");
    authorize(
        &st,
        &headers,
        Request::new(Verb::Get, "events", Some(&ns), Some(&id)),
    )
    .await?;
    let ev = st
        .events
        .event(&ns, &entity, &check)
        .await?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no event for entity {entity:?} and check {check:?} in namespace {ns:?}"),
            )
        })?;
    Ok(Json(ev))
}

pub(super) async fn delete_event(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, entity, check)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let id = format!("{entity}/{check}");
    authorize(
        &st,
        &headers,
        Request::new(Verb::Delete, "events", Some(&ns), Some(&id)),
    )
    .await?;
    st.events.delete_event(&ns, &entity, &check).await?;
    Ok(StatusCode::NO_CONTENT)
}
