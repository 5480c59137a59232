//! apid: the HTTP API (the guides' paths), /health, /ready, /version, /metrics.

use crate::auth::{self, Role};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use ward_store::{Store, StoreError, User};
use ward_types::{Document, Kind, Metadata, Resource};

/// Largest request body accepted (413 above it).
pub const MAX_BODY: usize = 1024 * 1024;

/// Counters for /metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub plaintext_on_tls: AtomicU64,
    pub handshake_failures: AtomicU64,
    /// Failed handshakes by reason (a short label from the TLS error).
    pub handshake_failure_reasons: std::sync::Mutex<BTreeMap<String, u64>>,
    pub auth_failures: AtomicU64,
    pub events_received: AtomicU64,
    pub events_stored: AtomicU64,
    /// Total time spent in event store writes, in microseconds, and how many.
    pub store_write_micros: AtomicU64,
    pub store_writes: AtomicU64,
    /// Events stored in the embedded store (and its replay journal) while a non-strict
    /// PostgreSQL event store was unreachable.
    pub pg_fallback_events: AtomicU64,
    /// Journaled events replayed into PostgreSQL.
    pub pg_replayed_events: AtomicU64,
    /// Events refused because the PostgreSQL store's buffer was full (503).
    pub pg_buffer_full: AtomicU64,
}

impl Metrics {
    /// Counts a failed handshake under `reason`.
    pub fn handshake_failed(&self, reason: &str) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.handshake_failure_reasons.lock() {
            *m.entry(reason.to_string()).or_insert(0) += 1;
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub store: Arc<Store>,
    /// Where events are stored and read: the embedded store or PostgreSQL.
    pub events: crate::eventd::EventRouter,
    pub cluster_id: u64,
    pub member_id: u64,
    pub name: String,
    pub metrics: Arc<Metrics>,
    /// Certificates the backend serves or trusts, for days-left metrics.
    pub certificates: Vec<std::path::PathBuf>,
    /// Access token lifetime, seconds.
    pub access_token_ttl: i64,
    /// False while start-up checks run: /ready answers 503 with Retry-After until then.
    pub ready: std::sync::atomic::AtomicBool,
    /// The connected agents, keepalived's tracker, and the agent port's counters.
    pub agents: crate::agentd::Agents,
    /// Handlers for stored events.
    pub pipeline: Arc<crate::pipeline::Pipeline>,
}

impl AppState {
    /// What happens to an event once it is stored (it is already acknowledged): its JSON
    /// text goes to the handler pipeline, which never delays storage. Callers pass it only
    /// when the event names handlers (`EventInput::has_handlers`): only then is it parsed
    /// again.
    pub fn after_store(&self, namespace: &str, stored: &str) {
        match serde_json::from_str::<Value>(stored) {
            Ok(v) => self.pipeline.handle(namespace, &v),
            Err(e) => tracing::error!(error = %e, "a stored event is not JSON; not handled"),
        }
    }
}

/// An API error: status and one sentence.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

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

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, msg.into())
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Exists { .. } => ApiError(StatusCode::CONFLICT, e.to_string()),
            StoreError::NotFound { .. } => ApiError(StatusCode::NOT_FOUND, e.to_string()),
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

/// 503 with Retry-After: try again shortly (the sender keeps what it sent).
fn unavailable(m: String) -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, m)
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;
type Shared = State<Arc<AppState>>;

