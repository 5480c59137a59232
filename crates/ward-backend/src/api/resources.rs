//! The resources without a family module of their own, in Sensu's flat bodies: namespaced
//! kinds at `/api/core/v2/namespaces/{ns}/{plural}[/{name}]`, cluster-wide kinds
//! (ClusterRole, ClusterRoleBinding) at `/api/core/v2/{plural}[/{name}]`, and every
//! namespaced kind listed across namespaces at `/api/core/v2/{plural}`. Also the body
//! parsing and writing the other families share.
//!
//! Bodies may be flat (Sensu's REST form) or wrapped (`{type, api_version, metadata,
//! spec}`, sensuctl's form); answers are flat.

use super::access::{authenticate, authorize, permit};
use super::error::{bad, ApiError, ApiResult};
use super::listing::{admits, select_page, with_continue, ListQuery};
use super::state::AppState;
use super::Shared;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};
use ward_store::User;
use ward_types::{Kind, Resource};

/// Kinds served by a family module of their own.
fn own_module(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Event | Kind::Namespace | Kind::User | Kind::APIKey | Kind::PostgresConfig
    )
}

fn no_collection(plural: &str, namespaced: bool, prefix: &str) -> ApiError {
    let known: Vec<&str> = Kind::ALL
        .into_iter()
        .filter(|k| !own_module(*k) && k.namespaced() == namespaced && k.api_prefix() == prefix)
        .map(Kind::plural)
        .collect();
    ApiError(
        StatusCode::NOT_FOUND,
        format!(
            "no such collection {plural:?}{} under {prefix}; use {}",
            if namespaced { " in a namespace" } else { "" },
            known.join(", ")
        ),
    )
}

/// The API group (`/api/core/v2`, `/api/enterprise/pipeline/v1`) of a matched route.
fn group(path: &MatchedPath) -> &str {
    let p = path.as_str();
    p.find("/namespaces/").map_or(p, |i| &p[..i])
}

/// The kind at `{group}/namespaces/{ns}/{plural}`.
pub(super) fn kind_in_ns(plural: &str, path: &MatchedPath) -> ApiResult<Kind> {
    let prefix = group(path);
    Kind::from_plural(plural)
        .filter(|k| k.namespaced() && !own_module(*k) && k.api_prefix() == prefix)
        .ok_or_else(|| no_collection(plural, true, prefix))
}

const CORE: &str = "/api/core/v2";

/// The cluster-wide kind at `/{plural}`.
fn cluster_kind(plural: &str) -> ApiResult<Kind> {
    Kind::from_plural(plural)
        .filter(|k| !k.namespaced() && !own_module(*k) && k.api_prefix() == CORE)
        .ok_or_else(|| no_collection(plural, false, CORE))
}

/// The kind listed at `GET {group}/{plural}`: a cluster-wide kind, or a namespaced one
/// across every namespace.
fn listed_kind(plural: &str, path: &MatchedPath) -> ApiResult<Kind> {
    let prefix = path.as_str().strip_suffix("/{plural}").unwrap_or(CORE);
    Kind::from_plural(plural)
        .filter(|k| !own_module(*k) && k.api_prefix() == prefix)
        .ok_or_else(|| no_collection(plural, false, prefix))
}

/// The object whose `metadata` a body's name and namespace go into: the body itself
/// (flat), or the wrapper's.
fn metadata_of(v: &mut Value) -> Option<&mut Map<String, Value>> {
    let obj = v.as_object_mut()?;
    let md = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if md.is_null() {
        *md = Value::Object(Map::new());
    }
    md.as_object_mut()
}

