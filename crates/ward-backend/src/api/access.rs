//! Who is asking and may they: Basic credentials, Bearer tokens, roles.

use super::error::{ApiError, ApiResult};
use super::state::AppState;
use crate::auth::{self, Role};
use axum::http::{header, HeaderMap, StatusCode};
use std::sync::atomic::Ordering;
use ward_store::User;

pub(super) use crate::auth::basic;

pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// What a request needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    Read,
    Write,
    CreateEvent,
}

pub(super) async fn authorize(st: &AppState, headers: &HeaderMap, need: Need) -> ApiResult<User> {
    let user = authenticate(st, headers).await?;
    let role = auth::role_of(&user);
    let allowed = match need {
        Need::Read => role >= Role::View,
        Need::Write => role == Role::ClusterAdmin,
        Need::CreateEvent => role == Role::ClusterAdmin || role == Role::Agent,
    };
    if !allowed {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            format!(
                "user {:?} (groups: {}) may not {}",
                user.name,
                user.groups.join(", "),
                match need {
                    Need::Read => "read",
                    Need::Write => "change",
                    Need::CreateEvent => "create events",
                }
            ),
        ));
    }
    Ok(user)
}

/// The user behind the request's Bearer token.
pub(super) async fn authenticate(st: &AppState, headers: &HeaderMap) -> ApiResult<User> {
    Ok(session(st, headers).await?.0)
}

/// The user behind the request's Bearer token, and the token's session (family). The
/// token lookup runs off the async workers.
pub(super) async fn session(st: &AppState, headers: &HeaderMap) -> ApiResult<(User, String)> {
    let Some(token) = bearer(headers) else {
        st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError(StatusCode::UNAUTHORIZED, "no access token; log in with GET /auth (Basic credentials) and send Authorization: Bearer TOKEN".into()));
    };
    let token = token.to_string();
    let Some(found) = st.db(move |s| auth::authenticate_bearer(s, &token)).await? else {
        st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError(StatusCode::UNAUTHORIZED, "the access token is invalid, expired or revoked; log in again (GET /auth) or refresh it (POST /auth/token)".into()));
    };
    Ok(found)
}
