//! `/api/core/v2/users`: users, their groups and passwords.

use super::access::{authenticate, authorize, Need};
use super::error::{bad, ApiError, ApiResult};
use super::Shared;
use crate::auth::{self, Role};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use ward_store::User;

pub(super) fn user_json(u: &User) -> Value {
    json!({"username": u.name, "groups": u.groups, "disabled": u.disabled})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserBody {
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    disabled: bool,
}

pub(super) async fn list_users(
    State(st): Shared,
    headers: HeaderMap,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(&st, &headers, Need::Read)?;
    Ok(Json(st.store.users()?.iter().map(user_json).collect()))
}

pub(super) async fn get_user(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &headers, Need::Read)?;
    let u = st
        .store
        .user(&name)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("user {name:?} not found")))?;
    Ok(Json(user_json(&u)))
}

pub(super) fn user_from_body(body: &[u8], name: Option<&str>) -> ApiResult<User> {
    let b: UserBody = serde_json::from_slice(body).map_err(|e| bad(format!("body: {e}")))?;
    let n = b
        .username
        .or(name.map(str::to_string))
        .ok_or_else(|| bad("username: is required"))?;
    ward_types::check_name("username", &n).map_err(|e| bad(e.to_string()))?;
    if let Some(u) = name {
        if u != n {
            return Err(bad(format!(
                "username: {n:?} does not match the name in the URL ({u:?})"
            )));
        }
    }
    let hash = match b.password {
        Some(p) => Some(auth::hash_password(&p).map_err(|e| bad(format!("password: {e}")))?),
        None => None,
    };
    Ok(User {
        name: n,
        password_hash: hash,
        groups: b.groups,
        disabled: b.disabled,
    })
}

pub(super) async fn create_user(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    authorize(&st, &headers, Need::Write)?;
    let u = user_from_body(&body, None)?;
    if u.password_hash.is_none() {
        return Err(bad("password: is required for a new user"));
    }
    st.store.create_user(&u)?;
    Ok(StatusCode::CREATED)
}

pub(super) async fn put_user(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    authorize(&st, &headers, Need::Write)?;
    let mut u = user_from_body(&body, Some(&name))?;
    match st.store.user(&name)? {
        Some(old) => {
            if u.password_hash.is_none() {
                u.password_hash = old.password_hash;
            }
            st.store.update_user(&u)?;
        }
        None => {
            if u.password_hash.is_none() {
                return Err(bad("password: is required for a new user"));
            }
            st.store.create_user(&u)?;
        }
    }
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    password: String,
}

pub(super) async fn change_password(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let me = authenticate(&st, &headers)?;
    if me.name != name && auth::role_of(&me) != Role::ClusterAdmin {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!("user {:?} may change only their own password", me.name),
        ));
    }
    let b: PasswordBody = serde_json::from_slice(&body).map_err(|e| bad(format!("body: {e}")))?;
    let mut u = st
        .store
        .user(&name)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("user {name:?} not found")))?;
    u.password_hash =
        Some(auth::hash_password(&b.password).map_err(|e| bad(format!("password: {e}")))?);
    st.store.update_user(&u)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn disable_user(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(&st, &headers, Need::Write)?;
    let mut u = st
        .store
        .user(&name)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("user {name:?} not found")))?;
    u.disabled = true;
    st.store.update_user(&u)?;
    Ok(StatusCode::NO_CONTENT)
}