/// Parses and validates a body for `kind` at a path's namespace and name: flat or
/// wrapped; the path fills in a missing name and namespace, and a different one is a
/// 400; the caller becomes `created_by`.
pub(super) fn body_resource(
    body: &[u8],
    kind: Kind,
    ns: Option<&str>,
    name: Option<&str>,
    user: &User,
) -> ApiResult<Resource> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    if let Some(md) = metadata_of(&mut v) {
        let empty =
            |md: &Map<String, Value>, k: &str| md.get(k).is_none_or(|x| x.is_null() || x == "");
        if let Some(n) = name.filter(|_| kind != Kind::Silenced && empty(md, "name")) {
            md.insert("name".into(), n.into());
        }
        if let Some(ns) = ns.filter(|_| empty(md, "namespace")) {
            md.insert("namespace".into(), ns.into());
        }
    }
    let mut r = Resource::from_api_body(kind, v).map_err(|e| bad(e.to_string()))?;
    if let Some(n) = name {
        if r.metadata.name != n {
            return Err(bad(format!(
                "metadata.name: {:?} does not match the name in the URL ({n:?}){}",
                r.metadata.name,
                if kind == Kind::Silenced {
                    "; a silence is named SUBSCRIPTION:CHECK ('*' for either)"
                } else {
                    ""
                }
            )));
        }
    }
    if let (Some(ns), Some(x)) = (ns, r.metadata.namespace.as_deref()) {
        if x != ns {
            return Err(bad(format!(
                "metadata.namespace: {x:?} does not match the namespace in the URL ({ns:?})"
            )));
        }
    }
    r.metadata.created_by = Some(user.name.clone());
    if r.kind == Kind::CheckConfig {
        check_schedule(&r)?;
    }
    if r.kind == Kind::Silenced {
        silence_times(&mut r, &user.name, ward_types::unix_now());
    }
    Ok(r)
}

/// [`check_scripts`] off the runtime's workers (compiling is CPU work under a time limit).
async fn checked_scripts(r: Resource) -> ApiResult<Resource> {
    let proxy_check = r.kind == Kind::CheckConfig && r.spec.contains_key("proxy_requests");
    if !proxy_check && !matches!(r.kind, Kind::EventFilter | Kind::Mutator) {
        return Ok(r);
    }
    tokio::task::spawn_blocking(move || check_scripts(&r).map(|()| r))
        .await
        .map_err(|e| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("a script check failed: {e}"),
            )
        })?
}

/// An EventFilter's expressions and `when`, a CheckConfig's
/// `proxy_requests.entity_attributes`, and a JavaScript mutator's `eval`, must
/// compile: a 400 names the resource, the field and the position, at creation rather than
/// at the first event.
fn check_scripts(r: &Resource) -> ApiResult<()> {
    let name = &r.metadata.name;
    let at = |field: String, e: ward_js::JsError| match e {
        ward_js::JsError::Syntax {
            line,
            column,
            message,
        } => bad(format!(
            "{} {name:?}: {field}: does not parse at line {line}, column {column}: {message}",
            r.kind.type_name()
        )),
        other => bad(format!("{} {name:?}: {field}: {other}", r.kind.type_name())),
    };
    match r.kind {
        Kind::EventFilter => {
            if let Some(when) = r.spec.get("when").filter(|w| !w.is_null()) {
                ward_types::when::check(when)
                    .map_err(|e| bad(format!("EventFilter {name:?}: spec.{e}")))?;
            }
            let exprs = r.spec.get("expressions").and_then(Value::as_array);
            for (i, x) in exprs.into_iter().flatten().enumerate() {
                if let Some(x) = x.as_str() {
                    ward_js::check_expression(x)
                        .map_err(|e| at(format!("spec.expressions[{i}]"), e))?;
                }
            }
        }
        Kind::CheckConfig => {
            let exprs = r
                .spec
                .get("proxy_requests")
                .and_then(|p| p.get("entity_attributes"))
                .and_then(Value::as_array);
            for (i, x) in exprs.into_iter().flatten().enumerate() {
                if let Some(x) = x.as_str() {
                    ward_js::check_expression(x).map_err(|e| {
                        at(
                            format!("spec.proxy_requests.entity_attributes[{i}] {x:?}"),
                            e,
                        )
                    })?;
                }
            }
        }
        Kind::Mutator if r.spec.get("type").and_then(Value::as_str) == Some("javascript") => {
            let body = r.spec.get("eval").and_then(Value::as_str).unwrap_or("");
            ward_js::check_function_body(body).map_err(|e| at("spec.eval".into(), e))?;
        }
        _ => {}
    }
    Ok(())
}

/// What Sensu fills in on a silence: `creator` (the caller), `begin` (now) and, when it
/// expires after `expire` seconds, `expire_at` (begin + expire). A silence without
/// `expire` (or with -1) is kept until deleted or resolved.
fn silence_times(r: &mut Resource, user: &str, now: i64) {
    let int = |r: &Resource, k: &str| r.spec.get(k).and_then(Value::as_i64).unwrap_or(0);
    if r.spec
        .get("creator")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        r.spec.insert("creator".into(), user.into());
    }
    if int(r, "begin") <= 0 {
        r.spec.insert("begin".into(), now.into());
    }
    let (begin, expire) = (int(r, "begin"), int(r, "expire"));
    if expire > 0 && int(r, "expire_at") <= 0 {
        r.spec.insert("expire_at".into(), (begin + expire).into());
    }
}

