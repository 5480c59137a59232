//! `/auth`, `/auth/test`, `/auth/token`, `/auth/logout`: logging in and sessions.

use super::access::{authenticate, basic, bearer};
use super::error::{bad, ApiError, ApiResult};
use super::Shared;
use crate::auth::{self};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

pub(super) async fn login(State(st): Shared, headers: HeaderMap) -> ApiResult<Json<Value>> {
    let (u, p) = basic(&headers)
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "send Basic credentials".into()))?;
    let user = st
        .store
        .user(&u)?
        .filter(|user| auth::check_password(user, &p));
    let Some(user) = user else {
        st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong username or password".into(),
        ));
    };
    let (access, refresh, expires) =
        auth::issue_tokens(&st.store, &user.name, st.access_token_ttl)?;
    Ok(Json(
        json!({"access_token": access, "expires_at": expires, "refresh_token": refresh}),
    ))
}

pub(super) async fn auth_test(State(st): Shared, headers: HeaderMap) -> ApiResult<StatusCode> {
    let (u, p) = basic(&headers)
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "send Basic credentials".into()))?;
    match st.store.user(&u)? {
        Some(user) if auth::check_password(&user, &p) => Ok(StatusCode::OK),
        _ => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong username or password".into(),
        )),
    }
}

#[derive(Deserialize)]
pub(super) struct RefreshBody {
    refresh_token: String,
}

pub(super) async fn refresh(State(st): Shared, body: Bytes) -> ApiResult<Json<Value>> {
    let b: RefreshBody = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("body: {e}; send {{\"refresh_token\": \"…\"}}")))?;
    let user = auth::redeem_refresh(&st.store, &b.refresh_token).ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "the refresh token is invalid, expired or already used; log in again".into(),
        )
    })?;
    let (access, refresh, expires) =
        auth::issue_tokens(&st.store, &user.name, st.access_token_ttl)?;
    Ok(Json(
        json!({"access_token": access, "expires_at": expires, "refresh_token": refresh}),
    ))
}

pub(super) async fn logout(State(st): Shared, headers: HeaderMap) -> ApiResult<StatusCode> {
    let token = bearer(&headers)
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "no access token".into()))?;
    let user = authenticate(&st, &headers)?;
    st.store.revoke_token(&auth::token_hash(token))?;
    st.store.revoke_refresh_tokens(&user.name)?;
    Ok(StatusCode::NO_CONTENT)
}
