//! `/health`, `/ready` and `/metrics`.

use super::error::{bad, ApiResult};
use super::Shared;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use ward_types::Kind;

pub(super) async fn ready(State(st): Shared) -> Response {
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
    let (providers, _) = st
        .db(|s| s.list(Kind::PostgresConfig, None, 1000, None))
        .await?;
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

pub(super) async fn metrics(State(st): Shared) -> Response {
    let m = &st.metrics;
    let mut out = String::new();
    let counters: [(&str, &str, &AtomicU64); 11] = [
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
        (
            "ward_password_verifications_total",
            "Password verifications (argon2) for API and agent logins, unknown users included.",
            &st.logins.verifications,
        ),
        (
            "ward_logins_throttled_total",
            "Logins refused with 429 (too many failures from an address or for a user), before any hashing.",
            &st.logins.throttled_attempts,
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
                "ward_tls_handshake_failures_by_reason_total{{reason=\"{}\"}} {n}\n",
                label_value(r)
            ));
        }
    }
    // Reading and parsing certificate files is blocking work: off the workers.
    let files = st.certificates.clone();
    match tokio::task::spawn_blocking(move || certificate_series(&files)).await {
        Ok(series) => out.push_str(&series),
        Err(e) => tracing::error!(error = %e, "certificate metrics failed"),
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// One series per certificate: each distinct certificate (by path, subject and serial)
/// of the backend's certificate files once, however many settings name its file.
fn certificate_series(files: &[std::path::PathBuf]) -> String {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = String::from("# HELP ward_certificate_days_left Days until a certificate the backend serves or trusts expires.\n# TYPE ward_certificate_days_left gauge\n");
    for p in files {
        let Ok(items) = ward_pki::inspect::inspect_file(p, None) else {
            continue;
        };
        for i in items {
            if let ward_pki::inspect::Inspected::Certificate(c) = i {
                let labels = format!(
                    "path=\"{}\",subject=\"{}\",serial=\"{}\"",
                    label_value(&p.display().to_string()),
                    label_value(&c.subject),
                    label_value(&c.serial)
                );
                if seen.insert(labels.clone()) {
                    out.push_str(&format!(
                        "ward_certificate_days_left{{{labels}}} {}\n",
                        c.days_left
                    ));
                }
            }
        }
    }
    out
}

/// A Prometheus label value: backslash, double quote and newline escaped, as the text
/// format requires (a subject may contain any of them).
pub(super) fn label_value(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for ch in v.chars() {
        match ch {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// This process's resident memory, from /proc/self/statm.
pub(super) fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * rustix::param::page_size() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_escape_backslash_quote_and_newline() {
        assert_eq!(super::label_value("CN=a\"b\\c\nd"), "CN=a\\\"b\\\\c\\nd");
    }
}