/// The router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route(
            "/version",
            get(|| async { Json(json!({"backend": env!("CARGO_PKG_VERSION")})) }),
        )
        .route("/metrics", get(metrics))
        .route("/auth", get(login))
        .route("/auth/test", get(auth_test))
        .route("/auth/token", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/api/core/v2/users", get(list_users).post(create_user))
        .route(
            "/api/core/v2/users/{name}",
            get(get_user).put(put_user).delete(disable_user),
        )
        .route("/api/core/v2/users/{name}/password", put(change_password))
        .route(
            "/api/core/v2/namespaces",
            get(list_namespaces).post(create_namespace),
        )
        .route(
            "/api/core/v2/namespaces/{ns}",
            get(get_namespace)
                .put(put_namespace)
                .delete(delete_namespace),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/events",
            get(list_events).post(post_event),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/events/{entity}",
            get(list_entity_events),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/events/{entity}/{check}",
            get(get_event).put(put_event).delete(delete_event),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/checks/{name}/execute",
            post(execute_check),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/{plural}",
            get(list_in_ns).post(create_in_ns),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/{plural}/{name}",
            get(get_in_ns).put(put_in_ns).delete(delete_in_ns),
        )
        .route(
            "/api/enterprise/store/v1/provider",
            get(list_providers).post(create_provider),
        )
        .route(
            "/api/enterprise/store/v1/provider/{name}",
            get(get_provider).put(put_provider).delete(delete_provider),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

// ---- authentication and authorisation ----

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// What a request needs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
    CreateEvent,
}

fn authorize(st: &AppState, headers: &HeaderMap, need: Need) -> ApiResult<User> {
    let user = authenticate(st, headers)?;
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
fn authenticate(st: &AppState, headers: &HeaderMap) -> ApiResult<User> {
    let Some(token) = bearer(headers) else {
        st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError(StatusCode::UNAUTHORIZED, "no access token; log in with GET /auth (Basic credentials) and send Authorization: Bearer TOKEN".into()));
    };
    let Some(user) = auth::authenticate_bearer(&st.store, token) else {
        st.metrics.auth_failures.fetch_add(1, Ordering::Relaxed);
        return Err(ApiError(StatusCode::UNAUTHORIZED, "the access token is invalid, expired or revoked; log in again (GET /auth) or refresh it (POST /auth/token)".into()));
    };
    Ok(user)
}

async fn login(State(st): Shared, headers: HeaderMap) -> ApiResult<Json<Value>> {
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

async fn auth_test(State(st): Shared, headers: HeaderMap) -> ApiResult<StatusCode> {
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
struct RefreshBody {
    refresh_token: String,
}

async fn refresh(State(st): Shared, body: Bytes) -> ApiResult<Json<Value>> {
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

async fn logout(State(st): Shared, headers: HeaderMap) -> ApiResult<StatusCode> {
    let token = bearer(&headers)
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "no access token".into()))?;
    let user = authenticate(&st, &headers)?;
    st.store.revoke_token(&auth::token_hash(token))?;
    st.store.revoke_refresh_tokens(&user.name)?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- health and metrics ----

async fn ready(State(st): Shared) -> Response {
    if st.ready.load(Ordering::Acquire) {
        "ok".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "starting",
        )
            .into_response()
    }
}

pub(crate) async fn health(
    State(st): Shared,
    Query(q): Query<BTreeMap<String, String>>,
) -> ApiResult<Json<Value>> {
    if let Some(t) = q.get("timeout") {
        t.parse::<u64>()
            .map_err(|_| bad(format!("timeout: {t:?} is not a number of seconds")))?;
    }
    let (providers, _) = st.store.list(Kind::PostgresConfig, None, 1000, None)?;
    // Answered from what eventd last saw (its probe runs in the background), so /health
    // never waits for PostgreSQL.
    let pg: Vec<Value> = providers
        .iter()
        .map(|p| {
            let h = st.events.health(&p.metadata.name);
            json!({"Name": h.name, "Active": h.active, "Healthy": h.healthy})
        })
        .collect();
    Ok(Json(json!({
        "Alarms": null,
        "ClusterHealth": [{
            "MemberID": st.member_id,
            "MemberIDHex": format!("{:x}", st.member_id),
            "Name": st.name,
            "Err": "",
            "Healthy": true,
        }],
        "Header": {"cluster_id": st.cluster_id, "member_id": st.member_id, "raft_term": 0},
        "PostgresHealth": if pg.is_empty() { Value::Null } else { Value::Array(pg) },
    })))
}

async fn metrics(State(st): Shared) -> Response {
    let m = &st.metrics;
    let mut out = String::new();
    let counters: [(&str, &str, &AtomicU64); 9] = [
        (
            "ward_http_requests_total",
            "HTTP requests served.",
            &m.requests,
        ),
        (
            "ward_tls_plaintext_requests_total",
            "Plaintext connections to a TLS port, closed without data.",
            &m.plaintext_on_tls,
        ),
        (
            "ward_tls_handshake_failures_total",
            "Failed TLS handshakes.",
            &m.handshake_failures,
        ),
        (
            "ward_auth_failures_total",
            "Refused logins and tokens.",
            &m.auth_failures,
        ),
        (
            "ward_events_received_total",
            "Events posted to the API.",
            &m.events_received,
        ),
        (
            "ward_events_stored_total",
            "Events committed to the store (and acknowledged).",
            &m.events_stored,
        ),
        (
            "ward_pg_fallback_events_total",
            "Events stored in the embedded store, to be replayed, while PostgreSQL was unreachable (strict: false).",
            &m.pg_fallback_events,
        ),
        (
            "ward_pg_replayed_events_total",
            "Events replayed into PostgreSQL after an outage.",
            &m.pg_replayed_events,
        ),
        (
            "ward_pg_buffer_full_total",
            "Events refused with 503 because the PostgreSQL event store's buffer was full.",
            &m.pg_buffer_full,
        ),
    ];
    for (name, help, v) in counters {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
            v.load(Ordering::Relaxed)
        ));
    }
    out.push_str("# HELP ward_store_write_seconds Event store write latency.\n# TYPE ward_store_write_seconds summary\n");
    out.push_str(&format!(
        "ward_store_write_seconds_sum {:.6}\nward_store_write_seconds_count {}\n",
        m.store_write_micros.load(Ordering::Relaxed) as f64 / 1e6,
        m.store_writes.load(Ordering::Relaxed)
    ));
    st.agents.render_metrics(&mut out);
    st.pipeline.render_metrics(&mut out);
    if let Some(rss) = resident_bytes() {
        out.push_str(&format!("# HELP process_resident_memory_bytes Resident memory of the backend process.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n"));
    }
    out.push_str("# HELP ward_tls_handshake_failures_by_reason_total Failed TLS handshakes by reason.\n# TYPE ward_tls_handshake_failures_by_reason_total counter\n");
    if let Ok(reasons) = m.handshake_failure_reasons.lock() {
        for (r, n) in reasons.iter() {
            out.push_str(&format!(
                "ward_tls_handshake_failures_by_reason_total{{reason=\"{r}\"}} {n}\n"
            ));
        }
    }
    out.push_str("# HELP ward_certificate_days_left Days until a certificate the backend serves or trusts expires.\n# TYPE ward_certificate_days_left gauge\n");
    for p in &st.certificates {
        if let Ok(items) = ward_pki::inspect::inspect_file(p, None) {
            for i in items {
                if let ward_pki::inspect::Inspected::Certificate(c) = i {
                    out.push_str(&format!(
                        "ward_certificate_days_left{{path=\"{}\",subject=\"{}\"}} {}\n",
                        p.display(),
                        c.subject.replace('"', "'"),
                        c.days_left
                    ));
                }
            }
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// This process's resident memory, from /proc/self/statm.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

// ---- resources ----

#[derive(Deserialize)]
struct Page {
    limit: Option<usize>,
    #[serde(rename = "continue")]
    cont: Option<String>,
}

fn parse_doc(body: &[u8]) -> ApiResult<Document> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    serde_json::from_value(v).map_err(|e| bad(format!("body: {e}")))
}

/// Parses and validates a body for `kind` at a path's namespace and name.
fn body_resource(
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
    let r = Resource::from_document(doc).map_err(|e| bad(e.to_string()))?;
    if r.kind != kind {
        return Err(bad(format!(
            "type: a {} cannot be stored under /{}",
            r.kind.type_name(),
            kind.plural()
        )));
    }
    if r.kind == Kind::CheckConfig {
        check_schedule(&r)?;
    }
    Ok(r)
}

/// A check's schedule must be one the scheduler can follow. (A published check with
/// neither runs every `DEFAULT_INTERVAL` seconds: the guides' `expired_certs` is written so.)
fn check_schedule(r: &Resource) -> ApiResult<()> {
    if let Some(expr) = r.spec.get("cron").and_then(Value::as_str) {
        crate::agentd::schedulerd::parse_cron(expr).map_err(|e| bad(format!("spec.{e}")))?;
        if r.spec.get("interval").and_then(Value::as_u64).unwrap_or(0) > 0 {
            return Err(bad("spec.cron: set either interval or cron, not both"));
        }
    }
    Ok(())
}

fn kind_in_ns(plural: &str) -> ApiResult<Kind> {
    Kind::from_plural(plural)
        .filter(|k| k.namespaced())
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no such collection {plural:?}; use entities, checks, handlers or events"),
            )
        })
}