/// A check's schedule must be one the scheduler can follow. (A published check with
/// neither runs every `DEFAULT_INTERVAL` seconds: the guides' `expired_certs` is written so.)
pub(super) fn check_schedule(r: &Resource) -> ApiResult<()> {
    if let Some(expr) = r.spec.get("cron").and_then(Value::as_str) {
        crate::agentd::schedulerd::parse_cron(expr).map_err(|e| bad(format!("spec.{e}")))?;
        if r.spec.get("interval").and_then(Value::as_u64).unwrap_or(0) > 0 {
            return Err(bad("spec.cron: set either interval or cron, not both"));
        }
    }
    Ok(())
}

pub(super) async fn require_namespace(st: &AppState, ns: &str) -> ApiResult<()> {
    let n = ns.to_string();
    if st
        .db(move |s| s.get(Kind::Namespace, "", &n))
        .await?
        .is_none()
    {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("namespace {ns:?} not found; create it first"),
        ));
    }
    Ok(())
}

/// GET of a collection: authentication, then the kind (so an anonymous request is a 401
/// whatever its path), RBAC's `list`, then one page of flat resources, selected.
pub(super) async fn list_page(
    st: &AppState,
    headers: &HeaderMap,
    kind: ApiResult<Kind>,
    namespace: Option<&str>,
    query: Option<&str>,
) -> ApiResult<Response> {
    let user = authenticate(st, headers).await?;
    let kind = kind?;
    permit(
        st,
        &user,
        Request::new(Verb::List, kind.plural(), namespace, None),
    )?;
    let q = ListQuery::parse(query)?;
    let ns = namespace.map(str::to_string);
    let (items, next) = st
        .db(move |s| {
            select_page(
                q.limit,
                q.after,
                |after, n| {
                    s.list(kind, ns.as_deref(), n, after)
                        .map(|(rs, next)| (rs.into_iter().map(flat_with_key).collect(), next))
                },
                |r: &(Value, String)| r.1.clone(),
                |r| admits(&q.selection, kind.type_name(), &r.0),
            )
        })
        .await?;
    let flat: Vec<Value> = items.into_iter().map(|(v, _)| v).collect();
    Ok(with_continue(Json(flat).into_response(), next))
}

/// A resource as the API shows it: flat for core/v2 (Sensu's REST form), wrapped for
/// the other API groups (store/v1's PostgresConfig), as Sensu's enterprise API does.
pub(super) fn api_form(r: Resource) -> Value {
    if r.kind.api_version() == "core/v2" {
        r.into_flat()
    } else {
        serde_json::to_value(r.to_document()).unwrap_or_default()
    }
}

/// A resource as a list holds it: its key in the store and its API form.
pub(super) fn flat_with_key(r: Resource) -> (Value, String) {
    let key = format!(
        "{}\u{0}{}",
        r.metadata.namespace.as_deref().unwrap_or(""),
        r.metadata.name
    );
    (api_form(r), key)
}

/// The one body of every resource write: authorise `req`; when `namespace` is given, it
/// must exist (404); `parse` turns the body into a validated resource (it gets the user,
/// who becomes `created_by`); then the resource is stored, refused with 409 when
/// `create_only` and it exists. Nothing is stored unless every step before succeeded.
/// Returns what was stored.
pub(super) async fn write_resource(
    st: &AppState,
    headers: &HeaderMap,
    req: Request<'_>,
    namespace: Option<&str>,
    create_only: bool,
    parse: impl FnOnce(&User) -> ApiResult<Resource>,
) -> ApiResult<Resource> {
    let user = authorize(st, headers, req).await?;
    if let Some(ns) = namespace {
        require_namespace(st, ns).await?;
    }
    let r = checked_scripts(parse(&user)?).await?;
    let r = agent_entity(st, r).await?;
    let stored = st.db(move |s| s.put(&r, create_only).map(|()| r)).await?;
    after_change(st, stored.kind).await?;
    entity_written(st, &stored);
    Ok(stored)
}

/// An entity write as an agent's entity allows it (`agentd::entity::api_write`): 409 for
/// one its agent manages.
async fn agent_entity(st: &AppState, mut r: Resource) -> ApiResult<Resource> {
    if r.kind != Kind::Entity {
        return Ok(r);
    }
    let (ns, name) = (
        r.metadata.namespace.clone().unwrap_or_default(),
        r.metadata.name.clone(),
    );
    let stored = st.db(move |s| s.get(Kind::Entity, &ns, &name)).await?;
    crate::agentd::entity::api_write(&mut r, stored.as_ref()).map_err(|e| match e {
        crate::agentd::entity::Refused::Conflict(m) => ApiError(StatusCode::CONFLICT, m),
        crate::agentd::entity::Refused::Bad(m) => bad(m),
    })?;
    Ok(r)
}

