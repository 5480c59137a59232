//! Security headers on every response of the API and the dashboard, and the dashboard's
//! page with a Content-Security-Policy that allows exactly its own inline script and style.

use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use std::sync::LazyLock;

/// The dashboard's page.
pub(super) const DASHBOARD: &str = include_str!("../dashboard.html");

/// The CSP of API (JSON) responses: nothing may load, nothing may frame them.
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// HSTS: one year (sent only over TLS, where it means something).
const HSTS: &str = "max-age=31536000";

/// The base64 SHA-256 of the text between `open` and `close` in the page (CSP hash
/// sources), computed from the very bytes served, so an edit of the page cannot leave a
/// stale hash behind.
fn inline_hash(open: &str, close: &str) -> String {
    let body = DASHBOARD
        .split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map_or("", |(inner, _)| inner);
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(d.as_ref())
    )
}

/// The dashboard page's CSP: its one inline script and one inline style by hash, API
/// calls to its own origin, no framing.
static DASHBOARD_CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src {}; style-src {}; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        inline_hash("<script>", "</script>"),
        inline_hash("<style>", "</style>")
    )
});

/// GET / on the dashboard port.
pub(super) async fn dashboard_page() -> Response {
    let mut r = Html(DASHBOARD).into_response();
    if let Ok(v) = HeaderValue::from_str(&DASHBOARD_CSP) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

/// Adds the security headers a response lacks (a page's own CSP is kept).
pub(super) fn secure(mut r: Response, tls: bool) -> Response {
    let h = r.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(API_CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if tls {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    r
}
