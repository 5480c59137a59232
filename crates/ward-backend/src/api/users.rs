//! `/api/core/v2/users`: users, their groups and passwords.

use super::access::{authenticate, authorize, permit};
use super::error::{bad, ApiError, ApiResult};
use super::listing::ListQuery;
use super::state::AppState;
use super::Shared;
use crate::auth;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use ward_store::User;
use ward_types::{Kind, Resource};

pub(super) fn user_json(u: &User) -> Value {
    json!({"username": u.name, "groups": u.groups, "disabled": u.disabled})
}

/// `GET /users`: every user, flat, selected by `labelSelector`/`fieldSelector`
/// (`user.username`, `user.groups`, `user.disabled`). Users are few: no paging.
pub(super) async fn list_users(
    State(st): Shared,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<Vec<Value>>> {
    authorize(&st, &headers, Request::new(Verb::List, "users", None, None)).await?;
    let q = ListQuery::parse(q.as_deref())?;
    let users = st.db(|s| s.users()).await?;
    Ok(Json(
        users
            .iter()
            .map(user_json)
            .filter(|u| q.selection.is_empty() || q.selection.admits("User", u))
            .collect(),
    ))
}

/// `PATCH /users/{u}`: a merge patch of the flat user (`groups`, `disabled`, `password`);
/// the username cannot change. 200 with the user.
pub(super) async fn patch_user(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Update, "users", None, Some(&name)),
    )
    .await?;
    let patch: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    if !patch.is_object() {
        return Err(bad("body: a merge patch must be a JSON object"));
    }
    if patch.get("username").is_some_and(|u| u != name.as_str()) {
        return Err(bad("username: a patch cannot change it"));
    }
    let old = find_user(&st, &name).await?;
    let mut v = user_json(&old);
    super::resources::merge_patch(&mut v, &patch);
    let mut u = user_from_body(&serde_json::to_vec(&v).unwrap_or_default(), Some(&name)).await?;
    if u.password_hash.is_none() {
        u.password_hash = old.password_hash;
    }
    let shown = user_json(&u);
    update_user(&st, u).await?;
    Ok(Json(shown))
}

pub(super) async fn get_user(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Value>> {
    let me = authenticate(&st, &headers).await?;
    permit_on_user(&st, &me, Verb::Get, &name)?;
    let u = find_user(&st, &name).await?;
    Ok(Json(user_json(&u)))
}

/// RBAC for `verb` on the user `name`: as Sensu, users may read themselves and change
/// their own password through the `localselfuser` resource (ClusterRole system:user).
fn permit_on_user(st: &AppState, me: &User, verb: Verb, name: &str) -> ApiResult<()> {
    if me.name == name && permit(st, me, Request::new(verb, "localselfuser", None, None)).is_ok() {
        return Ok(());
    }
    permit(st, me, Request::new(verb, "users", None, Some(name)))
}

/// The user called `name`, or 404.
async fn find_user(st: &AppState, name: &str) -> ApiResult<User> {
    let n = name.to_string();
    st.db(move |s| s.user(&n))
        .await?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("user {name:?} not found")))
}

/// An argon2id hash of `password`, made on the blocking pool.
async fn hash_off_workers(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a password hash task failed");
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "hashing the password failed; see the backend's log".into(),
            )
        })?
        .map_err(|e| bad(format!("password: {e}")))
}

/// Writes a changed user, unless that leaves no enabled cluster admin (409).
async fn update_user(st: &AppState, u: User) -> ApiResult<()> {
    st.db(move |s| s.update_user(&u, Some(auth::ADMIN_GROUP)))
        .await?;
    Ok(())
}

