//! `/api/core/v2/apikeys`: API keys (`Authorization: Key KEY`).
//!
//! Sensu 6 names a key by the key itself (a UUID) and stores it in clear, so anyone who
//! may list keys holds them all. Ward gives each key a public name (a UUID, what lists
//! show and DELETE takes) and a separate 256-bit secret, returned once, in the answer to
//! the POST that creates it, and stored only as its SHA-256.

use super::access::{authenticate, authorize, permit};
use super::error::{bad, ApiError, ApiResult};
use super::listing::ListQuery;
use super::Shared;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use ward_store::apikeys::ApiKey;
use ward_store::StoreError;

/// A key as the API shows it (Sensu's flat APIKey): never its secret.
fn key_json(k: &ApiKey) -> Value {
    let mut metadata = json!({"name": k.name});
    if !k.created_by.is_empty() {
        metadata["created_by"] = json!(k.created_by);
    }
    json!({"metadata": metadata, "username": k.username, "created_at": k.created_at})
}

/// `POST /apikeys {"username": U}`: 201, `Location: /api/core/v2/apikeys/NAME`, and the
/// key, once: `{"metadata": {"name"}, "username", "created_at", "key"}`.
pub(super) async fn create_api_key(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let me = authorize(
        &st,
        &headers,
        Request::new(Verb::Create, "apikeys", None, None),
    )
    .await?;
    let v: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(bad(
            "body: must be an object such as {\"username\": \"alice\"}",
        ));
    };
    for k in obj.keys() {
        if !["username", "metadata", "created_at"].contains(&k.as_str()) {
            return Err(bad(format!(
                "{k}: unknown field in an APIKey; known fields: username, metadata, created_at"
            )));
        }
    }
    let username = obj
        .get("username")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| bad("username: is required (the user the key acts as)"))?
        .to_string();
    let key = crate::auth::new_token()?;
    let api_key = ApiKey {
        name: crate::auth::new_uuid()?,
        username,
        created_at: ward_types::unix_now(),
        created_by: me.name.clone(),
    };
    let (k, hash) = (api_key.clone(), crate::auth::token_hash(&key));
    st.db(move |s| s.insert_api_key(&k, &hash))
        .await
        .map_err(|e| match e {
            StoreError::NotFound { name, .. } => bad(format!(
                "username: user {name:?} does not exist; create it first"
            )),
            e => e.into(),
        })?;
    let mut body = key_json(&api_key);
    body["key"] = json!(key);
    let mut r = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(loc) = HeaderValue::from_str(&format!("/api/core/v2/apikeys/{}", api_key.name)) {
        r.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(r)
}

/// `GET /apikeys`: every key without its secret, selected by `fieldSelector`
/// (`api_key.name`, `api_key.username`). Keys are few: no paging.
pub(super) async fn list_api_keys(
    State(st): Shared,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::List, "apikeys", None, None),
    )
    .await?;
    let q = ListQuery::parse(q.as_deref())?;
    let keys = st.db(|s| s.api_keys()).await?;
    Ok(Json(
        keys.iter()
            .map(key_json)
            .filter(|k| q.selection.is_empty() || q.selection.admits("APIKey", k))
            .collect(),
    ))
}

pub(super) async fn get_api_key(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let me = authenticate(&st, &headers).await?;
    permit(
        &st,
        &me,
        Request::new(Verb::Get, "apikeys", None, Some(&name)),
    )?;
    let n = name.clone();
    let k = st
        .db(move |s| s.api_key(&n))
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("API key {name:?} not found")))?;
    Ok(Json(key_json(&k)))
}

pub(super) async fn delete_api_key(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Delete, "apikeys", None, Some(&name)),
    )
    .await?;
    st.db(move |s| s.delete_api_key(&name)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #[test]
    fn uuids_are_version_4() {
        let u = crate::auth::new_uuid().unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]), "{u}");
        assert_ne!(u, crate::auth::new_uuid().unwrap());
    }
}
