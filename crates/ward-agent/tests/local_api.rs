//! The local agent API on 127.0.0.1: events in (202), bad events out with a one-line
//! reason (400), a full queue (503, counted), /healthz and /metrics; all while no backend
//! is reachable, so the events wait in the queue.

mod common;

use common::{http, metric, wait_for_api};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_queued_bad_ones_refused_and_a_full_queue_answers_503() {
    let d = tempfile::tempdir().unwrap();
    let port = ward_testkit::free_port();
    let nowhere = ward_testkit::free_port();
    let cache = d.path().join("cache");
    let cfg = common::config(&[
        ("backend-url", &format!("ws://127.0.0.1:{nowhere}")),
        ("password", "pw"),
        ("name", "web-1"),
        ("cache-dir", cache.to_str().unwrap()),
        ("cache-max-events", "2"),
        ("disable-api", "false"),
        ("api-port", &port.to_string()),
    ]);
    let (stop, agent) = common::spawn_agent(cfg);
    wait_for_api(port).await;

    assert_eq!(
        http(port, "GET", "/brew", "").await,
        (418, "I'm a teapot!\n".to_string())
    );
    let (status, body) = http(port, "GET", "/healthz", "").await;
    assert_eq!((status, body.as_str()), (503, "sensu backend unavailable"));

    let bad = [
        ("{", "the body is not JSON"),
        ("[]", "the body must be a JSON object"),
        (
            r#"{"check": {"status": 1}}"#,
            "check.metadata.name: is required",
        ),
        (
            r#"{"check": {"metadata": {"name": "x"}, "status": "bad"}}"#,
            "check.status: must be an exit status",
        ),
        (
            r#"{"check": {"metadata": {"name": "x"}}, "extra": 1}"#,
            "extra: unknown field",
        ),
        (
            r#"{"entity": {"metadata": {"name": "db-1"}}, "check": {"metadata": {"name": "x"}, "status": 0}}"#,
            "this agent sends events for its own entity (\"web-1\") only",
        ),
    ];
    for (body, want) in bad {
        let (status, reason) = http(port, "POST", "/events", body).await;
        assert_eq!(status, 400, "{body}: {reason}");
        assert!(
            reason.contains(want) && reason.lines().count() == 1,
            "{body}: {reason}"
        );
    }
    let ok = r#"{"check": {"metadata": {"name": "backup"}, "status": 1, "output": "late"}}"#;
    assert_eq!(http(port, "POST", "/events", ok).await.0, 202);
    assert_eq!(http(port, "POST", "/events", ok).await.0, 202);
    let (status, reason) = http(port, "POST", "/events", ok).await;
    assert_eq!(status, 503);
    assert!(
        reason.contains("the event queue is full (2 events"),
        "{reason}"
    );

    let (status, m) = http(port, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert_eq!(metric(&m, "ward_agent_queue_events"), 2);
    assert_eq!(metric(&m, "ward_agent_queue_full_total"), 1);
    assert_eq!(metric(&m, "ward_agent_connected"), 0);
    assert!(metric(&m, "ward_agent_connect_failures_total") >= 1);

    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    // The queued events outlive the agent, entity filled in.
    let q = ward_agent::queue::EventQueue::open(&cache, 2).unwrap();
    let events = q.after(0, 10, usize::MAX).unwrap();
    assert_eq!(events.len(), 2);
    let ev: serde_json::Value = serde_json::from_slice(&events[0].1).unwrap();
    assert_eq!(ev["entity"]["metadata"]["name"], "web-1");
    assert_eq!(ev["check"]["output"], "late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_api_port_stops_the_agent_at_start() {
    let d = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let cfg = common::config(&[
        ("password", "pw"),
        ("cache-dir", d.path().to_str().unwrap()),
        ("disable-api", "false"),
        ("api-port", &port.to_string()),
    ]);
    let e = ward_agent::run(cfg, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        e.starts_with(&format!(
            "api-host/api-port: cannot listen on 127.0.0.1:{port}"
        )),
        "{e}"
    );
}

/// A web page the host's browser opens must not reach the local API: a cross-origin
/// `text/plain` POST (a "simple" request, sent without a preflight), a foreign Origin, or
/// a rebound DNS name in Host are refused with a one-line reason, and nothing is queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_hosts_and_content_types_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let port = ward_testkit::free_port();
    let nowhere = ward_testkit::free_port();
    let cfg = common::config(&[
        ("backend-url", &format!("ws://127.0.0.1:{nowhere}")),
        ("password", "pw"),
        ("name", "web-1"),
        ("cache-dir", d.path().join("cache").to_str().unwrap()),
        ("disable-api", "false"),
        ("api-port", &port.to_string()),
    ]);
    let (stop, agent) = common::spawn_agent(cfg);
    wait_for_api(port).await;
    let ev = r#"{"check": {"metadata": {"name": "evil"}, "status": 2}}"#;
    let cases = [
        (
            "Origin: http://evil.example\r\nContent-Type: text/plain\r\n",
            403,
            "Origin \"http://evil.example\" is not this agent's API",
        ),
        (
            "Origin: http://evil.example\r\n",
            403,
            "Origin \"http://evil.example\" is not this agent's API",
        ),
        ("Origin: null\r\n", 403, "Origin \"null\""),
        (
            &format!("Origin: http://127.0.0.1:{}\r\n", port + 1),
            403,
            "is not this agent's API",
        ),
        (
            &format!("Host: evil.example:{port}\r\n"),
            403,
            &format!("Host \"evil.example:{port}\" is not this agent's API"),
        ),
        (
            "Content-Type: text/plain\r\n",
            415,
            "Content-Type \"text/plain\": events are JSON",
        ),
        (
            "Content-Type: application/x-www-form-urlencoded\r\n",
            415,
            "send Content-Type: application/json",
        ),
    ];
    for (headers, status, want) in cases {
        let (got, reason) = common::http_with(port, "POST", "/events", ev, headers).await;
        assert_eq!(got, status, "{headers:?}: {reason}");
        assert!(
            reason.contains(want) && reason.lines().count() == 1,
            "{headers:?}: {reason}"
        );
    }
    let (got, _) = common::http_with(port, "GET", "/metrics", "", "Host: evil.example\r\n").await;
    assert_eq!(got, 403);
    // The API's own origin, localhost, and no Origin at all (curl) are served.
    for headers in [
        format!("Origin: http://127.0.0.1:{port}\r\n"),
        format!("Origin: http://localhost:{port}\r\nHost: localhost:{port}\r\n"),
        "Content-Type: application/json; charset=utf-8\r\n".to_string(),
    ] {
        let (got, reason) = common::http_with(port, "POST", "/events", ev, &headers).await;
        assert_eq!(got, 202, "{headers:?}: {reason}");
    }
    let (_, m) = common::http(port, "GET", "/metrics", "").await;
    assert_eq!(metric(&m, "ward_agent_queue_events"), 3);
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_beyond_the_rate_limit_get_429_until_the_bucket_refills() {
    let d = tempfile::tempdir().unwrap();
    let port = ward_testkit::free_port();
    let nowhere = ward_testkit::free_port();
    let cache = d.path().join("cache");
    // Sensu's events-rate-limit and events-burst-limit.
    let cfg = common::config(&[
        ("backend-url", &format!("ws://127.0.0.1:{nowhere}")),
        ("password", "pw"),
        ("name", "web-1"),
        ("cache-dir", cache.to_str().unwrap()),
        ("disable-api", "false"),
        ("api-port", &port.to_string()),
        ("events-rate-limit", "2"),
        ("events-burst-limit", "2"),
    ]);
    let (stop, agent) = common::spawn_agent(cfg);
    wait_for_api(port).await;
    let ok = r#"{"check": {"metadata": {"name": "backup"}, "status": 0, "output": "ok"}}"#;
    assert_eq!(http(port, "POST", "/events", ok).await.0, 202);
    assert_eq!(http(port, "POST", "/events", ok).await.0, 202);
    let (status, reason) = http(port, "POST", "/events", ok).await;
    assert_eq!(status, 429, "{reason}");
    assert!(
        reason.contains("more than 2 events a second (events-rate-limit")
            && reason.lines().count() == 1,
        "{reason}"
    );
    // Two a second: one more after half a second.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(http(port, "POST", "/events", ok).await.0, 202);
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
}
