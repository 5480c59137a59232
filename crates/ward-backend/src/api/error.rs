//! `ApiError`: a status and one sentence, as JSON `{"message", "code"}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use ward_store::StoreError;

/// An API error: status and one sentence.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

/// What every handler returns.
pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.0,
            Json(json!({"message": self.1, "code": self.0.as_u16()})),
        )
            .into_response();
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"ward\", Bearer"),
            );
        }
        r
    }
}

/// 400: the request is wrong in the way `msg` says.
pub(crate) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

/// 503 with Retry-After: try again shortly (the sender keeps what it sent).
pub(crate) fn unavailable(m: String) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, m)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Exists { .. } => ApiError(StatusCode::CONFLICT, e.to_string()),
            StoreError::NotFound { .. } => ApiError(StatusCode::NOT_FOUND, e.to_string()),
            StoreError::LastMember { .. } => ApiError(StatusCode::CONFLICT, e.to_string()),
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the store failed; see the backend's log".into(),
                )
            }
        }
    }
}

impl From<crate::eventd::ReadError> for ApiError {
    fn from(e: crate::eventd::ReadError) -> Self {
        match e {
            crate::eventd::ReadError::Store(e) => e.into(),
            crate::eventd::ReadError::Unavailable(m) => unavailable(m),
        }
    }
}