fn require_namespace(st: &AppState, ns: &str) -> ApiResult<()> {
    if st.store.get(Kind::Namespace, "", ns)?.is_none() {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("namespace {ns:?} not found; create it first"),
        ));
    }
    Ok(())
}

/// Adds the next page's token, when there is one, as the `Ward-Continue` header.
fn with_continue(mut r: Response, next: Option<String>) -> Response {
    if let Some(n) = next {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n);
        if let Ok(v) = HeaderValue::from_str(&token) {
            r.headers_mut().insert("ward-continue", v);
        }
    }
    r
}

fn listing(items: Vec<Resource>, next: Option<String>) -> Response {
    let docs: Vec<Document> = items.iter().map(Resource::to_document).collect();
    with_continue(Json(docs).into_response(), next)
}

/// GET of a collection: read access, then one page of `kind` in `namespace` (the kind is
/// judged after authentication, so an anonymous request is a 401 whatever its path).
fn list_page(
    st: &AppState,
    headers: &HeaderMap,
    kind: ApiResult<Kind>,
    namespace: &str,
    p: &Page,
) -> ApiResult<Response> {
    authorize(st, headers, Need::Read)?;
    let (items, next) = st.store.list(
        kind?,
        Some(namespace),
        p.limit.unwrap_or(500),
        decode_continue(p.cont.as_deref())?.as_deref(),
    )?;
    Ok(listing(items, next))
}