/// Parses a user body, Sensu's flat User (`{username, password, groups, disabled,
/// password_hash}`, `metadata: {}` allowed) or its wrapped document. A `password` is
/// hashed (argon2id) off the workers; without one, a `password_hash` (bcrypt from Sensu,
/// or argon2) is kept as given, so users come over from Sensu with their passwords.
async fn user_from_body(body: &[u8], name: Option<&str>) -> ApiResult<User> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    if let (Some(n), Some(o)) = (name, v.as_object_mut()) {
        if !o.contains_key("username") && !o.contains_key("spec") {
            o.insert("username".into(), n.into());
        }
    }
    let r = Resource::from_api_body(Kind::User, v).map_err(|e| bad(e.to_string()))?;
    let n = r.metadata.name.clone();
    if let Some(u) = name {
        if u != n {
            return Err(bad(format!(
                "username: {n:?} does not match the name in the URL ({u:?})"
            )));
        }
    }
    let text = |k: &str| r.spec.get(k).and_then(Value::as_str).map(str::to_string);
    let hash = match (text("password"), text("password_hash")) {
        (Some(p), _) => Some(hash_off_workers(p).await?),
        (None, Some(h)) => Some(h),
        (None, None) => None,
    };
    let groups = r
        .spec
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(User {
        name: n,
        password_hash: hash,
        groups,
        disabled: r
            .spec
            .get("disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

pub(super) async fn create_user(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Create, "users", None, None),
    )
    .await?;
    let u = user_from_body(&body, None).await?;
    if u.password_hash.is_none() {
        return Err(bad("password: is required for a new user"));
    }
    st.db(move |s| s.create_user(&u)).await?;
    Ok(StatusCode::CREATED)
}

pub(super) async fn put_user(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Update, "users", None, Some(&name)),
    )
    .await?;
    let mut u = user_from_body(&body, Some(&name)).await?;
    let n = name.clone();
    match st.db(move |s| s.user(&n)).await? {
        Some(old) => {
            if u.password_hash.is_none() {
                u.password_hash = old.password_hash;
            }
            update_user(&st, u).await?;
        }
        None => {
            if u.password_hash.is_none() {
                return Err(bad("password: is required for a new user"));
            }
            st.db(move |s| s.create_user(&u)).await?;
        }
    }
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordBody {
    /// Ward's form: the new password. Sensu's form (with `password_hash`): the current one.
    password: String,
    /// The current password: required to change one's own (a stolen access token alone
    /// must not be enough to take the account over); not when an admin resets another's.
    #[serde(default)]
    current_password: Option<String>,
    /// Sensu's form: the new password's hash (bcrypt or argon2), `password` then being
    /// the current password.
    #[serde(default)]
    password_hash: Option<String>,
    /// Sensu's clients send it; it must be the URL's.
    #[serde(default)]
    username: Option<String>,
}

/// A password hash as a User's `password_hash` must be (bcrypt or argon2), or a 400.
fn valid_hash(name: &str, hash: &str) -> ApiResult<()> {
    Resource::from_flat(Kind::User, json!({"username": name, "password_hash": hash}))
        .map(|_| ())
        .map_err(|e| bad(e.to_string()))
}

