//! `/auth`, `/auth/test`, `/auth/token`, `/auth/logout`: logging in and sessions.

use super::access::{basic, session};
use super::error::{bad, ApiError, ApiResult};
use super::state::AppState;
use super::Shared;
use crate::auth::{self, LoginError};
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::extract::State;
use axum::http::header;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use ward_store::User;

/// The peer's address, when the listener recorded it (per-source throttling).
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

/// Checks Basic credentials through `Logins` (off the workers, capped, throttled).
/// A throttled attempt is a 429 with Retry-After (seconds).
async fn check_basic(st: &AppState, headers: &HeaderMap, peer: Peer) -> Result<User, Response> {
    let (u, p) = basic(headers).ok_or_else(|| {
        ApiError(StatusCode::UNAUTHORIZED, "send Basic credentials".into()).into_response()
    })?;
    let source = peer.map(|Extension(ConnectInfo(a))| a.ip());
    match st.logins.check(st.store.clone(), source, &u, p).await {
        Ok(user) => Ok(user),
        Err(e) => {
            st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
            Err(match e {
                LoginError::Wrong => ApiError(StatusCode::UNAUTHORIZED, e.to_string()),
                LoginError::Throttled(secs) => {
                    let mut r =
                        ApiError(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response();
                    r.headers_mut().insert(header::RETRY_AFTER, secs.into());
                    return Err(r);
                }
                LoginError::Store(e) => e.into(),
                LoginError::Task(m) => {
                    tracing::error!(error = %m, "a password check failed");
                    ApiError(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "the password check failed; see the backend's log".into(),
                    )
                }
            }
            .into_response())
        }
    }
}

/// A token pair as the API answers it.
async fn tokens(st: &AppState, user: String, family: Option<String>) -> ApiResult<Json<Value>> {
    let ttl = st.access_token_ttl;
    let (access, refresh, expires) = st
        .db(move |s| auth::issue_tokens(s, &user, ttl, family))
        .await?;
    Ok(Json(
        json!({"access_token": access, "expires_at": expires, "refresh_token": refresh}),
    ))
}

pub(super) async fn login(
    State(st): Shared,
    peer: Peer,
    headers: HeaderMap,
) -> Result<Json<Value>, Response> {
    let user = check_basic(&st, &headers, peer).await?;
    tokens(&st, user.name, None)
        .await
        .map_err(IntoResponse::into_response)
}

pub(super) async fn auth_test(
    State(st): Shared,
    peer: Peer,
    headers: HeaderMap,
) -> Result<StatusCode, Response> {
    check_basic(&st, &headers, peer).await?;
    Ok(StatusCode::OK)
}

#[derive(Deserialize)]
pub(super) struct RefreshBody {
    refresh_token: String,
}

/// A new pair in the same session; the refresh token is used up, and presenting it again
/// revokes the session.
pub(super) async fn refresh(State(st): Shared, body: Bytes) -> ApiResult<Json<Value>> {
    let b: RefreshBody = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("body: {e}; send {{\"refresh_token\": \"…\"}}")))?;
    let (user, family) = st
        .db(move |s| auth::redeem_refresh(s, &b.refresh_token))
        .await?
        .ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "the refresh token is invalid, expired or already used; log in again".into(),
            )
        })?;
    tokens(&st, user.name, Some(family)).await
}

/// Ends this session (its access and refresh tokens); the user's other sessions go on.
pub(super) async fn logout(State(st): Shared, headers: HeaderMap) -> ApiResult<StatusCode> {
    let (_, family) = session(&st, &headers).await?;
    st.db(move |s| s.revoke_family(&family)).await?;
    Ok(StatusCode::NO_CONTENT)
}