fn decode_continue(c: Option<&str>) -> ApiResult<Option<String>> {
    c.map(|c| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| bad("continue: not a token this server issued"))
    })
    .transpose()
}

async fn list_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural)): Path<(String, String)>,
    Query(p): Query<Page>,
) -> ApiResult<Response> {
    list_page(&st, &headers, kind_in_ns(&plural), &ns, &p)
}

async fn create_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let kind = kind_in_ns(&plural)?;
    let user = authorize(
        &st,
        &headers,
        if kind == Kind::Event {
            Need::CreateEvent
        } else {
            Need::Write
        },
    )?;
    require_namespace(&st, &ns)?;
    let r = body_resource(&body, kind, Some(&ns), None, &user)?;
    st.store.put(&r, true)?;
    Ok((StatusCode::CREATED, Json(r.to_document())))
}

async fn get_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Document>> {
    authorize(&st, &headers, Need::Read)?;
    let kind = kind_in_ns(&plural)?;
    let r = st.store.get(kind, &ns, &name)?.ok_or_else(|| {
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

async fn put_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let kind = kind_in_ns(&plural)?;
    let user = authorize(
        &st,
        &headers,
        if kind == Kind::Event {
            Need::CreateEvent
        } else {
            Need::Write
        },
    )?;
    require_namespace(&st, &ns)?;
    let r = body_resource(&body, kind, Some(&ns), Some(&name), &user)?;
    st.store.put(&r, false)?;
    Ok(StatusCode::CREATED)
}

async fn delete_in_ns(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, plural, name)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    authorize(&st, &headers, Need::Write)?;
    let kind = kind_in_ns(&plural)?;
    st.store.delete(kind, &ns, &name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_namespaces(
    State(st): Shared,
    headers: HeaderMap,
    Query(p): Query<Page>,
) -> ApiResult<Response> {
    list_page(&st, &headers, Ok(Kind::Namespace), "", &p)
}

fn namespace_resource(body: &[u8], name: Option<&str>, user: &User) -> ApiResult<Resource> {
    // Sensu's namespace body is {"name": "…"}; a document works too.
    let v: Value =
        serde_json::from_slice(body).map_err(|e| bad(format!("body is not valid JSON: {e}")))?;
    let n = v
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .or(name.map(str::to_string))
        .ok_or_else(|| bad("name: is required"))?;
    if let Some(u) = name {
        if n != u {
            return Err(bad(format!(
                "name: {n:?} does not match the name in the URL ({u:?})"
            )));
        }
    }
    Resource::from_document(Document {
        type_name: "Namespace".into(),
        api_version: "core/v2".into(),
        metadata: Metadata {
            name: n,
            created_by: Some(user.name.clone()),
            ..Default::default()
        },
        spec: Value::Null,
    })
    .map_err(|e| bad(e.to_string()))
}

async fn create_namespace(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let user = authorize(&st, &headers, Need::Write)?;
    st.store
        .put(&namespace_resource(&body, None, &user)?, true)?;
    Ok(StatusCode::CREATED)
}

async fn put_namespace(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let user = authorize(&st, &headers, Need::Write)?;
    st.store
        .put(&namespace_resource(&body, Some(&ns), &user)?, false)?;
    Ok(StatusCode::CREATED)
}

async fn get_namespace(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &headers, Need::Read)?;
    st.store
        .get(Kind::Namespace, "", &ns)?
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("namespace {ns:?} not found")))?;
    Ok(Json(json!({"name": ns})))
}

