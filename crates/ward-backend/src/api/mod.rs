//! apid: the HTTP API (the guides' paths), /health, /ready, /version, /metrics. One module
//! per resource family, as sensu-go's `backend/apid/routers`.

mod access;
mod apikeys;
pub mod certificates;
mod checks;
pub mod error;
mod events;
mod headers;
mod health;
mod listing;
mod login;
pub mod metrics;
mod namespaces;
mod providers;
mod resources;
pub mod state;
mod users;

pub use error::ApiError;
pub(crate) use events::{ensure_entity, file_under_proxy};
pub(crate) use health::health;
pub use metrics::Metrics;
pub use state::AppState;

use apikeys::*;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use checks::*;
use events::*;
use health::*;
use login::*;
use namespaces::*;
use providers::*;
use resources::*;
use serde_json::json;
use std::sync::Arc;
use users::*;

/// Largest request body accepted (413 above it).
pub const MAX_BODY: usize = 1024 * 1024;

type Shared = State<Arc<AppState>>;

/// The API's router; `tls`: it is served over TLS (HSTS is then sent).
pub fn router(state: Arc<AppState>, tls: bool) -> Router {
    routes(Router::new(), state, tls)
}

/// The dashboard's router: its page at `/` and the API on the same origin (so no CORS).
pub fn dashboard(state: Arc<AppState>, tls: bool) -> Router {
    routes(
        Router::new().route("/", get(headers::dashboard_page)),
        state,
        tls,
    )
}

/// The API groups whose namespaced kinds are served by the generic routes
/// (`resources.rs`), at `{group}/namespaces/{ns}/{plural}[/{name}]`.
const GROUPS: [&str; 3] = [
    "/api/core/v2",
    "/api/enterprise/pipeline/v1",
    "/api/enterprise/secrets/v1",
];

/// The generic routes of each of [`GROUPS`] (and, for the enterprise groups, the listing
/// of a kind across namespaces; core/v2's is among `routes`).
fn generic(mut r: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    for group in GROUPS {
        r = r
            .route(
                &format!("{group}/namespaces/{{ns}}/{{plural}}"),
                get(list_in_ns).post(create_in_ns),
            )
            .route(
                &format!("{group}/namespaces/{{ns}}/{{plural}}/{{name}}"),
                get(get_in_ns)
                    .put(put_in_ns)
                    .patch(patch_in_ns)
                    .delete(delete_in_ns),
            );
        if group != "/api/core/v2" {
            r = r.route(&format!("{group}/{{plural}}"), get(list_cluster));
        }
    }
    r
}

/// The API's routes added to `base`, every response with the security headers.
fn routes(base: Router<Arc<AppState>>, state: Arc<AppState>, tls: bool) -> Router {
    generic(base)
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
            get(get_user)
                .put(put_user)
                .patch(patch_user)
                .delete(disable_user),
        )
        .route("/api/core/v2/users/{name}/password", put(change_password))
        .route("/api/core/v2/users/{name}/reinstate", put(reinstate_user))
        .route(
            "/api/core/v2/users/{name}/reset_password",
            put(reset_password),
        )
        .route(
            "/api/core/v2/users/{name}/groups",
            axum::routing::delete(remove_all_groups),
        )
        .route(
            "/api/core/v2/users/{name}/groups/{group}",
            put(add_group).delete(remove_group),
        )
        .route(
            "/api/core/v2/apikeys",
            get(list_api_keys).post(create_api_key),
        )
        .route(
            "/api/core/v2/apikeys/{name}",
            get(get_api_key).delete(delete_api_key),
        )
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
            get(get_event)
                .put(put_event)
                .post(put_event)
                .delete(delete_event),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/checks/{name}/execute",
            post(execute_check),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/checks/{name}/hooks/{kind}",
            put(add_check_hooks),
        )
        .route(
            "/api/core/v2/namespaces/{ns}/checks/{name}/hooks/{kind}/hook/{hook}",
            axum::routing::delete(remove_check_hook),
        )
        .route("/api/core/v2/events", get(list_all_events))
        .route(
            "/api/core/v2/{plural}",
            get(list_cluster).post(create_cluster),
        )
        .route(
            "/api/core/v2/{plural}/{name}",
            get(get_cluster)
                .put(put_cluster)
                .patch(patch_cluster)
                .delete(delete_cluster),
        )
        .route(
            "/api/ward/v1/certificates/{serial}/revoke",
            post(certificates::revoke_certificate),
        )
        .route(
            "/api/enterprise/store/v1/provider",
            get(list_providers).post(create_provider),
        )
        .route(
            "/api/enterprise/store/v1/provider/{name}",
            get(get_provider).put(put_provider).delete(delete_provider),
        )
        .fallback(|| async {
            ApiError(
                axum::http::StatusCode::NOT_FOUND,
                "not found: no such path in the API (docs/api.md lists them)".into(),
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(contain_panics))
        .layer(axum::middleware::map_response(
            move |r: axum::response::Response| async move { headers::secure(r, tls) },
        ))
        .with_state(state)
}

/// A handler that panics (a bug) answers 500, logged with the path and the panic's
/// message, instead of the connection being dropped with no answer.
async fn contain_panics(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures_util::FutureExt;
    let path = req.uri().path().to_string();
    match std::panic::AssertUnwindSafe(next.run(req))
        .catch_unwind()
        .await
    {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(path = %path, panic = %what, "an API handler failed; answered 500");
            ApiError(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: the backend failed on this request (a bug, logged with its cause); report it".into(),
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{header, StatusCode};
    use std::sync::atomic::Ordering;
    use tower::ServiceExt;
    use ward_store::Store;

    fn state(dir: &std::path::Path) -> Arc<AppState> {
        let store = Arc::new(Store::open(dir).unwrap());
        let store_for_pipeline = store.clone();
        let metrics = Arc::new(Metrics::default());
        Arc::new(AppState {
            ca: None,
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
            logins: Default::default(),
            policy: Default::default(),
            silences: Default::default(),
            deregistration_handler: String::new(),
        })
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_next_request_is_served() {
        let app: Router = Router::new()
            .route(
                "/boom",
                get(|| async {
                    if true {
                        panic!("index out of bounds");
                    }
                    "never"
                }),
            )
            .route("/fine", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(super::contain_panics));
        let get_ = |p: &str| {
            axum::http::Request::builder()
                .uri(p)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let r = app.clone().oneshot(get_("/boom")).await.unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(r.into_body(), 4096).await.unwrap();
        assert!(
            String::from_utf8_lossy(&body).contains("internal error"),
            "{body:?}"
        );
        assert_eq!(
            app.oneshot(get_("/fine")).await.unwrap().status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn ready_is_503_with_retry_after_until_start_up_is_done() {
        let d = std::env::temp_dir().join(format!("ward-ready-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let st = state(&d);
        let app = router(st.clone(), false);
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