pub(super) async fn change_password(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let me = authenticate(&st, &headers).await?;
    permit_on_user(&st, &me, Verb::Update, &name)?;
    let b: PasswordBody = serde_json::from_slice(&body).map_err(|e| bad(format!("body: {e}")))?;
    if b.username.as_deref().is_some_and(|u| u != name) {
        return Err(bad("username: does not match the name in the URL"));
    }
    // Sensu's body carries the current password and the new hash; Ward's the new password
    // and the current one.
    let (current, new_hash, new_password) = match b.password_hash {
        Some(h) => {
            valid_hash(&name, &h)?;
            (Some(b.password), Some(h), None)
        }
        None => (b.current_password, None, Some(b.password)),
    };
    if me.name == name {
        let Some(current) = current else {
            return Err(bad(
                "current_password: is required to change your own password (ward ctl user change-password --current-password …)",
            ));
        };
        match st
            .logins
            .check(st.store.clone(), None, &name, current)
            .await
        {
            Ok(_) => {}
            Err(auth::LoginError::Wrong) => {
                return Err(ApiError(
                    StatusCode::FORBIDDEN,
                    "current_password: is wrong; the password was not changed".into(),
                ))
            }
            Err(auth::LoginError::Throttled(s)) => {
                return Err(ApiError(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!("too many failed attempts; retry in {s} s"),
                ))
            }
            Err(auth::LoginError::Store(e)) => return Err(e.into()),
            Err(auth::LoginError::Task(m)) => {
                tracing::error!(error = %m, "a password check failed");
                return Err(ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the password check failed; see the backend's log".into(),
                ));
            }
        }
    }
    let hash = match (new_hash, new_password) {
        (Some(h), _) => h,
        (None, Some(p)) => hash_off_workers(p).await?,
        (None, None) => return Err(bad("password: is required")),
    };
    let mut u = find_user(&st, &name).await?;
    u.password_hash = Some(hash);
    update_user(&st, u).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn disable_user(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    change_user(&st, &headers, Verb::Delete, &name, |u| u.disabled = true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The one body of the user changes below: RBAC's `verb` on the user, then `change`
/// applied to the stored user and written (409 if it leaves no enabled cluster admin).
async fn change_user(
    st: &AppState,
    headers: &HeaderMap,
    verb: Verb,
    name: &str,
    change: impl FnOnce(&mut User),
) -> ApiResult<()> {
    authorize(st, headers, Request::new(verb, "users", None, Some(name))).await?;
    let mut u = find_user(st, name).await?;
    change(&mut u);
    update_user(st, u).await
}

/// `PUT /users/{u}/reinstate`: enables a disabled user again.
pub(super) async fn reinstate_user(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    change_user(&st, &headers, Verb::Update, &name, |u| u.disabled = false).await?;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ResetBody {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    password_hash: Option<String>,
    /// Sensu's clients send the username too; it must be the URL's.
    #[serde(default)]
    username: Option<String>,
}

/// `PUT /users/{u}/reset_password`: an administrator sets a user's password (no current
/// password asked; RBAC's update on users).
pub(super) async fn reset_password(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Update, "users", None, Some(&name)),
    )
    .await?;
    let b: ResetBody = serde_json::from_slice(&body).map_err(|e| bad(format!("body: {e}")))?;
    if b.username.as_deref().is_some_and(|u| u != name) {
        return Err(bad("username: does not match the name in the URL"));
    }
    let mut u = find_user(&st, &name).await?;
    u.password_hash = Some(match (b.password, b.password_hash) {
        (Some(p), _) => hash_off_workers(p).await?,
        (None, Some(h)) => {
            valid_hash(&name, &h)?;
            h
        }
        (None, None) => return Err(bad("password: is required")),
    });
    update_user(&st, u).await?;
    Ok(StatusCode::CREATED)
}

/// `PUT /users/{u}/groups/{g}`: adds a group.
pub(super) async fn add_group(
    State(st): Shared,
    headers: HeaderMap,
    Path((name, group)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ward_types::check_name("group", &group).map_err(|e| bad(e.to_string()))?;
    change_user(&st, &headers, Verb::Update, &name, |u| {
        if !u.groups.contains(&group) {
            u.groups.push(group);
        }
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// `DELETE /users/{u}/groups/{g}`: removes a group (409 if that leaves no cluster admin).
pub(super) async fn remove_group(
    State(st): Shared,
    headers: HeaderMap,
    Path((name, group)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    change_user(&st, &headers, Verb::Update, &name, |u| {
        u.groups.retain(|g| *g != group)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /users/{u}/groups`: removes every group.
pub(super) async fn remove_all_groups(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    change_user(&st, &headers, Verb::Update, &name, |u| u.groups.clear()).await?;
    Ok(StatusCode::NO_CONTENT)
}