async fn delete_namespace(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(&st, &headers, Need::Write)?;
    for k in Kind::ALL.into_iter().filter(|k| k.namespaced()) {
        if !st.store.list(k, Some(&ns), 1, None)?.0.is_empty() {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "namespace {ns:?} still holds {}; delete them first",
                    k.plural()
                ),
            ));
        }
    }
    st.store.delete(Kind::Namespace, "", &ns)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_providers(
    State(st): Shared,
    headers: HeaderMap,
    Query(p): Query<Page>,
) -> ApiResult<Response> {
    list_page(&st, &headers, Ok(Kind::PostgresConfig), "", &p)
}

async fn create_provider(
    State(st): Shared,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let user = authorize(&st, &headers, Need::Write)?;
    let r = body_resource(&body, Kind::PostgresConfig, None, None, &user)?;
    use_provider(&st, r, true).await
}

async fn put_provider(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let user = authorize(&st, &headers, Need::Write)?;
    let r = body_resource(&body, Kind::PostgresConfig, None, Some(&name), &user)?;
    use_provider(&st, r, false).await
}

/// Stores a PostgresConfig and makes it the event store. It is validated first (connect, and
/// may the user create tables?): with `strict: true` a failure rejects it with PostgreSQL's
/// reason and nothing is stored; with `strict: false` it is stored anyway and eventd keeps
/// trying (events fall back to the embedded store meanwhile). Only one may exist.
async fn use_provider(st: &AppState, r: Resource, create_only: bool) -> ApiResult<StatusCode> {
    let name = r.metadata.name.clone();
    let settings = ward_store::postgres::PgSettings::from_resource(&r).map_err(bad)?;
    let params = crate::eventd::resolve(&settings).map_err(bad)?;
    let (existing, _) = st.store.list(Kind::PostgresConfig, None, 2, None)?;
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
    st.store.put(&r, create_only)?;
    st.events.activate(settings).await.map_err(bad)?;
    Ok(StatusCode::CREATED)
}

async fn get_provider(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<Json<Document>> {
    authorize(&st, &headers, Need::Read)?;
    let r = st
        .store
        .get(Kind::PostgresConfig, "", &name)?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("PostgresConfig {name:?} not found"),
            )
        })?;
    Ok(Json(r.to_document()))
}

