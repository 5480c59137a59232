//! Who is asking and may they: Bearer tokens and API keys, then RBAC (`crate::rbac`).

use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::auth;
use crate::rbac::Request;
use axum::http::{header, HeaderMap, StatusCode};
use std::sync::atomic::Ordering;
use ward_store::User;

pub(super) use crate::auth::basic;

/// The credentials of `Authorization: <scheme> <value>`.
fn credential<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix(scheme)?
        .strip_prefix(' ')
        .map(str::trim)
}

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    credential(headers, "Bearer")
}

/// The caller, if RBAC allows `req`; 401 without valid credentials, 403 naming the
/// request otherwise.
pub(super) async fn authorize(
    st: &AppState,
    headers: &HeaderMap,
    req: Request<'_>,
) -> ApiResult<User> {
    let user = authenticate(st, headers).await?;
    permit(st, &user, req)?;
    Ok(user)
}

/// RBAC's verdict on `req` for an authenticated `user`.
pub(super) fn permit(st: &AppState, user: &User, req: Request<'_>) -> ApiResult<()> {
    st.policy
        .get()
        .authorize(&user.name, &user.groups, &req)
        .map_err(|why| ApiError(StatusCode::FORBIDDEN, why))
}

/// The user behind the request's API key or Bearer token.
pub(super) async fn authenticate(st: &AppState, headers: &HeaderMap) -> ApiResult<User> {
    if let Some(key) = credential(headers, "Key") {
        let key = key.to_string();
        return match st.db(move |s| auth::authenticate_key(s, &key)).await? {
            Some(u) => Ok(u),
            None => {
                st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
                Err(ApiError(StatusCode::UNAUTHORIZED, "the API key is unknown or revoked, or its user is disabled; ask a cluster admin for a new one (ward ctl api-key grant USER)".into()))
            }
        };
    }
    Ok(session(st, headers).await?.0)
}

/// The user behind the request's Bearer token, and the token's session (family). The
/// token lookup runs off the async workers.
pub(super) async fn session(st: &AppState, headers: &HeaderMap) -> ApiResult<(User, String)> {
    let Some(token) = bearer(headers) else {
        st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError(StatusCode::UNAUTHORIZED, "no access token; log in with GET /auth (Basic credentials) and send Authorization: Bearer TOKEN, or send Authorization: Key APIKEY".into()));
    };
    let token = token.to_string();
    let Some(found) = st.db(move |s| auth::authenticate_bearer(s, &token)).await? else {
        st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError(StatusCode::UNAUTHORIZED, "the access token is invalid, expired or revoked; log in again (GET /auth) or refresh it (POST /auth/token)".into()));
    };
    Ok(found)
}
