//! `/api/core/v2/namespaces`.

use super::access::{authenticate, authorize, need};
use super::error::{bad, ApiError, ApiResult};
use super::listing::{with_continue, ListQuery};
use super::resources::*;
use super::Shared;
use crate::rbac::Verb;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use ward_store::User;
use ward_types::{Document, Kind, Metadata, Resource};

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

pub(super) fn namespace_resource(
    body: &[u8],
    name: Option<&str>,
    user: &User,
) -> ApiResult<Resource> {
    // Sensu's namespace body is {"name": "…"}; a document works too.
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    let n = v
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or(name.map(str::to_string))
        .ok_or_else(|| bad("name: is required"))?;
    if let Some(u) = name {
        if n != u {
            return Err(bad(format!(
                "name: {n:?} does not match the name in the URL ({u:?})"
            )));
        }
    }
    Resource::from_document(Document {
        type_name: "Namespace".into(),
        api_version: "core/v2".into(),
        metadata: Metadata {
            name: n,
            created_by: Some(user.name.clone()),
            ..Default::default()
        },
        spec: Value::Null,
    })
    .map_err(|e| bad(e.to_string()))
}

pub(super) async fn create_namespace(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let req = need(Verb::Create, "namespaces", None, None);
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
    let req = need(Verb::Update, "namespaces", None, Some(&ns));
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
        need(Verb::Delete, "namespaces", None, Some(&ns)),
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
