//! `/api/core/v2/namespaces`.

use super::access::{authenticate, authorize};
use super::error::{bad, ApiError, ApiResult};
use super::listing::{with_continue, ListQuery};
use super::resources::*;
use super::Shared;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use ward_store::User;
use ward_types::{Kind, Resource};

pub(super) async fn list_namespaces(
    State(st): Shared,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    // Every authenticated user may list namespaces; they see those they can reach.
    let user = authenticate(&st, &headers).await?;
    let q = ListQuery::parse(q.as_deref())?;
    let (limit, after) = (q.limit, q.after);
    let (items, next) = st
        .db(move |s| s.list(Kind::Namespace, None, limit, after.as_deref()))
        .await?;
    let policy = st.policy.get();
    let seen: Vec<Value> = items
        .iter()
        .filter(|r| policy.reaches(&user.name, &user.groups, &r.metadata.name))
        .map(Resource::to_flat)
        .filter(|v| q.selection.is_empty() || q.selection.admits("Namespace", v))
        .collect();
    Ok(with_continue(Json(seen).into_response(), next))
}

/// A namespace from Sensu's `{"name": …}`, or a wrapped document (`spec: {name}` or
/// `metadata: {name}`); PUT's URL names it when the body does not.
pub(super) fn namespace_resource(
    body: &[u8],
    name: Option<&str>,
    user: &User,
) -> ApiResult<Resource> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    let named = v.get("name").is_some()
        || v.pointer("/metadata/name").is_some_and(|n| n != "")
        || v.pointer("/spec/name").is_some();
    if let (Some(n), false, Some(o)) = (name, named, v.as_object_mut()) {
        o.insert("name".into(), n.into());
    }
    let mut r = Resource::from_api_body(Kind::Namespace, v).map_err(|e| bad(e.to_string()))?;
    if let Some(u) = name {
        if r.metadata.name != u {
            return Err(bad(format!(
                "name: {:?} does not match the name in the URL ({u:?})",
                r.metadata.name
            )));
        }
    }
    r.metadata.created_by = Some(user.name.clone());
    Ok(r)
}

pub(super) async fn create_namespace(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req = Request::new(Verb::Create, "namespaces", None, None);
    write_resource(&st, &headers, req, None, true, |user| {
        namespace_resource(&body, None, user)
    })
    .await?;
    Ok(StatusCode::CREATED)
}

pub(super) async fn put_namespace(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req = Request::new(Verb::Update, "namespaces", None, Some(&ns));
    write_resource(&st, &headers, req, None, false, |user| {
        namespace_resource(&body, Some(&ns), user)
    })
    .await?;
    Ok(StatusCode::CREATED)
}

pub(super) async fn get_namespace(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = authenticate(&st, &headers).await?;
    if !st.policy.get().reaches(&user.name, &user.groups, &ns) {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("namespace {ns:?} not found"),
        ));
    }
    let n = ns.clone();
    st.db(move |s| s.get(Kind::Namespace, "", &n))
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("namespace {ns:?} not found")))?;
    Ok(Json(json!({"name": ns})))
}

pub(super) async fn delete_namespace(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Delete, "namespaces", None, Some(&ns)),
    )
    .await?;
    for k in Kind::ALL.into_iter().filter(|k| k.namespaced()) {
        let n = ns.clone();
        if !st
            .db(move |s| s.list(k, Some(&n), 1, None))
            .await?
            .0
            .is_empty()
        {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "namespace {ns:?} still holds {}; delete them first",
                    k.plural()
                ),
            ));
        }
    }
    st.db(move |s| s.delete(Kind::Namespace, "", &ns)).await?;
    Ok(StatusCode::NO_CONTENT)
}