async fn delete_provider(
    State(st): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    authorize(&st, &headers, Need::Write)?;
    st.store.delete(Kind::PostgresConfig, "", &name)?;
    st.events.deactivate(&name).await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- events ----

use ward_types::unix_now;

fn event_listing(events: Vec<String>, next: Option<String>) -> Response {
    // The stored texts are JSON the store wrote; joining them avoids a parse and a
    // re-serialisation per event.
    let mut body = String::with_capacity(events.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
    body.push('[');
    body.push_str(&events.join(","));
    body.push(']');
    with_continue(
        ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        next,
    )
}

/// Registers an event's entity when it has none yet (a proxy entity, unless the event says
/// its class).
pub(crate) fn ensure_entity(
    st: &AppState,
    ns: &str,
    input: &ward_types::event::EventInput,
    now: i64,
) -> ApiResult<()> {
    if st.store.get(Kind::Entity, ns, &input.entity)?.is_none() {
        let class = input.entity_class().unwrap_or_else(|| "proxy".into());
        let entity = Resource::from_document(Document {
            type_name: "Entity".into(),
            api_version: "core/v2".into(),
            metadata: Metadata {
                name: input.entity.clone(),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            spec: json!({"entity_class": class, "last_seen": now}),
        })
        .map_err(|e| bad(e.to_string()))?;
        match st.store.put(&entity, true) {
            Ok(()) | Err(StoreError::Exists { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Stores an event (acknowledged only once it is committed) and registers its entity;
/// returns the stored event's JSON text.
async fn store_event(
    st: &AppState,
    ns: &str,
    body: &[u8],
    expect: Option<(&str, &str)>,
) -> ApiResult<String> {
    let now = unix_now();
    st.metrics.events_received.fetch_add(1, Ordering::Relaxed);
    let input = ward_types::event::parse_event_slice(body, ns, now).map_err(|e| match e {
        ward_types::event::EventError::Json(e) => bad(format!("body is not valid JSON: {e}")),
        ward_types::event::EventError::Field(e) => bad(e.to_string()),
    })?;
    if let Some((entity, check)) = expect {
        if input.entity != entity || input.check != check {
            return Err(bad(format!(
                "entity/check: {}/{} does not match the URL ({entity}/{check})",
                input.entity, input.check
            )));
        }
    }
    ensure_entity(st, ns, &input, now)?;
    let started = std::time::Instant::now();
    let handlers = input.has_handlers();
    let stored = st
        .events
        .submit(input.prepare())
        .await
        .map_err(|e| match e {
            crate::eventd::SubmitError::Busy(m) => {
                unavailable(format!("the event was not stored: {m}; retry"))
            }
            crate::eventd::SubmitError::Failed(m) => {
                tracing::error!(error = %m, "event not stored");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the event was not stored; see the backend's log".into(),
                )
            }
        })?;
    st.metrics
        .store_write_micros
        .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
    st.metrics.store_writes.fetch_add(1, Ordering::Relaxed);
    st.metrics.events_stored.fetch_add(1, Ordering::Relaxed);
    if handlers {
        st.after_store(ns, &stored);
    }
    Ok(stored)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ExecuteRequest {
    #[serde(default)]
    check: Option<String>,
    #[serde(default)]
    subscriptions: Option<Vec<String>>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST …/checks/:check/execute`: publishes the check now (to `subscriptions` if given,
/// else its own), whether or not it is scheduled. 202 with how many agents it was sent to.
async fn execute_check(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = authorize(&st, &headers, Need::Write)?;
    require_namespace(&st, &ns)?;
    let req: ExecuteRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ExecuteRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            bad(format!(
                "body: {e}; send {{\"check\": \"{name}\", \"subscriptions\": [...]}}"
            ))
        })?
    };
    if let Some(c) = &req.check {
        if c != &name {
            return Err(bad(format!(
                "check: {c:?} does not match the URL ({name:?})"
            )));
        }
    }
    let Some(r) = st.store.get(Kind::CheckConfig, &ns, &name)? else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no check {name:?} in namespace {ns:?}"),
        ));
    };
    let mut rr = 0;
    let sent = crate::agentd::schedulerd::publish(&st, &r, req.subscriptions.as_deref(), &mut rr);
    tracing::info!(check = %name, namespace = %ns, user = %user.name, agents = sent, reason = req.reason.as_deref().unwrap_or(""), "check executed on demand");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"issued": unix_now(), "agents": sent})),
    ))
}

/// 201 with a stored event's JSON text as the body.
fn created_json(stored: String) -> Response {
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        stored,
    )
        .into_response()
}

async fn post_event(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&st, &headers, Need::CreateEvent)?;
    require_namespace(&st, &ns)?;
    let ev = store_event(&st, &ns, &body, None).await?;
    Ok(created_json(ev))
}

async fn put_event(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, entity, check)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    authorize(&st, &headers, Need::CreateEvent)?;
    require_namespace(&st, &ns)?;
    let ev = store_event(&st, &ns, &body, Some((&entity, &check))).await?;
    Ok(created_json(ev))
}

async fn list_events(
    State(st): Shared,
    headers: HeaderMap,
    Path(ns): Path<String>,
    Query(p): Query<Page>,
) -> ApiResult<Response> {
    authorize(&st, &headers, Need::Read)?;
    let (events, next) = st
        .events
        .events_raw(
            Some(&ns),
            None,
            p.limit.unwrap_or(500),
            decode_continue(p.cont.as_deref())?.as_deref(),
        )
        .await?;
    Ok(event_listing(events, next))
}

async fn list_entity_events(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, entity)): Path<(String, String)>,
    Query(p): Query<Page>,
) -> ApiResult<Response> {
    authorize(&st, &headers, Need::Read)?;
    let (events, next) = st
        .events
        .events_raw(
            Some(&ns),
            Some(&entity),
            p.limit.unwrap_or(500),
            decode_continue(p.cont.as_deref())?.as_deref(),
        )
        .await?;
    Ok(event_listing(events, next))
}

async fn get_event(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, entity, check)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    authorize(&st, &headers, Need::Read)?;
    let ev = st
        .events
        .event(&ns, &entity, &check)
        .await?
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no event for entity {entity:?} and check {check:?} in namespace {ns:?}"),
            )
        })?;
    Ok(Json(ev))
}

async fn delete_event(
    State(st): Shared,
    headers: HeaderMap,
    Path((ns, entity, check)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    authorize(&st, &headers, Need::Write)?;
    st.events.delete_event(&ns, &entity, &check).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- users ----

fn user_json(u: &User) -> Value {
    json!({"username": u.name, "groups": u.groups, "disabled": u.disabled})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    username: Option<String>,
    password: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    disabled: bool,
}

async fn list_users(State(st): Shared, headers: HeaderMap) -> ApiResult<Json<Vec<Value>>> {
    authorize(&st, &headers, Need::Read)?;
    Ok(Json(st.store.users()?.iter().map(user_json).collect()))
}

async fn get_user(
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

fn user_from_body(body: &[u8], name: Option<&str>) -> ApiResult<User> {
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

async fn create_user(State(st): Shared, headers: HeaderMap, body: Bytes) -> ApiResult<StatusCode> {
    authorize(&st, &headers, Need::Write)?;
    let u = user_from_body(&body, None)?;
    if u.password_hash.is_none() {
        return Err(bad("password: is required for a new user"));
    }
    st.store.create_user(&u)?;
    Ok(StatusCode::CREATED)
}

async fn put_user(
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
struct PasswordBody {
    password: String,
}

async fn change_password(
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

async fn disable_user(
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn state(dir: &std::path::Path) -> Arc<AppState> {
        let store = Arc::new(Store::open(dir).unwrap());
        let store_for_pipeline = store.clone();
        let metrics = Arc::new(Metrics::default());
        Arc::new(AppState {
            events: crate::eventd::EventRouter::new(store.clone(), 2, metrics.clone()),
            store,
            cluster_id: 1,
            member_id: 2,
            name: "t".into(),
            metrics,
            certificates: Vec::new(),
            access_token_ttl: 60,
            ready: std::sync::atomic::AtomicBool::new(false),
            agents: Default::default(),
            pipeline: crate::pipeline::Pipeline::new(store_for_pipeline),
        })
    }

    #[tokio::test]
    async fn ready_is_503_with_retry_after_until_start_up_is_done() {
        let d = std::env::temp_dir().join(format!("ward-ready-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let st = state(&d);
        let app = router(st.clone());
        let req = || {
            axum::http::Request::builder()
                .uri("/ready")
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let r = app.clone().oneshot(req()).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        st.ready.store(true, Ordering::Release);
        assert_eq!(app.oneshot(req()).await.unwrap().status(), StatusCode::OK);
        let _ = std::fs::remove_dir_all(&d);
    }
}