/// Tells a connected agent that the API wrote its entity.
fn entity_written(st: &AppState, r: &Resource) {
    if r.kind == Kind::Entity {
        st.agents.entity_changed(
            r.metadata.namespace.as_deref().unwrap_or_default(),
            &r.metadata.name,
        );
    }
}

/// What follows a change to a `kind`: a new RBAC policy when it is a role or binding,
/// in force before the change is answered.
async fn after_change(st: &AppState, kind: Kind) -> ApiResult<()> {
    if crate::rbac::KINDS.contains(&kind) {
        let policy = st.policy.clone();
        st.db(move |store| policy.reload(|_| crate::rbac::load(store)))
            .await?;
    }
    if kind == Kind::Silenced {
        let s = st.silences.clone();
        st.db(move |store| s.reload(store)).await?;
    }
    if crate::pipeline::Pipeline::reads(kind) {
        let p = st.pipeline.clone();
        st.db(move |_| p.reload()).await?;
    }
    Ok(())
}

/// The stored resource, or 404.
pub(super) async fn find(
    st: &AppState,
    kind: Kind,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Resource> {
    let (n, c) = (ns.unwrap_or("").to_string(), name.to_string());
    st.db(move |s| s.get(kind, &n, &c)).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            match ns {
                Some(ns) => format!(
                    "{} {name:?} not found in namespace {ns:?}",
                    kind.type_name()
                ),
                None => format!("{} {name:?} not found", kind.type_name()),
            },
        )
    })
}

async fn get_one(
    st: &AppState,
    headers: &HeaderMap,
    kind: ApiResult<Kind>,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<Json<Value>> {
    let user = authenticate(st, headers).await?;
    let kind = kind?;
    permit(
        st,
        &user,
        Request::new(Verb::Get, kind.plural(), ns, Some(name)),
    )?;
    Ok(Json(find(st, kind, ns, name).await?.to_flat()))
}

/// POST (create, 409 if it exists) or PUT (create or replace): 201 with the stored
/// resource, flat.
async fn put_one(
    st: &AppState,
    headers: &HeaderMap,
    kind: Kind,
    ns: Option<&str>,
    name: Option<&str>,
    body: &[u8],
) -> ApiResult<(StatusCode, Json<Value>)> {
    let verb = if name.is_some() {
        Verb::Update
    } else {
        Verb::Create
    };
    let r = write_resource(
        st,
        headers,
        Request::new(verb, kind.plural(), ns, name),
        ns,
        name.is_none(),
        |user| body_resource(body, kind, ns, name, user),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(r.to_flat())))
}

/// PATCH: an RFC 7396 merge patch (`application/merge-patch+json`, or no type) of the
/// flat form; the name and namespace cannot change; the result is validated as a PUT
/// would be. 200 with the patched resource.
async fn patch_one(
    st: &AppState,
    headers: &HeaderMap,
    kind: Kind,
    ns: Option<&str>,
    name: &str,
    body: &[u8],
) -> ApiResult<Json<Value>> {
    let user = authorize(
        st,
        headers,
        Request::new(Verb::Update, kind.plural(), ns, Some(name)),
    )
    .await?;
    match headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("application/merge-patch+json") | Some("application/json") => {}
        Some("application/json-patch+json") => {
            return Err(bad("Content-Type: JSON Patch is not supported; send a merge patch (application/merge-patch+json)"))
        }
        Some(other) => {
            return Err(ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Content-Type: {other:?} is not a merge patch; send application/merge-patch+json"),
            ))
        }
    }
    let patch: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    if !patch.is_object() {
        return Err(bad("body: a merge patch must be a JSON object"));
    }
    for key in ["name", "namespace"] {
        if let Some(v) = patch.pointer(&format!("/metadata/{key}")) {
            let current = match key {
                "name" => Some(name),
                _ => ns,
            };
            if v.as_str() != current {
                return Err(bad(format!(
                    "metadata.{key}: a patch cannot change it; create a new resource instead"
                )));
            }
        }
    }
    let mut v = find(st, kind, ns, name).await?.to_flat();
    merge_patch(&mut v, &patch);
    let text = serde_json::to_vec(&v).map_err(|e| bad(e.to_string()))?;
    let r = checked_scripts(body_resource(&text, kind, ns, Some(name), &user)?).await?;
    let r = agent_entity(st, r).await?;
    let stored = st.db(move |s| s.put(&r, false).map(|()| r)).await?;
    after_change(st, kind).await?;
    entity_written(st, &stored);
    Ok(Json(stored.to_flat()))
}

