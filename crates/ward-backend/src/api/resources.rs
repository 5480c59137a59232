//! The generic resources of a namespace (`/api/core/v2/namespaces/{ns}/{plural}`), and
//! the body parsing and paging the other resource families share.

use super::access::{authenticate, authorize, need, permit};
use super::error::{bad, ApiError, ApiResult};
use super::state::AppState;
use super::Shared;
use crate::rbac::{Request, Verb};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use ward_store::User;
use ward_types::{Document, Kind, Resource};

#[derive(Deserialize)]
pub(super) struct Page {
    pub(super) limit: Option<usize>,
    #[serde(rename = "continue")]
    pub(super) cont: Option<String>,
}

pub(super) fn parse_doc(body: &[u8]) -> ApiResult<Document> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    serde_json::from_value(v).map_err(|e| bad(format!("body: {e}")))
}

/// Parses and validates a body for `kind` at a path's namespace and name.
pub(super) fn body_resource(
    body: &[u8],
    kind: Kind,
    ns: Option<&str>,
    name: Option<&str>,
    user: &User,
) -> ApiResult<Resource> {
    let mut doc = parse_doc(body)?;
    if doc.type_name.is_empty() {
        doc.type_name = kind.type_name().into();
    }
    if doc.api_version.is_empty() {
        doc.api_version = kind.api_version().into();
    }
    if let Some(n) = name {
        if doc.metadata.name.is_empty() {
            doc.metadata.name = n.into();
        } else if doc.metadata.name != n {
            return Err(bad(format!(
                "metadata.name: {:?} does not match the name in the URL ({n:?})",
                doc.metadata.name
            )));
        }
    }
    if let Some(ns) = ns {
        match &doc.metadata.namespace {
            None => doc.metadata.namespace = Some(ns.into()),
            Some(x) if x != ns => {
                return Err(bad(format!(
                    "metadata.namespace: {x:?} does not match the namespace in the URL ({ns:?})"
                )))
            }
            _ => {}
        }
    }
    doc.metadata.created_by = Some(user.name.clone());
    // The kind first: a body of another kind is refused as such, not for its spec.
    let given =
        Kind::parse(&doc.type_name, Some(&doc.api_version)).map_err(|e| bad(e.to_string()))?;
    if given != kind {
        return Err(bad(format!(
            "type: a {} cannot be stored under /{}",
            given.type_name(),
            kind.plural()
        )));
    }
    let r = Resource::from_document(doc).map_err(|e| bad(e.to_string()))?;
    if r.kind == Kind::CheckConfig {
        check_schedule(&r)?;
    }
    Ok(r)
}

/// A check's schedule must be one the scheduler can follow. (A published check with
/// neither runs every `DEFAULT_INTERVAL` seconds: the guides' `expired_certs` is written so.)
pub(super) fn check_schedule(r: &Resource) -> ApiResult<()> {
    if let Some(expr) = r.spec.get("cron").and_then(Value::as_str) {
        crate::agentd::schedulerd::parse_cron(expr).map_err(|e| bad(format!("spec.{e}")))?;
        if r.spec.get("interval").and_then(Value::as_u64).unwrap_or(0) > 0 {
            return Err(bad("spec.cron: set either interval or cron, not both"));
        }
    }
    Ok(())
}

pub(super) fn kind_in_ns(plural: &str) -> ApiResult<Kind> {
    Kind::from_plural(plural)
        .filter(|k| k.namespaced())
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!(
                    "no such collection {plural:?}; use {}",
                    Kind::ALL
                        .into_iter()
                        .filter(|k| k.namespaced())
                        .map(Kind::plural)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}

pub(super) async fn require_namespace(st: &AppState, ns: &str) -> ApiResult<()> {
    let n = ns.to_string();
    if st
        .db(move |s| s.get(Kind::Namespace, "", &n))
        .await?
        .is_none()
    {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("namespace {ns:?} not found; create it first"),
        ));
    }
    Ok(())
}

