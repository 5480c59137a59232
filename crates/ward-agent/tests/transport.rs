//! The agent against a stand-in backend (tests/common): the handshake, both ways of
//! authenticating, the frames, acks and retries, a dropped connection, heartbeats, checks,
//! and the close on shutdown.

mod common;

use base64::Engine;
use common::*;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::Message;
use ward_agent::queue::EventQueue;
use ward_agent::transport::{self, ConnectError};
use ward_types::agent::{Ack, CheckRequest, CheckSpec, Frame};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_exactly_once_across_a_retry_and_a_dropped_connection() {
    let d = tempfile::tempdir().unwrap();
    let p = pki(d.path());
    let mut backend = start(Some(server_tls(&p))).await;
    let cache = d.path().join("cache");
    {
        // Events a previous run left in the queue.
        let q = EventQueue::open(&cache, 1000).unwrap();
        for n in 0..20 {
            q.append(&serde_json::to_vec(&numbered_event(n)).unwrap())
                .unwrap();
        }
    }
    let url = format!("wss://localhost:{}", backend.addr.port());
    let cfg = config(&[
        ("backend-url", &url),
        ("name", "agent-1"),
        ("subscriptions", "linux,web,linux"),
        ("labels", "region=eu"),
        ("trusted-ca-file", p.ca.cert_path().to_str().unwrap()),
        ("cert-file", p.client.cert.to_str().unwrap()),
        ("key-file", p.client.key.to_str().unwrap()),
        ("cache-dir", cache.to_str().unwrap()),
    ]);
    let (stop, agent) = spawn_agent(cfg);

    // Session 1: the handshake carries the agent's identity and no password.
    let mut s1 = backend.accept().await;
    let h = |n: &str| {
        s1.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    assert_eq!(h("Ward-AgentName").as_deref(), Some("agent-1"));
    assert_eq!(h("Ward-Namespace").as_deref(), Some("default"));
    assert_eq!(h("Ward-Subscriptions").as_deref(), Some("linux,web"));
    assert_eq!(
        h("Authorization"),
        None,
        "a client certificate replaces Basic auth"
    );
    assert_eq!(s1.client_cn.as_deref(), Some("agent-1"));
    let Frame::Keepalive(k) = next_frame(&mut s1.ws).await else {
        panic!("the first frame is a keepalive")
    };
    assert_eq!(k.entity.name, "agent-1");
    assert_eq!(
        k.entity.labels.get("region").map(String::as_str),
        Some("eu")
    );
    assert_eq!(k.entity.system.os, "linux");
    assert!(!k.entity.agent_version.is_empty());
    assert_eq!(
        (k.interval, k.warning_timeout, k.critical_timeout),
        (20, 120, 0)
    );

    let mut stored: Vec<usize> = Vec::new();
    let mut ids = Vec::new();
    let mut by_id = BTreeMap::new();
    for _ in 0..20 {
        let Frame::Event { id, event } = next_frame(&mut s1.ws).await else {
            panic!("expected an event")
        };
        ids.push(id);
        by_id.insert(id, number_of(&event));
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase: {ids:?}");
    assert_eq!(
        by_id.values().copied().collect::<Vec<_>>(),
        (0..20).collect::<Vec<_>>()
    );
    // Store 0..=9 except 5, which the store asks for again.
    for (i, id) in ids.iter().enumerate().take(10) {
        if i == 5 {
            ack(
                &mut s1.ws,
                *id,
                Ack::Retry {
                    error: "the store is busy".into(),
                },
            )
            .await;
        } else {
            ack(&mut s1.ws, *id, Ack::Stored).await;
            stored.push(by_id[id]);
        }
    }
    // 5 comes back, after a short pause, under a new and higher id.
    let Frame::Event { id: again, event } = next_frame(&mut s1.ws).await else {
        panic!("expected the retried event")
    };
    assert_eq!(number_of(&event), 5);
    assert!(again > *ids.last().unwrap());
    // The connection drops with 10..=19 and 5 unanswered.
    drop(s1);

    // Session 2: a keepalive, then what was not answered, in queue order, once.
    let mut s2 = backend.accept().await;
    assert!(matches!(next_frame(&mut s2.ws).await, Frame::Keepalive(_)));
    let mut second = Vec::new();
    let mut last = 0;
    for _ in 0..11 {
        let Frame::Event { id, event } = next_frame(&mut s2.ws).await else {
            panic!("expected an event")
        };
        assert!(id > last);
        last = id;
        second.push(number_of(&event));
        ack(&mut s2.ws, id, Ack::Stored).await;
    }
    assert_eq!(second, [10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 5]);
    stored.extend(second);
    let mut sorted = stored.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..20).collect::<Vec<_>>(),
        "each event exactly once: {stored:?}"
    );
    // Nothing more is sent.
    let more = tokio::time::timeout(Duration::from_millis(300), next_message(&mut s2.ws)).await;
    assert!(more.is_err(), "unexpected {more:?}");

    // Shutdown: close code 1001 "bye", and run returns Ok.
    stop.send(()).unwrap();
    match next_message(&mut s2.ws).await {
        Some(Message::Close(Some(c))) => {
            assert_eq!(u16::from(c.code), 1001);
            assert_eq!(c.reason.as_str(), "bye");
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
    agent.await.unwrap().unwrap();
    let q = EventQueue::open(&cache, 1000).unwrap();
    assert!(q.is_empty(), "{} events left", q.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_agents_run_checks_and_a_hung_check_blocks_nothing() {
    let d = tempfile::tempdir().unwrap();
    let p = pki(d.path());
    let mut backend = start(Some(server_tls(&p))).await;
    let url = format!("wss://localhost:{}", backend.addr.port());
    let cache = d.path().join("cache");
    let api_port = ward_testkit::free_port().to_string();
    let cfg = config(&[
        ("disable-api", "false"),
        ("api-port", &api_port),
        ("backend-url", &url),
        ("name", "web-1"),
        ("user", "agent"),
        ("password", "s3cret"),
        ("trusted-ca-file", p.ca.cert_path().to_str().unwrap()),
        ("cache-dir", cache.to_str().unwrap()),
    ]);
    let (stop, agent) = spawn_agent(cfg);
    let mut s = backend.accept().await;
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("agent:s3cret")
    );
    assert_eq!(
        s.headers.get("Authorization").and_then(|v| v.to_str().ok()),
        Some(want.as_str())
    );
    assert_eq!(s.client_cn, None);
    assert!(matches!(next_frame(&mut s.ws).await, Frame::Keepalive(_)));

    let request = |name: &str, command: &str, timeout: u32| {
        Frame::CheckRequest(Box::new(CheckRequest {
            check: CheckSpec {
                name: name.into(),
                namespace: "default".into(),
                command: command.into(),
                timeout,
                interval: 60,
                handlers: vec!["mail".into()],
                ..Default::default()
            },
            issued: 1_700_000_000,
            assets: vec![],
            hooks: vec![],
            secrets: Default::default(),
        }))
    };
    send(&mut s.ws, request("hung", "sleep 60", 0)).await;
    send(
        &mut s.ws,
        Frame::EntityConfig(serde_json::json!({"metadata": {"name": "web-1"}})),
    )
    .await;
    send(
        &mut s.ws,
        request("hello", "echo hello; echo oops >&2; exit 1", 5),
    )
    .await;
    send(&mut s.ws, request("slow", "sleep 5", 1)).await;
    let mut results = BTreeMap::new();
    for _ in 0..2 {
        let Frame::Event { id, event } = next_frame(&mut s.ws).await else {
            panic!("expected an event")
        };
        let event = event.to_value();
        let name = event["check"]["metadata"]["name"]
            .as_str()
            .unwrap()
            .to_string();
        // A rejected event leaves the queue as a stored one does.
        let answer = if name == "slow" {
            Ack::Rejected {
                error: "check.output: not today".into(),
            }
        } else {
            Ack::Stored
        };
        ack(&mut s.ws, id, answer).await;
        results.insert(name, event);
    }
    let hello = &results["hello"];
    assert_eq!(hello["check"]["status"], 1);
    assert_eq!(hello["check"]["output"], "hello\noops\n");
    assert_eq!(hello["check"]["issued"], 1_700_000_000);
    assert_eq!(hello["check"]["handlers"], serde_json::json!(["mail"]));
    assert_eq!(hello["entity"]["metadata"]["name"], "web-1");
    assert_eq!(hello["entity"]["entity_class"], "agent");
    let slow = &results["slow"];
    assert_eq!(slow["check"]["status"], 2);
    assert!(slow["check"]["output"]
        .as_str()
        .unwrap()
        .contains("timed out after 1s"));
    // Nothing is resent: the queue is empty once both answers are in; the hung check is
    // killed at shutdown and reports nothing.
    let port: u16 = api_port.parse().unwrap();
    for _ in 0..100 {
        let (_, m) = http(port, "GET", "/metrics", "").await;
        if metric(&m, "ward_agent_queue_events") == 0 {
            assert_eq!(metric(&m, "ward_agent_events_acked_total"), 1);
            assert_eq!(metric(&m, "ward_agent_events_rejected_total"), 1);
            assert_eq!(metric(&m, "ward_agent_checks_executed_total"), 2);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
    assert_eq!(EventQueue::open(&cache, 10).unwrap().len(), 0);
}

async fn connect_err(cfg: &ward_agent::AgentConfig) -> ConnectError {
    match transport::connect(cfg, &cfg.backend_urls[0]).await {
        Ok(_) => panic!("connected"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_certificate_failures_are_one_line_with_the_fix() {
    let d = tempfile::tempdir().unwrap();
    let p = pki(d.path());
    let backend = start(Some(server_tls(&p))).await;
    let url = format!("wss://localhost:{}", backend.addr.port());
    let base = [("backend-url", url.as_str()), ("password", "wrong")];

    // An HTTP refusal carries the backend's one-line reason.
    *backend.refuse.lock().unwrap() = Some((
        StatusCode::UNAUTHORIZED,
        "wrong credentials for agent\n".into(),
    ));
    let mut flags = base.to_vec();
    let ca = p.ca.cert_path();
    flags.push(("trusted-ca-file", ca.to_str().unwrap()));
    let cfg = config(&flags);
    let e = connect_err(&cfg).await;
    assert!(
        matches!(e, ConnectError::Refused { status: 401, .. }),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!("{url}: the backend refused the agent: HTTP 401: wrong credentials for agent")
    );
    *backend.refuse.lock().unwrap() = None;

    // No trusted-ca-file: the system roots do not know Ward's CA, and the error says what
    // to set.
    let cfg = config(&base);
    let e = connect_err(&cfg).await.to_string();
    assert!(e.contains("trusted-ca-file"), "{e}");
    assert!(e.contains("the system"), "{e}");

    // The wrong CA file: named in the error.
    let other = tempfile::tempdir().unwrap();
    let other_ca = ward_testkit::fixtures::TestCa::create(other.path(), "Other CA");
    let mut flags = base.to_vec();
    let other_path = other_ca.cert_path();
    flags.push(("trusted-ca-file", other_path.to_str().unwrap()));
    let cfg = config(&flags);
    let e = connect_err(&cfg).await.to_string();
    assert!(
        e.contains("not signed by a CA in") && e.contains("ca.pem"),
        "{e}"
    );

    // insecure-skip-tls-verify connects anyway (and logs a warning each time).
    let mut flags = base.to_vec();
    flags.push(("insecure-skip-tls-verify", "true"));
    let cfg = config(&flags);
    assert!(transport::connect(&cfg, &cfg.backend_urls[0]).await.is_ok());

    // A backend that requires a client certificate: said in words, with the keys to set.
    let mtls = start(Some(server_tls_with(&p, true))).await;
    let mtls_url = format!("wss://localhost:{}", mtls.addr.port());
    let cfg = config(&[
        ("backend-url", &mtls_url),
        ("password", "pw"),
        ("trusted-ca-file", ca.to_str().unwrap()),
    ]);
    let e = connect_err(&cfg).await.to_string();
    assert!(
        e.contains("the backend requires a client certificate; set cert-file and key-file"),
        "{e}"
    );

    // Nothing listening: a network error naming the URL.
    let port = ward_testkit::free_port();
    let cfg = config(&[
        ("backend-url", &format!("ws://127.0.0.1:{port}")),
        ("password", "x"),
    ]);
    let e = connect_err(&cfg).await.to_string();
    assert!(
        e.starts_with(&format!("ws://127.0.0.1:{port}: cannot connect")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_backend_is_dropped_after_the_heartbeat_timeout_and_the_agent_reconnects() {
    let d = tempfile::tempdir().unwrap();
    let mut backend = start(None).await;
    let url = format!("ws://127.0.0.1:{}", backend.addr.port());
    let cache = d.path().join("cache");
    let cfg = config(&[
        ("backend-url", &url),
        ("password", "pw"),
        ("backend-heartbeat-interval", "100ms"),
        ("backend-heartbeat-timeout", "300ms"),
        ("cache-dir", cache.to_str().unwrap()),
    ]);
    let (stop, agent) = spawn_agent(cfg);
    // Session 1 is held open but never read: no pong ever goes back.
    let silent = backend.accept().await;
    let t = std::time::Instant::now();
    let mut s2 = backend.accept().await;
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    drop(silent);
    // Session 2 answers pings (tungstenite does while reading) and stays.
    assert!(matches!(next_frame(&mut s2.ws).await, Frame::Keepalive(_)));
    let quiet = tokio::time::timeout(Duration::from_millis(800), next_message(&mut s2.ws)).await;
    assert!(quiet.is_err(), "the answered session stays up: {quiet:?}");
    stop.send(()).unwrap();
    agent.await.unwrap().unwrap();
}
