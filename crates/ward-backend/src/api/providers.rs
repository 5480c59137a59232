//! `/api/enterprise/store/v1/provider`: the PostgresConfig that makes PostgreSQL the event store.

use super::access::authorize;
use super::error::{bad, ApiError, ApiResult};
use super::resources::*;
use super::state::AppState;
use super::Shared;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use ward_store::StoreError;
use ward_types::{Document, Kind, Resource};

pub(super) async fn list_providers(
    State(st): Shared,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    list_page(&st, &headers, Ok(Kind::PostgresConfig), None, q.as_deref()).await
}

pub(super) async fn create_provider(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let user = authorize(
        &st,
        &headers,
        Request::new(Verb::Create, "provider", None, None),
    )
    .await?;
    let r = body_resource(&body, Kind::PostgresConfig, None, None, &user)?;
    use_provider(&st, r, true).await
}

pub(super) async fn put_provider(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let user = authorize(
        &st,
        &headers,
        Request::new(Verb::Update, "provider", None, Some(&name)),
    )
    .await?;
    let r = body_resource(&body, Kind::PostgresConfig, None, Some(&name), &user)?;
    use_provider(&st, r, false).await
}

/// Stores a PostgresConfig and makes it the event store. It is validated first (connect, and
/// may the user create tables?): with `strict: true` a failure rejects it with PostgreSQL's
/// reason and nothing is stored; with `strict: false` it is stored anyway and eventd keeps
/// trying (events fall back to the embedded store meanwhile). Only one may exist.
pub(super) async fn use_provider(
    st: &AppState,
    r: Resource,
    create_only: bool,
) -> ApiResult<StatusCode> {
    let name = r.metadata.name.clone();
    let settings = ward_store::postgres::PgSettings::from_resource(&r).map_err(bad)?;
    let params = crate::eventd::resolve(&settings).map_err(bad)?;
    let (existing, _) = st
        .db(|s| s.list(Kind::PostgresConfig, None, 2, None))
        .await?;
    if let Some(other) = existing.iter().find(|o| o.metadata.name != name) {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "PostgresConfig {:?} is already the event store; one PostgresConfig at a time: update it (ward ctl create -f with its name) or delete it first",
                other.metadata.name
            ),
        ));
    }
    if create_only && !existing.is_empty() {
        return Err(StoreError::Exists {
            kind: "PostgresConfig",
            name,
        }
        .into());
    }
    if let Err(reason) = crate::eventd::validate(&params).await {
        if settings.strict {
            return Err(bad(format!(
                "PostgresConfig {name:?} (strict: true) cannot be used, so it was not stored: {reason}"
            )));
        }
        tracing::warn!(store = %name, error = %reason, "PostgresConfig stored although PostgreSQL refused it (strict: false); events go to the embedded store until it answers");
    }
    st.db(move |s| s.put(&r, create_only)).await?;
    st.events.activate(settings).await.map_err(bad)?;
    Ok(StatusCode::CREATED)
}

pub(super) async fn get_provider(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Document>> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Get, "provider", None, Some(&name)),
    )
    .await?;
    let n = name.clone();
    let r = st
        .db(move |s| s.get(Kind::PostgresConfig, "", &n))
        .await?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("PostgresConfig {name:?} not found"),
            )
        })?;
    Ok(Json(r.to_document()))
}

pub(super) async fn delete_provider(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(
        &st,
        &headers,
        Request::new(Verb::Delete, "provider", None, Some(&name)),
    )
    .await?;
    let n = name.clone();
    st.db(move |s| s.delete(Kind::PostgresConfig, "", &n))
        .await?;
    st.events.deactivate(&name).await;
    Ok(StatusCode::NO_CONTENT)
}