/// Adds the next page's token, when there is one, as the `Ward-Continue` header.
pub(super) fn with_continue(mut r: Response, next: Option<String>) -> Response {
    if let Some(n) = next {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n);
        if let Ok(v) = HeaderValue::from_str(&token) {
            r.headers_mut().insert("ward-continue", v);
        }
    }
    r
}

pub(super) fn listing(items: Vec<Resource>, next: Option<String>) -> Response {
    let docs: Vec<Document> = items.iter().map(Resource::to_document).collect();
    with_continue(Json(docs).into_response(), next)
}

/// GET of a collection: read access, then one page of `kind` in `namespace` (the kind is
/// judged after authentication, so an anonymous request is a 401 whatever its path).
pub(super) async fn list_page(
    st: &AppState,
    headers: &HeaderMap,
    kind: ApiResult<Kind>,
    namespace: Option<&str>,
    p: &Page,
) -> ApiResult<Response> {
    let user = authenticate(st, headers).await?;
    let kind = kind?;
    permit(st, &user, need(Verb::List, kind.plural(), namespace, None))?;
    let (ns, limit) = (namespace.map(str::to_string), p.limit.unwrap_or(500));
    let after = decode_continue(p.cont.as_deref())?;
    let (items, next) = st
        .db(move |s| s.list(kind, ns.as_deref(), limit, after.as_deref()))
        .await?;
    Ok(listing(items, next))
}

pub(super) fn decode_continue(c: Option<&str>) -> ApiResult<Option<String>> {
    c.map(|c| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("continue: not a token this server issued"))
    })
    .transpose()
}

pub(super) async fn list_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural)): Path<(String, String)>,
    Query(p): Query<Page>,
) -> ApiResult<Response> {
    list_page(&st, &headers, kind_in_ns(&plural), Some(&ns), &p).await
}

pub(super) async fn create_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let kind = kind_in_ns(&plural)?;
    let req = need(Verb::Create, kind.plural(), Some(&ns), None);
    let r = write_resource(&st, &headers, req, Some(&ns), true, |user| {
        body_resource(&body, kind, Some(&ns), None, user)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(r.to_document())))
}

pub(super) async fn get_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Document>> {
    let user = authenticate(&st, &headers).await?;
    let kind = kind_in_ns(&plural)?;
    permit(
        &st,
        &user,
        need(Verb::Get, kind.plural(), Some(&ns), Some(&name)),
    )?;
    let (n, c) = (ns.clone(), name.clone());
    let r = st.db(move |s| s.get(kind, &n, &c)).await?.ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            format!(
                "{} {name:?} not found in namespace {ns:?}",
                kind.type_name()
            ),
        )
    })?;
    Ok(Json(r.to_document()))
}

pub(super) async fn put_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let kind = kind_in_ns(&plural)?;
    let req = need(Verb::Update, kind.plural(), Some(&ns), Some(&name));
    write_resource(&st, &headers, req, Some(&ns), false, |user| {
        body_resource(&body, kind, Some(&ns), Some(&name), user)
    })
    .await?;
    Ok(StatusCode::CREATED)
}

/// The one body of every resource write: authorise `req`; when
/// `namespace` is given, it must exist (404); `parse` turns the body into a validated
/// resource (it gets the user, who becomes `created_by`); then the resource is stored,
/// refused with 409 when `create_only` and it exists. Nothing is stored unless every step
/// before succeeded. Returns what was stored.
pub(super) async fn write_resource(
    st: &AppState,
    headers: &HeaderMap,
    req: Request<'_>,
    namespace: Option<&str>,
    create_only: bool,
    parse: impl FnOnce(&User) -> ApiResult<Resource>,
) -> ApiResult<Resource> {
    let user = authorize(st, headers, req).await?;
    if let Some(ns) = namespace {
        require_namespace(st, ns).await?;
    }
    let r = parse(&user)?;
    Ok(st.db(move |s| s.put(&r, create_only).map(|()| r)).await?)
}

pub(super) async fn delete_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let user = authenticate(&st, &headers).await?;
    let kind = kind_in_ns(&plural)?;
    permit(
        &st,
        &user,
        need(Verb::Delete, kind.plural(), Some(&ns), Some(&name)),
    )?;
    st.db(move |s| s.delete(kind, &ns, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