/// RFC 7396: objects merge, `null` deletes, anything else (arrays included) replaces.
pub(super) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(t) = target else { return };
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

async fn delete_one(
    st: &AppState,
    headers: &HeaderMap,
    kind: ApiResult<Kind>,
    ns: Option<&str>,
    name: &str,
) -> ApiResult<StatusCode> {
    let user = authenticate(st, headers).await?;
    let kind = kind?;
    permit(
        st,
        &user,
        Request::new(Verb::Delete, kind.plural(), ns, Some(name)),
    )?;
    let (n, c) = (ns.unwrap_or("").to_string(), name.to_string());
    st.db(move |s| s.delete(kind, &n, &c)).await?;
    after_change(st, kind).await?;
    if kind == Kind::Entity {
        st.agents.entity_changed(ns.unwrap_or_default(), name);
    }
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn list_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    matched: MatchedPath,
    Path((ns, plural)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_page(
        &st,
        &headers,
        kind_in_ns(&plural, &matched),
        Some(&ns),
        q.as_deref(),
    )
    .await
}

pub(super) async fn create_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    matched: MatchedPath,
    Path((ns, plural)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    put_one(
        &st,
        &headers,
        kind_in_ns(&plural, &matched)?,
        Some(&ns),
        None,
        &body,
    )
    .await
}

pub(super) async fn get_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    matched: MatchedPath,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    get_one(
        &st,
        &headers,
        kind_in_ns(&plural, &matched),
        Some(&ns),
        &name,
    )
    .await
}

pub(super) async fn put_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    matched: MatchedPath,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    put_one(
        &st,
        &headers,
        kind_in_ns(&plural, &matched)?,
        Some(&ns),
        Some(&name),
        &body,
    )
    .await
}

pub(super) async fn patch_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    matched: MatchedPath,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    patch_one(
        &st,
        &headers,
        kind_in_ns(&plural, &matched)?,
        Some(&ns),
        &name,
        &body,
    )
    .await
}

pub(super) async fn delete_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    matched: MatchedPath,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    delete_one(
        &st,
        &headers,
        kind_in_ns(&plural, &matched),
        Some(&ns),
        &name,
    )
    .await
}

/// `GET /api/core/v2/{plural}`: a cluster-wide kind, or a namespaced one in every
/// namespace (which RBAC judges cluster-wide, as Sensu does).
pub(super) async fn list_cluster(
    State(st): Shared,
    headers: HeaderMap,
    matched: MatchedPath,
    Path(plural): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_page(
        &st,
        &headers,
        listed_kind(&plural, &matched),
        None,
        q.as_deref(),
    )
    .await
}

pub(super) async fn create_cluster(
    State(st): Shared,
    headers: HeaderMap,
    Path(plural): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    put_one(&st, &headers, cluster_kind(&plural)?, None, None, &body).await
}

pub(super) async fn get_cluster(
    State(st): Shared,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    get_one(&st, &headers, cluster_kind(&plural), None, &name).await
}

pub(super) async fn put_cluster(
    State(st): Shared,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    put_one(
        &st,
        &headers,
        cluster_kind(&plural)?,
        None,
        Some(&name),
        &body,
    )
    .await
}

pub(super) async fn patch_cluster(
    State(st): Shared,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    patch_one(&st, &headers, cluster_kind(&plural)?, None, &name, &body).await
}

pub(super) async fn delete_cluster(
    State(st): Shared,
    headers: HeaderMap,
    Path((plural, name)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    delete_one(&st, &headers, cluster_kind(&plural), None, &name).await
}

#[cfg(test)]
mod tests {
    use super::merge_patch;
    use serde_json::json;

    #[test]
    fn merge_patches_follow_rfc_7396() {
        let mut v = json!({"a": "b", "c": {"d": "e", "f": "g"}, "list": [1, 2]});
        merge_patch(
            &mut v,
            &json!({"a": "z", "c": {"f": null}, "list": [3], "new": {"x": 1}}),
        );
        assert_eq!(
            v,
            json!({"a": "z", "c": {"d": "e"}, "list": [3], "new": {"x": 1}})
        );
    }
}
